//! Ryot's own ternary layout, "t2p": 2-bit codes in 16-row panels.
//!
//! A GGUF ternary tensor stores rows one after another. For the kernels we
//! repack it once at load time into panels of [`PANEL_ROWS`] rows. A panel
//! is a run of 64-byte lines; line `c` holds 16 columns (`c*16 .. c*16+16`)
//! of all 16 rows:
//!
//! ```text
//! byte  r*4 + t   (r = row in panel 0..16, t = 0..4)
//! bits  2j..2j+2  code of w[r][c*16 + 4j + t]   (j = 0..4)
//! ```
//!
//! Shifting a line right by `2j` and masking with 3 gives, in dword `r`,
//! the four codes of row `r` at columns `c*16+4j .. +4`: exactly the shape
//! `vpdpbusd` multiplies with a broadcast dword of four activations, so a
//! 512-bit register covers 16 rows and AVX2 uses two 256-bit halves. The
//! sixteen row sums come out in lanes, so no horizontal reductions are
//! needed and the f32 combine is lane-wise (hence bit-identical to the
//! scalar twin).
//!
//! Codes are 0, 1, 2 for -1, 0, +1; padding rows and columns hold 1 (0).
//! Scales are f32, either one per row ([`Scales::PerRow`], the BitNet case:
//! one scale per tensor) or one per row and 256-column group
//! ([`Scales::PerGroup`], TQ1_0/TQ2_0 blocks whose scales differ), so the
//! repack is lossless for every source format.

use crate::error::{KernelError, KernelErrorKind};
use crate::ternary::{
    I2S_GROUP, TQ_BLOCK, TQ1_0_BYTES, TQ2_0_BYTES, i2s_code, tq_block_scale,
    tq1_0_block_codes, tq2_0_block_codes,
};

/// Rows per panel.
pub const PANEL_ROWS: usize = 16;
/// Columns per 64-byte line.
pub const LINE_COLS: usize = 16;
/// Columns per scale group in [`Scales::PerGroup`].
pub const GROUP_COLS: usize = 256;

/// One 64-byte, 64-byte-aligned line of a panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Line(pub [u8; 64]);

/// How weights are scaled.
#[derive(Clone, Debug, PartialEq)]
pub enum Scales {
    /// One scale per row (`panels * 16` entries, padding rows 0).
    PerRow(Vec<f32>),
    /// One scale per row and [`GROUP_COLS`] columns, stored
    /// `[panel][group][16]`.
    PerGroup(Vec<f32>),
}

/// A ternary matrix (`m` rows of `k`) in the panel layout.
#[derive(Clone, Debug)]
pub struct TernaryPanels {
    m: usize,
    k: usize,
    k_pad: usize,
    lines: Vec<Line>,
    scales: Scales,
}

impl TernaryPanels {
    /// Builds panels from a row function `row_codes(row, codes)` that
    /// fills the `k` codes (0..=2) of a row, and scales. `k_pad` must be a
    /// multiple of [`LINE_COLS`] (and of [`GROUP_COLS`] for per-group
    /// scales). Panels are filled in parallel, each by one thread, row by
    /// row: one line byte takes 4 codes at once.
    fn build(
        m: usize,
        k: usize,
        k_pad: usize,
        scales: Scales,
        row_codes: impl Fn(usize, &mut [u8]) + Sync,
    ) -> Self {
        let panels = m.div_ceil(PANEL_ROWS);
        let chunks = k_pad / LINE_COLS;
        let mut lines = vec![Line([0x55; 64]); panels * chunks];
        let fill = |p0: usize, out: &mut [Line]| {
            // Padding columns stay code 1 (weight 0).
            let mut codes = vec![1u8; k_pad];
            for (pi, panel) in out.chunks_mut(chunks).enumerate() {
                for pr in 0..PANEL_ROWS {
                    let r = (p0 + pi) * PANEL_ROWS + pr;
                    if r >= m {
                        break;
                    }
                    row_codes(r, &mut codes[..k]);
                    for (line, cc) in
                        panel.iter_mut().zip(codes.as_chunks::<16>().0)
                    {
                        for t in 0..4 {
                            line.0[pr * 4 + t] = (cc[t] & 3)
                                | (cc[4 + t] & 3) << 2
                                | (cc[8 + t] & 3) << 4
                                | (cc[12 + t] & 3) << 6;
                        }
                    }
                }
            }
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(panels.div_ceil(64))
            .max(1);
        if threads == 1 || chunks == 0 {
            fill(0, &mut lines);
        } else {
            let per = panels.div_ceil(threads);
            std::thread::scope(|sc| {
                for (i, part) in lines.chunks_mut(per * chunks).enumerate() {
                    let fill = &fill;
                    sc.spawn(move || fill(i * per, part));
                }
            });
        }
        TernaryPanels { m, k, k_pad, lines, scales }
    }

    /// Repacks a TQ2_0 tensor (`m` rows of `k`, `k % 256 == 0`).
    pub fn from_tq2_0(
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        Self::from_tq_blocks(
            bytes,
            m,
            k,
            TQ2_0_BYTES,
            "TQ2_0",
            tq2_0_block_codes,
        )
    }

    /// Repacks a TQ1_0 tensor (`m` rows of `k`, `k % 256 == 0`).
    pub fn from_tq1_0(
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        Self::from_tq_blocks(
            bytes,
            m,
            k,
            TQ1_0_BYTES,
            "TQ1_0",
            tq1_0_block_codes,
        )
    }

    fn from_tq_blocks(
        bytes: &[u8],
        m: usize,
        k: usize,
        block_bytes: usize,
        name: &'static str,
        decode: fn(&[u8], &mut [u8; TQ_BLOCK]),
    ) -> Result<Self, KernelError> {
        check_dims(m, k)?;
        if !k.is_multiple_of(TQ_BLOCK) {
            return Err(KernelError::new(KernelErrorKind::NotBlockMultiple {
                ty: name,
                k,
                block: TQ_BLOCK,
            }));
        }
        let nb = k / TQ_BLOCK;
        let expected = m * nb * block_bytes;
        if bytes.len() != expected {
            return Err(KernelError::len(
                "weight bytes",
                expected,
                bytes.len(),
            ));
        }
        let block = |r: usize, b: usize| {
            let o = (r * nb + b) * block_bytes;
            &bytes[o..o + block_bytes]
        };
        let scale = |r, b| tq_block_scale(block(r, b));
        // Equal f16 bits <=> equal f32 values' bits (the widening is
        // injective); compare the stored bytes.
        let first = &block(0, 0)[block_bytes - 2..];
        let uniform = bytes
            .chunks_exact(block_bytes)
            .all(|b| &b[block_bytes - 2..] == first);
        let panels = m.div_ceil(PANEL_ROWS);
        let scales = if uniform {
            let mut v = vec![0f32; panels * PANEL_ROWS];
            for (r, s) in v.iter_mut().enumerate().take(m) {
                *s = scale(r, 0);
            }
            Scales::PerRow(v)
        } else {
            let mut v = vec![0f32; panels * nb * PANEL_ROWS];
            for r in 0..m {
                let (p, pr) = (r / PANEL_ROWS, r % PANEL_ROWS);
                for b in 0..nb {
                    v[(p * nb + b) * PANEL_ROWS + pr] = scale(r, b);
                }
            }
            Scales::PerGroup(v)
        };
        Ok(Self::build(m, k, k, scales, |r, codes| {
            for (b, dst) in
                codes.as_chunks_mut::<TQ_BLOCK>().0.iter_mut().enumerate()
            {
                decode(block(r, b), dst);
            }
        }))
    }

    /// Repacks a bitnet.cpp I2_S tensor (`m*k/4` code bytes, then the f32
    /// tensor scale and 28 unused bytes; `k % 128 == 0`).
    pub fn from_i2s(
        bytes: &[u8],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        check_dims(m, k)?;
        if !k.is_multiple_of(I2S_GROUP) {
            return Err(KernelError::new(KernelErrorKind::NotBlockMultiple {
                ty: "I2_S",
                k,
                block: I2S_GROUP,
            }));
        }
        let code_bytes = m * k / 4;
        let expected = code_bytes + 32;
        if bytes.len() != expected {
            return Err(KernelError::len(
                "weight bytes",
                expected,
                bytes.len(),
            ));
        }
        let s = &bytes[code_bytes..code_bytes + 4];
        let scale = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        let panels = m.div_ceil(PANEL_ROWS);
        let mut v = vec![0f32; panels * PANEL_ROWS];
        v[..m].fill(scale);
        let codes = &bytes[..code_bytes];
        Ok(Self::build(m, k, k, Scales::PerRow(v), |r, dst| {
            for (col, c) in dst.iter_mut().enumerate() {
                // I2_S has no -1/0/+1 for code 3; it reads as 0 (code 1).
                *c = match i2s_code(codes, r * k + col) {
                    3 => 1,
                    c => c,
                };
            }
        }))
    }

    /// Quantizes f32 weights BitNet-style: scale = mean|w| per tensor,
    /// codes = clamp(round(w / scale), -1, 1) + 1.
    pub fn quantize_absmean(
        w: &[f32],
        m: usize,
        k: usize,
    ) -> Result<Self, KernelError> {
        check_dims(m, k)?;
        if w.len() != m * k {
            return Err(KernelError::len("weights", m * k, w.len()));
        }
        KernelError::check_finite("weights", w)?;
        let mean =
            w.iter().map(|v| v.abs() as f64).sum::<f64>() / w.len() as f64;
        let scale = mean.max(1e-5) as f32;
        let panels = m.div_ceil(PANEL_ROWS);
        let mut v = vec![0f32; panels * PANEL_ROWS];
        v[..m].fill(scale);
        let k_pad = k.div_ceil(LINE_COLS) * LINE_COLS;
        Ok(Self::build(m, k, k_pad, Scales::PerRow(v), |r, dst| {
            for (c, &x) in dst.iter_mut().zip(&w[r * k..(r + 1) * k]) {
                *c = ((x / scale).round_ties_even().clamp(-1.0, 1.0) + 1.0)
                    as u8;
            }
        }))
    }

    /// Rows.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Columns (the reduction length).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns padded to a whole line (and group).
    pub fn k_pad(&self) -> usize {
        self.k_pad
    }

    /// Number of 16-row panels.
    pub fn panels(&self) -> usize {
        self.m.div_ceil(PANEL_ROWS)
    }

    /// Lines per panel.
    pub fn chunks(&self) -> usize {
        self.k_pad / LINE_COLS
    }

    /// The lines of panel `p`.
    pub fn panel(&self, p: usize) -> &[Line] {
        let c = self.chunks();
        &self.lines[p * c..(p + 1) * c]
    }

    /// The scales.
    pub fn scales(&self) -> &Scales {
        &self.scales
    }

    /// Columns per scale group: `k_pad` for per-row scales.
    pub fn group_cols(&self) -> usize {
        match self.scales {
            Scales::PerRow(_) => self.k_pad,
            Scales::PerGroup(_) => GROUP_COLS,
        }
    }

    /// The 16 scales of panel `p` for group `g`.
    pub fn group_scales(&self, p: usize, g: usize) -> &[f32; PANEL_ROWS] {
        let (v, i) = match &self.scales {
            Scales::PerRow(v) => (v, p * PANEL_ROWS),
            Scales::PerGroup(v) => {
                let groups = self.k_pad / GROUP_COLS;
                (v, (p * groups + g) * PANEL_ROWS)
            }
        };
        v[i..i + PANEL_ROWS].try_into().expect("16 scales")
    }

    /// Bytes the kernels stream per call (codes and scales).
    pub fn stored_bytes(&self) -> usize {
        let s = match &self.scales {
            Scales::PerRow(v) | Scales::PerGroup(v) => v.len() * 4,
        };
        self.lines.len() * 64 + s
    }

    /// The code (0, 1, 2) of element (`row`, `col`).
    pub fn code(&self, row: usize, col: usize) -> u8 {
        let (p, pr) = (row / PANEL_ROWS, row % PANEL_ROWS);
        let line = &self.panel(p)[col / LINE_COLS];
        let (j, t) = ((col % 16) / 4, col % 4);
        (line.0[pr * 4 + t] >> (2 * j)) & 3
    }

    /// The scale of element (`row`, `col`).
    pub fn scale(&self, row: usize, col: usize) -> f32 {
        self.group_scales(row / PANEL_ROWS, col / self.group_cols())
            [row % PANEL_ROWS]
    }

    /// Dequantizes to f32, `m` rows of `k`: `(code - 1) * scale`.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.m * self.k);
        for r in 0..self.m {
            for c in 0..self.k {
                out.push((self.code(r, c) as f32 - 1.0) * self.scale(r, c));
            }
        }
        out
    }
}

fn check_dims(m: usize, k: usize) -> Result<(), KernelError> {
    if m == 0 || k == 0 {
        return Err(KernelError::shape(format!(
            "a weight matrix needs m >= 1 and k >= 1 (got m = {m}, k = {k})"
        )));
    }
    if m.checked_mul(k).is_none_or(|mk| mk > isize::MAX as usize / 4) {
        return Err(KernelError::shape(format!("m*k too large ({m} x {k})")));
    }
    Ok(())
}

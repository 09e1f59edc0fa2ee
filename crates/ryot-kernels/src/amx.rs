//! Intel AMX tile primitives shared by the `amx` kernel variants.
//!
//! AMX intrinsics are not stable Rust, so each instruction is one `asm!`
//! line; the tile number is a const generic spelled into the instruction.
//! Callers must run at [`crate::isa::SimdLevel::Amx`], which is only
//! reported once the CPU has AMX and Linux granted this process the tile
//! state, and must load a configuration ([`TileConfig::load`]) before any
//! other tile instruction.

use std::arch::asm;

/// A palette-1 tile configuration (`ldtilecfg`'s 64-byte operand).
#[repr(C, align(64))]
pub(crate) struct TileConfig([u8; 64]);

impl TileConfig {
    /// Tiles `0..8` with `shapes[i] = (rows, bytes per row)`; `(0, 0)`
    /// leaves a tile unconfigured.
    pub(crate) fn new(shapes: [(u8, u16); 8]) -> Self {
        let mut c = [0u8; 64];
        c[0] = 1;
        for (t, (rows, colsb)) in shapes.into_iter().enumerate() {
            c[16 + 2 * t..18 + 2 * t].copy_from_slice(&colsb.to_le_bytes());
            c[48 + t] = rows;
        }
        TileConfig(c)
    }

    /// `ldtilecfg`: configures the tiles of the calling thread.
    ///
    /// # Safety
    /// The CPU runs at the Amx level (AMX present, tile state granted);
    /// every shape is valid (rows <= 16, bytes per row <= 64).
    #[inline]
    pub(crate) unsafe fn load(&self) {
        // SAFETY: per the contract; reads the 64 bytes of `self`.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) self.0.as_ptr(), options(nostack, readonly))
        };
    }
}

/// `tilerelease`: returns the tile state to its initial, unconfigured
/// state.
///
/// # Safety
/// The CPU runs at the Amx level.
#[inline]
pub(crate) unsafe fn release() {
    // SAFETY: per the contract; touches no memory.
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}

/// `tilezero tmm{T}`.
///
/// # Safety
/// Tiles configured (T configured).
#[inline(always)]
pub(crate) unsafe fn zero<const T: u8>() {
    // SAFETY: per the contract; touches no memory.
    unsafe { asm!("tilezero tmm{t}", t = const T, options(nostack, nomem)) };
}

/// `tileloadd tmm{T}, [ptr + stride]`: loads the tile's rows, `stride`
/// bytes apart.
///
/// # Safety
/// Tile T configured with `rows x colsb`; for each row `i`, `colsb` bytes
/// at `ptr + i * stride` are readable.
#[inline(always)]
pub(crate) unsafe fn load<const T: u8>(ptr: *const u8, stride: usize) {
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "tileloadd tmm{t}, [{p} + {s}*1]",
            t = const T,
            p = in(reg) ptr,
            s = in(reg) stride,
            options(nostack, readonly),
        )
    };
}

/// `tilestored [ptr + stride], tmm{T}`.
///
/// # Safety
/// Tile T configured with `rows x colsb`; for each row `i`, `colsb` bytes
/// at `ptr + i * stride` are writable.
#[inline(always)]
pub(crate) unsafe fn store<const T: u8>(ptr: *mut u8, stride: usize) {
    // SAFETY: per the contract.
    unsafe {
        asm!(
            "tilestored [{p} + {s}*1], tmm{t}",
            t = const T,
            p = in(reg) ptr,
            s = in(reg) stride,
            options(nostack),
        )
    };
}

/// `tdpbsud tmm{C}, tmm{A}, tmm{B}`: `C[i][j] += sum_k A[i][4k..4k+4] .
/// B[k][4j..4j+4]`, A signed and B unsigned int8, C i32.
///
/// # Safety
/// Tiles configured with compatible shapes (A `m x 4K`, B `K x 4n`, C
/// `m x 4n` bytes).
#[inline(always)]
pub(crate) unsafe fn dpbsud<const C: u8, const A: u8, const B: u8>() {
    // SAFETY: per the contract; register-only.
    unsafe {
        asm!(
            "tdpbsud tmm{c}, tmm{a}, tmm{b}",
            c = const C,
            a = const A,
            b = const B,
            options(nostack, nomem),
        )
    };
}

/// A zero-filled, 64-byte aligned byte buffer (tile loads and stores are
/// fastest aligned). Storage is recycled through a per-thread pool: a
/// fresh multi-megabyte allocation per call costs page faults that
/// dominated GEMMs with short rows (measured: 13% of a 4096 x 256 GEMM
/// in `exc_page_fault`).
pub(crate) struct TileBuf {
    lines: Vec<Aligned64>,
}

/// 64 bytes aligned to 64.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Aligned64([u8; 64]);

thread_local! {
    /// Buffers returned by dropped [`TileBuf`]s on this thread.
    static POOL: std::cell::RefCell<Vec<Vec<Aligned64>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Buffers a thread keeps for reuse.
const POOL_MAX: usize = 4;

impl TileBuf {
    /// `bytes` zero bytes (rounded up to 64).
    pub(crate) fn zeroed(bytes: usize) -> Self {
        let mut lines = POOL
            .try_with(|p| p.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        lines.clear();
        lines.resize(bytes.div_ceil(64), Aligned64([0; 64]));
        TileBuf { lines }
    }
    /// The start, for reads.
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.lines.as_ptr().cast()
    }
    /// The start, for writes.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.lines.as_mut_ptr().cast()
    }
}

impl Drop for TileBuf {
    fn drop(&mut self) {
        let lines = std::mem::take(&mut self.lines);
        // A thread being torn down drops the buffer instead.
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOL_MAX {
                p.push(lines);
            }
        });
    }
}

/// The int8 tile throughput of the calling core in GOP/s (2 per multiply-
/// add), best of three timed runs of `tdpbsud` into four independent C
/// tiles from registers (no memory traffic): the ceiling the AMX kernels
/// are measured against. `None` below the Amx level.
pub fn peak_gops() -> Option<f64> {
    if !crate::isa::SimdLevel::Amx.is_available() {
        return None;
    }
    const ITERS: usize = 20_000;
    let ops_per_iter = 4.0 * 2.0 * 16.0 * 16.0 * 64.0;
    let zeros = TileBuf::zeroed(1024);
    let cfg = TileConfig::new([(16, 64); 8]);
    let mut best = 0f64;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        // SAFETY: Amx level (checked above); valid shapes; the loads read
        // 1 KiB of `zeros`.
        unsafe {
            cfg.load();
            load::<4>(zeros.as_ptr(), 64);
            load::<5>(zeros.as_ptr(), 64);
            load::<6>(zeros.as_ptr(), 64);
            load::<7>(zeros.as_ptr(), 64);
            zero::<0>();
            zero::<1>();
            zero::<2>();
            zero::<3>();
            for _ in 0..std::hint::black_box(ITERS) {
                dpbsud::<0, 4, 6>();
                dpbsud::<1, 5, 6>();
                dpbsud::<2, 4, 7>();
                dpbsud::<3, 5, 7>();
            }
            release();
        }
        best = best
            .max(ops_per_iter * ITERS as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    Some(best)
}

//! Element-wise operations of the transformer, computed as ggml computes
//! them (RMSNorm sums in f64, RoPE angles by repeated multiplication), so
//! results stay within llama.cpp's own noise.

use crate::config::{FfnAct, RopeKind};

/// `out = x / sqrt(mean(x^2) + eps) * w`, one row of `w.len()` at a time.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let sum: f64 = xr.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let mean = (sum / d as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = (v * scale) * g;
        }
    }
}

/// [`rms_norm`] in place.
pub fn rms_norm_inplace(x: &mut [f32], w: &[f32], eps: f32) {
    let d = w.len();
    for xr in x.chunks_exact_mut(d) {
        let sum: f64 = xr.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let mean = (sum / d as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for (v, &g) in xr.iter_mut().zip(w) {
            *v = (*v * scale) * g;
        }
    }
}

/// `gate = act(gate) * up`, element-wise.
pub fn gated_act(act: FfnAct, gate: &mut [f32], up: &[f32]) {
    match act {
        FfnAct::Silu => {
            for (g, &u) in gate.iter_mut().zip(up) {
                *g = (*g / (1.0 + (-*g).exp())) * u;
            }
        }
        FfnAct::ReluSqr => {
            for (g, &u) in gate.iter_mut().zip(up) {
                let r = g.max(0.0);
                *g = (r * r) * u;
            }
        }
    }
}

/// Rotary position embedding as ggml computes it: for pair `i`, the
/// angle is `pos * base^(-2i/dims)`, the power built by repeated f32
/// multiplication.
#[derive(Clone, Copy, Debug)]
pub struct Rope {
    kind: RopeKind,
    dims: usize,
    theta_scale: f32,
}

impl Rope {
    /// RoPE rotating the first `dims` dimensions of each head, with base
    /// frequency `base`.
    pub fn new(kind: RopeKind, dims: usize, base: f32) -> Rope {
        Rope { kind, dims, theta_scale: base.powf(-2.0 / dims as f32) }
    }

    /// Fills `cos` and `sin` (`dims / 2` each) for position `pos`.
    pub fn angles(&self, pos: usize, cos: &mut [f32], sin: &mut [f32]) {
        let mut theta = pos as f32;
        for (c, s) in cos.iter_mut().zip(sin.iter_mut()) {
            *c = theta.cos();
            *s = theta.sin();
            theta *= self.theta_scale;
        }
    }

    /// Rotates every head of width `head_dim` in `x` (one token) by the
    /// angles from [`Rope::angles`].
    pub fn rotate(
        &self,
        x: &mut [f32],
        head_dim: usize,
        cos: &[f32],
        sin: &[f32],
    ) {
        let half = self.dims / 2;
        for h in x.chunks_exact_mut(head_dim) {
            match self.kind {
                RopeKind::Normal => {
                    for i in 0..half {
                        let (a, b) = (h[2 * i], h[2 * i + 1]);
                        h[2 * i] = a * cos[i] - b * sin[i];
                        h[2 * i + 1] = a * sin[i] + b * cos[i];
                    }
                }
                RopeKind::Neox => {
                    for i in 0..half {
                        let (a, b) = (h[i], h[i + half]);
                        h[i] = a * cos[i] - b * sin[i];
                        h[i + half] = a * sin[i] + b * cos[i];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_matches_definition() {
        let x = [1.0f32, -2.0, 3.0, 0.5];
        let w = [1.0f32, 2.0, 0.5, 1.0];
        let mut out = [0.0; 4];
        rms_norm(&x, &w, 1e-5, &mut out);
        let ms = x.iter().map(|v| v * v).sum::<f32>() / 4.0;
        for i in 0..4 {
            let want = x[i] / (ms + 1e-5).sqrt() * w[i];
            assert!((out[i] - want).abs() < 1e-6, "{i}: {} {want}", out[i]);
        }
    }

    #[test]
    fn rope_preserves_norm_and_is_identity_at_zero() {
        for kind in [RopeKind::Normal, RopeKind::Neox] {
            let r = Rope::new(kind, 8, 10000.0);
            let x: Vec<f32> = (0..16).map(|i| i as f32 * 0.3 - 2.0).collect();
            let mut y = x.clone();
            let (mut c, mut s) = ([0.0; 4], [0.0; 4]);
            r.angles(0, &mut c, &mut s);
            r.rotate(&mut y, 8, &c, &s);
            assert_eq!(x, y);
            r.angles(7, &mut c, &mut s);
            r.rotate(&mut y, 8, &c, &s);
            let n0: f32 = x.iter().map(|v| v * v).sum();
            let n1: f32 = y.iter().map(|v| v * v).sum();
            assert!((n0 - n1).abs() < 1e-3 * n0, "{kind:?}");
            assert_ne!(x, y);
        }
    }

    #[test]
    fn relu_sqr_and_silu() {
        let mut g = [-1.0f32, 2.0];
        gated_act(FfnAct::ReluSqr, &mut g, &[3.0, 0.5]);
        assert_eq!(g, [0.0, 2.0]);
        let mut g = [0.0f32, 1.0];
        gated_act(FfnAct::Silu, &mut g, &[1.0, 2.0]);
        assert_eq!(g[0], 0.0);
        assert!((g[1] - 2.0 / (1.0 + (-1.0f32).exp())).abs() < 1e-6);
    }
}

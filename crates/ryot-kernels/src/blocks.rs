//! Shape checks shared by the formats that repack GGUF blocks into 16-row
//! panels of 64-byte lines (`q8`, `kq`).

use crate::error::{KernelError, KernelErrorKind};

/// Rows per panel in the interleaved block layouts.
const PANEL_ROWS: usize = 16;

/// Checks a GGUF block tensor of `m` rows of `k` before repacking it into
/// 16-row panels with `lines_per_block` 64-byte lines per block, and
/// returns the blocks per row.
///
/// Errors: a zero or too large shape (`BadShape`), `k` not a multiple of
/// `block` (`NotBlockMultiple`), `bytes_len` not `m * k / block *
/// block_bytes` (`LengthMismatch`).
pub(crate) fn check_block_tensor(
    name: &'static str,
    bytes_len: usize,
    m: usize,
    k: usize,
    block: usize,
    block_bytes: usize,
    lines_per_block: usize,
) -> Result<usize, KernelError> {
    if m == 0 || k == 0 {
        return Err(KernelError::shape(format!(
            "weights need m >= 1 and k >= 1 (got m = {m}, k = {k})"
        )));
    }
    if !k.is_multiple_of(block) {
        return Err(KernelError::new(KernelErrorKind::NotBlockMultiple {
            ty: name,
            k,
            block,
        }));
    }
    let nb = k / block;
    let panels = m.div_ceil(PANEL_ROWS);
    let overflow =
        || KernelError::shape(format!("{name} tensor {m}x{k} is too large"));
    let want = m
        .checked_mul(nb)
        .and_then(|blocks| blocks.checked_mul(block_bytes))
        .ok_or_else(overflow)?;
    // The layout's own size (padding rows included) must fit as well.
    nb.checked_mul(lines_per_block * 64)
        .and_then(|per_panel| per_panel.checked_mul(panels))
        .filter(|&bytes| bytes <= isize::MAX as usize)
        .ok_or_else(overflow)?;
    if bytes_len != want {
        return Err(KernelError::len("weight bytes", want, bytes_len));
    }
    Ok(nb)
}

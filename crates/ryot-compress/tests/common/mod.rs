//! Test data shared by the integration tests.

use ryot_compress::Matrix;
use ryot_compress::rng::Rng;

/// `rows` seeded vectors of `dim` values with a decaying spectrum and
/// unit norm, like real embeddings.
pub fn data(rows: usize, dim: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed);
    let mut m = Matrix::zeros(rows, dim);
    for r in 0..rows {
        let row = m.row_mut(r);
        for (j, v) in row.iter_mut().enumerate() {
            *v = rng.normal() / (1.0 + j as f32 / 8.0);
        }
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= n);
    }
    m
}

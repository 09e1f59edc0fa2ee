//! The residual quantizer (`rq:M`): beam-search encoding against brute
//! force, beam width, length-normalised and inner-product scoring.

use ryot_compress::Matrix;
use ryot_compress::codec::Codec;
use ryot_compress::codec::rq::Rq;
use ryot_compress::rng::Rng;

mod common;
use common::data;

fn sq_err(x: &[f32], y: &[f32]) -> f32 {
    x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum()
}

fn dot(x: &[f32], y: &[f32]) -> f32 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

/// Mean squared reconstruction error of `rq` on `x`.
fn mse(rq: &Rq, x: &Matrix) -> f64 {
    let cb = rq.code_bytes();
    let mut codes = vec![0u8; x.rows * cb];
    rq.encode_batch(x, &mut codes);
    let mut out = vec![0f32; x.dim];
    let mut total = 0f64;
    for i in 0..x.rows {
        rq.decode(&codes[i * cb..(i + 1) * cb], &mut out);
        total += sq_err(x.row(i), &out) as f64;
    }
    total / x.rows as f64
}

#[test]
fn two_stage_beam_of_256_finds_the_optimal_code() {
    // With 256 partial codes kept after the first stage, every pair is
    // considered: the code must be the brute-force optimum.
    let x = data(300, 12, 7);
    let mut rng = Rng::new(3);
    let rq = Rq::train(&x, 2, 4, 5, &mut rng).unwrap().with_beam(256).unwrap();
    let ids = rq.assign_all(&x);
    let (c0, c1) = (rq.centroids(0), rq.centroids(1));
    let mut v = vec![0f32; 12];
    for i in 0..60 {
        let mut best = f32::INFINITY;
        for a in 0..256 {
            for b in 0..256 {
                for (t, o) in v.iter_mut().enumerate() {
                    *o = c0.row(a)[t] + c1.row(b)[t];
                }
                best = best.min(sq_err(x.row(i), &v));
            }
        }
        let (a, b) = (ids[2 * i] as usize, ids[2 * i + 1] as usize);
        for (t, o) in v.iter_mut().enumerate() {
            *o = c0.row(a)[t] + c1.row(b)[t];
        }
        let got = sq_err(x.row(i), &v);
        assert!(got <= best + 1e-5 * (1.0 + best), "row {i}: {got} > {best}");
    }
}

#[test]
fn a_wider_beam_encodes_better_on_the_same_codebooks() {
    // Enough rows that 256 centroids a stage cannot memorise them.
    let x = data(4000, 32, 8);
    let mut rng = Rng::new(4);
    let rq = Rq::train(&x, 4, 1, 6, &mut rng).unwrap();
    let greedy = mse(&rq.clone().with_beam(1).unwrap(), &x);
    let beam = mse(&rq.clone().with_beam(8).unwrap(), &x);
    // Each stage also lowers the error of the stages before it.
    let fewer = Rq::train(&x, 2, 1, 6, &mut Rng::new(4)).unwrap();
    assert!(mse(&fewer, &x) > greedy, "2 stages vs 4");
    assert!(beam < greedy, "beam 8 {beam} vs greedy {greedy}");
    // The same rows encoded alone (residual mode) or in a batch (cross
    // tables) get codes of the same error.
    let one = Matrix::new(1, 32, x.row(5).to_vec()).unwrap();
    let mut a = vec![0u8; rq.code_bytes()];
    rq.encode(one.row(0), &mut a);
    let mut all = vec![0u8; x.rows * rq.code_bytes()];
    rq.encode_batch(&x, &mut all);
    let (mut da, mut db) = (vec![0f32; 32], vec![0f32; 32]);
    rq.decode(&a, &mut da);
    rq.decode(&all[5 * rq.code_bytes()..6 * rq.code_bytes()], &mut db);
    let (ea, eb) = (sq_err(x.row(5), &da), sq_err(x.row(5), &db));
    assert!((ea - eb).abs() <= 1e-5, "alone {ea} vs batch {eb}");
}

#[test]
fn unit_rows_are_scored_by_cosine_with_the_reconstruction() {
    let x = data(500, 24, 9);
    let q = data(6, 24, 10);
    let rq = Rq::train(&x, 4, 4, 6, &mut Rng::new(5)).unwrap();
    assert!(rq.cosine());
    assert_eq!(rq.code_bytes(), 5, "4 stages and a length byte");
    let cb = rq.code_bytes();
    let mut codes = vec![0u8; x.rows * cb];
    rq.encode_batch(&x, &mut codes);
    let mut lens = Vec::new();
    let mut out = vec![0f32; 24];
    for i in 0..x.rows {
        rq.decode(&codes[i * cb..(i + 1) * cb], &mut out);
        lens.push(dot(&out, &out).sqrt());
    }
    let lo = lens.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = lens.iter().copied().fold(0f32, f32::max);
    // The stored length is within half a step of the true one.
    let tol = 0.5 * (hi - lo) / 255.0 / lo + 1e-5;
    let mut scores = vec![0f32; x.rows];
    for qi in 0..q.rows {
        rq.scan(q.row(qi), &codes, &mut scores);
        for i in 0..x.rows {
            rq.decode(&codes[i * cb..(i + 1) * cb], &mut out);
            let ip = dot(q.row(qi), &out);
            let want = ip / lens[i];
            let err = (scores[i] - want).abs();
            assert!(err <= ip.abs() * tol * 1.01 + 1e-5, "{qi},{i}: {err}");
        }
    }
}

#[test]
fn other_rows_are_scored_by_inner_product() {
    let mut x = data(400, 16, 11);
    x.data.iter_mut().enumerate().for_each(|(i, v)| *v *= 1.0 + (i % 7) as f32);
    let q = data(3, 16, 12);
    let rq = Rq::train(&x, 3, 4, 6, &mut Rng::new(6)).unwrap();
    assert!(!rq.cosine());
    assert_eq!(rq.code_bytes(), 3);
    let mut codes = vec![0u8; x.rows * 3];
    rq.encode_batch(&x, &mut codes);
    let mut scores = vec![0f32; x.rows];
    let mut out = vec![0f32; 16];
    rq.scan(q.row(0), &codes, &mut scores);
    for i in 0..x.rows {
        rq.decode(&codes[i * 3..(i + 1) * 3], &mut out);
        let want = dot(q.row(0), &out);
        assert!((scores[i] - want).abs() <= 1e-4 * (1.0 + want.abs()));
    }
}

#[test]
fn bad_shapes_are_errors() {
    let x = data(50, 8, 1);
    let mut rng = Rng::new(1);
    assert!(Rq::train(&x, 0, 4, 3, &mut rng).is_err());
    assert!(Rq::train(&x, 2, 0, 3, &mut rng).is_err());
    assert!(Rq::train(&x, 2, 1000, 3, &mut rng).is_err());
    assert!(Rq::train(&x, 257, 4, 3, &mut rng).is_err());
    // Fewer rows than centroids still trains (centroids repeat).
    let rq = Rq::train(&x, 2, 4, 3, &mut rng).unwrap();
    assert!(mse(&rq, &x) < 1e-3);
}

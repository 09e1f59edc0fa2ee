//! Exact inner-product search, top-k selection and recall measures.

use crate::error::{Error, Result};
use crate::matrix::{Matrix, matmul_t};

/// One search hit: a row (or user id) and its score, higher is better.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// Row index or user id.
    pub id: u64,
    /// Score (an inner product or its estimate).
    pub score: f32,
}

/// The `k` highest scores, best first; ties keep the lower index first.
/// NaN scores rank last.
pub fn top_k(scores: &[f32], k: usize) -> Vec<(u32, f32)> {
    let k = k.min(scores.len());
    if k == 0 {
        return Vec::new();
    }
    if k > 64 {
        return top_k_heap(scores, k);
    }
    // A sorted buffer (worst last) with a threshold check: cheap for small
    // k, which is the common case (10-100 out of many thousands).
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    let mut thresh = f32::NEG_INFINITY;
    for (i, &s) in scores.iter().enumerate() {
        if best.len() == k
            && s.partial_cmp(&thresh) != Some(std::cmp::Ordering::Greater)
        {
            continue;
        }
        let s = if s.is_nan() { f32::NEG_INFINITY } else { s };
        let pos = best.partition_point(|&(_, b)| b >= s);
        best.insert(pos, (i as u32, s));
        if best.len() > k {
            best.pop();
        }
        if best.len() == k {
            thresh = best[k - 1].1;
        }
    }
    best
}

/// A hit ordered so that the worse one is greater (lower score, then
/// higher row), for a max-heap of the current worst.
#[derive(Clone, Copy, PartialEq)]
struct Worst(f32, u32);

impl Eq for Worst {}

impl PartialOrd for Worst {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Worst {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.0.total_cmp(&self.0).then(self.1.cmp(&o.1))
    }
}

/// [`top_k`] for large `k`: a binary heap, `O(n log k)`.
fn top_k_heap(scores: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut heap = std::collections::BinaryHeap::with_capacity(k + 1);
    for (i, &s) in scores.iter().enumerate() {
        let s = if s.is_nan() { f32::NEG_INFINITY } else { s };
        let w = Worst(s, i as u32);
        if heap.len() < k {
            heap.push(w);
        } else if let Some(mut top) = heap.peek_mut()
            && w < *top
        {
            *top = w;
        }
    }
    heap.into_sorted_vec().into_iter().map(|w| (w.1, w.0)).collect()
}

/// Exact top-`k` by inner product for every query: `(ids, scores)`, each
/// `queries.rows * k` long, best first.
pub fn exact_search(
    corpus: &Matrix,
    queries: &Matrix,
    k: usize,
) -> Result<(Vec<u32>, Vec<f32>)> {
    if corpus.dim != queries.dim {
        return Err(Error::Shape(format!(
            "corpus has dimension {}, queries {}",
            corpus.dim, queries.dim
        )));
    }
    if corpus.rows == 0 {
        return Err(Error::Empty("corpus"));
    }
    if k == 0 || k > corpus.rows {
        return Err(Error::Invalid(format!(
            "k = {k} must be between 1 and the corpus size {}",
            corpus.rows
        )));
    }
    let mut ids = Vec::with_capacity(queries.rows * k);
    let mut sc = Vec::with_capacity(queries.rows * k);
    for start in (0..queries.rows).step_by(64) {
        let idx: Vec<usize> = (start..(start + 64).min(queries.rows)).collect();
        let qb = queries.select(&idx);
        let s = matmul_t(&qb, corpus);
        for r in 0..qb.rows {
            for (i, v) in top_k(s.row(r), k) {
                ids.push(i);
                sc.push(v);
            }
        }
    }
    Ok((ids, sc))
}

/// Mean over queries of |found[..k] ∩ truth[..k]| / k. `found` has
/// `found_k` ids per query and `truth` has `truth_k` per query.
pub fn recall_at(
    found: &[u32],
    found_k: usize,
    truth: &[i32],
    truth_k: usize,
    k: usize,
) -> f64 {
    let nq = truth.len() / truth_k.max(1);
    if nq == 0 || k == 0 {
        return 0.0;
    }
    let mut hits = 0usize;
    for q in 0..nq {
        let t = &truth[q * truth_k..q * truth_k + k.min(truth_k)];
        let f = &found[q * found_k..q * found_k + k.min(found_k)];
        hits += f.iter().filter(|&&x| t.contains(&(x as i32))).count();
    }
    hits as f64 / (nq * k) as f64
}

/// Fraction of queries with at least one of their `relevant` rows among
/// the first `k` of `found` (`found_k` ids per query).
pub fn relevant_at(
    found: &[u32],
    found_k: usize,
    relevant: &[Vec<u32>],
    k: usize,
) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let hit = relevant
        .iter()
        .enumerate()
        .filter(|(q, rel)| {
            let f = &found[q * found_k..q * found_k + k.min(found_k)];
            f.iter().any(|x| rel.contains(x))
        })
        .count();
    hit as f64 / relevant.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_and_breaks_ties_low_first() {
        let s = [0.5, 0.9, 0.5, f32::NAN, 0.7];
        assert_eq!(top_k(&s, 3), vec![(1, 0.9), (4, 0.7), (0, 0.5)]);
        assert_eq!(top_k(&s, 0), vec![]);
        assert_eq!(top_k(&s, 10).len(), 5);
    }

    #[test]
    fn heap_and_sorted_selection_agree() {
        let mut r = crate::rng::Rng::new(4);
        // Few distinct values, so ties are common.
        let s: Vec<f32> = (0..5000).map(|_| r.below(50) as f32).collect();
        let mut want: Vec<(u32, f32)> =
            s.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in [65, 300, 5000] {
            assert_eq!(top_k(&s, k), want[..k].to_vec());
        }
    }
}

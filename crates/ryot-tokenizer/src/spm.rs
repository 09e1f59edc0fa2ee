//! SentencePiece-style BPE over token scores, as llama.cpp's
//! `llm_tokenizer_spm_session`: start from characters, repeatedly merge
//! the adjacent pair whose concatenation is the highest-scoring token
//! (leftmost on ties), then emit tokens, with byte tokens (`<0xXX>`) for
//! characters that are not tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

struct Sym {
    start: usize,
    len: usize,
    prev: usize,
    next: usize,
}

const NONE: usize = usize::MAX;

struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Bigram {
    /// Higher score first, then the leftmost.
    fn cmp(&self, o: &Self) -> Ordering {
        self.score
            .partial_cmp(&o.score)
            .unwrap_or(Ordering::Equal)
            .then(o.left.cmp(&self.left))
    }
}

/// Tokenizes already space-escaped `text` into `out`.
pub(crate) fn tokenize(
    text: &str,
    token: &dyn Fn(&str) -> Option<(u32, f32)>,
    byte_token: &[Option<u32>; 256],
    out: &mut Vec<u32>,
) {
    let n_chars = text.chars().count();
    let mut syms: Vec<Sym> = text
        .char_indices()
        .enumerate()
        .map(|(i, (start, c))| Sym {
            start,
            len: c.len_utf8(),
            prev: if i == 0 { NONE } else { i - 1 },
            next: if i + 1 == n_chars { NONE } else { i + 1 },
        })
        .collect();
    let mut heap = BinaryHeap::new();
    let try_add = |heap: &mut BinaryHeap<Bigram>, syms: &[Sym], l, r| {
        if l == NONE || r == NONE {
            return;
        }
        let (a, b): (&Sym, &Sym) = (&syms[l], &syms[r]);
        let size = a.len + b.len;
        if let Some((_, score)) = token(&text[a.start..a.start + size]) {
            heap.push(Bigram { score, left: l, right: r, size });
        }
    };
    for i in 1..syms.len() {
        try_add(&mut heap, &syms, i - 1, i);
    }
    while let Some(bg) = heap.pop() {
        let (ll, rl) = (syms[bg.left].len, syms[bg.right].len);
        if ll == 0 || rl == 0 || ll + rl != bg.size {
            continue;
        }
        syms[bg.left].len = bg.size;
        syms[bg.right].len = 0;
        let rn = syms[bg.right].next;
        syms[bg.left].next = rn;
        if rn != NONE {
            syms[rn].prev = bg.left;
        }
        try_add(&mut heap, &syms, syms[bg.left].prev, bg.left);
        try_add(&mut heap, &syms, bg.left, syms[bg.left].next);
    }
    let mut i = if syms.is_empty() { NONE } else { 0 };
    while i != NONE {
        let s = &syms[i];
        let piece = &text[s.start..s.start + s.len];
        match token(piece) {
            Some((t, _)) => out.push(t),
            None => {
                out.extend(piece.bytes().filter_map(|b| byte_token[b as usize]))
            }
        }
        i = s.next;
    }
}

//! Byte-level BPE merges, as llama.cpp's `llm_tokenizer_bpe_session`.
//!
//! Each pre-tokenized word (already mapped byte-wise to GPT-2's printable
//! characters) starts as one symbol per character; the adjacent pair with
//! the lowest merge rank (leftmost on ties) is merged until none is left.
//! Symbols that are not tokens fall back to their single-byte tokens.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Merge table: strings are interned so that pairs are looked up by ids.
pub(crate) struct Merges {
    intern: HashMap<String, u32>,
    /// `(left, right)` -> `(rank, merged symbol id)`.
    ranks: HashMap<(u32, u32), (u32, u32)>,
}

impl Merges {
    /// Builds the table from `tokenizer.ggml.merges` (`"left right"`).
    /// As llama.cpp, a line without a space past its first byte is kept as
    /// an empty pair that never matches, and the first rank of a pair wins.
    pub(crate) fn new(lines: &[String]) -> Merges {
        let mut m = Merges { intern: HashMap::new(), ranks: HashMap::new() };
        for (rank, line) in lines.iter().enumerate() {
            let bytes = line.as_bytes();
            let Some(pos) = bytes.iter().skip(1).position(|&b| b == b' ')
            else {
                continue;
            };
            let (left, right) = (&line[..pos + 1], &line[pos + 2..]);
            let l = m.id(left);
            let r = m.id(right);
            let merged = m.id(&[left, right].concat());
            m.ranks.entry((l, r)).or_insert((rank as u32, merged));
        }
        m
    }

    fn id(&mut self, s: &str) -> u32 {
        let next = self.intern.len() as u32;
        *self.intern.entry(s.to_string()).or_insert(next)
    }

    fn lookup(&self, s: &str) -> Option<u32> {
        self.intern.get(s).copied()
    }
}

struct Sym {
    start: usize,
    len: usize,
    prev: usize,
    next: usize,
    id: Option<u32>,
}

const NONE: usize = usize::MAX;

/// Tokenizes one encoded word into `out`.
pub(crate) fn tokenize_word(
    word: &str,
    merges: &Merges,
    token_id: &dyn Fn(&str) -> Option<u32>,
    ignore_merges: bool,
    out: &mut Vec<u32>,
) {
    if ignore_merges && let Some(t) = token_id(word) {
        out.push(t);
        return;
    }
    let mut syms: Vec<Sym> = Vec::with_capacity(word.len());
    let n_chars = word.chars().count();
    for (i, (start, c)) in word.char_indices().enumerate() {
        let len = c.len_utf8();
        syms.push(Sym {
            start,
            len,
            prev: if i == 0 { NONE } else { i - 1 },
            next: if i + 1 == n_chars { NONE } else { i + 1 },
            id: merges.lookup(&word[start..start + len]),
        });
    }
    // (rank, left, right, merged id, size)
    let mut heap = BinaryHeap::new();
    let push = |heap: &mut BinaryHeap<_>, syms: &[Sym], l: usize, r: usize| {
        if l == NONE || r == NONE {
            return;
        }
        let (Some(a), Some(b)) = (syms[l].id, syms[r].id) else {
            return;
        };
        if let Some(&(rank, merged)) = merges.ranks.get(&(a, b)) {
            let size = syms[l].len + syms[r].len;
            heap.push(Reverse((rank, l, r, merged, size)));
        }
    };
    for i in 1..syms.len() {
        push(&mut heap, &syms, i - 1, i);
    }
    while let Some(Reverse((_, l, r, merged, size))) = heap.pop() {
        let (ll, rl) = (syms[l].len, syms[r].len);
        if ll == 0 || rl == 0 || ll + rl != size {
            continue;
        }
        syms[l].len = size;
        syms[l].id = Some(merged);
        syms[r].len = 0;
        let rn = syms[r].next;
        syms[l].next = rn;
        if rn != NONE {
            syms[rn].prev = l;
        }
        push(&mut heap, &syms, syms[l].prev, l);
        push(&mut heap, &syms, l, syms[l].next);
    }
    for s in syms.iter().filter(|s| s.len > 0) {
        let text = &word[s.start..s.start + s.len];
        if let Some(t) = token_id(text) {
            out.push(t);
        } else {
            // llama.cpp looks up each byte as a one-byte string; only
            // ASCII bytes can be such tokens.
            for b in text.bytes().filter(u8::is_ascii) {
                let one = [b];
                let s = std::str::from_utf8(&one).unwrap_or_default();
                if let Some(t) = token_id(s) {
                    out.push(t);
                }
            }
        }
    }
}

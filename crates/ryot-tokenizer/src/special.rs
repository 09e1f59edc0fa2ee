//! Special-token partitioning, as llama.cpp's `tokenizer_st_partition`:
//! before tokenizing, every occurrence of a special token's text (control,
//! user-defined and unknown tokens, longest first) is cut out of the raw
//! text and becomes that token. With `parse_special` off, only
//! user-defined tokens are cut out. `lstrip`/`rstrip` attributes eat the
//! ASCII whitespace next to the token.

use crate::{Tokenizer, attr};

/// A piece of the input: a token already decided, or a byte range of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frag {
    Token(u32),
    Text(usize, usize),
}

/// C's `isspace` in the "C" locale.
fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

impl Tokenizer {
    pub(crate) fn partition(
        &self,
        text: &str,
        parse_special: bool,
    ) -> Vec<Frag> {
        let mut frags = Vec::new();
        if text.is_empty() {
            return frags;
        }
        frags.push(Frag::Text(0, text.len()));
        let Some(matcher) = &self.special_matcher else {
            return frags;
        };
        // Only the special tokens that occur somewhere need the full pass.
        let mut present = vec![false; self.special_cache.len()];
        for m in matcher.find_overlapping_iter(text) {
            present[m.pattern().as_usize()] = true;
        }
        let bytes = text.as_bytes();
        for (k, &id) in self.special_cache.iter().enumerate() {
            if !present[k] {
                continue;
            }
            let tok = &self.tokens[id as usize];
            if !parse_special && tok.attr & (attr::CONTROL | attr::UNKNOWN) != 0
            {
                continue;
            }
            let needle = tok.text.as_str();
            let mut next = Vec::with_capacity(frags.len() + 2);
            for &f in &frags {
                let Frag::Text(mut base, mut blen) = f else {
                    next.push(f);
                    continue;
                };
                loop {
                    let Some(p) = text[base..base + blen].find(needle) else {
                        next.push(Frag::Text(base, blen));
                        break;
                    };
                    let m = base + p;
                    if m > base {
                        let mut left = m - base;
                        if tok.attr & attr::LSTRIP != 0 {
                            while left > 0 && c_isspace(bytes[base + left - 1])
                            {
                                left -= 1;
                            }
                        }
                        if left > 0 {
                            next.push(Frag::Text(base, left));
                        }
                    }
                    next.push(Frag::Token(id));
                    let end = m + needle.len();
                    if end >= base + blen {
                        break;
                    }
                    let mut roff = end;
                    let mut rlen = base + blen - end;
                    if tok.attr & attr::RSTRIP != 0 {
                        while rlen > 0 && c_isspace(bytes[roff]) {
                            roff += 1;
                            rlen -= 1;
                        }
                    }
                    if rlen == 0 {
                        break;
                    }
                    base = roff;
                    blen = rlen;
                }
            }
            frags = next;
        }
        frags
    }
}

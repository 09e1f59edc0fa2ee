//! WordPiece for BERT vocabularies, as llama.cpp's
//! `llm_tokenizer_wpm_session`: normalize (lowercase, strip accents through
//! a one-code-point NFD), split on whitespace, punctuation, ASCII symbols
//! and CJK ideographs, then take the longest vocabulary prefix of
//! `"▁" + word` again and again; a word that cannot be covered is `[UNK]`.

use crate::unicode::{self, CONTROL, MARK, PUNCTUATION, SYMBOL};

fn is_chinese(c: u32) -> bool {
    matches!(c,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

/// Normalizes and splits `text` into words.
pub(crate) fn preprocess(
    text: &str,
    lowercase: bool,
    strip_accents: bool,
) -> Vec<String> {
    let mut words = vec![String::new()];
    for ch in text.chars() {
        let mut c = ch as u32;
        if strip_accents {
            c = unicode::nfd_first(c);
        }
        let f = unicode::flags(c);
        if f.whitespace() {
            if !words.last().is_some_and(String::is_empty) {
                words.push(String::new());
            }
            continue;
        }
        if c == 0 || c == 0xFFFD || f.is(CONTROL) {
            continue;
        }
        if strip_accents && f.is(MARK) {
            continue;
        }
        let s =
            unicode::to_char(if lowercase { unicode::to_lower(c) } else { c });
        if f.is(PUNCTUATION) || (c < 0x7F && f.is(SYMBOL)) || is_chinese(c) {
            if !words.last().is_some_and(String::is_empty) {
                words.push(String::new());
            }
            if let Some(w) = words.last_mut() {
                w.push(s);
            }
            words.push(String::new());
        } else if let Some(w) = words.last_mut() {
            w.push(s);
        }
    }
    if words.last().is_some_and(String::is_empty) {
        words.pop();
    }
    words
}

/// Tokenizes `text` into `out`.
pub(crate) fn tokenize(
    text: &str,
    lowercase: bool,
    strip_accents: bool,
    max_token_len: usize,
    token_id: &dyn Fn(&str) -> Option<u32>,
    unk: Option<u32>,
    out: &mut Vec<u32>,
) {
    for word in preprocess(text, lowercase, strip_accents) {
        if word.is_empty() {
            continue;
        }
        let word1 = format!("\u{2581}{word}");
        let n = word1.len();
        let before = out.len();
        let mut i = 0;
        while i < n {
            let mut matched = false;
            let mut j = n.min(i + max_token_len + 1);
            while j > i {
                if let Some(t) = word1.get(i..j).and_then(token_id) {
                    out.push(t);
                    matched = true;
                    i = j - 1;
                    break;
                }
                j -= 1;
            }
            if !matched {
                out.truncate(before);
                break;
            }
            i += 1;
        }
        if out.len() == before
            && let Some(u) = unk
        {
            out.push(u);
        }
    }
}

//! Token pieces and detokenization, as llama.cpp's `token_to_piece` and
//! `detokenize` (including its `clean_up_tokenization_spaces` passes), plus
//! a UTF-8 buffer for streaming output.

use crate::{Tokenizer, TokenizerKind, attr};

impl Tokenizer {
    /// The bytes of token `id`, skipping up to `lstrip` leading spaces.
    /// With `special` off, control and unknown tokens give nothing.
    /// Unknown ids give nothing.
    pub fn token_to_piece_lstrip(
        &self,
        id: u32,
        lstrip: usize,
        special: bool,
    ) -> Vec<u8> {
        let Some(tok) = self.tokens.get(id as usize) else {
            return Vec::new();
        };
        let a = tok.attr;
        let shown = attr::UNKNOWN | attr::CONTROL;
        if !special && a & shown != 0 {
            return Vec::new();
        }
        let mut piece = if a & (shown | attr::USER_DEFINED) != 0 {
            tok.text.as_bytes().to_vec()
        } else if a & attr::NORMAL != 0 {
            match self.kind {
                TokenizerKind::Bpe => self.decode_byte_chars(&tok.text),
                _ => tok.text.replace('\u{2581}', " ").into_bytes(),
            }
        } else if a & attr::BYTE != 0 {
            vec![hex_byte(&tok.text)]
        } else {
            Vec::new()
        };
        let n = piece.iter().take(lstrip).take_while(|&&b| b == b' ').count();
        piece.drain(..n);
        piece
    }

    /// Maps GPT-2 byte characters back to bytes, marking characters
    /// outside the map as llama.cpp does.
    fn decode_byte_chars(&self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            match self.char_to_byte.get(c as usize).copied().flatten() {
                Some(b) => out.push(b),
                None => {
                    out.extend_from_slice(b"[UNK_BYTE_0x");
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.extend_from_slice(format!("{b:02x}").as_bytes());
                    }
                    out.extend_from_slice(text.as_bytes());
                    out.push(b']');
                }
            }
        }
        out
    }

    /// Detokenizes as llama.cpp's `llama_detokenize`. With
    /// `remove_special`, a leading BOS and a trailing EOS that the vocab
    /// adds are dropped; with `unparse_special`, control tokens are
    /// rendered as their text. The bytes may be invalid UTF-8.
    pub fn detokenize(
        &self,
        ids: &[u32],
        remove_special: bool,
        unparse_special: bool,
    ) -> Vec<u8> {
        let mut ids = ids;
        let mut remove_space = self.add_space_prefix;
        if remove_special
            && self.add_bos
            && !ids.is_empty()
            && ids.first().copied() == self.special.bos
        {
            remove_space = false;
            ids = &ids[1..];
        }
        if remove_special
            && self.add_eos
            && !ids.is_empty()
            && ids.last().copied() == self.special.eos
        {
            ids = &ids[..ids.len().saturating_sub(1)];
        }
        let mut text = Vec::new();
        for &id in ids {
            let lstrip = usize::from(remove_space);
            text.extend(self.token_to_piece_lstrip(
                id,
                lstrip,
                unparse_special,
            ));
            remove_space = false;
        }
        if self.clean_spaces {
            clean_spaces(&mut text);
        }
        text
    }
}

/// `strtol(text.substr(3, 2), 16)` of a `<0xXX>` token.
fn hex_byte(text: &str) -> u8 {
    let digits = text.get(3..).unwrap_or("");
    let mut v = 0u32;
    for c in digits.chars().take(2) {
        match c.to_digit(16) {
            Some(d) => v = v * 16 + d,
            None => break,
        }
    }
    v as u8
}

/// llama.cpp's three in-place clean-up passes, reproduced index for index
/// (the second pass overwrites a byte it has consumed, which the next
/// step then sees).
fn clean_spaces(text: &mut Vec<u8>) {
    // " ?", " !", " .", " ,"
    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }
    // " ' " -> "'"
    let n = total;
    total = usize::from(n > 0);
    let mut i = 1;
    while i < n {
        let x = text[i];
        if x == b'\'' && i + 1 < n && text[i - 1] == b' ' && text[i + 1] == b' '
        {
            total -= 1;
            i += 1;
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }
    // " 's", " 'm", " 're", " 've"
    let n = total;
    total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < n {
            let x1 = text[i + 1];
            if x1 == b's' || x1 == b'm' {
                total -= 1;
            } else if x1 != b't' && x1 != b'd' && i + 2 < n {
                let x2 = text[i + 2];
                if (x1 == b'r' || x1 == b'v') && x2 == b'e' {
                    total -= 1;
                }
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}

/// Turns a stream of token bytes into text: each [`push`](Self::push)
/// returns the longest complete UTF-8 prefix and keeps an unfinished
/// character for later. Bytes that can never be valid become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// An empty stream.
    pub fn new() -> Utf8Stream {
        Utf8Stream::default()
    }

    /// Adds bytes; returns the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            rest = &bad[n..];
                        }
                        None => {
                            rest = bad;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }

    /// Ends the stream: an unfinished character becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        let mut v = s.as_bytes().to_vec();
        clean_spaces(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn clean_up_rules() {
        assert_eq!(clean("Hello , world !"), "Hello, world!");
        assert_eq!(clean("it 's"), "it's");
        assert_eq!(clean("we 'll"), "we 'll");
        assert_eq!(clean("rock ' n ' roll"), "rock'n'roll");
        assert_eq!(clean(""), "");
    }

    #[test]
    fn utf8_stream_buffers_partial_chars() {
        let mut s = Utf8Stream::new();
        let e = "é".as_bytes();
        assert_eq!(s.push(&e[..1]), "");
        assert_eq!(s.push(&e[1..]), "é");
        assert_eq!(s.push(&[0xFF, b'a']), "\u{FFFD}a");
        assert_eq!(s.push(&[0xF0, 0x9F]), "");
        assert_eq!(s.finish(), "\u{FFFD}");
    }
}

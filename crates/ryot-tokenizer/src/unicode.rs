//! Unicode helpers with llama.cpp's semantics: category flags from its
//! Unicode 15.1 tables, its whitespace set, simple lowercasing, its
//! one-code-point NFD, and GPT-2's byte-to-character map.

use crate::unicode_tables::{FLAG_RANGES, LOWERCASE, NFD_RANGES};

/// Unassigned code point (`Cn`).
pub(crate) const UNDEFINED: u16 = 0x01;
/// `\p{N}`.
pub(crate) const NUMBER: u16 = 0x02;
/// `\p{L}`.
pub(crate) const LETTER: u16 = 0x04;
/// `\p{Z}`.
#[allow(dead_code)]
pub(crate) const SEPARATOR: u16 = 0x08;
/// `\p{M}`.
pub(crate) const MARK: u16 = 0x10;
/// `\p{P}`.
pub(crate) const PUNCTUATION: u16 = 0x20;
/// `\p{S}`.
pub(crate) const SYMBOL: u16 = 0x40;
/// `\p{C}` (assigned).
pub(crate) const CONTROL: u16 = 0x80;
/// Unicode `White_Space`.
pub(crate) const WHITESPACE: u16 = 0x100;
/// The category bits.
pub(crate) const CATEGORY_MASK: u16 = 0xFF;

/// Flags of one code point; `Flags(0)` stands for "outside the text".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flags(pub u16);

impl Flags {
    pub(crate) fn is(self, bits: u16) -> bool {
        self.0 & bits != 0
    }
    pub(crate) fn letter(self) -> bool {
        self.is(LETTER)
    }
    pub(crate) fn number(self) -> bool {
        self.is(NUMBER)
    }
    pub(crate) fn whitespace(self) -> bool {
        self.is(WHITESPACE)
    }
    /// Any flag at all (false only for the out-of-text marker).
    pub(crate) fn any(self) -> bool {
        self.0 != 0
    }
    pub(crate) fn category(self) -> u16 {
        self.0 & CATEGORY_MASK
    }
}

/// llama.cpp's whitespace set (`White_Space` from PropList.txt).
pub(crate) fn is_whitespace(c: u32) -> bool {
    matches!(
        c,
        0x09..=0x0D
            | 0x20
            | 0x85
            | 0xA0
            | 0x1680
            | 0x2000..=0x200A
            | 0x2028
            | 0x2029
            | 0x202F
            | 0x205F
            | 0x3000
    )
}

/// The flags of a code point.
pub(crate) fn flags(c: u32) -> Flags {
    let cat = if c >= 0x11_0000 {
        UNDEFINED
    } else {
        let i = FLAG_RANGES.partition_point(|&(start, _)| start <= c);
        // FLAG_RANGES starts at 0, so i >= 1.
        u16::from(FLAG_RANGES[i.saturating_sub(1)].1)
    };
    let ws = if is_whitespace(c) { WHITESPACE } else { 0 };
    Flags(cat | ws)
}

/// Simple lowercase mapping (identity when there is none).
pub(crate) fn to_lower(c: u32) -> u32 {
    match LOWERCASE.binary_search_by_key(&c, |&(k, _)| k) {
        Ok(i) => LOWERCASE[i].1,
        Err(_) => c,
    }
}

/// The first code point of the canonical decomposition.
pub(crate) fn nfd_first(c: u32) -> u32 {
    let i = NFD_RANGES.partition_point(|&(first, _, _)| first <= c);
    if i > 0 {
        let (first, last, n) = NFD_RANGES[i - 1];
        if first <= c && c <= last {
            return n;
        }
    }
    c
}

/// A code point as a `char` (U+FFFD for surrogates, which `&str` never
/// holds anyway).
pub(crate) fn to_char(c: u32) -> char {
    char::from_u32(c).unwrap_or('\u{FFFD}')
}

/// GPT-2's byte-to-character table: printable Latin-1 bytes map to
/// themselves, the rest to U+0100 upward in byte order.
pub(crate) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7E).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b);
        table[b as usize] = if printable {
            to_char(b)
        } else {
            n += 1;
            to_char(255 + n)
        };
    }
    table
}

/// The inverse of [`byte_to_char_table`], indexed by code point
/// (all mapped characters are below U+0144).
pub(crate) fn char_to_byte_table() -> Vec<Option<u8>> {
    let mut inv = vec![None; 0x200];
    for (b, c) in byte_to_char_table().iter().enumerate() {
        inv[*c as usize] = Some(b as u8);
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_match_llama_cpp_examples() {
        assert!(flags('a' as u32).letter());
        assert!(flags('7' as u32).number());
        assert!(flags(' ' as u32).whitespace());
        assert_eq!(flags(' ' as u32).category(), SEPARATOR);
        assert_eq!(flags('$' as u32).category(), SYMBOL);
        assert_eq!(flags('!' as u32).category(), PUNCTUATION);
        assert_eq!(flags(0x0301).category(), MARK);
        assert_eq!(flags(0x1C89).category(), UNDEFINED);
        assert_eq!(flags(0x00AD).category(), CONTROL);
        assert!(flags(0x4E2D).letter());
    }

    #[test]
    fn lower_and_nfd() {
        assert_eq!(to_lower('A' as u32), 'a' as u32);
        assert_eq!(to_lower(0x130), 'i' as u32);
        assert_eq!(nfd_first(0xE9), 'e' as u32);
        assert_eq!(nfd_first('x' as u32), 'x' as u32);
    }

    #[test]
    fn byte_map_round_trips() {
        let t = byte_to_char_table();
        let inv = char_to_byte_table();
        assert_eq!(t[b' ' as usize], '\u{120}');
        assert_eq!(t[b'a' as usize], 'a');
        for b in 0..=255u8 {
            assert_eq!(inv[t[b as usize] as usize], Some(b));
        }
    }
}

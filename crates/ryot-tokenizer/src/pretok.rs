//! Pre-tokenizers for byte-level BPE: llama.cpp's per-model regex lists,
//! applied the way its `unicode_regex_split` applies them.
//!
//! Each regex of a list splits every piece left by the previous one into
//! matches and the text between them. The GPT-2 and Llama-3 patterns run
//! as hand-written splitters (llama.cpp has the same fast paths). The
//! others run on fancy-regex with llama.cpp's trick: when a pattern uses
//! `\p{..}` classes, each non-ASCII code point of the text is replaced by
//! one stand-in character per Unicode category (from llama.cpp's own
//! tables) and each `\p{..}` by a class of that stand-in plus its ASCII
//! members, so matching follows llama.cpp's categories exactly.

use crate::unicode::{self, Flags, LETTER, MARK, NUMBER, PUNCTUATION, SYMBOL};
use fancy_regex::Regex;

/// llama.cpp's GPT-2 pattern (runs as a hand-written splitter).
pub(crate) const GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// llama.cpp's Llama-3 pattern, case-insensitive contractions spelled out
/// (runs as a hand-written splitter).
pub(crate) const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's pattern: Llama-3's with single digits.
pub(crate) const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const DEEPSEEK_LLM_LETTERS: &str = r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\x{1F7D}ᾀ-ᾴᾶ-ᾼ\x{1FBE}ῂ-ῄῆ-ῌῐ-\x{1FD3}ῖ-\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\x{2126}ℨ\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
const CJK_HANGUL: &str = "[一-龥ࠀ-一가-퟿]+";

const DEEPSEEK_LLM: &[&str] = &[
    "[\r\n]",
    DEEPSEEK_LLM_LETTERS,
    r"\s?[!-/:-~！-／：-～‘-‟　-。]+",
    r"\s+$",
    CJK_HANGUL,
    r"\p{N}+",
];
const DEEPSEEK_CODER: &[&str] =
    &["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK_HANGUL, r"\p{N}"];
const STARCODER: &[&str] = &[r"\p{N}", GPT2];
const FALCON: &[&str] = &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"];
const DEFAULT: &[&str] =
    &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"];
const BLOOM: &[&str] = &[r" ?[^(\s|.,!?…。，、।۔،)]+"];

/// What a `tokenizer.ggml.pre` name selects, as in llama.cpp's loader.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PreType {
    /// The regexes, applied in order.
    pub regexes: &'static [&'static str],
    /// `clean_up_tokenization_spaces` when detokenizing.
    pub clean_spaces: bool,
    /// Words that are whole tokens skip the merges.
    pub ignore_merges: bool,
    /// BOS is added unless the GGUF says otherwise.
    pub add_bos: bool,
    /// SEP is added unless the GGUF says otherwise.
    pub add_sep: bool,
    /// The model has no BOS token.
    pub no_bos: bool,
}

/// The pre-tokenizer named `name` (`None` if llama.cpp has no such name or
/// Ryot does not implement it).
pub(crate) fn pre_type(name: &str) -> Option<PreType> {
    let base = |regexes| PreType {
        regexes,
        clean_spaces: true,
        ignore_merges: false,
        add_bos: false,
        add_sep: false,
        no_bos: false,
    };
    let unclean = |regexes| PreType { clean_spaces: false, ..base(regexes) };
    Some(match name {
        "" | "default" => base(DEFAULT),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1"
        | "pixtral" | "midm-2.0" | "lfm2" => {
            PreType { ignore_merges: true, add_bos: true, ..base(&[LLAMA3]) }
        }
        "deepseek-llm" => unclean(DEEPSEEK_LLM),
        "deepseek-coder" => unclean(DEEPSEEK_CODER),
        "falcon" => base(FALCON),
        "mpt" | "olmo" | "jais" | "exaone4" | "gpt-2" | "phi-2" | "jina-es"
        | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de" | "a.x-4.0"
        | "mellum" | "modern-bert" => base(&[GPT2]),
        "jina-v1-en" | "jina-v2-code" | "roberta-bpe" => {
            PreType { add_sep: true, ..base(&[GPT2]) }
        }
        "trillion" | "granite-docling" => unclean(&[GPT2]),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" => {
            base(STARCODER)
        }
        "command-r" | "smollm" => unclean(STARCODER),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "hunyuan" => unclean(&[QWEN2]),
        "stablelm2" | "megrez" => base(&[QWEN2]),
        "dbrx" | "smaug-bpe" => base(&[LLAMA3]),
        "glm4" | "chatglm-bpe" => PreType { no_bos: true, ..base(&[LLAMA3]) },
        "poro-chat" => unclean(BLOOM),
        "bloom" | "gpt3-finnish" => base(BLOOM),
        _ => return None,
    })
}

enum Step {
    Gpt2,
    Llama3,
    /// Matches over the category-collapsed text.
    Collapsed(Regex),
    /// Matches over the text itself (non-ASCII whitespace as U+000B).
    Wide(Regex),
}

/// A compiled pre-tokenizer.
pub(crate) struct PreTokenizer {
    steps: Vec<Step>,
}

const UCATS: &[(&str, u16)] = &[
    (r"\p{N}", NUMBER),
    (r"\p{L}", LETTER),
    (r"\p{P}", PUNCTUATION),
    (r"\p{M}", MARK),
    (r"\p{S}", SYMBOL),
    (r"\p{Lu}", LETTER),
    (r"\p{Ll}", LETTER),
    (r"\p{Lt}", LETTER),
    (r"\p{Lm}", LETTER),
    (r"\p{Lo}", LETTER),
];

/// The stand-in of a category and the ASCII members of it, as the inside
/// of a character class.
fn class_body(cat: u16) -> &'static str {
    match cat {
        NUMBER => r"\x{D1}0-9",
        LETTER => r"\x{D2}A-Za-z",
        PUNCTUATION => r"\x{D3}!-#%-*,-/:-;?-@\[-\]_\{\}",
        MARK => r"\x{D4}",
        _ => r"\x{D5}\$\+<-\>\^`\|",
    }
}

/// The stand-in character for a non-ASCII code point.
fn collapse(c: char) -> char {
    let f = unicode::flags(c as u32);
    if f.whitespace() {
        return '\u{0B}';
    }
    match f.category() {
        NUMBER => '\u{D1}',
        LETTER => '\u{D2}',
        PUNCTUATION => '\u{D3}',
        MARK => '\u{D4}',
        SYMBOL => '\u{D5}',
        _ => '\u{D0}',
    }
}

/// Rewrites `\p{..}` classes to their collapsed form.
fn collapse_regex(re: &str) -> String {
    let b = re.as_bytes();
    let mut out = String::new();
    let mut inside = false;
    let mut i = 0;
    while i < re.len() {
        let prev_bs = i > 0 && b[i - 1] == b'\\';
        if b[i] == b'[' && !prev_bs {
            out.push('[');
            inside = true;
            i += 1;
            continue;
        }
        if inside && b[i] == b']' && !prev_bs {
            out.push(']');
            inside = false;
            i += 1;
            continue;
        }
        if let Some(&(pat, cat)) = UCATS
            .iter()
            .filter(|(p, _)| re[i..].starts_with(p))
            .max_by_key(|(p, _)| p.len())
        {
            if !inside {
                out.push('[');
            }
            out.push_str(class_body(cat));
            if !inside {
                out.push(']');
            }
            i += pat.len();
            continue;
        }
        let ch = re[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

impl PreTokenizer {
    /// Compiles a regex list.
    pub(crate) fn new(
        regexes: &[&str],
    ) -> Result<PreTokenizer, (String, String)> {
        let mut steps = Vec::new();
        for &re in regexes {
            let step = if re == GPT2 {
                Step::Gpt2
            } else if re == LLAMA3 {
                Step::Llama3
            } else if UCATS.iter().any(|(p, _)| re.contains(p)) {
                let c = collapse_regex(re);
                Step::Collapsed(
                    Regex::new(&c).map_err(|e| (c.clone(), e.to_string()))?,
                )
            } else {
                Step::Wide(
                    Regex::new(re)
                        .map_err(|e| (re.to_string(), e.to_string()))?,
                )
            };
            steps.push(step);
        }
        Ok(PreTokenizer { steps })
    }

    /// Splits `text` into words (slices of `text`, none empty).
    pub(crate) fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let cpts: Vec<char> = text.chars().collect();
        let mut starts: Vec<usize> =
            text.char_indices().map(|(i, _)| i).collect();
        starts.push(text.len());
        let mut offsets = vec![cpts.len()];
        let mut collapsed: Option<Vec<char>> = None;
        let mut wide: Option<Vec<char>> = None;
        for step in &self.steps {
            offsets = match step {
                Step::Gpt2 => split_custom(&cpts, &offsets, gpt2_segment),
                Step::Llama3 => split_custom(&cpts, &offsets, llama3_segment),
                Step::Collapsed(re) => {
                    let t = collapsed.get_or_insert_with(|| {
                        cpts.iter()
                            .map(
                                |&c| if c.is_ascii() { c } else { collapse(c) },
                            )
                            .collect()
                    });
                    split_regex(t, &offsets, re)
                }
                Step::Wide(re) => {
                    let t = wide.get_or_insert_with(|| {
                        cpts.iter()
                            .map(|&c| {
                                if !c.is_ascii()
                                    && unicode::is_whitespace(c as u32)
                                {
                                    '\u{0B}'
                                } else {
                                    c
                                }
                            })
                            .collect()
                    });
                    split_regex(t, &offsets, re)
                }
            };
        }
        let mut words = Vec::with_capacity(offsets.len());
        let mut at = 0;
        for len in offsets {
            if len > 0 {
                words.push(&text[starts[at]..starts[at + len]]);
            }
            at += len;
        }
        words
    }
}

/// Runs a regex over each segment; matches and the gaps between them
/// become the new segments.
fn split_regex(text: &[char], offsets: &[usize], re: &Regex) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    let mut seg = String::new();
    let mut byte_starts = Vec::new();
    for &len in offsets {
        seg.clear();
        byte_starts.clear();
        for &c in &text[start..start + len] {
            byte_starts.push(seg.len());
            seg.push(c);
        }
        byte_starts.push(seg.len());
        let to_char = |b: usize| byte_starts.partition_point(|&s| s < b);
        let mut prev = 0;
        // A matching error (backtrack limit) ends the matching of this
        // segment; the rest stays one piece.
        for m in re.find_iter(&seg).map_while(Result::ok) {
            let (s, e) = (to_char(m.start()), to_char(m.end()));
            if s > prev {
                out.push(s - prev);
            }
            if e > s {
                out.push(e - s);
            }
            prev = e;
        }
        if prev < len {
            out.push(len - prev);
        }
        start += len;
    }
    out
}

/// A segment `[ini, end)` of the code points, seen the way llama.cpp's
/// hand-written splitters see it: outside it there is nothing.
struct Seg<'a> {
    cpts: &'a [char],
    ini: usize,
    end: usize,
    prev_end: usize,
    out: &'a mut Vec<usize>,
}

const OUT: u32 = u32::MAX;

impl Seg<'_> {
    fn cpt(&self, p: usize) -> u32 {
        if self.ini <= p && p < self.end { self.cpts[p] as u32 } else { OUT }
    }
    fn flags(&self, p: usize) -> Flags {
        if self.ini <= p && p < self.end {
            unicode::flags(self.cpts[p] as u32)
        } else {
            Flags(0)
        }
    }
    fn add(&mut self, end: usize) -> usize {
        let len = end - self.prev_end;
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
        len
    }
    /// `'s|'t|'re|'ve|'m|'ll|'d` at `pos`: the match length, if any.
    fn contraction(&self, pos: usize, fold: bool) -> Option<usize> {
        let low = |c: u32| if fold { unicode::to_lower(c) } else { c };
        if self.cpt(pos) != u32::from(b'\'') || pos + 1 >= self.end {
            return None;
        }
        let n = low(self.cpt(pos + 1));
        if [b's', b't', b'm', b'd'].iter().any(|&x| n == u32::from(x)) {
            return Some(2);
        }
        if pos + 2 < self.end {
            let nn = low(self.cpt(pos + 2));
            let pair = |a: u8, b: u8| n == u32::from(a) && nn == u32::from(b);
            if pair(b'r', b'e') || pair(b'v', b'e') || pair(b'l', b'l') {
                return Some(3);
            }
        }
        None
    }
}

fn split_custom(
    cpts: &[char],
    offsets: &[usize],
    seg_fn: fn(&mut Seg<'_>),
) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let mut seg = Seg {
            cpts,
            ini: start,
            end: start + len,
            prev_end: start,
            out: &mut out,
        };
        seg_fn(&mut seg);
        start += len;
    }
    out
}

fn is_word_char(f: Flags) -> bool {
    f.whitespace() || f.letter() || f.number()
}

/// The GPT-2 pattern, as llama.cpp's `unicode_regex_split_custom_gpt2`.
fn gpt2_segment(s: &mut Seg<'_>) {
    let mut pos = s.ini;
    while pos < s.end {
        let cpt = s.cpt(pos);
        let flags = s.flags(pos);
        if let Some(n) = s.contraction(pos, false) {
            pos += s.add(pos + n);
            continue;
        }
        let space = cpt == u32::from(b' ');
        let mut f2 = if space { s.flags(pos + 1) } else { flags };
        for class in [LETTER, NUMBER] {
            if f2.is(class) {
                pos += usize::from(space);
                while f2.is(class) {
                    pos += 1;
                    f2 = s.flags(pos);
                }
                break;
            }
        }
        if pos != s.prev_end {
            s.add(pos);
            continue;
        }
        if !is_word_char(f2) && f2.any() {
            pos += usize::from(space);
            while !is_word_char(f2) && f2.any() {
                pos += 1;
                f2 = s.flags(pos);
            }
            s.add(pos);
            continue;
        }
        let mut nws = 0;
        while s.flags(pos + nws).whitespace() {
            nws += 1;
        }
        if nws > 1 && s.cpt(pos + nws) != OUT {
            pos += nws - 1;
            s.add(pos);
            continue;
        }
        if nws > 0 {
            pos += nws;
            s.add(pos);
            continue;
        }
        pos += 1;
        s.add(pos);
    }
}

/// The Llama-3 pattern, as llama.cpp's `unicode_regex_split_custom_llama3`.
fn llama3_segment(s: &mut Seg<'_>) {
    let (cr, lf) = (u32::from(b'\r'), u32::from(b'\n'));
    let mut pos = s.ini;
    while pos < s.end {
        let cpt = s.cpt(pos);
        let flags = s.flags(pos);
        if let Some(n) = s.contraction(pos, true) {
            pos += s.add(pos + n);
            continue;
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(cpt == cr || cpt == lf || flags.number())
            && (flags.letter() || s.flags(pos + 1).letter())
        {
            pos += 1;
            while s.flags(pos).letter() {
                pos += 1;
            }
            s.add(pos);
            continue;
        }
        // \p{N}{1,3}
        if flags.number() {
            let mut ini = pos;
            while s.flags(pos).number() {
                pos += 1;
                if pos - ini >= 3 {
                    s.add(pos);
                    ini = pos;
                }
            }
            s.add(pos);
            continue;
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*
        let space = cpt == u32::from(b' ');
        let mut f2 = if space { s.flags(pos + 1) } else { flags };
        if !is_word_char(f2) && flags.any() {
            pos += usize::from(space);
            while !is_word_char(f2) && f2.any() {
                pos += 1;
                f2 = s.flags(pos);
            }
            while s.cpt(pos) == cr || s.cpt(pos) == lf {
                pos += 1;
            }
            s.add(pos);
            continue;
        }
        let mut nws = 0;
        let mut last_rn = 0;
        while s.flags(pos + nws).whitespace() {
            let c2 = s.cpt(pos + nws);
            if c2 == cr || c2 == lf {
                last_rn = pos + nws + 1;
            }
            nws += 1;
        }
        // \s*[\r\n]+
        if last_rn > 0 {
            pos = last_rn;
            s.add(pos);
            continue;
        }
        if nws > 1 && s.cpt(pos + nws) != OUT {
            pos += nws - 1;
            s.add(pos);
            continue;
        }
        if nws > 0 {
            pos += nws;
            s.add(pos);
            continue;
        }
        pos += 1;
        s.add(pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(regexes: &[&str], text: &str) -> Vec<String> {
        let p = PreTokenizer::new(regexes).unwrap();
        p.split(text).into_iter().map(String::from).collect()
    }

    #[test]
    fn gpt2_splits() {
        assert_eq!(
            split(&[GPT2], "Hello world's  end 123!!"),
            ["Hello", " world", "'s", " ", " end", " 123", "!!"]
        );
    }

    #[test]
    fn llama3_splits_digits_by_three() {
        assert_eq!(split(&[LLAMA3], "12345 ab"), ["123", "45", " ab"]);
        assert_eq!(split(&[LLAMA3], "IT'S\n\n x"), ["IT", "'S", "\n\n", " x"]);
    }

    #[test]
    fn collapsed_regex_matches_unicode_digits() {
        assert_eq!(split(&[r"\p{N}"], "a١2"), ["a", "١", "2"]);
        assert_eq!(split(STARCODER, "ab12"), ["ab", "1", "2"]);
    }

    #[test]
    fn every_table_entry_compiles() {
        for name in ["default", "deepseek-llm", "deepseek-coder", "falcon"] {
            let t = pre_type(name).unwrap();
            PreTokenizer::new(t.regexes).unwrap();
        }
        PreTokenizer::new(BLOOM).unwrap();
        PreTokenizer::new(&[QWEN2]).unwrap();
    }
}

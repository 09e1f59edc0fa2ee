//! Tokenizers built from GGUF metadata, reproducing llama.cpp's
//! (`src/llama-vocab.cpp`) token for token:
//!
//! - `tokenizer.ggml.model = llama`: SentencePiece-style BPE over token
//!   scores with `<0xXX>` byte fallback and `▁` space escaping;
//! - `gpt2`: byte-level BPE with merges, after one of llama.cpp's
//!   pre-tokenizers (`tokenizer.ggml.pre`: gpt-2, llama-bpe, qwen2,
//!   smollm, starcoder, refact, deepseek-llm, deepseek-coder, ...);
//! - `bert`: WordPiece with `[CLS]` ... `[SEP]`.
//!
//! Special tokens written in the text are parsed when asked, BOS/EOS/SEP
//! are added by the GGUF's flags with llama.cpp's per-model defaults, and
//! [`Tokenizer::detokenize`] applies llama.cpp's clean-up rules.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let gguf = ryot_gguf::Gguf::open("model.gguf")?;
//! let tok = ryot_tokenizer::Tokenizer::from_gguf(&gguf)?;
//! let ids = tok.encode("Hello world", true, true);
//! let text = tok.detokenize(&ids, false, false);
//! # Ok(()) }
//! ```

mod bpe;
mod decode;
mod error;
mod load;
mod pretok;
mod special;
mod spm;
mod unicode;
mod unicode_tables;
mod wpm;

use std::collections::{BTreeSet, HashMap};

pub use decode::Utf8Stream;
pub use error::TokenizerError;
use special::Frag;

/// Token attributes, llama.cpp's `llama_token_attr` bits.
pub mod attr {
    /// The unknown token.
    pub const UNKNOWN: u32 = 1 << 0;
    /// An unused token.
    pub const UNUSED: u32 = 1 << 1;
    /// An ordinary token.
    pub const NORMAL: u32 = 1 << 2;
    /// A control token (BOS, EOS, chat markers...).
    pub const CONTROL: u32 = 1 << 3;
    /// A user-defined token, always matched as a whole in the text.
    pub const USER_DEFINED: u32 = 1 << 4;
    /// A byte token (`<0xXX>`).
    pub const BYTE: u32 = 1 << 5;
    /// Whitespace to the left of this token is dropped when it is parsed.
    pub const LSTRIP: u32 = 1 << 7;
    /// Whitespace to the right of this token is dropped when it is parsed.
    pub const RSTRIP: u32 = 1 << 8;
}

/// Which algorithm the tokenizer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerKind {
    /// SentencePiece-style BPE over scores (`tokenizer.ggml.model = llama`).
    Spm,
    /// Byte-level BPE with merges (`gpt2`).
    Bpe,
    /// WordPiece (`bert`).
    WordPiece,
}

#[derive(Clone, Debug)]
struct Token {
    text: String,
    score: f32,
    attr: u32,
}

/// Special token ids (`None` where the model has none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpecialIds {
    /// Beginning of sequence (`[CLS]` for BERT).
    pub bos: Option<u32>,
    /// End of sequence.
    pub eos: Option<u32>,
    /// End of turn.
    pub eot: Option<u32>,
    /// End of message.
    pub eom: Option<u32>,
    /// Unknown.
    pub unk: Option<u32>,
    /// Separator (`[SEP]`).
    pub sep: Option<u32>,
    /// Padding.
    pub pad: Option<u32>,
    /// Mask.
    pub mask: Option<u32>,
    /// Newline.
    pub nl: Option<u32>,
    /// Fill-in-the-middle prefix.
    pub fim_pre: Option<u32>,
    /// Fill-in-the-middle suffix.
    pub fim_suf: Option<u32>,
    /// Fill-in-the-middle middle.
    pub fim_mid: Option<u32>,
    /// Fill-in-the-middle padding.
    pub fim_pad: Option<u32>,
    /// Fill-in-the-middle repository.
    pub fim_rep: Option<u32>,
    /// Fill-in-the-middle file separator.
    pub fim_sep: Option<u32>,
}

/// A tokenizer read from GGUF metadata. Build it with
/// [`Tokenizer::from_gguf`].
pub struct Tokenizer {
    kind: TokenizerKind,
    pre: String,
    tokens: Vec<Token>,
    token_to_id: HashMap<String, u32>,
    merges: Option<bpe::Merges>,
    pretok: Option<pretok::PreTokenizer>,
    /// SPM byte fallback: the `<0xXX>` token of each byte.
    byte_tokens: [Option<u32>; 256],
    byte_to_char: [char; 256],
    char_to_byte: Vec<Option<u8>>,
    special: SpecialIds,
    add_bos: bool,
    add_eos: bool,
    add_sep: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
    ignore_merges: bool,
    lowercase: bool,
    strip_accents: bool,
    max_token_len: usize,
    eog: BTreeSet<u32>,
    /// Control, user-defined and unknown tokens, longest text first.
    special_cache: Vec<u32>,
    special_matcher: Option<aho_corasick::AhoCorasick>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind)
            .field("pre", &self.pre)
            .field("n_vocab", &self.tokens.len())
            .field("special", &self.special)
            .field("add_bos", &self.add_bos)
            .field("add_eos", &self.add_eos)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Tokenizes `text`. With `add_special`, BOS/EOS (or `[CLS]`/`[SEP]`)
    /// are added as the vocabulary says; with `parse_special`, control
    /// tokens written in the text (`<|im_start|>`, `<s>`, ...) become their
    /// ids (user-defined tokens are always parsed, as in llama.cpp).
    pub fn encode(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Vec<u32> {
        let frags = self.partition(text, parse_special);
        let mut out = Vec::new();
        let token_id = |s: &str| self.token_to_id.get(s).copied();
        match self.kind {
            TokenizerKind::Spm => {
                let mut prev_special = true;
                if add_special && self.add_bos {
                    out.extend(self.special.bos);
                }
                let token = |s: &str| {
                    let id = self.token_to_id.get(s).copied()?;
                    Some((id, self.tokens[id as usize].score))
                };
                for f in frags {
                    match f {
                        Frag::Text(off, len) => {
                            let mut s = String::with_capacity(len + 4);
                            if self.add_space_prefix && prev_special {
                                s.push(' ');
                            }
                            s.push_str(&text[off..off + len]);
                            let s = s.replace(' ', "\u{2581}");
                            spm::tokenize(
                                &s,
                                &token,
                                &self.byte_tokens,
                                &mut out,
                            );
                            prev_special = false;
                        }
                        Frag::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
                if add_special && self.add_eos {
                    out.extend(self.special.eos);
                }
            }
            TokenizerKind::Bpe => {
                if add_special && self.add_bos {
                    out.extend(self.special.bos);
                }
                let mut encoded = String::new();
                for f in frags {
                    match f {
                        Frag::Text(off, len) => {
                            self.bpe_text(
                                &text[off..off + len],
                                &mut encoded,
                                &token_id,
                                &mut out,
                            );
                        }
                        Frag::Token(id) => out.push(id),
                    }
                }
                if add_special && self.add_eos {
                    out.extend(self.special.eos);
                }
            }
            TokenizerKind::WordPiece => {
                if add_special {
                    out.extend(self.special.bos);
                }
                for f in frags {
                    match f {
                        Frag::Text(off, len) => wpm::tokenize(
                            &text[off..off + len],
                            self.lowercase,
                            self.strip_accents,
                            self.max_token_len,
                            &token_id,
                            self.special.unk,
                            &mut out,
                        ),
                        Frag::Token(id) => out.push(id),
                    }
                }
                if add_special {
                    out.extend(self.special.sep);
                }
            }
        }
        out
    }

    fn bpe_text(
        &self,
        text: &str,
        encoded: &mut String,
        token_id: &dyn Fn(&str) -> Option<u32>,
        out: &mut Vec<u32>,
    ) {
        let (Some(pretok), Some(merges)) = (&self.pretok, &self.merges) else {
            return;
        };
        for word in pretok.split(text) {
            encoded.clear();
            encoded.extend(word.bytes().map(|b| self.byte_to_char[b as usize]));
            bpe::tokenize_word(
                encoded,
                merges,
                token_id,
                self.ignore_merges,
                out,
            );
        }
    }

    /// The bytes of token `id` (as `llama_token_to_piece` with no
    /// `lstrip`). With `special` off, control tokens give nothing.
    pub fn token_to_piece(&self, id: u32, special: bool) -> Vec<u8> {
        self.token_to_piece_lstrip(id, 0, special)
    }

    /// Number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> usize {
        self.tokens.len()
    }

    /// The algorithm.
    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }

    /// The pre-tokenizer name (`tokenizer.ggml.pre`; empty for non-BPE).
    pub fn pre_tokenizer(&self) -> &str {
        &self.pre
    }

    /// Special token ids.
    pub fn special_ids(&self) -> &SpecialIds {
        &self.special
    }

    /// The BOS token.
    pub fn bos(&self) -> Option<u32> {
        self.special.bos
    }

    /// The EOS token.
    pub fn eos(&self) -> Option<u32> {
        self.special.eos
    }

    /// Whether `encode(.., add_special = true, ..)` adds BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether `encode(.., add_special = true, ..)` adds EOS.
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }

    /// Whether the model wants a SEP token added (BERT).
    pub fn add_sep(&self) -> bool {
        self.add_sep
    }

    /// Whether `id` ends generation (EOS, EOT, `<|im_end|>`, ...).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    /// The end-of-generation tokens.
    pub fn eog_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.eog.iter().copied()
    }

    /// Whether `id` is a control token.
    pub fn is_control(&self, id: u32) -> bool {
        self.token_attr(id) & attr::CONTROL != 0
    }

    /// The vocabulary text of `id` (`None` out of range).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(|t| t.text.as_str())
    }

    /// The score of `id` (0 out of range).
    pub fn token_score(&self, id: u32) -> f32 {
        self.tokens.get(id as usize).map_or(0.0, |t| t.score)
    }

    /// The [`attr`] bits of `id` (0 out of range).
    pub fn token_attr(&self, id: u32) -> u32 {
        self.tokens.get(id as usize).map_or(0, |t| t.attr)
    }

    /// The id whose vocabulary text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }
}

/// Splits `text` into words with the BPE pre-tokenizer named `pre` (a
/// `tokenizer.ggml.pre` value such as `llama-bpe`, `qwen2` or `smollm`),
/// as llama.cpp does before its merges.
///
/// # Errors
/// [`TokenizerError::UnknownPreTokenizer`] for an unknown name.
pub fn pre_tokenize(
    pre: &str,
    text: &str,
) -> Result<Vec<String>, TokenizerError> {
    let pt = pretok::pre_type(pre).ok_or_else(|| {
        TokenizerError::UnknownPreTokenizer { pre: pre.to_string() }
    })?;
    let p = pretok::PreTokenizer::new(pt.regexes).map_err(
        |(pattern, message)| TokenizerError::Regex { pattern, message },
    )?;
    Ok(p.split(text).into_iter().map(String::from).collect())
}

//! Building a [`Tokenizer`] from GGUF metadata, following llama.cpp's
//! `llama_vocab::impl::load`: per-model defaults, the `tokenizer.ggml.*`
//! keys, token types, and its text-based detection of end-of-turn, FIM and
//! end-of-generation tokens.

use std::collections::{BTreeSet, HashMap};

use ryot_gguf::{Array, Gguf, Metadata, Value};

use crate::pretok::{self, PreTokenizer};
use crate::{
    SpecialIds, Token, Tokenizer, TokenizerError, TokenizerKind, attr, bpe,
    unicode,
};

const K: &str = "tokenizer.ggml.";

/// Selects one field of [`SpecialIds`].
type Slot = fn(&mut SpecialIds) -> &mut Option<u32>;

fn key(name: &str) -> String {
    format!("{K}{name}")
}

fn get_str<'a>(
    md: &'a Metadata,
    name: &str,
) -> Result<Option<&'a str>, TokenizerError> {
    match md.get(&key(name)) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenizerError::WrongType {
            key: key(name),
            expected: "a string",
        }),
    }
}

fn get_bool(md: &Metadata, name: &str) -> Result<Option<bool>, TokenizerError> {
    match md.get(&key(name)) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(TokenizerError::WrongType {
            key: key(name),
            expected: "a bool",
        }),
    }
}

fn get_array<'a>(
    md: &'a Metadata,
    name: &str,
) -> Result<Option<&'a Array>, TokenizerError> {
    match md.get(&key(name)) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(TokenizerError::WrongType {
            key: key(name),
            expected: "an array",
        }),
    }
}

fn check_len(name: &str, len: usize, n: usize) -> Result<(), TokenizerError> {
    if len < n {
        return Err(TokenizerError::LengthMismatch {
            key: key(name),
            len,
            n_tokens: n,
        });
    }
    Ok(())
}

/// GGUF token type -> attribute bits.
fn type_to_attr(t: i32) -> u32 {
    match t {
        1 => attr::NORMAL,
        2 => attr::UNKNOWN,
        3 => attr::CONTROL,
        4 => attr::USER_DEFINED,
        5 => attr::UNUSED,
        6 => attr::BYTE,
        _ => 0,
    }
}

const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] =
    &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] =
    &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

impl Tokenizer {
    /// Builds the tokenizer described by a GGUF file's `tokenizer.ggml.*`
    /// metadata.
    ///
    /// # Errors
    /// [`TokenizerError`] for a missing or mistyped key, an unknown model
    /// or pre-tokenizer, arrays shorter than the token list, duplicate
    /// tokens, or an `add_*_token` flag without its token.
    pub fn from_gguf(gguf: &Gguf) -> Result<Tokenizer, TokenizerError> {
        Self::from_metadata(gguf.metadata())
    }

    /// As [`Tokenizer::from_gguf`], from the metadata table alone.
    ///
    /// # Errors
    /// As [`Tokenizer::from_gguf`].
    pub fn from_metadata(md: &Metadata) -> Result<Tokenizer, TokenizerError> {
        let model = get_str(md, "model")?
            .ok_or_else(|| TokenizerError::MissingKey { key: key("model") })?;
        let pre_name = get_str(md, "pre")?.unwrap_or("").to_string();
        let mut sp = SpecialIds::default();
        let (kind, mut add_bos, mut add_eos, mut add_sep);
        let mut add_space_prefix = false;
        let mut clean_spaces = false;
        let mut ignore_merges = false;
        let mut pre_type = None;
        match model {
            "llama" => {
                kind = TokenizerKind::Spm;
                (sp.bos, sp.eos, sp.unk) = (Some(1), Some(2), Some(0));
                add_space_prefix = true;
                (add_bos, add_eos, add_sep) = (true, false, false);
            }
            "bert" => {
                kind = TokenizerKind::WordPiece;
                (sp.bos, sp.unk, sp.sep) = (Some(101), Some(100), Some(102));
                (sp.pad, sp.mask) = (Some(0), Some(103));
                clean_spaces = true;
                (add_bos, add_eos, add_sep) = (true, false, true);
            }
            "gpt2" => {
                kind = TokenizerKind::Bpe;
                (sp.bos, sp.eos) = (Some(11), Some(11));
                let pt = pretok::pre_type(&pre_name).ok_or_else(|| {
                    TokenizerError::UnknownPreTokenizer {
                        pre: pre_name.clone(),
                    }
                })?;
                clean_spaces = pt.clean_spaces;
                ignore_merges = pt.ignore_merges;
                (add_bos, add_eos, add_sep) = (pt.add_bos, false, pt.add_sep);
                if pt.no_bos {
                    sp.bos = None;
                }
                pre_type = Some(pt);
            }
            other => {
                return Err(TokenizerError::UnknownModel {
                    model: other.to_string(),
                });
            }
        }
        if let Some(b) = get_bool(md, "add_space_prefix")? {
            add_space_prefix = b;
        }

        // Tokens, scores, types.
        let texts = match get_array(md, "tokens")? {
            None => {
                return Err(TokenizerError::MissingKey { key: key("tokens") });
            }
            Some(Array::String(v)) => v,
            Some(_) => {
                return Err(TokenizerError::WrongType {
                    key: key("tokens"),
                    expected: "an array of strings",
                });
            }
        };
        let n = texts.len();
        if n == 0 || n > i32::MAX as usize {
            return Err(TokenizerError::VocabSize(n));
        }
        let scores: Option<Vec<f32>> = match get_array(md, "scores")? {
            None => None,
            Some(Array::F32(v)) => Some(v.clone()),
            Some(Array::I32(v)) => Some(v.iter().map(|&x| x as f32).collect()),
            Some(_) => {
                return Err(TokenizerError::WrongType {
                    key: key("scores"),
                    expected: "an array of float32 or int32",
                });
            }
        };
        if let Some(s) = &scores {
            check_len("scores", s.len(), n)?;
        }
        let types = match get_array(md, "token_type")? {
            None => None,
            Some(Array::I32(v)) => Some(v),
            Some(_) => {
                return Err(TokenizerError::WrongType {
                    key: key("token_type"),
                    expected: "an array of int32",
                });
            }
        };
        if let Some(t) = types {
            check_len("token_type", t.len(), n)?;
        }
        let mut tokens = Vec::with_capacity(n);
        let mut token_to_id = HashMap::with_capacity(n);
        let mut max_token_len = 0;
        for (i, text) in texts.iter().enumerate() {
            let text = if text.is_empty() {
                format!("[EMPTY_{i}]")
            } else {
                text.clone()
            };
            if let Some(&first) = token_to_id.get(&text) {
                return Err(TokenizerError::DuplicateToken {
                    text,
                    first,
                    second: i as u32,
                });
            }
            token_to_id.insert(text.clone(), i as u32);
            max_token_len = max_token_len.max(text.len());
            tokens.push(Token {
                text,
                score: scores.as_ref().map_or(0.0, |s| s[i]),
                attr: types.map_or(attr::NORMAL, |t| type_to_attr(t[i])),
            });
        }

        let merges = if kind == TokenizerKind::Bpe {
            match get_array(md, "merges")? {
                Some(Array::String(v)) => Some(bpe::Merges::new(v)),
                None => {
                    return Err(TokenizerError::MissingKey {
                        key: key("merges"),
                    });
                }
                Some(_) => {
                    return Err(TokenizerError::WrongType {
                        key: key("merges"),
                        expected: "an array of strings",
                    });
                }
            }
        } else {
            None
        };
        let pretok = match pre_type {
            Some(pt) => Some(PreTokenizer::new(pt.regexes).map_err(
                |(pattern, message)| TokenizerError::Regex { pattern, message },
            )?),
            None => None,
        };

        // Special ids: defaults out of range are dropped; a key in range
        // replaces the default.
        let id_keys: [(&str, Slot); 17] = [
            ("bos_token_id", |s| &mut s.bos),
            ("eos_token_id", |s| &mut s.eos),
            ("eot_token_id", |s| &mut s.eot),
            ("eom_token_id", |s| &mut s.eom),
            ("unknown_token_id", |s| &mut s.unk),
            ("seperator_token_id", |s| &mut s.sep),
            ("padding_token_id", |s| &mut s.pad),
            ("mask_token_id", |s| &mut s.mask),
            ("fim_pre_token_id", |s| &mut s.fim_pre),
            ("fim_suf_token_id", |s| &mut s.fim_suf),
            ("fim_mid_token_id", |s| &mut s.fim_mid),
            ("fim_pad_token_id", |s| &mut s.fim_pad),
            ("fim_rep_token_id", |s| &mut s.fim_rep),
            ("fim_sep_token_id", |s| &mut s.fim_sep),
            ("prefix_token_id", |s| &mut s.fim_pre),
            ("suffix_token_id", |s| &mut s.fim_suf),
            ("middle_token_id", |s| &mut s.fim_mid),
        ];
        for (name, slot) in id_keys {
            let slot = slot(&mut sp);
            if slot.is_some_and(|id| id as usize >= n) {
                *slot = None;
            }
            match md.get(&key(name)) {
                None => {}
                Some(v) => {
                    let id = v.as_uint().ok_or(TokenizerError::WrongType {
                        key: key(name),
                        expected: "a non-negative integer",
                    })?;
                    if (id as usize) < n {
                        *slot = Some(id as u32);
                    }
                }
            }
        }
        if let Some(b) = get_bool(md, "add_bos_token")? {
            add_bos = b;
        }
        if let Some(b) = get_bool(md, "add_eos_token")? {
            add_eos = b;
        }
        if let Some(b) = get_bool(md, "add_sep_token")? {
            add_sep = b;
        }
        for (flag, on, id) in [
            ("tokenizer.ggml.add_bos_token", add_bos, sp.bos),
            ("tokenizer.ggml.add_eos_token", add_eos, sp.eos),
            ("tokenizer.ggml.add_sep_token", add_sep, sp.sep),
        ] {
            if on && id.is_none() {
                return Err(TokenizerError::MissingSpecialToken { flag });
            }
        }
        let lowercase = get_bool(md, "normalizer.lowercase")?.unwrap_or(true);
        let strip_accents =
            get_bool(md, "normalizer.strip_accents")?.unwrap_or(lowercase);

        // Text-based detection of EOT, EOM and FIM tokens; each found one
        // becomes a control token.
        let make_control = |id: u32, tokens: &mut Vec<Token>| {
            tokens[id as usize].attr |= attr::CONTROL;
        };
        let find = |texts: &[&str]| {
            texts.iter().find_map(|t| token_to_id.get(*t).copied())
        };
        let detect: [(Slot, &[&str]); 8] = [
            (|s| &mut s.eot, EOT_TEXTS),
            (|s| &mut s.eom, EOM_TEXTS),
            (|s| &mut s.fim_pre, FIM_PRE_TEXTS),
            (|s| &mut s.fim_suf, FIM_SUF_TEXTS),
            (|s| &mut s.fim_mid, FIM_MID_TEXTS),
            (|s| &mut s.fim_pad, FIM_PAD_TEXTS),
            (|s| &mut s.fim_rep, FIM_REP_TEXTS),
            (|s| &mut s.fim_sep, FIM_SEP_TEXTS),
        ];
        for (slot, texts) in detect {
            let slot = slot(&mut sp);
            if slot.is_none()
                && let Some(id) = find(texts)
            {
                *slot = Some(id);
                make_control(id, &mut tokens);
            }
        }
        // Control tokens named "unused..." are unused.
        for t in tokens.iter_mut() {
            if t.attr & attr::CONTROL != 0 && t.text.contains("unused") {
                t.attr |= attr::UNUSED;
            }
        }

        // End-of-generation set.
        let mut eog = BTreeSet::new();
        eog.extend(sp.fim_pad);
        eog.extend(sp.fim_rep);
        eog.extend(sp.fim_sep);
        for text in EOG_TEXTS {
            if let Some(&id) = token_to_id.get(*text) {
                eog.insert(id);
                make_control(id, &mut tokens);
            }
        }
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]
        {
            if let Some(&id) = token_to_id.get(text) {
                tokens[id as usize].attr = attr::USER_DEFINED;
            }
        }
        eog.extend(sp.eos);
        eog.extend(sp.eot);
        eog.extend(sp.eom);
        let has = |eog: &BTreeSet<u32>, t: &str| {
            token_to_id.get(t).is_some_and(|id| eog.contains(id))
        };
        if let Some(&end) = token_to_id.get("<|end|>")
            && eog.contains(&end)
        {
            let call = has(&eog, "<|call|>") || has(&eog, "<|calls|>");
            if call && (has(&eog, "<|return|>") || has(&eog, "<|flush|>")) {
                eog.remove(&end);
                tokens[end as usize].attr = attr::USER_DEFINED;
            }
        }
        if let Some(&s) = token_to_id.get("</s>")
            && eog.contains(&s)
            && has(&eog, "<|tool_response>")
        {
            eog.remove(&s);
            tokens[s as usize].attr = attr::NORMAL;
        }

        // Special tokens, longest first.
        let special_mask = attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN;
        let mut special_cache: Vec<u32> = (0..n as u32)
            .filter(|&i| tokens[i as usize].attr & special_mask != 0)
            .collect();
        special_cache
            .sort_by_key(|&i| std::cmp::Reverse(tokens[i as usize].text.len()));

        // Per-model attributes.
        let name = md
            .get("general.name")
            .and_then(|v| match v {
                Value::String(s) => Some(s.to_lowercase()),
                _ => None,
            })
            .unwrap_or_default();
        let arch = match md.get("general.architecture") {
            Some(Value::String(s)) => s.as_str(),
            _ => "",
        };
        let mut set_attr = |text: &str, bit: u32, on: bool| {
            if let Some(&id) = token_to_id.get(text) {
                let a = &mut tokens[id as usize].attr;
                *a = if on { *a | bit } else { *a & !bit };
            }
        };
        if ["jina-v2-de", "jina-v2-es", "jina-v2-code"]
            .iter()
            .any(|p| pre_name.contains(p))
            || ["nomic-bert-moe", "jina-bert-v3"]
                .iter()
                .any(|a| arch.contains(a))
        {
            set_attr("<mask>", attr::LSTRIP, true);
        } else if name.contains("phi-3") || name.contains("phi3") {
            for &id in &special_cache {
                tokens[id as usize].attr |= attr::RSTRIP;
            }
            let mut set_attr = |text: &str, on: bool| {
                if let Some(&id) = token_to_id.get(text) {
                    let a = &mut tokens[id as usize].attr;
                    *a =
                        if on { *a | attr::RSTRIP } else { *a & !attr::RSTRIP };
                }
            };
            set_attr("</s>", true);
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                set_attr(t, false);
            }
        } else if name.contains("modern-bert") {
            set_attr("[MASK]", attr::LSTRIP, true);
        }

        let special_matcher = if special_cache.is_empty() {
            None
        } else {
            aho_corasick::AhoCorasick::new(
                special_cache.iter().map(|&i| tokens[i as usize].text.as_str()),
            )
            .ok()
        };

        let mut byte_tokens = [None; 256];
        for (b, slot) in byte_tokens.iter_mut().enumerate() {
            let hex = format!("<0x{b:02X}>");
            *slot = token_to_id.get(&hex).copied().or_else(|| {
                let one = [b as u8];
                std::str::from_utf8(&one)
                    .ok()
                    .and_then(|s| token_to_id.get(s).copied())
            });
        }

        let mut tok = Tokenizer {
            kind,
            pre: if kind == TokenizerKind::Bpe {
                pre_name
            } else {
                String::new()
            },
            tokens,
            token_to_id,
            merges,
            pretok,
            byte_tokens,
            byte_to_char: unicode::byte_to_char_table(),
            char_to_byte: unicode::char_to_byte_table(),
            special: sp,
            add_bos,
            add_eos,
            add_sep,
            add_space_prefix,
            clean_spaces,
            ignore_merges,
            lowercase,
            strip_accents,
            max_token_len,
            eog,
            special_cache,
            special_matcher,
        };
        tok.special.nl = match kind {
            TokenizerKind::Spm => tok.byte_tokens[b'\n' as usize],
            TokenizerKind::WordPiece => tok.special.pad,
            TokenizerKind::Bpe => tok
                .encode("\n", false, false)
                .first()
                .copied()
                .or(tok.special.pad),
        };
        Ok(tok)
    }
}

//! Text to token ids with the model's `tokenizer.json`, as
//! sentence-transformers does it.
//!
//! `tokenizer.json` files often carry their own truncation and a fixed
//! padding (all-MiniLM-L6-v2's: both at 128). sentence-transformers
//! ignores them: it truncates at `max_seq_length` from
//! `sentence_bert_config.json` and pads each batch only to its longest
//! text. So does this: truncation is reset to the model's limit
//! ([CLS] and [SEP] included) and padding is turned off (batches are
//! packed, not padded).

use std::path::Path;

use tokenizers::{
    Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::error::{EmbedError, ErrorKind};

/// One text's token ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    /// Ids, [CLS] and [SEP] included.
    pub ids: Vec<u32>,
    /// Whether the text was cut at the model's limit.
    pub truncated: bool,
}

/// The model's tokenizer with sentence-transformers' settings.
pub struct TextTokenizer {
    tok: Tokenizer,
    max_len: usize,
    lower: bool,
}

impl TextTokenizer {
    /// Loads `tokenizer.json`, truncating at `max_len` tokens; `lower`
    /// lower-cases texts first (sentence-transformers' `do_lower_case`).
    pub fn load(
        path: &Path,
        max_len: usize,
        lower: bool,
    ) -> Result<Self, EmbedError> {
        if !path.is_file() {
            return Err(EmbedError::missing(path, "the tokenizer"));
        }
        let mut tok = Tokenizer::from_file(path).map_err(|e| {
            EmbedError::corrupt(path, format!("bad tokenizer file: {e}"))
        })?;
        tok.with_padding(None);
        tok.with_truncation(Some(TruncationParams {
            max_length: max_len,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| EmbedError::corrupt(path, e.to_string()))?;
        Ok(TextTokenizer { tok, max_len, lower })
    }

    /// The longest sequence, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Tokenizes one text (special tokens added).
    pub fn encode(&self, text: &str) -> Result<Tokens, EmbedError> {
        let lowered;
        let text = if self.lower {
            lowered = text.to_lowercase();
            lowered.as_str()
        } else {
            text
        };
        let enc = self.tok.encode_fast(text, true).map_err(|e| {
            EmbedError::new(ErrorKind::Tokenizer(e.to_string()))
        })?;
        Ok(Tokens {
            ids: enc.get_ids().to_vec(),
            truncated: !enc.get_overflowing().is_empty(),
        })
    }

    /// The token strings of `ids` (for display and checks).
    pub fn pieces(&self, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&i| self.tok.id_to_token(i).unwrap_or_default())
            .collect()
    }
}

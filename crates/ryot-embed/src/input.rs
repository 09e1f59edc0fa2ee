//! Reading texts to embed: JSON Lines (`{"text": ..., "id": ...}` per
//! line) or plain text (one text per line). Invalid UTF-8 and malformed
//! lines are errors that name the line.

use std::path::Path;

use serde_json::Value;

use crate::error::{EmbedError, ErrorKind};

/// The layout of an input file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// One JSON object per line with a string field `text` (and optionally
    /// an integer `id`); blank lines are skipped.
    Jsonl,
    /// One text per line (a final newline does not start a text).
    Text,
}

impl InputFormat {
    /// `Jsonl` for `.jsonl`/`.ndjson`/`.json` names, else `Text`.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson" | "json") => InputFormat::Jsonl,
            _ => InputFormat::Text,
        }
    }
}

/// Texts read from a file.
#[derive(Clone, Debug, Default)]
pub struct Texts {
    /// The texts, in file order.
    pub texts: Vec<String>,
    /// Each text's id: the `id` field of a JSONL line, else its 0-based
    /// position.
    pub ids: Vec<u64>,
    /// 1-based line numbers of empty texts (embedded as [CLS] [SEP],
    /// as sentence-transformers does; callers usually warn).
    pub empty_lines: Vec<usize>,
}

/// Reads `path` in `format`.
pub fn read_texts(
    path: &Path,
    format: InputFormat,
) -> Result<Texts, EmbedError> {
    let bytes = std::fs::read(path).map_err(|e| EmbedError::io(path, e))?;
    parse_texts(&bytes, format, path)
}

/// Parses the bytes of an input file (`path` is only used in errors).
pub fn parse_texts(
    bytes: &[u8],
    format: InputFormat,
    path: &Path,
) -> Result<Texts, EmbedError> {
    let err = |line: usize, msg: String| {
        EmbedError::new(ErrorKind::Input { path: path.into(), line, msg })
    };
    let mut out = Texts::default();
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for (i, raw) in lines.iter().enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|e| {
            err(
                line_no,
                format!(
                    "invalid UTF-8 at byte {} of the line; convert the file \
                     to UTF-8",
                    e.valid_up_to()
                ),
            )
        })?;
        let (text, id) = match format {
            InputFormat::Text => (line.to_string(), None),
            InputFormat::Jsonl => {
                if line.trim().is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(line)
                    .map_err(|e| err(line_no, format!("bad JSON: {e}")))?;
                let text = match v.get("text") {
                    Some(Value::String(s)) => s.clone(),
                    Some(_) => {
                        return Err(err(
                            line_no,
                            "\"text\" is not a string".into(),
                        ));
                    }
                    None => {
                        return Err(err(
                            line_no,
                            "no \"text\" field (each line must be an object \
                             like {\"text\": \"...\"})"
                                .into(),
                        ));
                    }
                };
                let id = match v.get("id") {
                    None | Some(Value::Null) => None,
                    Some(x) => Some(x.as_u64().ok_or_else(|| {
                        err(
                            line_no,
                            "\"id\" must be a non-negative integer".into(),
                        )
                    })?),
                };
                (text, id)
            }
        };
        if text.trim().is_empty() {
            out.empty_lines.push(line_no);
        }
        out.ids.push(id.unwrap_or(out.texts.len() as u64));
        out.texts.push(text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(b: &[u8], f: InputFormat) -> Result<Texts, EmbedError> {
        parse_texts(b, f, Path::new("in"))
    }

    #[test]
    fn jsonl_and_text() {
        let t = parse(
            b"{\"id\": 7, \"text\": \"a\"}\n\n{\"text\": \"\"}\n",
            InputFormat::Jsonl,
        )
        .unwrap();
        assert_eq!(t.texts, ["a", ""]);
        assert_eq!(t.ids, [7, 1]);
        assert_eq!(t.empty_lines, [3]);
        let t = parse(b"x\r\ny\n", InputFormat::Text).unwrap();
        assert_eq!(t.texts, ["x", "y"]);
    }

    #[test]
    fn bad_input_names_the_line() {
        let e = parse(b"ok\n\xff\xfe\n", InputFormat::Text).unwrap_err();
        assert!(e.to_string().contains("in:2: invalid UTF-8"), "{e}");
        let e = parse(b"{\"txt\": 1}\n", InputFormat::Jsonl).unwrap_err();
        assert!(e.to_string().contains("in:1: no \"text\""), "{e}");
        let e = parse(b"{\"text\": \"a\"\n", InputFormat::Jsonl).unwrap_err();
        assert!(e.to_string().contains("bad JSON"), "{e}");
        let e = parse(b"{\"text\": \"a\", \"id\": -1}", InputFormat::Jsonl)
            .unwrap_err();
        assert!(e.to_string().contains("\"id\""), "{e}");
    }
}

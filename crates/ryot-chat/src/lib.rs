//! Chat templates from GGUF metadata (`tokenizer.chat_template`), rendered
//! with minijinja configured the way Hugging Face `transformers` configures
//! jinja2 in `_compile_jinja_template`: `trim_blocks`, `lstrip_blocks`,
//! loop controls, Python string and dict methods (minijinja-contrib's
//! pycompat), `raise_exception(msg)`, `strftime_now(fmt)`, and a `tojson`
//! that behaves as `json.dumps(x, ensure_ascii=False)`. The context holds
//! `messages`, `add_generation_prompt`, `bos_token`, `eos_token`, and
//! `tools = none`, `documents = none` as transformers passes them.
//!
//! ```no_run
//! use ryot_chat::{ChatTemplate, Message};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let t = ChatTemplate::new(
//!     "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}\
//!      <|im_end|>\n{% endfor %}{% if add_generation_prompt %}\
//!      <|im_start|>assistant\n{% endif %}",
//! )?;
//! let prompt = t.render(&[Message::new("user", "Hi!")], true)?;
//! # Ok(()) }
//! ```

mod json;
mod time;

use std::sync::Arc;

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value};
use minijinja::{Environment, ErrorKind};
use ryot_gguf::{Array, Gguf, Value as GgufValue};
use thiserror::Error;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `system`, `user`, `assistant`, ...
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message { role: role.into(), content: content.into() }
    }
}

/// Why a template could not be compiled or rendered.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The template source does not parse.
    #[error("chat template does not compile: {0}")]
    Syntax(String),
    /// The template called `raise_exception(message)`.
    #[error("chat template refused the conversation: {0}")]
    Raised(String),
    /// Rendering failed (undefined operation, type error...).
    #[error("chat template failed to render: {0}")]
    Render(String),
    /// `tokenizer.chat_template` is not a string.
    #[error("GGUF `tokenizer.chat_template` is not a string")]
    NotAString,
}

/// Marks errors coming from `raise_exception`.
const RAISED: &str = "raise_exception: ";

fn detail(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    s
}

/// A dict with Python's insertion order (a message: `role`, then
/// `content`), so `tojson` and `items()` list keys as transformers does.
#[derive(Debug)]
struct Dict(Vec<(&'static str, Value)>);

impl Object for Dict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let k = key.as_str()?;
        self.0.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.0.iter().map(|(k, _)| Value::from(*k)).collect(),
        )
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles a Jinja chat template; `bos_token`/`eos_token` start
    /// empty (see [`ChatTemplate::with_special_tokens`]).
    ///
    /// # Errors
    /// [`ChatError::Syntax`] if the source does not parse.
    pub fn new(source: &str) -> Result<ChatTemplate, ChatError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| ChatError::Syntax(detail(&e)))?;
        env.set_syntax(syntax);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(
            minijinja_contrib::pycompat::unknown_method_callback,
        );
        env.add_function("raise_exception", |msg: String| {
            Err::<Value, _>(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("{RAISED}{msg}"),
            ))
        });
        env.add_function("strftime_now", |fmt: String| {
            time::strftime(&fmt, time::now())
        });
        env.add_filter("tojson", |v: Value, kwargs: Kwargs| {
            json::tojson(&v, &kwargs)
        });
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| ChatError::Syntax(detail(&e)))?;
        Ok(ChatTemplate { env, bos: String::new(), eos: String::new() })
    }

    /// The template stored in a GGUF file, with `bos_token` and
    /// `eos_token` set from its `tokenizer.ggml.{bos,eos}_token_id` (empty
    /// when absent); `None` if the file has no template.
    ///
    /// # Errors
    /// [`ChatError::NotAString`] or [`ChatError::Syntax`].
    pub fn from_gguf(gguf: &Gguf) -> Result<Option<ChatTemplate>, ChatError> {
        let md = gguf.metadata();
        let src = match md.get("tokenizer.chat_template") {
            None => return Ok(None),
            Some(GgufValue::String(s)) => s,
            Some(_) => return Err(ChatError::NotAString),
        };
        let token = |key: &str| -> String {
            let id = md.get(key).and_then(GgufValue::as_uint);
            match (id, md.get("tokenizer.ggml.tokens")) {
                (Some(id), Some(GgufValue::Array(Array::String(t)))) => {
                    t.get(id as usize).cloned().unwrap_or_default()
                }
                _ => String::new(),
            }
        };
        let (bos, eos) = (
            token("tokenizer.ggml.bos_token_id"),
            token("tokenizer.ggml.eos_token_id"),
        );
        Ok(Some(ChatTemplate::new(src)?.with_special_tokens(&bos, &eos)))
    }

    /// Sets the `bos_token` and `eos_token` strings (normally the text of
    /// the tokenizer's BOS and EOS tokens).
    pub fn with_special_tokens(mut self, bos: &str, eos: &str) -> Self {
        self.bos = bos.to_string();
        self.eos = eos.to_string();
        self
    }

    /// The `bos_token` string.
    pub fn bos_token(&self) -> &str {
        &self.bos
    }

    /// The `eos_token` string.
    pub fn eos_token(&self) -> &str {
        &self.eos
    }

    /// Renders the conversation; with `add_generation_prompt`, the
    /// template appends the start of the assistant's turn.
    ///
    /// # Errors
    /// [`ChatError::Raised`] when the template rejects the conversation,
    /// [`ChatError::Render`] for other failures.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, ChatError> {
        let msgs: Vec<Value> = messages
            .iter()
            .map(|m| {
                Value::from_object(Dict(vec![
                    ("role", Value::from(m.role.as_str())),
                    ("content", Value::from(m.content.as_str())),
                ]))
            })
            .collect();
        let ctx = minijinja::context! {
            messages => msgs,
            tools => (),
            documents => (),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos.as_str(),
            eos_token => self.eos.as_str(),
        };
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| ChatError::Render(detail(&e)))?;
        tmpl.render(ctx).map_err(|e| {
            let d = detail(&e);
            match d.find(RAISED) {
                Some(i) => {
                    let msg = &d[i + RAISED.len()..];
                    let msg = msg.split(" (in chat:").next().unwrap_or(msg);
                    ChatError::Raised(msg.to_string())
                }
                None => ChatError::Render(d),
            }
        })
    }
}

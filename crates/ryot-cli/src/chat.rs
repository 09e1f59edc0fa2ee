//! `ryot chat`: an interactive conversation, rendered with the model's chat
//! template. The KV cache keeps the conversation; each turn re-renders it
//! and runs only the tokens after the longest cached prefix.
//!
//! Ctrl-C stops the reply being generated and returns to the prompt; at the
//! prompt it ends the session. Ryot never changes terminal modes, so the
//! terminal is left as it was (a newline ends any half-written line).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use clap::Args;
use ryot_chat::{ChatTemplate, Message};
use ryot_engine::{Control, Sampler, generate};
use ryot_tokenizer::Utf8Stream;

use crate::generate::SamplingArgs;
use crate::lm::ModelArgs;

/// Used when the model has no template of its own (as llama.cpp does).
const CHATML: &str = "{% for m in messages %}{{ '<|im_start|>' + m['role'] \
    + '\n' + m['content'] + '<|im_end|>' + '\n' }}{% endfor %}\
    {% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// A system message to start the conversation with.
    #[arg(long)]
    pub system: Option<String>,
    /// A Jinja chat template file to use instead of the model's.
    #[arg(long)]
    pub chat_template: Option<PathBuf>,
    /// Most tokens per reply.
    #[arg(short = 'n', long = "n-predict", default_value_t = 512)]
    pub n_predict: usize,
    /// Context size in tokens (default: the model's, at most 4096).
    #[arg(short = 'c', long)]
    pub ctx: Option<usize>,
}

pub fn run(a: ChatArgs) -> anyhow::Result<()> {
    let lm = a.model.load()?;
    let (model, tok) = (&lm.model, &lm.tokenizer);
    let g = ryot_gguf::Gguf::open(crate::lm::resolve_model(&a.model.model)?)?;
    let template = match &a.chat_template {
        Some(p) => {
            let src = std::fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))?;
            ChatTemplate::new(&src)?
        }
        None => match ChatTemplate::from_gguf(&g)? {
            Some(t) => t,
            None => {
                eprintln!("ryot: the model has no chat template; using ChatML");
                ChatTemplate::new(CHATML)?
            }
        },
    };
    let piece = |id: Option<u32>| {
        id.map(|i| {
            String::from_utf8_lossy(&tok.token_to_piece(i, true)).into_owned()
        })
        .unwrap_or_default()
    };
    let template =
        template.with_special_tokens(&piece(tok.bos()), &piece(tok.eos()));
    let n_ctx = a.ctx.unwrap_or_else(|| {
        let t = model.config().n_ctx_train;
        if t == 0 { 4096 } else { t.min(4096) }
    });
    let mut cache = model.new_cache(n_ctx, lm.kv)?;
    let mut cached: Vec<u32> = Vec::new();
    let mut sampler = Sampler::new(a.sampling.config())?;
    let mut history = Vec::new();
    if let Some(s) = &a.system {
        history.push(Message::new("system", s.clone()));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let busy = Arc::new(AtomicBool::new(false));
    {
        let (stop, busy) = (stop.clone(), busy.clone());
        ctrlc::set_handler(move || {
            if busy.load(Ordering::SeqCst) {
                stop.store(true, Ordering::SeqCst);
            } else {
                // At the prompt: leave a clean line and end the session.
                eprintln!();
                std::process::exit(130);
            }
        })
        .context("installing the Ctrl-C handler")?;
    }
    let interactive = std::io::stdin().is_terminal();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stdout();
    loop {
        if interactive {
            eprint!("> ");
            std::io::stderr().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("reading stdin (is it valid UTF-8?)")?;
        let line = line.trim_end();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                history.retain(|m: &Message| m.role == "system");
                cache.truncate(0);
                cached.clear();
                continue;
            }
            _ => {}
        }
        history.push(Message::new("user", line));
        let text = template.render(&history, true)?;
        let ids = tok.encode(&text, true, true);
        if ids.is_empty() {
            bail!("the chat template rendered an empty prompt");
        }
        if ids.len() + 1 >= n_ctx {
            history.pop();
            bail!(
                "the conversation has {} tokens and no longer fits the \
                 context of {n_ctx} (use --ctx, or /reset)",
                ids.len()
            );
        }
        let keep = cached.iter().zip(&ids).take_while(|(a, b)| a == b).count();
        // Leave at least one token to run, so there are logits to sample.
        let keep = keep.min(ids.len() - 1);
        cache.truncate(keep);
        cached.truncate(keep);
        let mut utf8 = Utf8Stream::new();
        let mut reply = String::new();
        let mut reply_ids = Vec::new();
        stop.store(false, Ordering::SeqCst);
        busy.store(true, Ordering::SeqCst);
        let result = generate(
            model,
            &mut cache,
            &ids[keep..],
            a.n_predict,
            &mut sampler,
            |id| {
                if tok.is_eog(id) || stop.load(Ordering::SeqCst) {
                    return Ok(Control::Stop);
                }
                reply_ids.push(id);
                let s = utf8.push(&tok.token_to_piece(id, false));
                reply.push_str(&s);
                let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
                Ok(Control::Continue)
            },
        );
        busy.store(false, Ordering::SeqCst);
        let tail = utf8.finish();
        reply.push_str(&tail);
        writeln!(out, "{tail}")?;
        result.context("generating")?;
        if stop.load(Ordering::SeqCst) {
            eprintln!("ryot: [interrupted]");
        }
        cached.extend_from_slice(&ids[keep..]);
        cached.extend_from_slice(&reply_ids);
        // The cache holds the prompt and the reply except the last sampled
        // token, which was never run; drop it from the bookkeeping.
        cached.truncate(cache.len());
        history.push(Message::new("assistant", reply.trim().to_string()));
    }
    Ok(())
}

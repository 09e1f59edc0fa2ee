//! [`Model`]: a loaded sentence-transformers folder, and batched,
//! threaded embedding of many texts.
//!
//! Texts are sorted by length (longest first, as sentence-transformers
//! does), cut into chunks of similar length, and each chunk is tokenized,
//! packed and run through the encoder. With many chunks, each worker of
//! the thread pool takes whole chunks (its matmuls run single-threaded);
//! with few, chunks run one after another and the matmuls use every
//! thread. Either way a text's vector does not depend on the batch it
//! lands in: the kernels compute each row independently of the others.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ryot_pool::ThreadPool;

use crate::config::ModelConfig;
use crate::error::EmbedError;
use crate::forward::{Scratch, forward};
use crate::tokenize::{TextTokenizer, Tokens};
use crate::weights::{BertWeights, Precision};

/// How [`Model::embed`] batches and threads.
#[derive(Clone, Debug)]
pub struct EmbedOptions {
    /// Worker threads (at most the global pool's size, `RYOT_THREADS`).
    pub threads: usize,
    /// Texts per chunk (the unit a worker takes).
    pub chunk_texts: usize,
    /// Most tokens per encoder batch (texts are packed up to this).
    pub batch_tokens: usize,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            threads: ThreadPool::global().threads(),
            chunk_texts: 32,
            batch_tokens: 512,
        }
    }
}

/// Vectors of a list of texts, in input order.
#[derive(Clone, Debug)]
pub struct Embeddings {
    /// Values per vector.
    pub dim: usize,
    /// `texts.len() * dim` values, row `i` for text `i`.
    pub data: Vec<f32>,
    /// Indices of texts cut at the model's token limit.
    pub truncated: Vec<usize>,
    /// Tokens run through the encoder, [CLS] and [SEP] included.
    pub tokens: usize,
}

impl Embeddings {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A sentence-transformers BERT model, ready to embed.
pub struct Model {
    cfg: ModelConfig,
    tokenizer: TextTokenizer,
    weights: BertWeights,
    precision: Precision,
}

impl Model {
    /// Loads the folder `dir` at the default precision
    /// ([`Precision::Int16`]).
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        Self::load_with(dir, Precision::default())
    }

    /// Loads the folder `dir`, storing the linear layers at `precision`.
    pub fn load_with(
        dir: &Path,
        precision: Precision,
    ) -> Result<Self, EmbedError> {
        let cfg = ModelConfig::read(dir)?;
        let tokenizer = TextTokenizer::load(
            &dir.join("tokenizer.json"),
            cfg.max_seq_length,
            cfg.do_lower_case,
        )?;
        let weights = BertWeights::load(
            &dir.join("model.safetensors"),
            &cfg.bert,
            precision,
        )?;
        Ok(Model { cfg, tokenizer, weights, precision })
    }

    /// The folder's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The vector length.
    pub fn dim(&self) -> usize {
        self.cfg.dim()
    }

    /// The linear layers' precision.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The tokenizer, with sentence-transformers' truncation.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Embeds one text.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let opts = EmbedOptions { threads: 1, ..EmbedOptions::default() };
        Ok(self.embed(&[text], &opts, &|_| {})?.data)
    }

    /// Embeds token id sequences as given (each [CLS] ... [SEP], at most
    /// `max_position_embeddings` long), in one packed batch on `threads`
    /// matmul threads.
    pub fn embed_ids(
        &self,
        seqs: &[&[u32]],
        threads: usize,
    ) -> Result<Vec<f32>, EmbedError> {
        if seqs.iter().any(|q| q.is_empty()) {
            return Err(EmbedError::invalid("an empty token sequence"));
        }
        let mut out = vec![0f32; seqs.len() * self.dim()];
        let mut scratch = Scratch::default();
        forward(
            &self.weights,
            &self.cfg,
            seqs,
            threads,
            &mut scratch,
            &mut out,
        )?;
        Ok(out)
    }

    /// Embeds `texts`; `progress(done)` is called from worker threads with
    /// the number of texts finished so far.
    pub fn embed(
        &self,
        texts: &[&str],
        opts: &EmbedOptions,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Embeddings, EmbedError> {
        let dim = self.dim();
        if opts.chunk_texts == 0 || opts.batch_tokens == 0 {
            return Err(EmbedError::invalid(
                "chunk_texts and batch_tokens must be at least 1",
            ));
        }
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        // Chunks of at most `chunk_texts` texts and about `batch_tokens`
        // tokens (estimated from the length in bytes), so long texts still
        // make enough chunks for every worker.
        let mut chunks: Vec<&[usize]> = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let mut end = start;
            let mut est = 0;
            while end < order.len()
                && end - start < opts.chunk_texts
                && (end == start || est < opts.batch_tokens)
            {
                est += texts[order[end]].len() / 4 + 2;
                end += 1;
            }
            chunks.push(&order[start..end]);
            start = end;
        }
        let pool = ThreadPool::global();
        let threads = opts.threads.clamp(1, pool.threads());
        let shared = Shared {
            out: Mutex::new(Output {
                data: vec![0f32; texts.len() * dim],
                truncated: Vec::new(),
                tokens: 0,
            }),
            error: Mutex::new(None),
            failed: AtomicBool::new(false),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        };
        let data_parallel = threads > 1 && chunks.len() >= 2 * threads;
        let work = |matmul_threads: usize| {
            let mut scratch = Scratch::default();
            loop {
                if shared.failed.load(Ordering::Relaxed) {
                    return;
                }
                let c = shared.next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = chunks.get(c) else { return };
                let r = self.run_chunk(
                    texts,
                    chunk,
                    opts.batch_tokens,
                    matmul_threads,
                    &mut scratch,
                );
                match r {
                    Ok(part) => {
                        shared.store(chunk, &part, dim);
                        let n = shared
                            .done
                            .fetch_add(chunk.len(), Ordering::Relaxed);
                        progress(n + chunk.len());
                    }
                    Err(e) => {
                        shared.fail(e);
                        return;
                    }
                }
            }
        };
        if data_parallel {
            pool.run(threads, |_, _| work(1));
        } else {
            work(threads);
        }
        if let Some(e) = shared.error.into_inner().unwrap_or(None) {
            return Err(e);
        }
        let out = shared.out.into_inner().map_err(|_| {
            EmbedError::invalid("a worker panicked while storing results")
        })?;
        let mut truncated = out.truncated;
        truncated.sort_unstable();
        Ok(Embeddings { dim, data: out.data, truncated, tokens: out.tokens })
    }

    /// Tokenizes and embeds one chunk (texts `idx` of `texts`).
    fn run_chunk(
        &self,
        texts: &[&str],
        idx: &[usize],
        batch_tokens: usize,
        threads: usize,
        scratch: &mut Scratch,
    ) -> Result<Part, EmbedError> {
        let toks: Vec<Tokens> = idx
            .iter()
            .map(|&i| self.tokenizer.encode(texts[i]))
            .collect::<Result<_, _>>()?;
        let dim = self.dim();
        let mut data = vec![0f32; idx.len() * dim];
        let mut start = 0;
        while start < toks.len() {
            let mut end = start;
            let mut n = 0;
            while end < toks.len()
                && (end == start || n + toks[end].ids.len() <= batch_tokens)
            {
                n += toks[end].ids.len();
                end += 1;
            }
            let seqs: Vec<&[u32]> =
                toks[start..end].iter().map(|t| t.ids.as_slice()).collect();
            if seqs.iter().any(|q| q.is_empty()) {
                return Err(EmbedError::invalid(
                    "the tokenizer produced no tokens (it adds no [CLS]/[SEP])",
                ));
            }
            forward(
                &self.weights,
                &self.cfg,
                &seqs,
                threads,
                scratch,
                &mut data[start * dim..end * dim],
            )?;
            start = end;
        }
        let truncated = idx
            .iter()
            .zip(&toks)
            .filter(|(_, t)| t.truncated)
            .map(|(&i, _)| i)
            .collect();
        let tokens = toks.iter().map(|t| t.ids.len()).sum();
        Ok(Part { data, truncated, tokens })
    }
}

/// One chunk's results.
struct Part {
    data: Vec<f32>,
    truncated: Vec<usize>,
    tokens: usize,
}

/// Results being gathered.
struct Output {
    data: Vec<f32>,
    truncated: Vec<usize>,
    tokens: usize,
}

/// State the workers share.
struct Shared {
    out: Mutex<Output>,
    error: Mutex<Option<EmbedError>>,
    failed: AtomicBool,
    next: AtomicUsize,
    done: AtomicUsize,
}

impl Shared {
    fn store(&self, idx: &[usize], part: &Part, dim: usize) {
        let Ok(mut out) = self.out.lock() else { return };
        for (k, &i) in idx.iter().enumerate() {
            out.data[i * dim..(i + 1) * dim]
                .copy_from_slice(&part.data[k * dim..(k + 1) * dim]);
        }
        out.truncated.extend_from_slice(&part.truncated);
        out.tokens += part.tokens;
    }

    fn fail(&self, e: EmbedError) {
        self.failed.store(true, Ordering::Relaxed);
        if let Ok(mut slot) = self.error.lock()
            && slot.is_none()
        {
            *slot = Some(e);
        }
    }
}

//! `ryot bench inference`: prefill and decode speed of whole models, ours
//! and llama.cpp's (`llama-bench`) on the same files in the same run, with
//! the decode roofline from a same-run DRAM probe.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ryot_engine::synth::{shape, write_synth};
use ryot_gguf::Gguf;
use ryot_machine::DramProbe;
use ryot_model::{KvType, LoadOptions, Logits, Model, TernaryLayout};
use ryot_pool::ThreadPool;
use ryot_quant::QuantType;
use serde::Serialize;

use crate::error::BenchError;

/// One model file to measure.
#[derive(Clone, Debug)]
pub struct ModelCase {
    /// Name in the table (`smollm2-135m`, `stories260K`, ...).
    pub model: String,
    /// Weight type label (`q8_0`, `tq2_0`, `t2p` for our repacked layout).
    pub wtype: String,
    /// The GGUF file.
    pub path: PathBuf,
    /// Ternary layout to load with.
    pub ternary: TernaryLayout,
    /// Whether to run the peer on this file too (not for a second layout
    /// of a file already measured).
    pub peer: bool,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Models.
    pub cases: Vec<ModelCase>,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// Prompt tokens for prefill.
    pub n_prompt: usize,
    /// Tokens to decode.
    pub n_gen: usize,
    /// Repetitions (the median is kept).
    pub reps: usize,
    /// `llama-bench` to measure the peer with, if any.
    pub peer: Option<PathBuf>,
}

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Model name.
    pub model: String,
    /// Weight type label.
    pub wtype: String,
    /// Threads.
    pub threads: usize,
    /// Prompt tokens.
    pub n_prompt: usize,
    /// Generated tokens.
    pub n_gen: usize,
    /// Prefill tokens per second.
    pub prefill_tps: f64,
    /// Decode tokens per second.
    pub decode_tps: f64,
    /// Peak resident memory of this model's run, MB.
    pub peak_rss_mb: f64,
    /// llama.cpp prefill tok/s on the same file (same run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_prefill_tps: Option<f64>,
    /// llama.cpp decode tok/s on the same file (same run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_decode_tps: Option<f64>,
    /// `decode_tps / peer_decode_tps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_ratio: Option<f64>,
    /// `prefill_tps / peer_prefill_tps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefill_ratio: Option<f64>,
    /// Weight bytes one decode step reads.
    pub weight_bytes_per_token: u64,
    /// DRAM read bandwidth probed right before this row, GB/s.
    pub probe_gbps: f64,
    /// `probe_gbps / weight_bytes_per_token`: the decode roofline.
    pub roofline_tps: f64,
    /// `decode_tps / roofline_tps`.
    pub roofline_share: f64,
}

/// Synthetic model files the benchmark writes (once) into `dir`: the
/// issue's shapes and types.
pub fn standard_cases(
    dir: &Path,
    shared_models: &Path,
    quick: bool,
    mut progress: impl FnMut(&str),
) -> Result<Vec<ModelCase>, BenchError> {
    let mut cases = vec![ModelCase {
        model: "stories260K".into(),
        wtype: "q8_0".into(),
        path: shared_models.join("stories260K-q8_0.gguf"),
        ternary: TernaryLayout::Native,
        peer: true,
    }];
    let synth: &[(&str, &str)] = if quick {
        &[("smollm2-135m", "q8_0")]
    } else {
        &[
            ("smollm2-135m", "q8_0"),
            ("smollm2-135m", "q4_0"),
            ("qwen2.5-0.5b", "q4_k"),
            ("bitnet-2b", "tq2_0"),
            ("bitnet-2b", "tq1_0"),
        ]
    };
    std::fs::create_dir_all(dir).map_err(|e| BenchError::Io(e.to_string()))?;
    for &(name, ty) in synth {
        let path = dir.join(format!("{name}-{ty}.gguf"));
        if !path.exists() {
            progress(&format!("writing {}", path.display()));
            let s =
                shape(name).map_err(|e| BenchError::Config(e.to_string()))?;
            let t = QuantType::from_name(ty)
                .ok_or_else(|| BenchError::Config(format!("type {ty}")))?;
            write_synth(s, t, &path, 42, |_, _| {})
                .map_err(|e| BenchError::Io(e.to_string()))?;
        }
        cases.push(ModelCase {
            model: name.into(),
            wtype: ty.into(),
            path: path.clone(),
            ternary: TernaryLayout::Native,
            peer: true,
        });
        if ty == "tq2_0" {
            cases.push(ModelCase {
                model: name.into(),
                wtype: "t2p".into(),
                path,
                ternary: TernaryLayout::Panels,
                peer: false,
            });
        }
    }
    Ok(cases)
}

/// Runs every case at every thread count.
pub fn run(
    cfg: &Config,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<Vec<Row>, BenchError> {
    let max_t = cfg.threads.iter().copied().max().unwrap_or(1);
    let probe_pool = ThreadPool::new(max_t);
    let total = cfg.cases.len() * cfg.threads.len();
    let mut rows = Vec::new();
    for case in &cfg.cases {
        let g = Gguf::open(&case.path).map_err(|e| {
            BenchError::Io(format!("{}: {e}", case.path.display()))
        })?;
        for &threads in &cfg.threads {
            progress(
                rows.len(),
                total,
                &format!("{} {} {}t", case.model, case.wtype, threads),
            );
            // The probe's buffer lives only while it measures, so that the
            // peak RSS below is the model's run alone.
            let probe_gbps = {
                let probe = DramProbe::new(256 << 20)
                    .map_err(|e| BenchError::Probe(e.to_string()))?;
                probe.measure(&probe_pool, threads, 2).gbps_best
            };
            reset_peak_rss();
            let model =
                Model::load(&g, LoadOptions { ternary: case.ternary }, threads)
                    .map_err(|e| BenchError::Config(e.to_string()))?;
            let wbytes = weight_bytes(&model);
            let (mut pre, mut dec) = (Vec::new(), Vec::new());
            for rep in 0..cfg.reps.max(1) {
                let (p, d) = time_model(&model, cfg, rep as u64)?;
                pre.push(p);
                dec.push(d);
            }
            let peak = peak_rss_mb();
            drop(model);
            let (prefill_tps, decode_tps) = (median(&pre), median(&dec));
            let peer = match &cfg.peer {
                Some(bin) if case.peer => {
                    progress(rows.len(), total, "llama.cpp peer");
                    peer_run(bin, &case.path, threads, cfg)
                }
                _ => None,
            };
            let roofline_tps = probe_gbps * 1e9 / wbytes as f64;
            rows.push(Row {
                model: case.model.clone(),
                wtype: case.wtype.clone(),
                threads,
                n_prompt: cfg.n_prompt,
                n_gen: cfg.n_gen,
                prefill_tps,
                decode_tps,
                peak_rss_mb: peak,
                peer_prefill_tps: peer.map(|p| p.0),
                peer_decode_tps: peer.map(|p| p.1),
                prefill_ratio: peer.map(|p| prefill_tps / p.0),
                decode_ratio: peer.map(|p| decode_tps / p.1),
                weight_bytes_per_token: wbytes,
                probe_gbps,
                roofline_tps,
                roofline_share: decode_tps / roofline_tps,
            });
        }
    }
    progress(total, total, "done");
    Ok(rows)
}

/// Bytes of every matrix a decode step multiplies by (embedding lookups
/// read one row and are not counted; a tied output matrix counts in full).
fn weight_bytes(model: &Model) -> u64 {
    let w = model.weights();
    let mut b = w.output.w.stored_bytes();
    for l in &w.layers {
        let groups = l.qkv.groups.iter().chain(&l.gate_up.groups);
        for lin in groups.chain([&l.wo, &l.down]) {
            b += lin.w.stored_bytes();
        }
    }
    b as u64
}

fn time_model(
    model: &Model,
    cfg: &Config,
    seed: u64,
) -> Result<(f64, f64), BenchError> {
    let n_vocab = model.config().n_vocab as u64;
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n_vocab) as u32
    };
    let prompt: Vec<u32> = (0..cfg.n_prompt).map(|_| next()).collect();
    let err = |e: ryot_model::ModelError| BenchError::Config(e.to_string());
    let mut cache = model
        .new_cache(cfg.n_prompt + cfg.n_gen + 1, KvType::F16)
        .map_err(err)?;
    let t = Instant::now();
    for chunk in prompt.chunks(512) {
        model.forward(chunk, &mut cache, Logits::Last).map_err(err)?;
    }
    let prefill = cfg.n_prompt as f64 / t.elapsed().as_secs_f64();
    // Decode after a one-token prompt, as llama-bench's tg test does.
    let mut cache = model.new_cache(cfg.n_gen + 1, KvType::F16).map_err(err)?;
    let mut tok = next();
    let t = Instant::now();
    for _ in 0..cfg.n_gen {
        let l = model.forward(&[tok], &mut cache, Logits::Last).map_err(err)?;
        tok = ryot_engine::argmax(&l) as u32;
    }
    let decode = cfg.n_gen as f64 / t.elapsed().as_secs_f64();
    Ok((prefill, decode))
}

/// Runs `llama-bench` and returns its (prefill, decode) tok/s.
fn peer_run(
    bin: &Path,
    model: &Path,
    threads: usize,
    cfg: &Config,
) -> Option<(f64, f64)> {
    let out = Command::new(bin)
        .arg("-m")
        .arg(model)
        .args(["-p", &cfg.n_prompt.to_string()])
        .args(["-n", &cfg.n_gen.to_string()])
        .args(["-t", &threads.to_string()])
        .args(["-r", &cfg.reps.max(1).to_string(), "-o", "json"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let (mut pp, mut tg) = (None, None);
    for r in v.as_array()? {
        let ts = r["avg_ts"].as_f64()?;
        if r["n_prompt"].as_u64()? > 0 {
            pp = Some(ts);
        } else if r["n_gen"].as_u64()? > 0 {
            tg = Some(ts);
        }
    }
    Some((pp?, tg?))
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

/// Resets the kernel's peak-RSS counter for this process (Linux).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set since the last reset, MB (0 if unknown).
fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| {
            v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The table printed after the run.
pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<14} {:<6} {:>3} {:>10} {:>10} {:>10} {:>10} {:>7} {:>7} {:>9} {:>8}\n",
        "model",
        "wtype",
        "thr",
        "prefill/s",
        "peer pp/s",
        "decode/s",
        "peer tg/s",
        "tg x",
        "pp x",
        "roofline",
        "rss MB"
    );
    let f = |v: Option<f64>, d: usize| {
        v.map_or("-".to_string(), |x| format!("{x:.d$}"))
    };
    for r in rows {
        s += &format!(
            "{:<14} {:<6} {:>3} {:>10.1} {:>10} {:>10.1} {:>10} {:>7} {:>7} {:>8.0}% {:>8.0}\n",
            r.model,
            r.wtype,
            r.threads,
            r.prefill_tps,
            f(r.peer_prefill_tps, 1),
            r.decode_tps,
            f(r.peer_decode_tps, 1),
            f(r.decode_ratio, 2),
            f(r.prefill_ratio, 2),
            r.roofline_share * 100.0,
            r.peak_rss_mb
        );
    }
    s
}

//! `ryot info MODEL.gguf [--json]`: the header, metadata and tensor table
//! of a GGUF file, read with ryot-gguf.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ryot_gguf::{Array, Gguf, Value};
use serde_json::{Value as Json, json};

/// Array items shown before "...".
const ARRAY_ITEMS: usize = 4;
/// Characters of a string shown in the text output.
const STR_CHARS: usize = 60;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The GGUF file.
    model: PathBuf,
    /// Print one JSON object instead of tables (arrays summarized, strings
    /// in full).
    #[arg(long)]
    json: bool,
}

pub fn run(a: InfoArgs) -> anyhow::Result<()> {
    let g = Gguf::open(&a.model)
        .with_context(|| format!("reading {}", a.model.display()))?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let text = serde_json::to_string_pretty(&to_json(&a.model, &g))?;
        writeln!(out, "{text}")?;
    } else {
        print_text(&mut out, &a.model, &g)?;
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{:?}... ({} bytes)", &s[..i], s.len()),
        None => format!("{s:?}"),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => truncate(s, STR_CHARS),
        Value::Array(a) => array_text(a),
        Value::U8(x) => x.to_string(),
        Value::I8(x) => x.to_string(),
        Value::U16(x) => x.to_string(),
        Value::I16(x) => x.to_string(),
        Value::U32(x) => x.to_string(),
        Value::I32(x) => x.to_string(),
        Value::U64(x) => x.to_string(),
        Value::I64(x) => x.to_string(),
        Value::F32(x) => x.to_string(),
        Value::F64(x) => x.to_string(),
        Value::Bool(x) => x.to_string(),
    }
}

fn array_text(a: &Array) -> String {
    let items: Vec<String> = (0..a.len().min(ARRAY_ITEMS))
        .filter_map(|i| a.get(i))
        .map(|v| match &v {
            Value::String(s) => truncate(s, 20),
            Value::Array(inner) => {
                format!("[{}; {}]", inner.elem_type(), inner.len())
            }
            _ => scalar_text(&v),
        })
        .collect();
    let more = if a.len() > ARRAY_ITEMS { ", ..." } else { "" };
    format!("[{}; {}] [{}{more}]", a.elem_type(), a.len(), items.join(", "))
}

fn type_text(v: &Value) -> String {
    match v {
        Value::Array(a) => format!("array<{}>", a.elem_type()),
        _ => v.ty().to_string(),
    }
}

fn print_text(
    out: &mut impl Write,
    path: &std::path::Path,
    g: &Gguf,
) -> anyhow::Result<()> {
    writeln!(out, "file:        {}", path.display())?;
    writeln!(out, "version:     {}", g.version())?;
    writeln!(out, "alignment:   {}", g.alignment())?;
    writeln!(out, "data offset: {}", g.data_offset())?;
    writeln!(out, "file size:   {}", g.file_len())?;
    let md = g.metadata();
    writeln!(out, "\nmetadata ({} entries):", md.len())?;
    let kw = md.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in md.iter() {
        let ty = type_text(v);
        writeln!(out, "  {k:kw$}  {ty:15}  {}", scalar_text(v))?;
    }
    let ts = g.tensors();
    writeln!(out, "\ntensors ({}):", ts.len())?;
    let nw = ts.iter().map(|t| t.name().len()).max().unwrap_or(4).max(4);
    writeln!(
        out,
        "  {:nw$}  {:8}  {:20}  {:>12}  {:>12}",
        "name", "type", "dims", "bytes", "offset"
    )?;
    let (mut elems, mut bytes, mut unknown) = (0u128, 0u128, 0usize);
    for t in ts {
        let dims = format!("{:?}", t.dims());
        let size = match t.known_byte_size() {
            Some(b) => {
                bytes += b as u128;
                b.to_string()
            }
            None => {
                unknown += 1;
                "?".into()
            }
        };
        elems += u128::from(t.n_elements());
        writeln!(
            out,
            "  {:nw$}  {:8}  {:20}  {:>12}  {:>12}",
            t.name(),
            t.ty().to_string(),
            dims,
            size,
            t.offset()
        )?;
    }
    write!(
        out,
        "\ntotal: {} tensors, {elems} elements, {bytes} bytes ({:.2} MiB)",
        ts.len(),
        bytes as f64 / (1024.0 * 1024.0)
    )?;
    if unknown > 0 {
        write!(out, ", plus {unknown} tensors of unsupported types")?;
    }
    writeln!(out)?;
    Ok(())
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::String(s) => json!(s),
        Value::Array(a) => json!({
            "elem_type": a.elem_type().name(),
            "len": a.len(),
            "first": (0..a.len().min(ARRAY_ITEMS))
                .filter_map(|i| a.get(i))
                .map(|v| value_json(&v))
                .collect::<Vec<_>>(),
        }),
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F32(x) => json!(x),
        Value::F64(x) => json!(x),
        Value::Bool(x) => json!(x),
    }
}

fn to_json(path: &std::path::Path, g: &Gguf) -> Json {
    let metadata: Vec<Json> = g
        .metadata()
        .iter()
        .map(|(k, v)| json!({"key": k, "type": v.ty().name(), "value": value_json(v)}))
        .collect();
    let tensors: Vec<Json> = g
        .tensors()
        .iter()
        .map(|t| {
            json!({
                "name": t.name(),
                "type": t.ty().to_string(),
                "ggml_type": t.ty().ggml_id(),
                "dims": t.dims(),
                "bytes": t.known_byte_size(),
                "offset": t.offset(),
            })
        })
        .collect();
    let known = g.tensors().iter().filter_map(|t| t.known_byte_size());
    json!({
        "file": path.display().to_string(),
        "version": g.version(),
        "alignment": g.alignment(),
        "data_offset": g.data_offset(),
        "file_len": g.file_len(),
        "metadata": metadata,
        "tensors": tensors,
        "total_tensors": g.tensors().len(),
        "total_elements": g
            .tensors()
            .iter()
            .fold(0u64, |a, t| a.saturating_add(t.n_elements())),
        "total_bytes": known.sum::<usize>(),
    })
}

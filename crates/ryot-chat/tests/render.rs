//! Every template and message list of `tests/data/reference.json` (made by
//! `tests/render_reference.py` with jinja2 configured as transformers does)
//! must render byte for byte the same, and must fail where jinja2 raised.

use std::path::PathBuf;

use ryot_chat::{ChatError, ChatTemplate, Message};
use ryot_gguf::Gguf;
use serde_json::Value;

fn shared_dir() -> PathBuf {
    ryot_paths::shared_dir_for(env!("CARGO_MANIFEST_DIR"))
}

fn template(t: &Value) -> ChatTemplate {
    if let Some(rel) = t["gguf"].as_str() {
        let g = Gguf::open(shared_dir().join(rel)).unwrap();
        let ct = ChatTemplate::from_gguf(&g).unwrap().unwrap();
        assert_eq!(ct.bos_token(), t["bos_token"].as_str().unwrap());
        assert_eq!(ct.eos_token(), t["eos_token"].as_str().unwrap());
        ct
    } else {
        ChatTemplate::new(t["template"].as_str().unwrap())
            .unwrap()
            .with_special_tokens(
                t["bos_token"].as_str().unwrap(),
                t["eos_token"].as_str().unwrap(),
            )
    }
}

#[test]
fn renders_like_transformers_jinja2() {
    let data: Value =
        serde_json::from_str(include_str!("data/reference.json")).unwrap();
    let messages: Vec<Vec<Message>> = data["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|list| {
            list.as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    Message::new(
                        m["role"].as_str().unwrap(),
                        m["content"].as_str().unwrap(),
                    )
                })
                .collect()
        })
        .collect();
    let mut ok = 0;
    let mut failures = Vec::new();
    for t in data["templates"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let ct = template(t);
        for case in data["cases"].as_array().unwrap() {
            if case["template"] != name {
                continue;
            }
            let msgs = &messages[case["messages"].as_u64().unwrap() as usize];
            let agp = case["add_generation_prompt"].as_bool().unwrap();
            let got = ct.render(msgs, agp);
            let good = match (&got, case.get("output"), case.get("error")) {
                (Ok(s), Some(want), _) => Some(s.as_str()) == want.as_str(),
                (Err(ChatError::Raised(m)), None, Some(want)) => {
                    Some(m.as_str()) == want.as_str()
                }
                _ => false,
            };
            if good {
                ok += 1;
            } else {
                failures.push(format!(
                    "{name} messages #{} agp={agp}: got {got:?}, want {:?}",
                    case["messages"],
                    case.get("output").or(case.get("error"))
                ));
            }
        }
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    println!("{ok} cases equal to jinja2");
    assert!(failures.is_empty(), "{} mismatches", failures.len());
    assert!(ok >= 84);
}

#[test]
fn syntax_errors_and_missing_templates() {
    assert!(matches!(
        ChatTemplate::new("{% for m in messages %}"),
        Err(ChatError::Syntax(_))
    ));
    let g = Gguf::open(
        shared_dir().join("golden/tokenizer/vocab/ggml-vocab-gpt-2.gguf"),
    )
    .unwrap();
    assert!(ChatTemplate::from_gguf(&g).unwrap().is_none());
    let t = ChatTemplate::new("{{ messages[0].content.nope() }}").unwrap();
    assert!(matches!(
        t.render(&[Message::new("user", "x")], false),
        Err(ChatError::Render(_))
    ));
}

#[test]
fn strftime_now_gives_a_date() {
    let t = ChatTemplate::new("{{ strftime_now('%Y-%m-%d') }}").unwrap();
    let s = t.render(&[], false).unwrap();
    assert_eq!(s.len(), 10, "{s}");
    assert_eq!(&s[4..5], "-");
}

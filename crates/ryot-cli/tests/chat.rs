//! `ryot chat` driven through a pipe: replies, `/reset`, `/exit`, and a
//! clear error when the conversation outgrows the context.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn shared() -> PathBuf {
    ryot_paths::shared_dir_for(env!("CARGO_MANIFEST_DIR"))
}

fn chat(model: &str, input: &str, extra: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ryot"))
        .args(["chat", "-m"])
        .arg(shared().join("models").join(model))
        .args(["--temp", "0", "-n", "12"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn piped_conversation_replies_and_resets() {
    let out = chat(
        "stories260K-q8_0.gguf",
        "Hello\n/reset\nHello\n/exit\nNot read\n",
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let replies: Vec<&str> = text.lines().collect();
    // One line per reply; nothing after /exit is read.
    assert_eq!(replies.len(), 2, "{text:?}");
    assert!(!replies[0].trim().is_empty(), "empty reply");
    // After /reset the same message gets the same greedy reply.
    assert_eq!(replies[0], replies[1]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ChatML"));
}

#[test]
fn conversation_longer_than_the_context_is_an_error() {
    let out = chat(
        "stories260K-q8_0.gguf",
        "a b c d e f g h i j k l\n",
        &["--ctx", "8"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("context"), "{err}");
    assert!(!err.contains("panicked"));
}

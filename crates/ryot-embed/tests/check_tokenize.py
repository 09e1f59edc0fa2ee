"""Ryot's MiniLM tokenisation vs the Python `tokenizers` package.

Runs the `tokenize` example of ryot-embed on hard strings (accents, CJK,
emoji, control and zero-width characters, texts past the 256-token limit)
and 300 WordNet glosses, and compares the ids with `tokenizers` loading the
same tokenizer.json with sentence-transformers' settings (truncation at
max_seq_length from sentence_bert_config.json, no padding).

Usage (from the workspace root):
    pip install tokenizers
    python3 crates/ryot-embed/tests/check_tokenize.py MODEL_DIR
MODEL_DIR defaults to $RYOT_HOME/models/all-MiniLM-L6-v2
(~/.cache/ryot/...). Exit status 0 when every text matches.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[3]
HOME = Path(os.environ.get("RYOT_HOME", Path.home() / ".cache" / "ryot"))
SHARED = Path(os.environ.get("RYOT_SHARED", ROOT.parent / "shared"))

HARD = [
    "",
    " ",
    "Hello, world!",
    "café naïve résumé Ångström Zürich señor",
    "ÉCOLE Ça Œuvre",
    "e\u0301 combining acute, a\u0308",
    "日本語のテキストと漢字",
    "中文分词测试，标点。",
    "한국어 문장",
    "emoji 🦀🎉 family 👩‍👩‍👧 flag 🇫🇷 skin 👍🏽",
    "control \u0000 \u0007 \u001b[31m tab\tnewline\nreturn\r end",
    "zero\u200bwidth\ufeffbom\u00adsoft-hyphen",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "math ∑ ∫ √ ≠ ≤ and greek αβγ ΔΣΩ",
    "URLs https://example.com/a?b=c&d=e and e-mail a.b@c.de",
    "numbers 3.14159 1,000,000 -42 1e-9",
    "unbalanced \"quote and (paren",
    "supercalifragilisticexpialidocious " * 3,
    "x" * 150,
    "word " * 300,
    "日本 " * 300,
    "🦀" * 300,
    ". ".join(["a long passage of ordinary words"] * 60),
]


def main():
    model = Path(sys.argv[1]) if len(sys.argv) > 1 else (
        HOME / "models" / "all-MiniLM-L6-v2")
    st = json.loads((model / "sentence_bert_config.json").read_text())
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=st["max_seq_length"])
    texts = list(HARD)
    corpus = SHARED / "data" / "minilm-wordnet" / "corpus.jsonl"
    with open(corpus, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i % 167 == 0:
                texts.append(json.loads(line)["text"])
    inp = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    out = subprocess.run(
        ["cargo", "run", "-q", "--release", "-p", "ryot-embed",
         "--example", "tokenize", "--", str(model)],
        input=inp.encode(), capture_output=True, cwd=ROOT, check=True)
    got = [json.loads(l) for l in out.stdout.decode().splitlines()]
    assert len(got) == len(texts), (len(got), len(texts))
    bad = 0
    truncated = 0
    for t, g in zip(texts, got):
        want = tok.encode(t)
        if g["ids"] != want.ids:
            bad += 1
            print(f"MISMATCH {t[:60]!r}:\n  ryot   {g['ids'][:20]}\n"
                  f"  python {want.ids[:20]}")
        if g["truncated"] != bool(want.overflowing):
            bad += 1
            print(f"TRUNCATION FLAG differs for {t[:60]!r}")
        truncated += g["truncated"]
    print(f"{len(texts)} texts, {truncated} truncated at "
          f"{st['max_seq_length']}, {bad} mismatches")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reference pre-tokenizer splits from Python's `regex` module.

For the pre-tokenizers that have no vocab file here (llama-bpe, qwen2,
smollm), run llama.cpp's regex lists the way llama.cpp applies them: each
regex splits every piece left by the previous one into its matches and the
text between them. The result, over every string of
shared/golden/tokenizer/strings.jsonl and the llama-bpe/qwen2 `.inp` inputs,
is written to tests/data/splits.json, which tests/splits.rs compares with
Ryot's splitters.

Re-run:  pip install regex
         python3 crates/ryot-tokenizer/tests/gen_splits.py
"""
import json
import os
import sys

import regex

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("RYOT_SHARED") or os.path.join(HERE, "../../../../shared")
TOK = os.path.join(SHARED, "golden/tokenizer")

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
# llama.cpp's patterns (src/llama-vocab.cpp at 34af94cd): the original
# case-insensitive group (?i:'s|'t|...) is spelled out there.
CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
PRES = {
    "llama-bpe": [CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "qwen2": [CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    "smollm": [r"\p{N}", GPT2],
}


def split(regexes, text):
    pieces = [text]
    for pat in regexes:
        rx = regex.compile(pat)
        out = []
        for p in pieces:
            prev = 0
            for m in rx.finditer(p):
                if m.start() > prev:
                    out.append(p[prev:m.start()])
                if m.end() > m.start():
                    out.append(m.group())
                prev = m.end()
            if prev < len(p):
                out.append(p[prev:])
        pieces = out
    return pieces


def main():
    texts = [json.loads(l)["text"] for l in open(os.path.join(TOK, "strings.jsonl"), encoding="utf-8")]
    for name in ("llama-bpe", "qwen2"):
        inp = open(os.path.join(TOK, "vocab", f"ggml-vocab-{name}.gguf.inp"), encoding="utf-8").read()
        texts += [t for t in inp.split("\n__ggml_vocab_test__\n") if t]
    out = {"source": "Python regex " + regex.__version__, "texts": texts,
           "splits": {pre: [split(rs, t) for t in texts] for pre, rs in PRES.items()}}
    path = os.path.join(HERE, "data", "splits.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
    os.replace(tmp, path)
    print(f"wrote {path}: {len(texts)} texts x {len(PRES)} pre-tokenizers", file=sys.stderr)


if __name__ == "__main__":
    main()

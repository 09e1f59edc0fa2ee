#!/usr/bin/env python3
"""Cross-check ryot-quant against gguf-py on synthetic data.

The golden files in shared/golden/quants hold 4 x 1024 values per type. This
script widens that: it makes deterministic data with splitmix64 (integer
arithmetic, reproduced exactly by tests/gguf_py.rs), runs gguf-py on it and
records sha256 hashes of gguf-py's outputs in tests/data/gguf_py_hashes.json:

* dequant: random block bytes (every f16/bf16 field forced finite) for all
  14 GGUF types, dequantized by gguf.quants.dequantize;
* quantize: random floats quantized by gguf.quants.quantize, for the 9 types
  gguf-py can quantize (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, TQ1_0,
  TQ2_0). gguf-py has no K-quant quantizer.

Usage (needs `pip install gguf numpy`):
    python3 tests/gguf_py_check.py           # verify the stored hashes
    python3 tests/gguf_py_check.py --write   # regenerate them
The Rust test `cargo test -p ryot-quant --test gguf_py` then checks that
ryot-quant produces the same hashes.
"""

import hashlib
import json
import pathlib
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

MASK = (1 << 64) - 1
ROWS, K = 8, 1024
SEED = 0x5EED_2024_0611

# Byte offsets of the f16 (or bf16) fields inside one block, from
# ggml-common.h. F16/BF16: every element.
F16_FIELDS = {
    "F16": [0], "BF16": [0],
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2],
    "Q6_K": [208], "TQ1_0": [52], "TQ2_0": [64],
}
QUANTIZABLE = ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
               "TQ1_0", "TQ2_0"]


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def type_seed(name):
    """Seed per type and purpose; mirrored in tests/gguf_py.rs."""
    h = 0
    for c in name.encode():
        h = (h * 131 + c) & MASK
    return (SEED ^ h) & MASK


def block_bytes(name, rng, nbytes):
    """Random bytes with every f16/bf16 field made finite."""
    ty = T[name]
    block_elems, bsize = quants.GGML_QUANT_SIZES[ty]
    out = bytearray(rng.next() & 0xFF for _ in range(nbytes))
    bf16 = name == "BF16"
    for b in range(0, nbytes, bsize):
        for off in F16_FIELDS[name]:
            h = out[b + off] | (out[b + off + 1] << 8)
            all_ones = ((h >> 7) & 0xFF) == 0xFF if bf16 else ((h >> 10) & 0x1F) == 0x1F
            if all_ones:
                h &= ~0x4000
            out[b + off] = h & 0xFF
            out[b + off + 1] = h >> 8
    return bytes(out)


def floats(rng, n):
    """Exactly representable values: 24-bit fractions times a power of two
    per 32 elements, with some exact zeros and repeats."""
    vals = np.empty(n, dtype=np.float32)
    scale = 1.0
    prev = 0.0
    for i in range(n):
        u = rng.next()
        if i % 32 == 0:
            scale = 2.0 ** (int(u & 15) - 8)
        sel = (u >> 4) & 0xFF
        if sel < 12:
            v = 0.0
        elif sel < 20:
            v = prev
        else:
            v = ((u >> 40) - (1 << 23)) / float(1 << 23) * scale
        vals[i] = v
        prev = v
    return vals


def sha(data):
    return hashlib.sha256(data).hexdigest()


def compute():
    result = {"rows": ROWS, "k": K, "seed": SEED, "types": {}}
    for name in F16_FIELDS:
        ty = T[name]
        block_elems, bsize = quants.GGML_QUANT_SIZES[ty]
        row_bytes = K // block_elems * bsize
        rng = SplitMix64(type_seed("dequant:" + name))
        raw = block_bytes(name, rng, ROWS * row_bytes)
        arr = np.frombuffer(raw, dtype=np.uint8).reshape(ROWS, row_bytes)
        deq = quants.dequantize(arr, ty).astype(np.float32)
        entry = {"dequant_sha256": sha(deq.tobytes())}
        if name in QUANTIZABLE:
            rng = SplitMix64(type_seed("quantize:" + name))
            x = floats(rng, ROWS * K).reshape(ROWS, K)
            q = quants.quantize(x, ty)
            entry["quantize_sha256"] = sha(np.ascontiguousarray(q).tobytes())
        result["types"][name] = entry
    return result


def main():
    path = pathlib.Path(__file__).parent / "data" / "gguf_py_hashes.json"
    result = compute()
    if "--write" in sys.argv:
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")
        return 0
    stored = json.loads(path.read_text())
    if stored != result:
        print("gguf-py hashes differ from", path)
        for name, entry in result["types"].items():
            if stored["types"].get(name) != entry:
                print(" ", name, entry, "stored:", stored["types"].get(name))
        return 1
    print(f"{len(result['types'])} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

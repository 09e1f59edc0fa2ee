#!/usr/bin/env python3
"""Cross-check the K-quant quantizers against ggml's C reference code.

gguf-py has no K-quant quantizer and the golden files hold only 16 blocks
per K-quant type, so this script compiles tests/ggml_c_harness.c with
ggml's own src/ggml-quants.c (plain `cc -O2`, no -march: no FMA, like
libggml-base), runs quantize_row_q{2,3,4,5,6}_K_ref on synthetic data and
stores one short sha256 per row in tests/data/ggml_c_hashes.json. The Rust
test `cargo test -p ryot-quant --test ggml_c` rebuilds the same data
(splitmix64, exact arithmetic) and compares row by row.

The stored hashes were made with the ggml sources vendored in the PyPI
sdist ggml-python 0.0.45 (ggml 0.15.3), whose K-quant code reproduces the
golden blocks of llama.cpp 34af94cd exactly.

Usage:
    GGML_SRC=/path/to/ggml python3 tests/ggml_c_check.py           # verify
    GGML_SRC=/path/to/ggml python3 tests/ggml_c_check.py --write   # store
GGML_SRC is a ggml tree with include/ and src/ggml-quants.c.
"""

import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from gguf_py_check import SplitMix64, floats  # noqa: E402

ROWS, K = 32, 1024
SEED = 0xC0FFEE_2024
TYPES = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
VARIANTS = ["mixed", "spiky", "bell", "edge"]


def frac24(bits):
    """A 24-bit integer as an exact fraction in [-1, 1)."""
    return (bits - (1 << 23)) / float(1 << 23)


def gen(variant, rng, n):
    """Synthetic inputs; every value is computed exactly in f64 and then
    rounded once to f32 (tests/ggml_c.rs mirrors this)."""
    if variant == "mixed":
        return floats(rng, n)
    out = np.empty(n, dtype=np.float32)
    for i in range(0, n, 16):
        u = rng.next()
        mode = u & 7
        scale = 2.0 ** (((u >> 3) & 31) - 16)
        c = frac24((u >> 40) & 0xFFFFFF) * scale
        for j in range(16):
            r = rng.next()
            a = frac24(r >> 40)
            b = frac24((r >> 16) & 0xFFFFFF)
            if variant == "spiky":
                v = a * 2.0 ** ((r & 15) - 8)
            elif variant == "bell":
                v = (a + b) * 0.5 * scale
            elif mode == 0:
                v = 0.0
            elif mode == 1:
                v = c
            elif mode == 2:
                v = a * 2.0 ** -64
            elif mode == 3:
                v = c if r & 1 else -c
            elif mode == 4:
                v = c if r & 3 == 0 else 0.0
            else:
                v = a * scale
            out[i + j] = v
    return out


def compute(src):
    result = {"rows": ROWS, "k": K, "seed": SEED, "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "harness")
        here = pathlib.Path(__file__).parent
        subprocess.run(
            ["cc", "-O2", f"-I{src}/include", f"-I{src}/src",
             str(here / "ggml_c_harness.c"), f"{src}/src/ggml-quants.c",
             "-lm", "-o", exe],
            check=True)
        for variant in VARIANTS:
            rng = SplitMix64(SEED ^ seed_of(variant))
            x = gen(variant, rng, ROWS * K)
            inp = os.path.join(tmp, "in.f32")
            x.astype("<f4").tofile(inp)
            per_type = {}
            for t in TYPES:
                out = os.path.join(tmp, "out.bin")
                subprocess.run([exe, t, inp, out], check=True)
                data = pathlib.Path(out).read_bytes()
                rb = len(data) // ROWS
                per_type[t] = [hashlib.sha256(data[r * rb:(r + 1) * rb])
                               .hexdigest()[:16] for r in range(ROWS)]
            result["variants"][variant] = per_type
    return result


def seed_of(name):
    h = 0
    for ch in name.encode():
        h = (h * 131 + ch) & ((1 << 64) - 1)
    return h


def main():
    src = os.environ.get("GGML_SRC")
    if not src:
        print("set GGML_SRC to a ggml source tree", file=sys.stderr)
        return 2
    path = pathlib.Path(__file__).parent / "data" / "ggml_c_hashes.json"
    result = compute(src)
    if "--write" in sys.argv:
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")
        return 0
    stored = json.loads(path.read_text())
    bad = 0
    for variant, per_type in result["variants"].items():
        for t, rows in per_type.items():
            diff = [r for r, h in enumerate(rows)
                    if stored["variants"][variant][t][r] != h]
            bad += len(diff)
            if diff:
                print(f"{variant} {t}: rows {diff} differ")
    n = len(VARIANTS) * len(TYPES) * ROWS
    print(f"{n - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

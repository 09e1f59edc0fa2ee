#!/usr/bin/env python3
"""Snapshot what gguf-py reads from every shared GGUF file.

For each model in $RYOT_SHARED/models and each vocabulary in
$RYOT_SHARED/golden/tokenizer/vocab, gguf-py's GGUFReader gives: version,
alignment, data section offset, every metadata key with its type and a
digest of its value, and every tensor's name, dims (ggml order), type id,
offset in the data section and byte size. The result goes to
tests/data/gguf_py_snapshot.json; `cargo test -p ryot-gguf --test shared`
checks that ryot-gguf reads the same.

Value digests: scalars are stored as numbers/bools; strings and arrays as
the sha256 of a canonical byte string: a string is its UTF-8 bytes; an
array of strings is, per element, u64-LE length then bytes; a numeric or
bool array is its elements' little-endian bytes.

Usage (needs `pip install gguf numpy`):
    python3 tests/gguf_py_snapshot.py          # verify the stored JSON
    python3 tests/gguf_py_snapshot.py --write  # regenerate it
"""

import hashlib
import json
import os
import pathlib
import struct
import sys

from gguf import GGUFReader, GGUFValueType as VT

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "data" / "gguf_py_snapshot.json"
NAMES = {
    VT.UINT8: "uint8", VT.INT8: "int8", VT.UINT16: "uint16",
    VT.INT16: "int16", VT.UINT32: "uint32", VT.INT32: "int32",
    VT.FLOAT32: "float32", VT.BOOL: "bool", VT.STRING: "string",
    VT.ARRAY: "array", VT.UINT64: "uint64", VT.INT64: "int64",
    VT.FLOAT64: "float64",
}


def shared_dir():
    d = os.environ.get("RYOT_SHARED")
    p = pathlib.Path(d) if d else HERE.parents[3] / "shared"
    if not (p / "models").is_dir():
        sys.exit(f"shared data not found at {p} (set RYOT_SHARED)")
    return p


def field_entry(f):
    main = f.types[0]
    e = {"key": f.name, "type": NAMES[main]}
    if main == VT.ARRAY:
        sub = f.types[-1]
        e["elem"] = NAMES[sub]
        e["len"] = len(f.data)
        h = hashlib.sha256()
        for i in f.data:
            part = f.parts[i]
            if sub == VT.STRING:
                b = part.tobytes()
                h.update(struct.pack("<Q", len(b)) + b)
            elif sub == VT.ARRAY:
                raise SystemExit(f"nested array in {f.name}: not handled")
            else:
                h.update(part.tobytes())
        e["sha256"] = h.hexdigest()
    elif main == VT.STRING:
        b = f.parts[f.data[0]].tobytes()
        e["sha256"] = hashlib.sha256(b).hexdigest()
    else:
        v = f.parts[f.data[0]][0]
        e["value"] = bool(v) if main == VT.BOOL else v.item()
    return e


def snapshot(path):
    r = GGUFReader(path)
    version = int(r.fields["GGUF.version"].parts[-1][0])
    kv = [field_entry(f) for name, f in r.fields.items()
          if not name.startswith("GGUF.")]
    tensors = [{
        "name": t.name,
        "dims": [int(d) for d in t.shape],
        "type": int(t.tensor_type),
        "offset": int(t.data_offset - r.data_offset),
        "bytes": int(t.n_bytes),
    } for t in r.tensors]
    return {"version": version, "alignment": int(r.alignment),
            "data_offset": int(r.data_offset), "kv": kv, "tensors": tensors}


def main():
    shared = shared_dir()
    files = sorted((shared / "models").glob("*.gguf")) + sorted(
        (shared / "golden/tokenizer/vocab").glob("*.gguf"))
    snap = {str(f.relative_to(shared)): snapshot(f) for f in files}
    text = json.dumps(snap, indent=1, sort_keys=True) + "\n"
    if "--write" in sys.argv:
        OUT.write_text(text)
        print(f"wrote {OUT} ({len(files)} files)")
    elif OUT.read_text() != text:
        sys.exit(f"{OUT} differs from gguf-py's reading; rerun with --write")
    else:
        print(f"ok: {len(files)} files match {OUT}")


if __name__ == "__main__":
    main()

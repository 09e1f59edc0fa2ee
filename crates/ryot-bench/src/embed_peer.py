"""Same-run peer for `ryot bench embed`: sentence-transformers on the CPU.

Usage: python3 embed_peer.py MODEL_DIR TEXTS.jsonl LIMIT THREADS BATCH [LONG]
Prints one JSON line: {"passages", "seconds", "passages_per_s", "cpu_seconds",
"tokens",
"peak_rss_mb", "versions"}. With LONG = 1 the texts are the long passages
(one per line, JSONL with a "text" field) and LIMIT still applies.
Exit code 3 when sentence-transformers cannot be imported.
"""
import json
import os
import resource
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main():
    model_dir, path, limit, threads, batch = sys.argv[1:6]
    limit, threads, batch = int(limit), int(threads), int(batch)
    try:
        import torch
        import sentence_transformers
        from sentence_transformers import SentenceTransformer
    except Exception as e:  # noqa: BLE001
        print(json.dumps({"error": f"import failed: {e}"}))
        sys.exit(3)
    torch.set_num_threads(threads)
    texts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                texts.append(json.loads(line)["text"])
            if len(texts) >= limit:
                break
    model = SentenceTransformer(model_dir, device="cpu")
    model.encode(texts[: min(64, len(texts))], batch_size=batch)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    model.encode(texts, batch_size=batch, normalize_embeddings=True)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    tok = model.tokenizer(texts, truncation=True,
                          max_length=model.max_seq_length)["input_ids"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({
        "passages": len(texts),
        "seconds": dt,
        "passages_per_s": len(texts) / dt,
        "cpu_seconds": cpu,
        "tokens": sum(len(t) for t in tok),
        "peak_rss_mb": rss,
        "versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
    }))


if __name__ == "__main__":
    main()

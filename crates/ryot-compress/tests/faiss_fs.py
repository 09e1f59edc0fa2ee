# Same-run FAISS reference for fast-scan PQ: recall@10 and qps (wall and
# process CPU time) on a data folder, 1 thread, k=10, best of 3 passes.
# Usage: python3 tests/faiss_fs.py ../shared/data/minilm-wordnet PQ96x4fs
import faiss, numpy as np, time, sys
faiss.omp_set_num_threads(1)
d = sys.argv[1]
x = np.load(f"{d}/corpus.npy"); q = np.load(f"{d}/queries.npy"); gt = np.load(f"{d}/gt.npy")
rng = np.random.default_rng(0)
tr = x[rng.choice(len(x), 20000, replace=False)]
for f in sys.argv[2:]:
    idx = faiss.index_factory(x.shape[1], f, faiss.METRIC_INNER_PRODUCT)
    idx.train(tr); idx.add(x)
    best = 0
    for _ in range(3):
        t = time.process_time(); tw = time.time()
        D, I = idx.search(q[:300], 10)
        best = max(best, 300/(time.time()-tw))
        cpu = 300/(time.process_time()-t)
    D, I = idx.search(q, 10)
    r = np.mean([len(set(I[i]) & set(gt[i,:10])) / 10 for i in range(len(q))])
    print(f"{f:<20} R@10 {r:.4f} qps {best:8.0f} cpu-qps {cpu:8.0f}")

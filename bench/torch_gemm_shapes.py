"""torch's side of bench/gemm-shapes.ts: the same GEMMs (shapes as JSON on argv[1]), one JSON line each.

    python bench/torch_gemm_shapes.py '[["name", [M, K], [K2, N2], transA, transB], ...]' THREADS RUNS
"""
import json
import sys
import time

import torch

cases, threads, runs = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
for name, a, b, ta, tb in cases:
    A, B = torch.rand(a), torch.rand(b)
    f = lambda: (A.t() if ta else A) @ (B.t() if tb else B)
    for _ in range(3):
        f()
    t = time.perf_counter()
    for _ in range(runs):
        f()
    ms = (time.perf_counter() - t) / runs * 1e3
    print(json.dumps({"name": name, "ms": ms, "peer": f"torch {torch.__version__}"}))

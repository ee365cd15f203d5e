"""Scale benchmark of the retrieval index structures: flat (exact) vs HNSW vs IVF.

Synthetic unit vectors of dimension 384 (as all-MiniLM-L6-v2) from an
anisotropic Gaussian whose per-dimension spread decays as a power law, as the
spectrum of sentence embeddings does (uniform noise has no structure at all and
well-separated clusters are trivially easy); queries are stored vectors plus
noise, at cosine about 0.85 to their source, like paraphrases of a stored
question. For each size and kind: build time, index size on disk, process RSS
growth, single-query latency p50/p99 (k=10) and recall@10 against the exact
index. HNSW efSearch and IVF nprobe are search-time settings, so each is also
measured at a few other values on the same index.

    .venv/bin/python bench/retrieval_scale.py --sizes 10000 100000
    .venv/bin/python bench/retrieval_scale.py --sizes 1000000 --hnsw-max-entries 1000000

Writes bench/out/retrieval_scale.json and prints a table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retrieval.config import IndexConfig  # noqa: E402
from retrieval.vectors import VectorIndex  # noqa: E402

DIMENSION = 384
OUT = Path(__file__).resolve().parent / "out" / "retrieval_scale.json"


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def embeddings_like(n: int, rng: np.random.Generator, decay: float, chunk: int = 100_000) -> np.ndarray:
    scales = (np.arange(1, DIMENSION + 1) ** -decay).astype(np.float32)
    out = np.empty((n, DIMENSION), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        out[start : start + m] = unit(rng.standard_normal((m, DIMENSION), dtype=np.float32) * scales)
    return out


def paraphrases(vectors: np.ndarray, count: int, rng: np.random.Generator, noise: float) -> np.ndarray:
    sources = vectors[rng.integers(0, len(vectors), count)]
    return unit(sources + noise * unit(rng.standard_normal(sources.shape, dtype=np.float32)))


def latencies_ms(index: VectorIndex, queries: np.ndarray, k: int) -> np.ndarray:
    index.search(queries[:1], k)  # warm-up
    timings = []
    for row in queries:
        start = time.perf_counter()
        index.search(row[None, :], k)
        timings.append((time.perf_counter() - start) * 1000.0)
    return np.asarray(timings)


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(f) & set(e)) / k for f, e in zip(found, exact)]))


def disk_bytes(index: VectorIndex) -> int:
    import faiss

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "index.faiss")
        faiss.write_index(index.index, path)
        return os.path.getsize(path)


def run_size(n: int, kinds, config: IndexConfig, args, rng) -> list:
    vectors = embeddings_like(n, rng, args.decay)
    ids = np.arange(n, dtype=np.int64)
    recall_queries = paraphrases(vectors, args.recall_queries, rng, args.noise)
    latency_queries = recall_queries[: args.latency_queries]
    process = psutil.Process()
    rows, exact = [], None
    for kind in ["flat"] + [k for k in kinds if k != "flat"]:
        if kind == "hnsw" and n > args.hnsw_max_entries:
            print(f"{n:>9} hnsw  skipped: above --hnsw-max-entries {args.hnsw_max_entries}", flush=True)
            continue
        gc.collect()
        rss_before = process.memory_info().rss
        start = time.perf_counter()
        index = VectorIndex.build(vectors, ids, config, kind=kind, progress=args.progress)
        build_s = time.perf_counter() - start
        rss_delta = process.memory_info().rss - rss_before
        found = index.search(recall_queries, args.k)[1]
        if kind == "flat":
            exact = found
        settings = [None]
        if kind == "hnsw":
            default = index.params["ef_search"]
            settings = sorted({default, 32, 64, 128, 256})
        elif kind == "ivf":
            default = index.params["nprobe"]
            settings = sorted({p for p in (default, 16, 64, 128, 256, 512) if p <= index.params["nlist"]})
        for setting in settings:
            if kind == "hnsw":
                index.set_search_params(setting, None)
            elif kind == "ivf":
                index.set_search_params(None, setting)
            if setting is not None:
                found = index.search(recall_queries, args.k)[1]
            lat = latencies_ms(index, latency_queries, args.k)
            row = {
                "entries": n,
                "kind": kind,
                "params": dict(index.params),
                "default": setting is None or setting == default,
                "build_s": round(build_s, 2),
                "index_mb": round(disk_bytes(index) / 2**20, 1),
                "rss_delta_mb": round(rss_delta / 2**20, 1),
                "latency_ms_p50": round(float(np.percentile(lat, 50)), 3),
                "latency_ms_p99": round(float(np.percentile(lat, 99)), 3),
                f"recall_at_{args.k}": round(recall_at(found, exact), 4),
            }
            rows.append(row)
            print_row(row, args.k)
        if kind != "flat":
            del index
    return rows


def print_header(k: int) -> None:
    print(f"{'entries':>9} {'kind':<5} {'search param':<14} {'build s':>8} {'index MB':>9} {'RSS +MB':>8} {'p50 ms':>8} {'p99 ms':>8} {f'recall@{k}':>9}")


def print_row(row: dict, k: int) -> None:
    params = row["params"]
    setting = f"efSearch={params['ef_search']}" if row["kind"] == "hnsw" else f"nprobe={params['nprobe']}" if row["kind"] == "ivf" else "exact"
    mark = "" if row["default"] else " (alt)"
    print(f"{row['entries']:>9} {row['kind']:<5} {setting + mark:<14} {row['build_s']:>8} {row['index_mb']:>9} {row['rss_delta_mb']:>8} "
          f"{row['latency_ms_p50']:>8} {row['latency_ms_p99']:>8} {row[f'recall_at_{k}']:>9}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivf"], choices=["flat", "hnsw", "ivf"])
    parser.add_argument("--config", metavar="JSON", help="IndexConfig options, e.g. '{\"hnsw_ef_construction\": 100}'")
    parser.add_argument("--hnsw-max-entries", type=int, default=200_000,
                        help="skip HNSW above this size (its build took 64-130 s at 100k on 2 busy cores)")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--recall-queries", type=int, default=1000)
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--decay", type=float, default=0.4, help="per-dimension spread ~ rank ** -decay (0: isotropic noise)")
    parser.add_argument("--noise", type=float, default=0.6, help="query = stored vector + noise of this norm (0.6: cosine ~0.85)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="progress bars while indexing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    import faiss

    config = IndexConfig.from_dict(json.loads(args.config) if args.config else {})
    rng = np.random.default_rng(args.seed)
    print(f"faiss {faiss.__version__}, {os.cpu_count()} CPUs, GPUs: {faiss.get_num_gpus()}, dimension {DIMENSION}, k={args.k}")
    print_header(args.k)
    rows = []
    started = time.perf_counter()
    for n in args.sizes:
        rows.extend(run_size(n, args.kinds, config, args, rng))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "faiss": faiss.__version__, "gpus": faiss.get_num_gpus()},
        "dimension": DIMENSION,
        "k": args.k,
        "config": config.to_dict(),
        "data": {"kind": "power-law anisotropic gaussian, paraphrase-like queries", "decay": args.decay, "noise": args.noise, "seed": args.seed,
                 "recall_queries": args.recall_queries, "latency_queries": args.latency_queries},
        "total_seconds": round(time.perf_counter() - started, 1),
        "results": rows,
    }, indent=2))
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

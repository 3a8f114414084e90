"""Embedded engines side by side: Qdrant local mode, Qdrant Edge (HNSW or exact) and Milvus Lite, through the
store protocol; ground truth is an exact numpy search.

``--vectors synthetic``: random unit vectors (dim 256), queries are items plus Gaussian noise (a near-worst case
for HNSW). ``--vectors clustered``: the 2,000-cluster mixture of ``benchmarks/milvus_scale.py`` with held-out
queries from it, for sizes beyond the real data. ``--vectors real``: the shipped model's fused vectors of 38,332
real catalog entries and its vectors of the 800 test queries (``benchmarks/product_vectors.py``). Each (engine,
size) runs in its own subprocess so that its RSS growth is its own.

    python benchmarks/embedded_engines.py --sizes 10000 100000
    python benchmarks/embedded_engines.py --vectors real --sizes 10000 35000
    python benchmarks/embedded_engines.py --vectors clustered --sizes 1000000 --engines qdrant-edge --timeout 3600
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DIM, K, QUERIES, BATCH, SEED = 256, 10, 200, 1000, 0
RUN_TIMEOUT_S = 420  # per engine and size
EF_SWEEP = (128, 256)  # extra search beams measured on Qdrant Edge's index
ENGINES: dict[str, tuple[str, dict[str, Any], str]] = {  # name -> (connector, options, uri inside the tmp folder)
    "qdrant-local": ("qdrant", {"engine": "local"}, "qdrant"),
    "qdrant-edge": ("qdrant", {"engine": "edge"}, "qdrant"),
    "qdrant-edge exact": ("qdrant", {"engine": "edge", "exact": True}, "qdrant"),
    "milvus-lite": ("milvus", {}, "milvus.db"),
}
RESULTS = Path(__file__).parent / "results" / "embedded_engines.json"
ONE_MILLION_NOTE = ("1M not run: at 1M x 256 the local mode's brute force and the HNSW build on 2 shared cores take "
                    "well over the few minutes this benchmark allows")


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_data(n: int, vectors: str = "synthetic") -> tuple[np.ndarray, np.ndarray]:
    """``n`` item vectors and the query vectors."""
    rng = np.random.default_rng(SEED)
    if vectors == "real":
        from product_vectors import load

        real = load()
        if n > len(real["items"]):
            raise ValueError(f"only {len(real['items']):,} real item vectors exist, asked for {n:,}")
        order = rng.permutation(len(real["items"]))[:n]  # a mix of catalogs, image sizes and splits
        return real["items"][order], real["queries"]
    if vectors == "clustered":
        from milvus_scale import items_and_queries

        return items_and_queries("clustered", 2000, n, QUERIES)
    items = unit(rng.normal(size=(n, DIM)))
    picks = rng.choice(n, size=QUERIES, replace=False)
    queries = unit(items[picks] + rng.normal(scale=0.05, size=(QUERIES, DIM)))
    return items, queries


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process, in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def folder_mb(path: Path) -> float:
    """Space allocated on disk (sparse, preallocated files count only their written blocks)."""
    files = [path] if path.is_file() else path.rglob("*")
    return sum(f.stat().st_blocks * 512 for f in files if f.is_file()) / 2**20


def measure(store: Any, queries: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """Single-query latency percentiles and recall@K against the exact neighbours."""
    store.search(queries[0], k=K)  # warm-up
    latencies, found = [], []
    for query in queries:
        start = time.perf_counter()
        hits = store.search(query, k=K)[0]
        latencies.append((time.perf_counter() - start) * 1000)
        found.append({int(h.id.removeprefix("sku-")) for h in hits})
    recall = float(np.mean([len(f & set(row.tolist())) / K for f, row in zip(found, exact, strict=True)]))
    return {"search_p50_ms": float(np.percentile(latencies, 50)), "search_p99_ms": float(np.percentile(latencies, 99)),
            "recall_at_10": recall}


def run_one(engine: str, n: int, vectors: str = "synthetic") -> list[dict[str, Any]]:
    """One engine at one size, in this process."""
    from smar_sdk.store import open_store

    connector, options, name = ENGINES[engine]
    items, queries = make_data(n, vectors)
    exact = np.argsort(-(queries @ items.T), axis=1)[:, :K]
    ids = [f"sku-{i}" for i in range(n)]
    payloads = [{"i": i, "colour": ("red", "green", "blue")[i % 3]} for i in range(n)]
    tmp = Path(tempfile.mkdtemp(prefix="smar-bench-"))
    uri = tmp / name
    rss_before, _ = rss_mb()
    try:
        store = open_store(connector, uri=str(uri), collection="bench", **options)
        store.ensure_collection(DIM)
        start = time.perf_counter()
        for b in range(0, n, BATCH):
            store.upsert(ids[b:b + BATCH], items[b:b + BATCH], payloads[b:b + BATCH])
        upsert_s = time.perf_counter() - start
        start = time.perf_counter()
        if hasattr(store, "optimize"):  # Qdrant Edge builds its HNSW index here
            store.optimize()
        index_s = time.perf_counter() - start
        rows = [{"engine": engine, "n": n, "vectors": vectors, "upsert_per_s": n / upsert_s, "index_build_s": index_s,
                 **measure(store, queries, exact)}]
        sweep = EF_SWEEP if hasattr(store, "hnsw_ef") and not options.get("exact") else ()
        for ef in sweep:  # the same HNSW index with a wider search beam
            store.hnsw_ef = ef
            rows.append({**rows[0], "engine": f"{engine} ef={ef}", **measure(store, queries, exact)})
        rss_after, rss_peak = rss_mb()
        store.close()
        disk = folder_mb(uri)
        return [{**row, "disk_mb": disk, "rss_growth_mb": rss_after - rss_before,
                 "rss_peak_growth_mb": rss_peak - rss_before} for row in rows]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| engine | n | upsert items/s | index build s | search p50 ms | search p99 ms | recall@10 | disk MB "
             "| RSS growth MB (peak) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['engine']} | {r['n']} | failed: {r['error']} |||||||")
            continue
        lines.append(f"| {r['engine']} | {r['n']:,} | {r['upsert_per_s']:,.0f} | {r['index_build_s']:.1f} | "
                     f"{r['search_p50_ms']:.2f} | {r['search_p99_ms']:.2f} | {r['recall_at_10']:.3f} | "
                     f"{r['disk_mb']:.1f} | {r['rss_growth_mb']:.0f} ({r['rss_peak_growth_mb']:.0f}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--vectors", choices=("synthetic", "clustered", "real"), default="synthetic")
    parser.add_argument("--timeout", type=int, default=RUN_TIMEOUT_S, help="seconds per engine and size")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--one", nargs=2, metavar=("ENGINE", "N"), help=argparse.SUPPRESS)  # the subprocess
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.vectors)))
        return
    rows: list[dict[str, Any]] = []
    for n in args.sizes:
        for engine in args.engines:
            try:
                command = [sys.executable, __file__, "--one", engine, str(n), "--vectors", args.vectors]
                done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                rows.append({"engine": engine, "n": n, "error": f"did not finish within {args.timeout} s"})
                print(f"{engine} {n}: timed out", file=sys.stderr, flush=True)
                continue
            if done.returncode == 0:
                new = json.loads(done.stdout.strip().splitlines()[-1])
            else:
                new = [{"engine": engine, "n": n, "error": done.stderr.strip().splitlines()[-1][:200]}]
            rows += new
            print("\n".join(table(new).splitlines()[2:]), file=sys.stderr, flush=True)
    queries = {"real": "the 800 test queries' vectors", "clustered": f"{QUERIES} held-out draws of the mixture",
               "synthetic": f"{QUERIES} items + N(0, 0.05) noise"}[args.vectors]
    notes = [f"{args.vectors} vectors, dim {DIM}, k={K}, single-vector queries ({queries}), upserts in batches of "
             f"{BATCH} with a 2-field payload; recall@10 against exact numpy search; index build = Qdrant Edge's "
             "optimize() (HNSW m=16, ef_construct=100, default search beam, then ef=128/256 on the same index), "
             "the others index nothing (local mode: numpy brute force; Milvus Lite: FLAT); "
             "disk = allocated blocks after close; "
             "RSS growth = after searching minus before opening the store, (peak)"]
    if args.vectors == "synthetic" and 1_000_000 not in args.sizes:
        notes.append(ONE_MILLION_NOTE)
    print(table(rows))
    for note in notes:
        print(f"\n{note}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"notes": notes, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

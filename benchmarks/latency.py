"""Query latency of `SMARRetriever.search` end to end against the size of a real embedded index, and k.

The index holds the shipped model's fused vectors of real catalog entries (``benchmarks/product_vectors.py``:
each Myntra product with and without colour words, with its photo and its thumbnail; up to 38,332 entries),
written through the connector with their titles as payload. The queries are the 800 test queries' texts.
Each size runs in its own process (its RSS is its own) and reports, per k: query encoding alone
(``encode_queries``), the store's search alone (a precomputed query vector) and ``SMARRetriever.search``,
timed in turns on each query.

    python benchmarks/latency.py --sizes 1000 10000 35000 --ks 10 100
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from embedded_engines import rss_mb
from product_vectors import load

RESULTS = Path(__file__).parent / "results" / "latency.json"
BATCH = 1000


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def interleaved(steps: dict[str, Any], inputs: list[tuple[str, np.ndarray]]) -> dict[str, list[float]]:
    """Wall time of each step on each input, the steps taking turns per input (so machine noise hits all alike)."""
    for step in steps.values():
        step(*inputs[0])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for value in inputs:
        for name, step in steps.items():
            start = time.perf_counter()
            step(*value)
            times[name].append(time.perf_counter() - start)
    return times


def run_one(n: int, ks: list[int], engine: str | None) -> list[dict[str, Any]]:
    """Index ``n`` real entries into a fresh embedded store, then time queries at each k."""
    from smar_sdk import SMARModel, SMARRetriever
    from smar_sdk.store import open_store

    real = load()
    order = np.random.default_rng(0).permutation(len(real["items"]))[:n]
    options = {"engine": engine} if engine else {}
    texts = [str(t) for t in real["query_texts"]]
    model = SMARModel.load()
    with tempfile.TemporaryDirectory(prefix="smar-latency-") as tmp:
        uri = str(Path(tmp) / "store")
        rss_before, _ = rss_mb()
        with open_store("qdrant", uri=uri, collection="products", **options) as store:
            store.ensure_collection(model.dim)
            started = time.perf_counter()
            for b in range(0, n, BATCH):
                rows = order[b:b + BATCH]
                store.upsert([str(real["ids"][i]) for i in rows], real["items"][rows],
                             [{"title": str(real["titles"][i])} for i in rows])
        write_s = time.perf_counter() - started  # includes building the index on close
        results = []
        with SMARRetriever(model, uri=uri, **options) as retriever:
            inputs = list(zip(texts, model.encode_queries(texts), strict=True))
            for k in ks:
                times = interleaved({"encode": lambda text, vector: model.encode_queries([text]),
                                     "store_search": lambda text, vector, k=k: retriever.store.search(vector, k=k),
                                     "search": lambda text, vector, k=k: retriever.search(text, k=k)}, inputs)
                parts = {name: percentiles(seconds) for name, seconds in times.items()}
                results.append({"n": n, "k": k, "engine": getattr(retriever.store, "engine", None),
                                "write_s": write_s, **parts,
                                "overhead_p50_ms": parts["search"]["p50_ms"] - parts["encode"]["p50_ms"]})
        rss_after, rss_peak = rss_mb()
    return [{**r, "rss_mb": rss_after, "rss_growth_mb": rss_after - rss_before} for r in results]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| engine | entries | k | encode p50 / p99 ms | store search p50 / p99 ms | `search` p50 / p99 ms | "
             "overhead p50 ms | write + index s | RSS MB |", "|---|---:|---:|---|---|---|---:|---:|---:|"]
    for r in rows:
        cells = [f"{r[part]['p50_ms']:.1f} / {r[part]['p99_ms']:.1f}" for part in ("encode", "store_search", "search")]
        lines.append(f"| {r['engine']} | {r['n']:,} | {r['k']} | {' | '.join(cells)} | {r['overhead_p50_ms']:.1f} | "
                     f"{r['write_s']:.1f} | {r['rss_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 35_000])
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--engine", choices=("local", "edge"), default=None, help="default: the connector's")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the subprocess
    args = parser.parse_args()
    engine = ["--engine", args.engine] if args.engine else []
    if args.one:
        print(json.dumps(run_one(args.one, args.ks, args.engine)))
        return
    rows: list[dict[str, Any]] = []
    for n in args.sizes:
        command = [sys.executable, __file__, "--one", str(n), "--ks", *map(str, args.ks), *engine]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"size {n} failed:\n{done.stderr[-3000:]}")
        rows += json.loads(done.stdout.strip().splitlines()[-1])
        print("\n".join(table(rows).splitlines()[-len(args.ks):]), file=sys.stderr, flush=True)
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

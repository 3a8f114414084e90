"""Scale: N product vectors (default 1,000,000 x 256, cosine) in a real standalone Milvus 2.3.5 server, through
the SDK's own ``MilvusStore`` (HNSW index), measuring what the performance issue asks.

    python benchmarks/milvus_scale.py --n 1000000

Vectors (``clustered``, the default) imitate product embeddings rather than the isotropic worst case: a mixture
of ``--centres`` Gaussian clusters (2,000) with Dirichlet(2) cluster weights. Every centre and every offset is
drawn from a zero-mean Gaussian with a decaying spectrum (standard deviation of coordinate i proportional to
(i+1)^-0.5, i.e. an effective dimension near 23 of the 256, as learned embeddings have); a vector is
``unit(centre + r * offset)`` with a per-cluster spread r uniform in [0.5, 1.0] (offsets scaled to norm ~r, so
a vector's cosine to its centre is about 0.7-0.9). Queries are held-out draws from the same mixture (never
indexed). ``--distribution isotropic`` draws unit-normalised N(0, I) vectors instead: the worst case for HNSW.

Steps and measures: start the server with its data in ``--root`` (a temporary folder by default); write through
``MilvusStore.ensure_collection`` and ``MilvusStore.upsert`` (``--batch`` rows per call, payload
``{"title": ...}``) = upsert rate, with this process's CPU share (the client side's cost); flush and wait until
the HNSW index (``--m``, ``--ef-construction``) covers every row = index build time; release the collection,
restart the server, and take the summed RSS of the server's process group before ``load_collection`` and after
the searches (loaded and serving; the load's transient peak is kept too) = memory per million vectors;
single-query ``MilvusStore.search`` latency (k=10) for each ``--ef`` (search_params) with
``consistency_level="Bounded"``, and at one ef with the connector's default ``Strong`` (which waits for the
server's next time tick, ~200 ms) and ``Session``, with recall@10 against exact numpy search over all N vectors;
allocated size of the server's ``data/`` folder (etcd, write-ahead log, binlogs, index files; not the server
binary it copies). Each run is stored in ``benchmarks/results/milvus_scale.json`` under its (distribution, n)
key; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus.client.types import LoadState

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from embedded_engines import folder_mb, unit  # noqa: E402
from smar_milvus import MilvusStore  # noqa: E402

from tests.milvus_server import MilvusServer  # noqa: E402

logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # its retries while the server restarts are expected

DIM, K, SEED, CHUNK = 256, 10, 0, 100_000
COLLECTION = "scale"
RESULTS = REPO / "benchmarks" / "results" / "milvus_scale.json"
INDEX_TIMEOUT_S = 7200


def spectrum(dim: int) -> np.ndarray:
    """Per-coordinate standard deviations (i+1)^-0.5, scaled so that a draw has an expected norm of ~1."""
    std = 1.0 / np.sqrt(np.arange(1, dim + 1))
    return (std / np.sqrt(np.sum(std**2))).astype(np.float32)


class Generator:
    """The clustered mixture (or isotropic vectors); ``draw(n, seed)`` is deterministic per seed."""

    def __init__(self, distribution: str, centres: int, dim: int = DIM) -> None:
        rng = np.random.default_rng(SEED)
        self.distribution, self.dim, self.std = distribution, dim, spectrum(dim)
        self.centres = unit(rng.standard_normal((centres, dim), dtype=np.float32) * self.std)
        self.weights = rng.dirichlet(np.full(centres, 2.0))
        self.spread = rng.uniform(0.5, 1.0, size=centres).astype(np.float32)

    def draw(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        if self.distribution == "isotropic":
            return unit(rng.standard_normal((n, self.dim), dtype=np.float32))
        cluster = rng.choice(len(self.centres), size=n, p=self.weights)
        offsets = rng.standard_normal((n, self.dim), dtype=np.float32) * self.std
        return unit(self.centres[cluster] + self.spread[cluster, None] * offsets)


def items_and_queries(distribution: str, centres: int, n: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    generator = Generator(distribution, centres)
    items = np.concatenate([generator.draw(min(CHUNK, n - start), SEED + 1 + start // CHUNK)
                            for start in range(0, n, CHUNK)])
    return items, generator.draw(queries, seed=SEED + 10_000_000)  # a stream the items never use


def exact_top_k(items: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Indices of each query's k nearest items by cosine (all unit vectors), by brute force."""
    scores = queries @ items.T
    return np.argpartition(-scores, k, axis=1)[:, :k]


def group_rss_mb(leader: int) -> float:
    """Summed resident set size of every process in the process group ``leader`` (the server and its children)."""
    total_kb = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if int(stat.rpartition(")")[2].split()[2]) != leader:  # fields after "(comm)": state ppid pgrp
                continue
            status = (proc / "status").read_text()
        except (OSError, ValueError):
            continue
        total_kb += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total_kb / 1024


def wait_for_index(store: MilvusStore, n: int) -> dict[str, Any]:
    """Poll the vector index until it covers ``n`` rows with nothing pending; return its last description."""
    client, deadline = store.client, time.monotonic() + INDEX_TIMEOUT_S
    name = client.list_indexes(COLLECTION)[0]
    while True:
        info = client.describe_index(COLLECTION, name)
        if int(info.get("indexed_rows", 0)) >= n and int(info.get("pending_index_rows", 0)) == 0:
            return info
        if time.monotonic() > deadline:
            raise RuntimeError(f"index not built within {INDEX_TIMEOUT_S} s: {info}")
        time.sleep(2)


def wait_for_load(store: MilvusStore, seconds: float = 300) -> None:
    """Load the collection; right after a restart the server still lists its dead query node for a while
    (until that session expires) and refuses to load, so retry until then."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            store.client.load_collection(COLLECTION, timeout=INDEX_TIMEOUT_S)
            return
        except Exception:  # noqa: BLE001 - "node not found" until the old session expires
            if time.monotonic() > deadline:
                raise
            time.sleep(5)


def measure_search(uri: str, ef: int, consistency: str, queries: np.ndarray, exact: np.ndarray,
                   options: dict[str, Any]) -> dict[str, float]:
    """Single-query ``MilvusStore.search`` latency percentiles and recall@K at one ``ef``."""
    with MilvusStore(uri=uri, collection=COLLECTION, search_params={"ef": ef}, consistency_level=consistency,
                     **options) as store:
        for query in queries[:5]:  # warm-up
            store.search(query, k=K)
        latencies, recalls = [], []
        for query, truth in zip(queries, exact, strict=True):
            start = time.perf_counter()
            hits = store.search(query, k=K)[0]
            latencies.append((time.perf_counter() - start) * 1000)
            recalls.append(len({int(h.id.removeprefix("sku-")) for h in hits} & set(truth.tolist())) / K)
    return {"ef": ef, "consistency": consistency, "p50_ms": float(np.percentile(latencies, 50)),
            "p99_ms": float(np.percentile(latencies, 99)), "recall_at_10": float(np.mean(recalls))}


def options_of(args: argparse.Namespace) -> dict[str, Any]:
    """The ``MilvusStore`` options of the benchmark's collection."""
    return {"index_type": "HNSW", "metric": "cosine",
            "index_params": {"M": args.m, "efConstruction": args.ef_construction}}


def write_phase(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Start a server in ``root``, write and index the vectors, kill it; the numbers also go to ``root/write.json``."""
    started = time.perf_counter()
    items, _ = items_and_queries(args.distribution, args.centres, args.n, args.queries)
    options = options_of(args)
    result: dict[str, Any] = {"distribution": args.distribution, "n": args.n, "dim": DIM, "centres": args.centres,
                              "queries": args.queries, "index": options["index_params"], "batch": args.batch,
                              "cpus": os.cpu_count(), "load_average_start": os.getloadavg()}
    server = MilvusServer(root)
    server.start()
    try:
        assert server.process is not None
        result["server_rss_empty_mb"] = group_rss_mb(server.process.pid)
        with MilvusStore(uri=server.uri, collection=COLLECTION, **options) as store:
            store.ensure_collection(DIM, "cosine")
            ids = [f"sku-{i}" for i in range(args.n)]
            wall, cpu = time.perf_counter(), time.process_time()
            for start in range(0, args.n, args.batch):
                end = min(start + args.batch, args.n)
                store.upsert(ids[start:end], items[start:end], [{"title": f"product {i}"} for i in range(start, end)])
                if (start // args.batch) % 20 == 0:
                    print(f"upserted {end:,} in {time.perf_counter() - wall:.0f} s", file=sys.stderr, flush=True)
            upsert_s, upsert_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
            sample = items[:args.batch]  # the connector's own row building, timed alone on one batch
            convert = time.perf_counter()
            _ = [{"id": ids[row], "vector": sample[row].tolist(), "payload": {"title": "x"}}
                 for row in range(len(sample))]
            convert_s = (time.perf_counter() - convert) * args.n / len(sample)
            result.update(upsert_s=upsert_s, upsert_per_s=args.n / upsert_s, upsert_row_building_s=convert_s,
                          upsert_client_cpu_share=upsert_cpu_s / upsert_s)
            result["server_rss_after_write_mb"] = group_rss_mb(server.process.pid)
            build = time.perf_counter()
            store.client.flush(COLLECTION)
            result["flush_s"] = time.perf_counter() - build
            index = wait_for_index(store, args.n)
            result["index_build_after_write_s"] = time.perf_counter() - build
            result["write_and_index_s"] = time.perf_counter() - wall
            result["index_description"] = {key: str(value) for key, value in index.items()}
            result["load_average_after_index"] = os.getloadavg()
            print(f"upsert {upsert_s:.0f} s, index ready {result['index_build_after_write_s']:.0f} s later",
                  file=sys.stderr, flush=True)
            store.client.release_collection(COLLECTION)
    finally:
        server.kill()
    result["write_phase_s"] = time.perf_counter() - started
    (root / "write.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def measure_phase(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Restart the server on ``root``'s data (nothing loaded), then memory, search latency and recall, disk.

    Runs in a process of its own: this pymilvus keeps trying a killed server's address, so a client made in the
    writing process may never see the restarted one."""
    started = time.perf_counter()
    result = json.loads((root / "write.json").read_text())
    items, queries = items_and_queries(args.distribution, args.centres, args.n, args.queries)
    exact = exact_top_k(items, queries)
    del items
    options = options_of(args)
    server = MilvusServer(root)
    server.start()
    with MilvusStore(uri=server.uri, collection=COLLECTION, **options) as store:
        loaded = store.client.get_load_state(COLLECTION)["state"] != LoadState.NotLoad
        if loaded:  # a server killed while loaded reloads on restart: release, then start afresh (new process)
            store.client.release_collection(COLLECTION)
    if loaded:
        server.kill()
        os.execv(sys.executable, [sys.executable, *sys.argv])
    try:
        assert server.process is not None
        time.sleep(10)  # let the fresh server settle before its baseline
        result["server_rss_before_load_mb"] = group_rss_mb(server.process.pid)
        with MilvusStore(uri=server.uri, collection=COLLECTION, **options) as store:
            load = time.perf_counter()
            wait_for_load(store)
            result["load_s_after_restart"] = time.perf_counter() - load
            samples = []  # loading peaks (binlogs and index files are read and decoded), then settles
            for _ in range(8):
                samples.append(group_rss_mb(server.process.pid))
                time.sleep(5)
            result["server_rss_after_load_mb"] = samples
            result["count"] = store.count()
            try:
                result["loaded_segments"] = len(store.client.list_loaded_segments(COLLECTION))
            except Exception as exc:  # noqa: BLE001 - informative only; an older server may not answer it
                result["loaded_segments"] = f"unknown ({type(exc).__name__})"
        # ef never decreases along the runs: on this server, searches after wider-ef ones found more neighbours
        # than fresh ones at the same ef (0.9975 against 0.988 recall@10 at ef=32, 100k vectors)
        sweep = sorted([(ef, args.consistency) for ef in args.ef] + [(args.also_ef, level) for level in args.also],
                       key=lambda run: run[0])
        result["load_average_before_search"] = os.getloadavg()
        result["searches"] = [measure_search(server.uri, ef, consistency, queries, exact, options)
                              for ef, consistency in sweep]
        for row in result["searches"]:
            print(f"ef={row['ef']} {row['consistency']}: p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
                  f"recall@10 {row['recall_at_10']:.3f}", file=sys.stderr, flush=True)
        result["server_rss_after_search_mb"] = group_rss_mb(server.process.pid)
        grown = result["server_rss_after_search_mb"] - result["server_rss_before_load_mb"]  # loaded, serving
        result["memory_per_million_mb"] = grown * 1_000_000 / args.n
        result["raw_vectors_per_million_mb"] = 1_000_000 * DIM * 4 / 2**20
        with MilvusStore(uri=server.uri, collection=COLLECTION, **options) as store:
            store.client.release_collection(COLLECTION)  # so that the next start loads nothing
    finally:
        server.kill()
    result["disk_mb"] = folder_mb(server.data / "data")  # etcd, write-ahead log, binlogs, index files
    result["disk_by_folder_mb"] = {p.name: round(folder_mb(p), 1) for p in sorted(server.data.iterdir()) if p.is_dir()}
    result["load_average_end"] = os.getloadavg()
    result["measure_phase_s"] = time.perf_counter() - started
    return result


def table(runs: list[dict[str, Any]]) -> str:
    lines = ["| vectors | n | upsert items/s | index build s | ef | consistency | p50 ms | p99 ms | recall@10 "
             "| server RSS per 1M vectors MB | disk MB |", "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in runs:
        for s in r["searches"]:
            lines.append(f"| {r['distribution']} | {r['n']:,} | {r['upsert_per_s']:,.0f} | "
                         f"{r['index_build_after_write_s']:.0f} | {s['ef']} | {s['consistency']} | {s['p50_ms']:.2f} | "
                         f"{s['p99_ms']:.2f} | {s['recall_at_10']:.3f} | {r['memory_per_million_mb']:,.0f} | "
                         f"{r['disk_mb']:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--distribution", choices=("clustered", "isotropic"), default="clustered")
    parser.add_argument("--centres", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=10_000, help="rows per MilvusStore.upsert call")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=128)
    parser.add_argument("--ef", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--consistency", default="Bounded", help="MilvusStore consistency level for the ef sweep")
    parser.add_argument("--also", nargs="*", default=["Strong", "Session"],
                        help="other consistency levels to search with at --also-ef (Strong: the connector's default)")
    parser.add_argument("--also-ef", type=int, default=64)
    parser.add_argument("--root", type=Path, help="server data folder (default: a temporary one, removed after)")
    parser.add_argument("--measure-only", action="store_true",
                        help="only restart, load and measure the data a previous run left in --root")
    args = parser.parse_args()
    if args.measure_only:
        if args.root is None or not (args.root / "write.json").exists():
            parser.error("--measure-only needs the --root of a run that finished writing")
        result = measure_phase(args, args.root)
    else:
        root = args.root or Path(tempfile.mkdtemp(prefix="smar-milvus-scale-"))
        try:
            write_phase(args, root)
            measured = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--root", str(root),
                                       "--measure-only"], check=False)
            if measured.returncode:
                raise SystemExit(f"the measuring process failed ({measured.returncode})" +
                                 (f"; its data is in {root} (--measure-only)" if args.root else ""))
        finally:
            if args.root is None:
                shutil.rmtree(root, ignore_errors=True)
        return  # the measuring process stored the results and printed the table
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
    runs = [r for r in stored["runs"] if (r["distribution"], r["n"]) != (args.distribution, args.n)] + [result]
    runs.sort(key=lambda r: (r["distribution"], r["n"]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print(table(runs))


if __name__ == "__main__":
    main()

"""Soak: 8 threads search while another indexes, through one shared store, on loopback only.

Every search result is checked: no exception, at most k hits, ids from the catalog, finite scores sorted best
first, no id twice, and each hit's payload is its own product's (its title is the catalog title of that id).
The indexing thread re-indexes the catalog in chunks (re-encoding every row) until the time is up. Prints one
markdown row: searches per second, p50/p99 latency (query encoding included), errors, items indexed meanwhile.

    python benchmarks/soak.py --seconds 60 --store qdrant --engine local
    python benchmarks/soak.py --seconds 60 --store qdrant --engine edge
    python benchmarks/soak.py --seconds 60 --store milvus                        # Milvus Lite
    python benchmarks/soak.py --seconds 60 --store milvus --uri http://127.0.0.1:19530
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from smar_sdk import SMARIndexer, SMARModel, SMARRetriever, open_store
from smar_sdk.store import Hit, VectorStore

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "shared" / "data" / "myntra" / "catalog.jsonl"
CHUNK = 32  # products per index() call of the indexing thread: it checks the clock between chunks
KEPT_ERRORS = 5
HEADER = ("| store | threads | seconds | searches | QPS | p50 ms | p99 ms | errors | malformed | indexed meanwhile |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


class SoakResult(BaseModel):
    """What one soak measured."""

    store: str
    threads: int
    seconds: float
    searches: int
    qps: float
    p50_ms: float
    p99_ms: float
    errors: int
    malformed: int
    indexed: int
    problems: list[str]

    def row(self) -> str:
        return (f"| {self.store} | {self.threads} | {self.seconds:.0f} | {self.searches} | {self.qps:.1f} | "
                f"{self.p50_ms:.1f} | {self.p99_ms:.1f} | {self.errors} | {self.malformed} | {self.indexed} |")


def read_catalog(catalog: Path) -> list[dict[str, Any]]:
    """The catalog's rows with relative image paths made absolute (so chunks can live in another folder)."""
    rows = [json.loads(line) for line in catalog.read_text().splitlines() if line.strip()]
    for row in rows:
        if isinstance(row.get("image"), str) and "://" not in row["image"]:
            row["image"] = str((catalog.parent / row["image"]).resolve())
    return rows


def write_chunks(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """The rows as JSON Lines files of ``CHUNK`` products each."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, len(rows), CHUNK):
        path = folder / f"chunk-{start // CHUNK:05d}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows[start:start + CHUNK]))
        paths.append(path)
    return paths


def problem(hits: list[Hit], k: int, titles: dict[str, str]) -> str | None:
    """Why a search result is malformed, or None when it is well formed."""
    ids = [hit.id for hit in hits]
    scores = [hit.score for hit in hits]
    if len(hits) > k:
        return f"{len(hits)} hits for k={k}"
    if len(set(ids)) != len(ids):
        return f"an id twice in one result: {ids}"
    if unknown := [i for i in ids if i not in titles]:
        return f"ids not in the catalog: {unknown[:3]}"
    if not all(math.isfinite(s) for s in scores) or scores != sorted(scores, reverse=True):
        return f"scores not finite and best first: {scores}"
    if wrong := [h.id for h in hits if h.payload.get("title") != titles[h.id]]:
        return f"payloads of other products on {wrong[:3]}"
    return None


class Soak:
    """Shared counters of the searching threads (appended under a lock) and the indexing thread."""

    def __init__(self, model: SMARModel, store: VectorStore, titles: dict[str, str], k: int) -> None:
        self.model, self.store, self.titles, self.k = model, store, titles, k
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors = self.malformed = self.indexed = 0
        self.problems: list[str] = []

    def note(self, kind: str, text: str) -> None:
        with self.lock:
            if kind == "error":
                self.errors += 1
            else:
                self.malformed += 1
            if len(self.problems) < KEPT_ERRORS:
                self.problems.append(f"{kind}: {text}")

    def search(self, queries: list[str], offset: int, deadline: float) -> None:
        """One searching thread: cycle through the queries until the deadline."""
        retriever = SMARRetriever(self.model, store=self.store)
        latencies, n = [], offset
        while time.monotonic() < deadline:
            query, n = queries[n % len(queries)], n + 1
            started = time.perf_counter()
            try:
                hits = retriever.search(query, k=self.k)
            except Exception as exc:  # noqa: BLE001 - counted and reported: the soak's point
                self.note("error", f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - started)
            if (why := problem(hits, self.k, self.titles)) is not None:
                self.note("malformed", f"{query!r}: {why}")
        with self.lock:
            self.latencies += latencies

    def index(self, chunks: list[Path], deadline: float) -> None:
        """The indexing thread: re-encode and upsert the catalog chunk by chunk until the deadline."""
        indexer = SMARIndexer(self.model, store=self.store)
        for chunk in itertools.cycle(chunks):
            if time.monotonic() >= deadline:
                return
            try:
                report = indexer.index(chunk, progress=False, resume=False)
            except Exception as exc:  # noqa: BLE001
                self.note("error", f"indexing: {type(exc).__name__}: {exc}")
                continue
            with self.lock:
                self.indexed += report.indexed


def run_soak(model: SMARModel, catalog: Path, seconds: float, store: str = "qdrant", uri: str | None = None,
             threads: int = 8, k: int = 10, label: str | None = None, work_dir: Path | None = None,
             **options: Any) -> SoakResult:
    """Index a first chunk, then for ``seconds`` run ``threads`` searching threads and one indexing thread on one
    store object (an embedded store can be open once per process), and return what was measured (QPS over the
    searching threads' own run; the indexing thread finishes its chunk after them)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(work_dir or tmp)
        rows = read_catalog(catalog)
        titles = {str(row["id"]): str(row.get("title", "")) for row in rows}
        queries = list(dict.fromkeys(titles.values()))
        chunks = write_chunks(rows, folder / "chunks")
        with open_store(store, uri=uri or default_uri(store, folder), collection="soak", **options) as vectors:
            SMARIndexer(model, store=vectors).index(chunks[0], progress=False)
            soak = Soak(model, vectors, titles, k)
            started = time.monotonic()
            deadline = started + seconds
            searchers = [threading.Thread(target=soak.search, args=(queries, i * 7, deadline)) for i in range(threads)]
            indexer = threading.Thread(target=soak.index, args=(chunks, deadline))
            for worker in [*searchers, indexer]:
                worker.start()
            for worker in searchers:
                worker.join()
            elapsed = time.monotonic() - started
            indexer.join()
    latencies_ms = np.array(soak.latencies or [math.nan]) * 1000
    return SoakResult(store=label or store, threads=threads, seconds=elapsed, searches=len(soak.latencies),
                      qps=len(soak.latencies) / elapsed, p50_ms=float(np.percentile(latencies_ms, 50)),
                      p99_ms=float(np.percentile(latencies_ms, 99)), errors=soak.errors, malformed=soak.malformed,
                      indexed=soak.indexed, problems=soak.problems)


def default_uri(store: str, folder: Path) -> str:
    """A fresh embedded store in the work folder: a folder for Qdrant, a ``.db`` file for Milvus Lite."""
    return str(folder / ("soak.db" if store == "milvus" else "qdrant"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--store", default="qdrant", help="connector: qdrant or milvus")
    parser.add_argument("--engine", choices=["local", "edge"], default=None, help="embedded Qdrant engine")
    parser.add_argument("--uri", default=None, help="a server URI (default: a fresh embedded store in a tmp folder)")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    args = parser.parse_args()
    options = {"engine": args.engine} if args.engine else {}
    where = "server" if args.uri else args.engine or ("Lite" if args.store == "milvus" else "embedded")
    label = f"{args.store} ({where})"
    result = run_soak(SMARModel.load(args.model), args.catalog, args.seconds, store=args.store, uri=args.uri,
                      threads=args.threads, label=label, **options)
    print(HEADER)
    print(result.row())
    for line in result.problems:
        print(f"  {line}")
    if args.json:
        print(result.model_dump_json())


if __name__ == "__main__":
    main()

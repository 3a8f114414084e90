"""Indexing throughput and query latency of the shipped model on real Myntra products (embedded Qdrant).

- indexing: `SMARIndexer.index` items/s vs the model's own `encode_items` on the same products
  (ratio measured in one run; the indexer hides reading, decoding and writes behind the encoders);
- query latency: `SMARRetriever.search` end to end (query encoding included) vs query encoding alone,
  p50/p99 over the test queries, on the indexed products.

    python benchmarks/speed.py --data ../shared/data/myntra --items 1000 [--mirror-average]

About 3 minutes on 2 CPU cores for 1,000 items.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from smar_sdk import SMARIndexer, SMARModel, SMARRetriever


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/myntra")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--mirror-average", action="store_true",
                        help="index with the shipped model's config.mirror_average turned on")
    args = parser.parse_args()
    model = SMARModel.load()
    if args.mirror_average:
        model.config.mirror_average = True
    with tempfile.TemporaryDirectory() as tmp:
        rows = [json.loads(line) for line in (args.data / "catalog.jsonl").read_text().splitlines()[: args.items]]
        rows = [{**r, "image": str(args.data / r["image"])} for r in rows]
        catalog = Path(tmp) / "catalog.jsonl"
        catalog.write_text("".join(json.dumps(r) + "\n" for r in rows))
        model.encode_items(rows[:32])  # warm-up
        started = time.perf_counter()
        model.encode_items(rows)
        encode_rate = len(rows) / (time.perf_counter() - started)
        with SMARIndexer(model, uri=str(Path(tmp) / "store")) as indexer:
            report = indexer.index(catalog, progress=False)
        index_rate = report.indexed / report.seconds
        queries = [json.loads(line)["query"] for line in
                   (args.data / "test_queries_paraphrased.jsonl").read_text().splitlines()][: args.queries]
        encode_times, search_times = [], []
        with SMARRetriever(model, uri=str(Path(tmp) / "store")) as retriever:
            retriever.search(queries[0])
            for query in queries:
                t0 = time.perf_counter()
                model.encode_queries([query])
                t1 = time.perf_counter()
                retriever.search(query, k=10)
                t2 = time.perf_counter()
                encode_times.append(t1 - t0)
                search_times.append(t2 - t1)
    print(f"| items | encode_items items/s | SMARIndexer items/s | ratio |\n|---|---|---|---|\n"
          f"| {len(rows)} | {encode_rate:.1f} | {index_rate:.1f} | {index_rate / encode_rate:.2f} |\n")
    print("| | p50 ms | p99 ms |\n|---|---|---|")
    print(f"| query encoding alone | {percentile_ms(encode_times, 50):.1f} | {percentile_ms(encode_times, 99):.1f} |")
    print(f"| SMARRetriever.search (end to end) | {percentile_ms(search_times, 50):.1f} | "
          f"{percentile_ms(search_times, 99):.1f} |")


if __name__ == "__main__":
    main()

"""Peak memory of `smar-sdk index` against catalog size: the indexer streams, so 10x the rows is not 10x the RSS.

Each size gets a fresh catalog of N rows (distinct ids and titles; images are 64 small real JPEGs shared by the
rows) and a fresh store, indexed by the real CLI in its own process, whose peak RSS (``ru_maxrss`` from
``wait4``) and wall time are reported. The model is the tiny real model of the tests (2-layer BERT + slim
MobileNetV2, dim 16), so that 100,000 rows take minutes: the pipeline's memory does not depend on the model's
speed, while the model's own weights are a constant. The embedded Qdrant store lives in the indexing process
(its vectors count in that RSS); Milvus Lite runs its engine in a child process of its own.

    python benchmarks/memory.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.tiny_models import WORDS, tiny_config  # noqa: E402

IMAGES = 64
RESULTS = Path(__file__).parent / "results" / "memory.json"
STORES = {"qdrant": ("qdrant", "store"), "milvus-lite": ("milvus", "store.db")}  # name -> (--store, uri)


def write_catalog(folder: Path, rows: int, seed: int = 0) -> Path:
    """A JSON Lines catalog of ``rows`` products over ``IMAGES`` shared real JPEGs."""
    from PIL import Image

    rng = random.Random(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for i in range(IMAGES):
        Image.new("RGB", (48, 64), (i * 37 % 256, i * 91 % 256, i * 53 % 256)).save(folder / f"images/{i}.jpg")
    path = folder / "catalog.jsonl"
    with path.open("w") as out:
        for i in range(rows):
            title = " ".join(rng.choices(WORDS, k=5))
            out.write(json.dumps({"id": f"sku-{i}", "title": f"{title} {i}", "image": f"images/{i % IMAGES}.jpg",
                                  "colour": rng.choice(WORDS)}) + "\n")
    return path


def run_index(args: list[str], log: Path) -> tuple[dict[str, Any], float, float]:
    """Run ``smar-sdk index`` in a child process: (its JSON report, peak RSS in MB, wall seconds)."""
    command = [str(Path(sys.executable).parent / "smar-sdk"), "index", *args, "--quiet", "--json"]
    started = time.perf_counter()
    report = log.with_suffix(".json")
    with report.open("w") as out, log.open("w") as err:
        child = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # reap it here, with its own resource usage
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"smar-sdk index failed ({child.returncode}): {log.read_text()[-2000:]}")
    return json.loads(report.read_text()), usage.ru_maxrss / 1024, seconds


def measure(store: str, rows: int, model_dir: Path, tmp: Path) -> dict[str, Any]:
    """Index a fresh catalog of ``rows`` products into a fresh store; report counts, peak RSS and time."""
    connector, uri = STORES[store]
    folder = tmp / f"{store}-{rows}"
    catalog = write_catalog(folder, rows)
    report, peak_mb, seconds = run_index([str(catalog), "--model", str(model_dir), "--store", connector,
                                          "--uri", str(folder / uri)], folder / "index.log")
    if report["indexed"] != rows:
        raise RuntimeError(f"{store}: indexed {report['indexed']} of {rows} rows: {report}")
    return {"store": store, "rows": rows, "indexed": report["indexed"], "peak_rss_mb": peak_mb,
            "seconds": seconds, "rows_per_s": rows / seconds}


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| store | catalog rows | peak RSS MB | wall s | rows/s |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['store']} | {r['rows']:,} | {r['peak_rss_mb']:.0f} | {r['seconds']:.0f} | {r['rows_per_s']:.0f} |"
              for r in results]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--stores", nargs="+", default=list(STORES), choices=list(STORES))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    from smar_sdk import SMARModel

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="smar-memory-") as tmp_name:
        tmp = Path(tmp_name)
        model_dir = SMARModel(tiny_config(tmp / "tiny")).save(tmp / "model")
        for store in args.stores:
            for rows in args.sizes:
                results.append(measure(store, rows, model_dir, tmp))
                print(table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

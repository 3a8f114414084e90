"""Wall time of `smar-sdk` commands that need no model, each a fresh process (median of several runs).

    python benchmarks/cli_startup.py [--runs 5]

`--help`, and `count` and `delete` on an embedded store holding one product: what a shell script or a cron job pays
per call (`python -m smar_sdk`, so `PYTHONPATH=OTHER_CHECKOUT` times another version). Used for "Command-line
start-up" in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from smar_sdk.store import open_store


def median_seconds(command: list[str], runs: int) -> float:
    """Median wall time of ``command`` over ``runs`` fresh processes (each must succeed)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "smar_sdk"]
    with tempfile.TemporaryDirectory() as folder:
        store = str(Path(folder) / "store")
        with open_store("qdrant", uri=store) as opened:
            opened.ensure_collection(4)
            opened.upsert(["a"], np.ones((1, 4), dtype=np.float32), [{}])
        for name, command in [("smar-sdk --help", [*cli, "--help"]),
                              ("smar-sdk count", [*cli, "count", "--uri", store]),
                              ("smar-sdk delete (an unknown id)", [*cli, "delete", "nothing", "--uri", store])]:
            print(f"| {name} | {median_seconds(command, args.runs):.2f} |")


if __name__ == "__main__":
    main()

"""Crash and resume: `kill -9` during `smar-sdk index`, then the same command, ends with exactly the good rows."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smar_sdk import SMARModel, SMARRetriever, open_store


def _progress(stderr_path: Path) -> int:
    counts = re.findall(r"\| (\d+)/\d+ \[", stderr_path.read_text(errors="replace"))  # "| 488/600 [", not a rate
    return int(counts[-1]) if counts else 0


@pytest.mark.slow
@pytest.mark.integration
def test_kill_9_mid_index_then_rerun_resumes_without_duplicates(catalog: Path, tiny_model_dir: Path,
                                                                tmp_path: Path) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    big = [{**row, "id": f"{row['id']}-{copy}"} for copy in range(40) for row in rows]  # 1,200 products
    catalog.write_text("".join(json.dumps(r) + "\n" for r in big))
    store = tmp_path / "store"
    command = [sys.executable, "-m", "smar_sdk", "index", str(catalog), "--model", str(tiny_model_dir),
               "--uri", str(store), "--batch-size", "8", "--json"]
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        deadline = time.monotonic() + 120
        while _progress(stderr_path) < 100 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    done_before_kill = _progress(stderr_path)
    assert 0 < done_before_kill < len(big), f"the kill must land mid-run: {stderr_path.read_text()[-1500:]}"
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["rejected"] == 0
    assert report["unchanged"] >= done_before_kill - 8  # finished batches are not redone
    assert report["indexed"] + report["unchanged"] == len(big)
    with open_store("qdrant", uri=str(store)) as vectors:
        assert vectors.count() == len(big)
        assert vectors.ids() == {r["id"] for r in big}
    with SMARRetriever(SMARModel.load(tiny_model_dir), uri=str(store)) as retriever:
        hit = retriever.search("red shirt", k=1, filter={"title": "green bag"})[0]
        assert hit.payload["title"] == "green bag" and hit.id.startswith("sku-")

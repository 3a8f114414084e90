"""Server faults: a Milvus server that disappears mid-index is retried with backoff for a bounded time; past the
budget the command fails with a clear message, and a re-run completes with nothing lost or doubled.

The fast test needs no server (a closed loopback port); the others SIGKILL and restart a real ``milvus-server`` of
their own (``tests/milvus_server.py``) while ``smar-sdk index`` runs against it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")

from smar_milvus import MilvusStore  # noqa: E402

from smar_sdk import open_store  # noqa: E402
from smar_sdk.errors import StoreError  # noqa: E402
from tests.conftest import repeated_catalog  # noqa: E402
from tests.connectors.test_milvus import closed_port  # noqa: E402
from tests.milvus_server import MilvusServer, running_server  # noqa: E402
from tests.test_crash_resume import _progress as items_done  # noqa: E402

COPIES = 20  # 30 fixture products x 20 = 600 products, indexed 8 at a time
BATCH = "8"
RUN_SECONDS = 600


def test_retry_budget_bounds_an_unreachable_server() -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        MilvusStore(uri=uri, retry_seconds=2, timeout=3)
    waited = time.monotonic() - started
    assert 2 <= waited < 10, f"retried for {waited:.1f}s with a 2 s budget"  # budget + a last timeout + slack for load
    message = str(caught.value)
    assert uri in message and "retry_seconds=2" in message and "re-run the same command" in message
    assert "an index run skips the rows it finished" in message and "\n" not in message
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"retry_seconds=0\)"):
        MilvusStore(uri=uri, retry_seconds=0, timeout=3)
    assert time.monotonic() - started < 4, "retry_seconds=0 must fail at once"  # retrying would take 60 s


def test_retry_option_is_refused_by_connectors_without_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="'qdrant' does not take the option 'retry_seconds'"):
        open_store("qdrant", uri=str(tmp_path / "q"), retry_seconds=5)


# ----- a real server, killed and restarted mid-index -----
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    """A ``milvus-server`` of this module's own (the shared session one is never killed)."""
    yield from running_server(tmp_path_factory.mktemp("milvus-faults"))


def index_command(catalog: Path, model_dir: Path, uri: str, collection: str, retry_seconds: float) -> list[str]:
    return [sys.executable, "-m", "smar_sdk", "index", str(catalog), "--model", str(model_dir), "--store", "milvus",
            "--uri", uri, "--collection", collection, "--batch-size", BATCH, "--retry-seconds", str(retry_seconds),
            "--json"]


def start_and_kill_mid_index(command: list[str], server: MilvusServer, log: Path, total: int) -> subprocess.Popen:
    """Start the index command; SIGKILL the server once some (not all) products are committed."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    deadline = time.monotonic() + 180
    while items_done(log) < 100 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()
    done = items_done(log)
    assert process.poll() is None and 0 < done < total, f"the kill must land mid-index: {log.read_text()[-1500:]}"
    return process


def assert_exactly(uri: str, collection: str, rows: list[dict]) -> None:
    """The collection holds each catalog id once, with its own payload."""
    titles = {row["id"]: row["title"] for row in rows}
    with MilvusStore(uri=uri, collection=collection) as store:
        assert store.count() == len(rows)
        assert store.ids() == set(titles)
        stored = store.client.query(collection, filter='id != ""', output_fields=["id", "payload"], limit=len(rows) + 1)
    assert sorted(row["id"] for row in stored) == sorted(titles)  # no id twice
    assert all(row["payload"]["title"] == titles[row["id"]] for row in stored)


@pytest.mark.slow
@pytest.mark.integration
def test_server_killed_and_restarted_mid_index_finishes_exactly(server: MilvusServer, catalog: Path,
                                                                tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = repeated_catalog(catalog, COPIES)
    log = tmp_path / "stderr.txt"
    process = start_and_kill_mid_index(index_command(catalog, tiny_model_dir, server.uri, "restarted", 120),
                                       server, log, len(rows))
    time.sleep(3)
    server.start()
    out, _ = process.communicate(timeout=RUN_SECONDS)
    assert process.returncode == 0, log.read_text()[-3000:]
    report = json.loads(out)
    assert report["indexed"] + report["unchanged"] == len(rows) and report["rejected"] == 0
    assert "retrying" in log.read_text()  # the connector said what it was doing
    assert_exactly(server.uri, "restarted", rows)


@pytest.mark.slow
@pytest.mark.integration
def test_server_down_past_the_budget_fails_clearly_then_rerun_completes(server: MilvusServer, catalog: Path,
                                                                        tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = repeated_catalog(catalog, COPIES)
    log = tmp_path / "stderr.txt"
    command = index_command(catalog, tiny_model_dir, server.uri, "abandoned", 3)
    process = start_and_kill_mid_index(command, server, log, len(rows))
    killed_at = time.monotonic()
    done_before_kill = items_done(log)
    process.communicate(timeout=60)  # the server stays down: the command gives up after its 3 s budget
    gave_up_after = time.monotonic() - killed_at
    message = log.read_text().strip().splitlines()[-1]
    assert process.returncode == 1, log.read_text()[-3000:]
    assert message.startswith("Error: ") and server.uri in message, message
    assert "no answer after retrying for" in message and "retry_seconds=3" in message, message
    assert "re-run the same command (an index run skips the rows it finished)" in message, message
    server.start()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=RUN_SECONDS)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    report = json.loads(rerun.stdout)
    assert report["unchanged"] >= done_before_kill - int(BATCH), "finished batches must not be re-encoded"
    assert report["indexed"] + report["unchanged"] == len(rows) and report["rejected"] == 0
    assert_exactly(server.uri, "abandoned", rows)
    print(f"gave up {gave_up_after:.1f}s after the kill; {report['unchanged']} rows skipped on the re-run")

"""API keys and tokens never appear in errors, logs or `info`, whichever connector fails."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import warnings

import pytest
from click.testing import CliRunner

from smar_sdk import StoreError, open_store
from smar_sdk.cli import main

from .conftest import python_code

SECRET = "sk-live-DO-NOT-LEAK-4242"
_MAJOR, _MINOR = map(int, importlib.metadata.version("qdrant-client").split(".")[:2])
OLD_SERVER = f"{_MAJOR}.{max(0, _MINOR - 5)}.3"  # what the fake Qdrant server says it runs: too old for this client


@pytest.mark.parametrize(("store", "options"), [("qdrant", {}), ("milvus", {"retry_seconds": 1})])
def test_unreachable_server_error_hides_the_key(store: str, options: dict, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with (pytest.raises(StoreError) as caught,
          open_store(store, uri="http://127.0.0.1:9", collection="products", api_key=SECRET, timeout=3,
                     **options) as s):
        s.count()
    message = str(caught.value)
    assert "127.0.0.1:9" in message and SECRET not in message
    assert SECRET not in caplog.text


def test_cli_never_prints_the_key(tiny_model_dir, tmp_path) -> None:
    runner = CliRunner()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unreachable server is one line: no qdrant-client warning before it
        result = runner.invoke(main, ["search", "shoes", "--model", str(tiny_model_dir), "--uri", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "checking the collection (collection 'products') failed" in result.output
    result = runner.invoke(main, ["count", "--uri", "http://127.0.0.1:9", "--api-key", SECRET])
    assert result.exit_code == 1 and "127.0.0.1:9" in result.output and SECRET not in result.output
    result = runner.invoke(main, ["info", "--model", str(tiny_model_dir), "--uri", str(tmp_path / "s"), "--json"],
                           env={"SMAR_API_KEY": SECRET})
    assert SECRET not in result.output


def test_info_hides_a_password_in_the_uri(tiny_model_dir, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from smar_sdk.store import safe_uri

    assert safe_uri("http://alice:hunter2@db.example:19530/x") == "http://***@db.example:19530/x"
    assert safe_uri("./smar_data") == "./smar_data"
    result = CliRunner().invoke(main, ["info", "--model", str(tiny_model_dir), "--uri",
                                       f"http://alice:{SECRET}@127.0.0.1:9", "--json"])
    assert result.exit_code == 1 and "127.0.0.1:9" in result.output and SECRET not in result.output  # unreachable
    with open_store("qdrant", uri=str(tmp_path / "s")) as reachable, monkeypatch.context() as patch:
        patch.setattr("smar_sdk.store.open_store", lambda **_: reachable)  # a server that answers
        result = CliRunner().invoke(main, ["info", "--model", str(tiny_model_dir), "--uri",
                                           f"http://alice:{SECRET}@db.example:6333", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["uri"] == "http://***@db.example:6333"


def test_retry_budget_for_milvus_does_not_break_qdrant_commands(tmp_path) -> None:
    """SMAR_RETRY_SECONDS is a Milvus setting: the Qdrant connectors take no retry budget and must not fail on it."""
    with open_store("qdrant", uri=str(tmp_path / "s")) as store:
        store.ensure_collection(8)
    result = CliRunner().invoke(main, ["count", "--uri", str(tmp_path / "s")], env={"SMAR_RETRY_SECONDS": "30"})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "0"


def test_an_unreachable_qdrant_server_is_one_line(tiny_model_dir) -> None:
    """qdrant-client's version check warns from a thread of its own: the process must still print one line."""
    import subprocess
    import sys

    from smar_qdrant import QdrantStore

    result = subprocess.run([sys.executable, "-m", "smar_sdk", "search", "shoes", "--model", str(tiny_model_dir),
                             "--uri", "http://127.0.0.1:9"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: checking the collection") and result.stderr.count("\n") == 1, result.stderr
    with QdrantStore(uri="http://127.0.0.1:9") as store:  # a server's answer over several lines (a 401's body)
        answer = RuntimeError("Unexpected Response: 401\nRaw response content:\nb'{}'")
        message = str(store._failure("searching", answer))
    assert "\n" not in message and "Unexpected Response: 401 Raw response content: b'{}'" in message


@pytest.fixture()
def fake_qdrant_server(tmp_path):
    """A Qdrant REST server stand-in over HTTP: it holds one collection, ``products`` of 8-d vectors (described as
    qdrant-client's own local mode describes it), and answers that no other exists."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from qdrant_client import QdrantClient, models

    local = QdrantClient(path=str(tmp_path / "local"))
    local.create_collection("products", vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE))
    info = local.get_collection("products").model_dump_json()
    local.close()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            result = ('{"exists": true}' if self.path.endswith("/products/exists") else '{"exists": false}'
                      if self.path.endswith("/exists") else info)
            body = (f'{{"status": "ok", "time": 0.0, "result": {result}}}' if self.path != "/"
                    else f'{{"title": "qdrant", "version": "{OLD_SERVER}"}}').encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_password_in_a_qdrant_url_is_never_shown(fake_qdrant_server: str) -> None:
    import numpy as np

    url = f"http://admin:{SECRET}@{fake_qdrant_server}"
    for collection, action, message in [
            ("products", lambda s: s.ensure_collection(16), "holds 8-d vectors"),
            ("products", lambda s: s.ensure_collection(8, metric="dot"), "cosine"),
            ("missing", lambda s: s.search(np.ones((1, 8), dtype=np.float32), k=1), "does not exist"),
            ("missing", lambda s: s.upsert(["a"], np.ones((1, 8), dtype=np.float32), [{}]), "does not exist")]:
        with warnings.catch_warnings(), pytest.raises(StoreError, match=message) as caught:
            warnings.simplefilter("ignore")  # qdrant-client on a plain-HTTP URL with credentials
            action(open_store("qdrant", uri=url, collection=collection, timeout=0.5))
        assert f"http://***@{fake_qdrant_server}" in str(caught.value) and SECRET not in str(caught.value)


def test_a_key_over_plain_http_is_one_warning_line_of_ours() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "smar_sdk", "count", "--uri", "http://127.0.0.1:9", "--api-key",
                             SECRET, "--retry-seconds", "0"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "UserWarning" not in result.stderr and SECRET not in result.stderr
    assert result.stderr.count("the API key goes to http://127.0.0.1:9 over plain http://") == 1, result.stderr


def test_a_server_too_old_for_the_client_is_one_warning_line_of_ours(fake_qdrant_server: str) -> None:

    from smar_qdrant.store import version_advice

    assert version_advice("1.20.0", "1.19.4") is None and version_advice("1.20.0", "1.21.0") is None
    assert version_advice("1.20.0", "dev") is None  # nothing to compare: no advice
    assert version_advice("1.20.0", "1.15.2") == ('upgrade the server to 1.20, or install the client of its version '
                                                  '(pip install "qdrant-client~=1.15.0")')
    assert version_advice("1.20.0", "1.9.0") == "upgrade the server to 1.20"  # no client this SDK takes speaks 1.9
    assert version_advice("1.20.0", "2.0.1") == ('upgrade the server to 1.20, or install the client of its version '
                                                 '(pip install "qdrant-client~=2.0.0")')
    opener = (f"from smar_sdk import open_store\nstore = open_store('qdrant', uri='http://admin:{SECRET}@"
              f"{fake_qdrant_server}', timeout=2)\nstore._version_check.join(10)\nstore.close()\n")
    result = python_code(opener)
    client = importlib.metadata.version("qdrant-client")
    assert "Warning" not in result.stderr and SECRET not in result.stderr  # not qdrant-client's raw UserWarning
    assert result.stderr.strip().splitlines() == [
        f"the Qdrant server at http://***@{fake_qdrant_server} runs {OLD_SERVER}, which qdrant-client {client} does "
        f"not support (it speaks to servers within one minor version of its own): {version_advice(client, OLD_SERVER)}"]


def test_the_sdk_leaves_the_process_warnings_and_logging_alone(tiny_model_dir) -> None:
    """The SDK's own one-line messages must not silence the user's: their own QdrantClient still warns about a key
    over http://, and their transformers verbosity and progress bars are theirs after a model loads."""

    from transformers.utils import logging as hf_logging

    from smar_sdk import SMARModel

    user_code = ("from smar_sdk import open_store\n"
                 "open_store('qdrant', uri='http://127.0.0.1:9', api_key='k', timeout=1).close()\n"
                 "from qdrant_client import QdrantClient\n"
                 "QdrantClient(url='http://127.0.0.1:9', api_key='k', check_compatibility=False)\n")
    result = python_code(user_code)
    assert result.stderr.count("the API key goes to http://127.0.0.1:9 over plain http://") == 1  # the SDK's line
    assert result.stderr.count("UserWarning: Api key is used with an insecure connection") == 1  # the user's own
    hf_logging.set_verbosity_warning()
    hf_logging.enable_progress_bar()
    SMARModel.load(tiny_model_dir)
    assert hf_logging.get_verbosity() == hf_logging.WARNING and hf_logging.is_progress_bar_enabled()

"""API keys and tokens never appear in errors, logs or `info`, whichever connector fails."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from smar_sdk import StoreError, open_store
from smar_sdk.cli import main

SECRET = "sk-live-DO-NOT-LEAK-4242"


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
    result = runner.invoke(main, ["count", "--uri", "http://127.0.0.1:9", "--api-key", SECRET])
    assert result.exit_code == 1 and "127.0.0.1:9" in result.output and SECRET not in result.output
    result = runner.invoke(main, ["info", "--model", str(tiny_model_dir), "--uri", str(tmp_path / "s"), "--json"],
                           env={"SMAR_API_KEY": SECRET})
    assert SECRET not in result.output

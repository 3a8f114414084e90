"""Load: 8 threads search while another indexes, through one shared store, for a bounded time (benchmarks/soak.py):
zero errors and every result well formed, on each embedded engine and on a real Milvus server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.soak import problem, run_soak
from smar_sdk import SMARModel
from smar_sdk.store import Hit
from tests.conftest import repeated_catalog

SECONDS = 12
CASES = [
    pytest.param("qdrant", {"engine": "local"}, id="qdrant-local"),
    pytest.param("qdrant", {"engine": "edge"}, id="qdrant-edge"),
    pytest.param("milvus", {}, id="milvus-lite"),
    pytest.param("milvus", {"uri": "milvus_server_uri"}, id="milvus-server",
                 marks=[pytest.mark.integration, pytest.mark.slow]),
]


def test_malformed_results_are_caught() -> None:
    titles = {"a": "red shirt", "b": "blue shoes"}
    good = [Hit(id="a", score=0.9, payload={"title": "red shirt"}),
            Hit(id="b", score=0.5, payload={"title": "blue shoes"})]
    assert problem(good, 2, titles) is None
    assert "hits for k=1" in problem(good, 1, titles)
    assert "twice" in problem([good[0], good[0]], 2, titles)
    assert "not in the catalog" in problem([Hit(id="z", score=1.0, payload={})], 2, titles)
    assert "best first" in problem(good[::-1], 2, titles)
    assert "best first" in problem([good[0].model_copy(update={"score": float("nan")})], 2, titles)
    assert "other products" in problem([good[0].model_copy(update={"payload": {"title": "blue shoes"}})], 2, titles)


@pytest.mark.parametrize(("store", "options"), CASES)
def test_eight_searchers_and_one_indexer_for_a_while(store: str, options: dict[str, Any], catalog: Path,
                                                     tiny_model_dir: Path, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    if store == "qdrant" and options["engine"] == "edge":
        pytest.importorskip("qdrant_edge")
    if store == "milvus":
        pytest.importorskip("pymilvus")
    if "uri" in options:
        options = {**options, "uri": request.getfixturevalue(options["uri"])}
    repeated_catalog(catalog, 10)  # 300 products: the indexing thread cycles through 5 chunks
    result = run_soak(SMARModel.load(tiny_model_dir), catalog, SECONDS, store=store, work_dir=tmp_path,
                      label=request.node.callspec.id, **options)
    print(result.row())
    assert result.errors == 0 and result.malformed == 0, result.problems
    assert result.searches > 8 and result.indexed > 0, result
    assert SECONDS <= result.seconds < SECONDS + 60

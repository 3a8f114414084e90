"""End to end with the shipped default model on real Myntra products: the real `smar-sdk` CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smar_sdk import SMARModel
from smar_sdk.model import DEFAULT_MODEL_DIR

from .conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "catalog.jsonl").is_file(), reason="shared Myntra data not found")


def smar(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "smar_sdk", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def small_myntra(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 60 test-split products of the shared catalog, with absolute image paths."""
    root = tmp_path_factory.mktemp("myntra")
    rows = []
    for line in (SHARED_DATA / "catalog.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["split"] == "test":
            rows.append({**row, "image": str(SHARED_DATA / row["image"])})
        if len(rows) == 60:
            break
    (root / "catalog.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_shipped_model_loads_offline_and_is_small() -> None:
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir())
    assert sorted(p.name for p in DEFAULT_MODEL_DIR.iterdir()) == ["config.json", "model.safetensors"]
    assert size < 40 * 1024 * 1024  # heads, float16 image trunk, float32 tuned image blocks and query layers
    model = SMARModel.load()
    assert model.encode_queries(["red heels"]).shape == (1, model.dim)
    assert model.config.training.get("only") == {"split": "train"}


def test_cli_index_search_filter_count_on_real_products(small_myntra: Path) -> None:
    indexed = smar("index", "catalog.jsonl", "-q", cwd=small_myntra)
    assert indexed.returncode == 0, indexed.stderr
    assert "indexed 60, rejected 0" in indexed.stdout
    assert (small_myntra / "smar_data").is_dir()  # the embedded default store
    assert smar("count", cwd=small_myntra).stdout.strip() == "60"
    rows = [json.loads(line) for line in (small_myntra / "catalog.jsonl").read_text().splitlines()]
    # query the attributes of products that are present: their own kind must come first
    for row in rows[:2]:
        query = f"{row['colour']} {row['article_type']} for {row['gender']}".lower()
        found = smar("search", query, "-k", "5", "--json", cwd=small_myntra)
        assert found.returncode == 0, found.stderr
        hits = json.loads(found.stdout)["hits"]
        assert hits[0]["payload"]["article_type"] == row["article_type"], (query, hits[0]["payload"]["title"])
    women = json.loads(smar("search", "heels", "--filter", "gender=Women", "--json", "-k", "20",
                            cwd=small_myntra).stdout)["hits"]
    assert women and all(h["payload"]["gender"] == "Women" for h in women)

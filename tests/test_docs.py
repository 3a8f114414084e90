"""README.md's quick start and docs/model.md's examples run as written, with the shipped model, on a real catalog."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from smar_sdk import SMARRetriever

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), flags=re.MULTILINE | re.DOTALL)


def run_block(path: Path, index: int, names: dict) -> dict:
    """Execute the ``index``-th Python block of ``path`` with ``names`` defined first; return its namespace."""
    namespace = dict(names)
    exec(compile(python_blocks(path)[index], str(path), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


@pytest.fixture()
def in_catalog_folder(catalog: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Work beside ``catalog.jsonl``, with a copy of its images under ``catalog_folder/`` as the docs name it."""
    monkeypatch.chdir(catalog.parent)
    for name in ("catalog_folder", "catalog-folder"):
        shutil.copytree(catalog.parent / "images", catalog.parent / name / "images")
    return [json.loads(line) for line in catalog.read_text().splitlines()]


def test_readme_quick_start(in_catalog_folder: list[dict]) -> None:
    names = run_block(ROOT / "README.md", 0, {"rows": in_catalog_folder})
    dim = names["model"].dim
    assert Path("smar_data").is_dir()
    hits = names["hits"]
    assert 0 < len(hits) <= 10 and all(hit.payload["gender"] == "Women" for hit in hits)
    assert names["vecs"].shape == (len(in_catalog_folder), dim) and names["vecs"].dtype == np.float32
    assert np.allclose(np.linalg.norm(names["vecs"], axis=1), 1.0, atol=1e-5)
    assert names["qv"].shape == (1, dim)


def test_model_guide_encoding_and_synonyms(in_catalog_folder: list[dict]) -> None:
    rows = in_catalog_folder
    with Image.open(rows[0]["image"]) as image:
        pil_image = image.convert("RGB")
    shop_rows = [{"name": row["title"], "photo": row["image"]} for row in rows]
    names = run_block(ROOT / "docs" / "model.md", 0, {"rows": rows, "pil_image": pil_image, "shop_rows": shop_rows})
    dim = names["model"].dim
    assert names["q"].shape == (1, dim) and names["vecs"].shape == (1, dim)
    assert names["items"].shape == names["text_only"].shape == (len(rows), dim)
    np.testing.assert_array_equal(names["mine"], names["items"])  # the same products under other field names
    assert not np.allclose(names["items"], names["text_only"])  # the fused view is not the title alone

    Path("shop-synonyms.txt").write_text("heels, stilettos\ncasual shoes, kicks, sneakers\n")
    index = run_block(ROOT / "README.md", 0, {"rows": rows})  # the quick start fills ./smar_data
    names = run_block(ROOT / "docs" / "model.md", 1, {"model": index["model"]})
    assert names["synonyms"].rewrite("black stilettos") == "black heels"
    with SMARRetriever(index["model"], uri="./smar_data") as retriever:
        assert [h.id for h in names["hits"]] == [h.id for h in retriever.search("black heels")]
        assert [h.id for h in names["hits"]] != [h.id for h in retriever.search("black stilettos")]

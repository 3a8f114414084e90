"""Fixtures: tiny real models (built by ``tests/tiny_models.py``) and real JPEG catalogs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import settings
from PIL import Image

from smar_sdk import SMARConfig, SMARModel
from tests.tiny_models import tiny_config as build_tiny_config

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "myntra"
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 60), "black": (15, 15, 15),
           "white": (245, 245, 245), "yellow": (240, 220, 40)}
ARTICLES = ["shirt", "shoes", "dress", "watch", "bag"]

# Property tests replay a fixed set of examples, so a CI run is repeatable; SMAR_HYPOTHESIS=explore draws new ones.
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("SMAR_HYPOTHESIS") == "explore" else "fixed")


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> SMARConfig:
    return build_tiny_config(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_model(tiny_config: SMARConfig) -> SMARModel:
    torch.manual_seed(0)
    return SMARModel(tiny_config)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_model: SMARModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model.save(tmp_path_factory.mktemp("saved") / "model")


def write_jpeg(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (48, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    for x in range(0, size[0], 8):  # a little texture so the JPEG is not a flat block
        for y in range(0, size[1], 8):
            image.putpixel((x, y), (x * 4 % 256, y * 4 % 256, 128))
    image.save(path, "JPEG", quality=90)


def product_rows() -> list[dict]:
    rows = []
    for i, (colour, article) in enumerate((c, a) for c in COLOURS for a in ARTICLES):
        rows.append({"id": f"sku-{i:03d}", "title": f"{colour} {article}", "image": f"images/{i:03d}.jpg",
                     "gender": "Women" if i % 2 else "Men", "colour": colour, "article_type": article,
                     "year": 2010 + i % 7})
    return rows


@pytest.fixture()
def catalog(tmp_path: Path) -> Path:
    """30 products (6 colours x 5 articles) with real JPEG images beside the catalog."""
    rows = product_rows()
    for i, row in enumerate(rows):
        write_jpeg(tmp_path / row["image"], COLOURS[row["colour"]])
        assert i == int(row["image"][7:10])
    path = tmp_path / "catalog.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def repeated_catalog(catalog: Path, copies: int) -> list[dict]:
    """Rewrite ``catalog`` as ``copies`` copies of its products (ids ``<id>-<copy>``, same images); return the rows."""
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    repeated = [{**row, "id": f"{row['id']}-{copy}"} for copy in range(copies) for row in rows]
    catalog.write_text("".join(json.dumps(row) + "\n" for row in repeated))
    return repeated


@pytest.fixture()
def pairs(catalog: Path) -> Path:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    lines = []
    for row in rows:
        for query in (f"{row['colour']} {row['article_type']}", f"{row['article_type']} {row['colour']}",
                      f"nice {row['colour']} {row['article_type']} for {row['gender'].lower()}"):
            lines.append(json.dumps({"query": query, "item_id": row["id"]}))
    path = catalog.parent / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def myntra_like(tmp_path: Path) -> Path:
    return write_myntra_like(tmp_path / "myntra")


def write_myntra_like(folder: Path) -> Path:
    """A folder shaped like ``../shared/data/myntra``: 30 products (every third one in the test split) with photos
    and thumbnails, both catalogs, both test query files and training pairs, in the tiny models' words."""
    rows = [{**row, "split": "test" if i % 3 == 0 else "train", "thumbnail": row["image"].replace("images", "thumbs")}
            for i, row in enumerate(product_rows())]
    for row in rows:
        write_jpeg(folder / row["image"], COLOURS[row["colour"]])
        write_jpeg(folder / row["thumbnail"], COLOURS[row["colour"]], size=(30, 40))
    no_colour = [{**row, "title": row["article_type"]} for row in rows]
    tests = [row for row in rows if row["split"] == "test"]
    queries = {f"{row['colour']} {row['article_type']}": [row["id"]] for row in tests}
    files = {
        "catalog.jsonl": rows,
        "catalog_no_colour.jsonl": no_colour,
        "test_queries.jsonl": [{"query": q, "relevant": ids} for q, ids in queries.items()],
        "test_queries_paraphrased.jsonl": [{"query": f"nice {q}", "relevant": ids} for q, ids in queries.items()],
        "train_pairs.jsonl": [{"query": f"{row['colour']} {row['article_type']}", "item_id": row["id"]}
                              for row in rows if row["split"] == "train"],
    }
    for name, lines in files.items():
        (folder / name).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def run_python(*args: str | Path, home: Path) -> str:
    """Run ``python ARGS`` as a user would, in ``home`` (also its HOME, so caches stay there), offline; its output."""
    env = {**os.environ, "HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, *map(str, args)], cwd=home, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def python_code(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -c CODE`` in a fresh interpreter (no module state carried over from the tests); it must succeed."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result

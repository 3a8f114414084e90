"""Pictures at sizes training never used: held-out nDCG@10 with each product photo downscaled.

Training takes each pair's picture from the 224 x 224 photo or the 60 x 80 thumbnail. A shop's pictures can come at
any size in between or below, so this scores a ``quality.py --holdout F`` model on the products it never saw with
every photo shrunk to ``N x N`` (bicubic) for each ``--sizes`` entry, next to the photos and thumbnails as they are.
Items are encoded through ``SMARModel.encode_items``, the indexer's path: the full image tower and the model's own
second stage. Queries are the training wording and one rewording (``view_blend.held_out_slice``); the test split is
never read.

    python benchmarks/image_sizes.py /tmp/smar_hold --sizes 32 96 160 --out benchmarks/results/image_sizes.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from quality import CATALOGS, DEFAULT_DATA, Bench, rank_scores
from view_blend import held_out_slice

from smar_sdk import SMARModel
from smar_sdk.catalog import Product
from smar_sdk.evaluation import score_rankings
from smar_sdk.features import DEFAULT_CACHE_DIR
from smar_sdk.images import ImageLoader

AS_THEY_ARE = ("photo", "thumbnail")


def picture(data: Path, product: Product, size: str) -> Image.Image:
    """``product``'s photo, its thumbnail, or its photo downscaled to ``size x size`` pixels."""
    field = "thumbnail" if size == "thumbnail" else "image"
    image = ImageLoader(base_dir=data).load(product.payload[field])  # the indexer's decoding
    return image if size in AS_THEY_ARE else image.resize((int(size), int(size)), Image.Resampling.BICUBIC)


def size_cells(bench: Bench, model: SMARModel, sizes: list[str]) -> dict[str, float]:
    """nDCG@10 per held-out cell: catalog / picture size / wording."""
    cells = {}
    for catalog in CATALOGS:
        wordings, items = held_out_slice(bench, model, catalog)
        ids = [p.id for p in items]
        query_vectors = {wording: model.encode_queries([q.query for q in labelled])
                         for wording, labelled in wordings.items()}
        for size in sizes:
            rows = [{"title": p.text, "image": picture(bench.data, p, size)} for p in items]
            stored = model.encode_items(rows)
            for wording, labelled in wordings.items():
                cell = f"{catalog} / {size} / {wording}"
                rankings = rank_scores(query_vectors[wording] @ stored.T, ids)
                cells[cell] = score_rankings(labelled, rankings, ["ndcg@10"])["ndcg@10"]
                print(f"{cell}: {cells[cell]:.4f}", flush=True)
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a model directory from quality.py --holdout")
    parser.add_argument("--sizes", nargs="+", type=int, default=[32, 96, 160],
                        help="square sizes in pixels to downscale the photos to")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "image_sizes.json")
    args = parser.parse_args()
    model = SMARModel.load(args.model).eval()
    sizes = [*AS_THEY_ARE, *map(str, args.sizes)]
    cells = size_cells(Bench(args.data, epochs=0, cache_dir=DEFAULT_CACHE_DIR), model, sizes)
    print("\n| catalog | " + " | ".join(sizes) + " |\n|---|" + "---:|" * len(sizes))
    for catalog in CATALOGS:
        means = [np.mean([score for cell, score in cells.items() if cell.startswith(f"{catalog} / {size} /")])
                 for size in sizes]
        print(f"| {catalog} | " + " | ".join(f"{m:.4f}" for m in means) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": str(args.model), "sizes": sizes, "cells": cells}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Real product and query vectors of the shipped model, for store benchmarks at catalog scale.

Every Myntra product appears four times, as four real catalog entries: its title with and without colour words
(`catalog.jsonl`, `catalog_no_colour.jsonl`) times its 224-px photo and its 60x80 thumbnail. Each entry's fused
vector comes from the shipped model's heads on the frozen-backbone states of ``benchmarks/quality.py``'s feature
cache (computed once, ~25 images/s, then read from disk), so 4 x 9,583 = 38,332 distinct item vectors; the
queries are the 800 test queries (both query files) through the shipped query tower.

    python benchmarks/product_vectors.py   # builds ~/.cache/smar-sdk/bench/product_vectors.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from quality import CATALOGS, DEFAULT_DATA, IMAGE_FIELDS, QUERY_FILES, Bench, item_views

from smar_sdk import SMARModel
from smar_sdk.features import DEFAULT_CACHE_DIR

DEFAULT_OUT = Path.home() / ".cache" / "smar-sdk" / "bench" / "product_vectors.npz"
SPLITS = ("train", "test")


@torch.inference_mode()
def build(data: Path = DEFAULT_DATA) -> dict[str, np.ndarray]:
    """Item vectors, ids, titles and query vectors (see the module docstring)."""
    bench, model = Bench(data, epochs=0, cache_dir=DEFAULT_CACHE_DIR), SMARModel.load().eval()
    vectors, ids, titles = [], [], []
    for catalog in CATALOGS:
        for image_field in IMAGE_FIELDS:
            for split in SPLITS:
                products = bench.products(catalog, split)
                vectors.append(item_views(model, *bench.states(products, image_field, model),
                                          [p.text for p in products])["fused"])
                ids += [f"{p.id}/{Path(catalog).stem}/{image_field}" for p in products]
                titles += [p.text for p in products]
    queries = [q.query for name in QUERY_FILES for q in bench.queries[name]]
    return {"items": np.concatenate(vectors).astype(np.float32), "ids": np.array(ids), "titles": np.array(titles),
            "queries": model.encode_queries(queries).astype(np.float32), "query_texts": np.array(queries)}


def load(path: Path = DEFAULT_OUT, data: Path = DEFAULT_DATA) -> dict[str, np.ndarray]:
    """The saved vectors, built first when ``path`` does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = build(data)
        np.savez(path.with_suffix(".tmp.npz"), **arrays)
        path.with_suffix(".tmp.npz").replace(path)
    with np.load(path) as saved:
        return {name: saved[name] for name in saved.files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    arrays = load(args.out, args.data)
    print(f"{len(arrays['items']):,} item vectors and {len(arrays['queries'])} query vectors in {args.out}")


if __name__ == "__main__":
    main()

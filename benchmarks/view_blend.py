"""SMAR's second stage, measured: item vectors that blend the shipped model's fused and text views.

With one query tower, scoring an item by ``q.fused + w * q.text`` is the same as storing one vector per item,
``normalise(fused + w * text)``: no second vector or second search. ``w`` is chosen on the validation slice of
the train split (``benchmarks/quality.py``: 300 train queries over 2,000 train products, both catalogs, photos);
the test split's numbers for every ``w`` are printed for diagnosis only, never for choosing.

    python benchmarks/view_blend.py --out benchmarks/results/view_blend.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from quality import CATALOGS, DEFAULT_DATA, IMAGE_FIELDS, QUERY_FILES, Bench, item_views, rank

from smar_sdk import SMARModel
from smar_sdk.evaluation import score_rankings
from smar_sdk.features import DEFAULT_CACHE_DIR

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def blended(views: dict[str, np.ndarray], weight: float) -> np.ndarray:
    vectors = views["fused"] + weight * views["text"]
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "view_blend.json")
    args = parser.parse_args()
    bench, model = Bench(args.data, epochs=0, cache_dir=DEFAULT_CACHE_DIR), SMARModel.load().eval()
    slices = []  # per catalog: validation queries, their vectors, item views and ids (the same for every w)
    for catalog in CATALOGS:
        queries, items = bench.validation_slice(catalog)
        slices.append((queries, model.encode_queries([q.query for q in queries]),
                       item_views(model, *bench.states(items, "image", model)), [p.id for p in items]))
    validation = {weight: float(np.mean([
        score_rankings(queries, rank(vectors, blended(views, weight), ids), ["ndcg@10"])["ndcg@10"]
        for queries, vectors, views, ids in slices])) for weight in WEIGHTS}
    chosen = max(WEIGHTS, key=lambda w: (round(validation[w], 4), -w))  # ties go to the smaller blend
    rows = []
    for catalog in CATALOGS:
        test = bench.products(catalog, "test")
        for field in IMAGE_FIELDS:
            views = item_views(model, *bench.states(test, field, model))
            for query_file in QUERY_FILES:
                queries = bench.queries[query_file]
                query_vectors = model.encode_queries([q.query for q in queries])
                for weight in WEIGHTS:
                    metrics = score_rankings(queries, rank(query_vectors, blended(views, weight), [p.id for p in test]))
                    rows.append({"catalog": catalog, "image_field": field, "queries": query_file, "w": weight,
                                 **metrics})
    print("| w | validation nDCG@10 |\n|---:|---:|")
    print("\n".join(f"| {w} | {validation[w]:.4f} |" for w in WEIGHTS))
    print(f"\nchosen on validation: w = {chosen}\n")
    print("| catalog | images | queries | " + " | ".join(f"w={w}" for w in WEIGHTS) + " |")
    print("|---|---|---|" + "---:|" * len(WEIGHTS))
    for i in range(0, len(rows), len(WEIGHTS)):
        group = rows[i:i + len(WEIGHTS)]
        cells = " | ".join(f"{r['ndcg@10']:.3f} / {r['recall@50']:.3f}" for r in group)
        print(f"| {group[0]['catalog']} | {group[0]['image_field']} | {group[0]['queries']} | {cells} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"validation": validation, "chosen": chosen, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

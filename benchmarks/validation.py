"""Score saved models on the validation slice of the train split: how recipe choices are made, never on test.

The slice is ``quality.Bench.validation_slice``: 300 train-split queries over 2,000 train-split products,
for both catalogs and both image sizes (fused view). Its products and wordings were seen in training, so it
flatters every model alike; it ranks recipes, it does not predict test numbers.

    python benchmarks/validation.py /work/runs/smar_aug8 /work/runs/smar_colour

With ``--holdout``, models trained by ``quality.py --holdout F`` are scored on the fraction F of train-split
products they never saw, with training queries about them: a check of generalisation to unseen products.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from quality import CATALOGS, DEFAULT_DATA, IMAGE_FIELDS, Bench, item_views, rank

from smar_sdk import SMARModel
from smar_sdk.evaluation import score_rankings
from smar_sdk.features import DEFAULT_CACHE_DIR


def validation_scores(bench: Bench, model: SMARModel, holdout: bool = False) -> dict[str, float]:
    """nDCG@10 of the fused view per catalog and image field, and their mean (on the held-out slice when
    ``holdout``: the products the model was not trained on)."""
    fraction = float(model.config.training.get("holdout", 0.0))
    if holdout and not fraction:
        raise SystemExit("this model was trained on every train-split product: train it with quality.py --holdout")
    scores = {}
    for catalog in CATALOGS:
        queries, items = bench.holdout_slice(catalog, fraction) if holdout else bench.validation_slice(catalog)
        query_vectors = model.encode_queries([q.query for q in queries])
        for field in IMAGE_FIELDS:
            views = item_views(model, *bench.states(items, field, model), [p.text for p in items])
            ranking = rank(query_vectors, views["fused"], [p.id for p in items])
            scores[f"{catalog}/{field}"] = score_rankings(queries, ranking, ["ndcg@10"])["ndcg@10"]
    scores["mean"] = sum(scores.values()) / len(scores)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="saved model directories")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--holdout", action="store_true",
                        help="score on the products each model was not trained on (models from quality.py --holdout)")
    args = parser.parse_args()
    bench = Bench(args.data, epochs=0, cache_dir=DEFAULT_CACHE_DIR)
    for directory in args.models:
        scores = validation_scores(bench, SMARModel.load(directory).eval(), args.holdout)
        print(json.dumps({"model": str(directory), **{k: round(v, 4) for k, v in scores.items()}}))


if __name__ == "__main__":
    main()

"""Pseudo-relevance feedback (Rocchio on dense vectors), judged on held-out products.

A second search with ``q' = normalise(q + a * mean(vectors of the first search's top k items))``: the first results
stand for the product the shopper described, so their centroid pulls up items that share what they share
(gender, colour, article type). With SMAR the feedback vectors can be the stored ones or the items' image views
("find what looks like the first results"); a text-only model has only its title vectors.

Scored like ``view_blend.py``: models trained by ``quality.py --holdout F`` (``--save-smar`` / ``--save-models``),
over the products they never saw, both catalogs, both image sizes, training wording and one rewording. The test
split is never read.

    python benchmarks/feedback.py /tmp/smar_hold /tmp/models/text-only-trained --out benchmarks/results/feedback.json
"""

from __future__ import annotations

import json

import numpy as np
from quality import Bench
from view_blend import held_out_results, held_out_views, rule_means, rule_scores, stored_vectors

from smar_sdk import SMARModel

DEPTHS = (3, 5, 10)
FEEDBACK_WEIGHTS = (0.25, 0.5, 1.0, 2.0)


def normalised(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def feedback_scores(query_vectors: np.ndarray, stored: np.ndarray, feedback: np.ndarray, k: int,
                    weight: float) -> np.ndarray:
    """Second-search scores against ``stored``: each query moved towards the mean ``feedback`` vector of the top
    ``k`` items of its first search (every item, when there are no more than ``k``)."""
    top = np.argpartition(-(query_vectors @ stored.T), min(k, len(stored) - 1), axis=1)[:, :k]
    return normalised(query_vectors + weight * feedback[top].mean(axis=1)) @ stored.T


def held_out_feedback(bench: Bench, model: SMARModel) -> dict[str, dict[str, float]]:
    """nDCG@10 per held-out cell of the plain search (``none``) and of every feedback rule ``SOURCE k=K a=A``."""
    cells: dict[str, dict[str, float]] = {}
    fused = model.config.stored_view == "fused"
    for prefix, wordings, ids, texts, views in held_out_views(bench, model):
        stored = stored_vectors(model, views, texts)
        sources = {"stored": stored, **({"image": views["image"].numpy()} if fused else {})}
        for wording, labelled in wordings.items():
            query_vectors = model.encode_queries([q.query for q in labelled])
            rules = {"none": query_vectors @ stored.T}
            rules |= {f"{source} k={k} a={a}": feedback_scores(query_vectors, stored, vectors, k, a)
                      for source, vectors in sources.items() for k in DEPTHS for a in FEEDBACK_WEIGHTS}
            cells[f"{prefix} / {wording}"] = rule_scores(labelled, rules, ids)
    return cells


def main() -> None:
    args, _, cells_of = held_out_results(__doc__, "feedback.json", held_out_feedback)
    results = {directory: {"cells": cells, "summary": rule_means(cells)} for directory, cells in cells_of.items()}
    for directory, result in results.items():
        best = sorted(result["summary"].items(), key=lambda kv: kv[1]["mean"], reverse=True)
        print(f"\n{directory}: rule | mean | colour titles | no-colour titles")
        for rule, means in [r for r in best if r[0] == "none"] + best[:8]:
            print(f"  {rule} | {means['mean']:.4f} | {means['colour titles']:.4f} | {means['no-colour titles']:.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

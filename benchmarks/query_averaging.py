"""Query rewordings averaged at search time (held-out products): does the query tower gain from seeing a query
several ways?

Each held-out query (``quality.py --holdout F`` models; the training wording and one rewording, as in
``view_blend.py``) is searched as ``normalise(s * q + sum of k rewordings' vectors)``, its ``k`` rewordings drawn by
``smar_sdk.wording.QueryRewriter`` with a seed neither training nor the held-out rewording uses, for every ``k`` of
``COUNTS`` and ``s`` of ``SELF_WEIGHTS`` (``k = 0`` is one search, as shipped). The stored vectors are the model's
own. The rewordings come from the same rewriter as the held-out "reworded" queries, so a gain there may only undo
the rewriter's own noise; the training-wording cells do not have that bias. The test split is never read.

    python benchmarks/query_averaging.py /tmp/smar_hold /tmp/models/text-only-trained \\
        --out benchmarks/results/query_averaging.json
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from quality import Bench
from view_blend import held_out_results, held_out_views, rule_means, rule_scores, stored_vectors

from smar_sdk import SMARModel
from smar_sdk.wording import QueryRewriter

COUNTS = (0, 2, 4, 8)
SELF_WEIGHTS = (1.0, 2.0)
AVERAGING_SEED = 777  # training rewords with seed 0, view_blend's held-out rewording with 12345


def averaged_queries(model: SMARModel, queries: list[str]) -> dict[str, np.ndarray]:
    """``k=K, s=S``: unit vectors ``normalise(S * q + sum of q's first K rewordings' vectors)``, one per query, for
    every rule of ``COUNTS`` x ``SELF_WEIGHTS`` (each query's rewordings drawn and encoded once)."""
    rewriter = QueryRewriter(seed=AVERAGING_SEED)
    variants = [rewriter.variants(q, max(COUNTS)) for q in queries]
    encoded = model.encode_queries([v for words in variants for v in words])
    starts = np.cumsum([0, *map(len, variants)])
    own = model.encode_queries(queries)
    rules = {}
    for count in COUNTS:
        added = np.stack([encoded[start: start + min(count, end - start)].sum(axis=0)
                          for start, end in zip(starts[:-1], starts[1:], strict=True)])
        for weight in SELF_WEIGHTS if count else SELF_WEIGHTS[:1]:
            vectors = weight * own + added
            rules[f"k={count}, s={weight}"] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return rules


def averaging_cells(bench: Bench, model: SMARModel) -> dict[str, dict[str, float]]:
    """nDCG@10 per held-out cell (catalog / image size / wording) and rule ``k=K, s=S``."""
    cells = {}
    for prefix, wordings, ids, texts, views in held_out_views(bench, model):
        stored = stored_vectors(model, views, texts)
        for wording, labelled in wordings.items():
            rules = averaged_queries(model, [q.query for q in labelled])
            cell = f"{prefix} / {wording}"
            cells[cell] = rule_scores(labelled, {rule: queries @ stored.T for rule, queries in rules.items()}, ids)
            print(f"{cell}: " + ", ".join(f"{rule} {score:.4f}" for rule, score in cells[cell].items()), flush=True)
    return cells


def main() -> None:
    args, _, results = held_out_results(__doc__, "query_averaging.json", averaging_cells)
    print("| model | rule | mean of 8 | colour titles | no-colour titles |\n|---|---|---:|---:|---:|")
    for directory, cells in results.items():
        for rule, means in rule_means(cells).items():
            print(f"| {Path(directory).name} | {rule} | {means['mean']:.4f} | {means['colour titles']:.4f} | "
                  f"{means['no-colour titles']:.4f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"counts": COUNTS, "self_weights": SELF_WEIGHTS, "cells": results},
                                   indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Where a model's rankings go wrong, on held-out products: which attribute the items that outrank a relevant one get
wrong.

For every held-out query (``quality.py --holdout F`` models; the test split is never read), each item ranked above the
query's last relevant item within the top 50 and not relevant itself is an *inversion*; it is counted by the
attributes (gender, colour, article type) in which it differs from what the query names, and, for the colour
inversions, by whether its title names the query's colour anyway (the catalog's colour label disagrees with the
title). The most frequent confused pairs are listed too.

    python benchmarks/errors.py /tmp/smar_hold /tmp/models/text-only-trained --out benchmarks/results/errors.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from quality import ATTRIBUTES, CATALOGS, DEFAULT_DATA, Bench, rank_scores
from view_blend import held_out_views, stored_vectors

from smar_sdk import SMARModel
from smar_sdk.evaluation import LabelledQuery
from smar_sdk.features import DEFAULT_CACHE_DIR

DEPTH = 50


def inversions(labelled: list[LabelledQuery], rankings: list[list[tuple[str, float]]],
               attributes: dict[str, dict[str, str]], titles: dict[str, str]) -> dict[str, Counter]:
    """Counts of the items that outrank a relevant one: ``by attributes`` (which of ``ATTRIBUTES`` differ),
    ``colour named in title`` and the ``confused colours`` / ``confused article types`` (query's, item's)."""
    counts = {name: Counter() for name in ("by attributes", "colour named in title", "confused colours",
                                           "confused article types")}
    for query, ranking in zip(labelled, rankings, strict=True):
        relevant = set(query.relevant)
        named = {a: attributes[query.relevant[0]][a] for a in ATTRIBUTES
                 if len({attributes[i][a] for i in relevant}) == 1}
        ids = [item for item, _ in ranking[:DEPTH]]
        last = max((rank for rank, item in enumerate(ids) if item in relevant), default=len(ids))
        for item in ids[:last]:
            if item in relevant:
                continue
            wrong = [a for a, value in named.items() if attributes[item][a] != value]
            counts["by attributes"][" + ".join(wrong) or "none named"] += 1
            if wrong == ["colour"]:
                counts["colour named in title"][named["colour"].lower() in titles[item].lower()] += 1
                counts["confused colours"][f"{named['colour']} -> {attributes[item]['colour']}"] += 1
            if wrong == ["article_type"]:
                counts["confused article types"][f"{named['article_type']} -> {attributes[item]['article_type']}"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="model directories from quality.py --holdout")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--catalog", choices=CATALOGS, default=CATALOGS[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "errors.json")
    args = parser.parse_args()
    bench = Bench(args.data, epochs=0, cache_dir=DEFAULT_CACHE_DIR)
    products = bench.products(args.catalog, "train")
    attributes = {p.id: p.payload for p in products}
    titles = {p.id: p.text for p in products}
    results: dict[str, dict[str, dict[str, int]]] = {}
    for directory in args.models:
        model = SMARModel.load(directory).eval()
        for prefix, wordings, ids, texts, views in held_out_views(bench, model):
            if not prefix.startswith(f"{args.catalog} "):
                continue
            stored = stored_vectors(model, views, texts)
            for wording, labelled in wordings.items():
                query_vectors = model.encode_queries([q.query for q in labelled])
                counts = inversions(labelled, rank_scores(query_vectors @ stored.T, ids), attributes, titles)
                cell = f"{directory.name} / {prefix} / {wording}"
                results[cell] = {name: dict(counter.most_common(12)) for name, counter in counts.items()}
                print(f"{cell}: {results[cell]['by attributes']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Shopper words the model never learned, with and without the shop's synonyms (held-out products).

Held-out queries (``quality.py --holdout F`` models, their training wording) that name one of ``SHOPPER_WORDS``'
article types are asked three ways: as they are, with the article type in a shopper's word that neither the
training pairs nor the rewriter's lexicon (``smar_sdk.wording``) holds ("black heels" -> "black stilettos"), and
that same shopper wording searched through ``QuerySynonyms`` built from the same word list, as a shop would write
it (``heels, stilettos``). It measures what unknown words cost and whether a synonyms file takes it back; the words
were chosen from general fashion English, not from any test query. The text encoder zero-shot (its titles only) is
asked the first two ways too: does the backbone itself know the words? The test split is never read.

    python benchmarks/query_synonyms.py /tmp/smar_hold /tmp/models/text-only-trained \\
        --out benchmarks/results/query_synonyms.json
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from quality import CATALOGS, Bench, rank_scores
from view_blend import held_out_results, held_out_slice, held_out_views, stored_vectors

from smar_sdk import QuerySynonyms, SMARModel
from smar_sdk.evaluation import LabelledQuery, score_rankings

# The catalog's article type -> a shopper's word for it that the rewriter's lexicon does not hold.
SHOPPER_WORDS = {
    "heels": "stilettos", "casual shoes": "kicks", "sunglasses": "sunnies", "handbags": "totes",
    "sweaters": "cardigans", "watches": "timepieces", "flip flops": "sliders", "track pants": "sweatpants",
    "backpacks": "knapsacks", "sweatshirts": "crewnecks", "formal shoes": "brogues", "sports shoes": "runners",
    "dresses": "gowns", "trousers": "chinos",
}
WAYS = ("catalog words", "shopper words", "shopper words + synonyms file")


def in_shopper_words(queries: list[LabelledQuery]) -> list[tuple[LabelledQuery, LabelledQuery]]:
    """Each query naming one of ``SHOPPER_WORDS``' types, beside its shopper wording."""
    pattern = re.compile(r"\b({})\b".format("|".join(map(re.escape, SHOPPER_WORDS))))
    return [(q, LabelledQuery(query=pattern.sub(lambda m: SHOPPER_WORDS[m.group(1)], q.query), relevant=q.relevant))
            for q in queries if pattern.search(q.query)]


def synonym_cells(bench: Bench, model: SMARModel) -> dict[str, dict[str, float]]:
    """nDCG@10 per held-out cell (catalog / image size) and way of asking (``WAYS``)."""
    synonyms = QuerySynonyms([[catalog_word, shopper] for catalog_word, shopper in SHOPPER_WORDS.items()])
    cells = {}
    for prefix, wordings, ids, texts, views in held_out_views(bench, model):
        pairs = in_shopper_words(wordings["training wording"])
        catalog_words, shopper = [p[0] for p in pairs], [p[1] for p in pairs]
        asked = {WAYS[0]: [q.query for q in catalog_words], WAYS[1]: [q.query for q in shopper],
                 WAYS[2]: [synonyms.rewrite(q.query) for q in shopper]}
        stored = stored_vectors(model, views, texts)
        rankings = {way: rank_scores(model.encode_queries(queries) @ stored.T, ids) for way, queries in asked.items()}
        cells[prefix] = {way: score_rankings(catalog_words, ranked, ["ndcg@10"])["ndcg@10"]
                         for way, ranked in rankings.items()}
        cells[prefix]["queries"] = len(pairs)
        for word in SHOPPER_WORDS.values():  # each shopper's word alone: learned in training or never seen?
            with_word = [i for i, q in enumerate(shopper) if re.search(rf"\b{word}\b", q.query)]
            if with_word:
                cells[prefix][f"{WAYS[1]}: {word}"] = score_rankings(
                    [catalog_words[i] for i in with_word], [rankings[WAYS[1]][i] for i in with_word],
                    ["ndcg@10"])["ndcg@10"]
        print(prefix, {way: round(score, 4) for way, score in cells[prefix].items() if way in WAYS}, flush=True)
    return cells


def zero_shot_cells(bench: Bench, model: SMARModel) -> dict[str, dict[str, float]]:
    """The same per catalog for the text encoder zero-shot (the held-out titles against its pooled, normalised
    states): whether the backbone itself knows the shopper's words."""
    encoded = bench.zero_shot_vectors
    cells = {}
    for catalog in CATALOGS:
        wordings, items = held_out_slice(bench, model, catalog)
        pairs = in_shopper_words(wordings["training wording"])
        titles, ids = encoded([p.text for p in items]), [p.id for p in items]
        cells[f"{catalog} / titles"] = {
            way: score_rankings([p[0] for p in pairs], rank_scores(encoded([q.query for q in queries]) @ titles.T, ids),
                                ["ndcg@10"])["ndcg@10"]
            for way, queries in zip(WAYS[:2], ([p[0] for p in pairs], [p[1] for p in pairs]), strict=True)}
        print(f"zero-shot {catalog}", {way: round(score, 4) for way, score in cells[f"{catalog} / titles"].items()})
    return cells


def main() -> None:
    args, bench, results = held_out_results(__doc__, "query_synonyms.json", synonym_cells)
    results["MiniLM zero-shot"] = zero_shot_cells(bench, SMARModel.load(args.models[0]))
    print("\n| model | catalog | " + " | ".join(WAYS) + " |\n|---|---|" + "---:|" * len(WAYS))
    for directory, cells in results.items():
        for catalog in CATALOGS:
            means = [np.mean([s.get(way, np.nan) for cell, s in cells.items() if cell.startswith(f"{catalog} ")])
                     for way in WAYS]
            print(f"| {Path(directory).name} | {catalog} | " + " | ".join(f"{m:.4f}" for m in means) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"shopper_words": SHOPPER_WORDS, "cells": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()

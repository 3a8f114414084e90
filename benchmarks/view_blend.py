"""SMAR's second stage, chosen on held-out products: how much of the text view items whose title names a colour get.

With one query tower, scoring an item by ``q.fused + w * q.text`` is the same as storing one vector per item,
``normalise(fused + w * text)``: no second vector or second search. The blend applies only to items whose title
names a colour (``smar_sdk.wording.names_colour``): there the text view knows the colour; without one, only the
image shows it. ``w`` becomes ``SMARConfig.text_blend`` (``quality.py --text-blend``).

``w`` is chosen on models trained by ``quality.py --holdout F``, over the products they never saw
(``Bench.holdout_slice``), both catalogs, both image sizes, and each query in its training wording and in one
rewording (``smar_sdk.wording``, a seed training never used). The test split is never read.

    python benchmarks/view_blend.py /tmp/smar_hold_img3 --out benchmarks/results/view_blend.json

``--per-query`` also scores the paper's form of the second stage, a choice per query: queries that name a colour
search one stored vector (a blend, or the text view alone), the others another (two named vectors per item).

``--colour-check`` also scores a second stage that trusts the photo where the title's colour disagrees with it: an
item whose title names a colour gets the text weight of titles without one unless that colour is among the ``K``
catalog colours its image view scores highest (each colour name encoded as a query), for every ``K`` of
``COLOUR_CHECK_DEPTHS``; every other weight is the model's. Its bound, ``label check``, is a perfect judge: the
catalog's own colour label decides which titles disagree (an upper bound for any colour model, not a usable rule).

``--grid`` also scores wider one-vector blends, ``normalise(fused + (w if the title names a colour else v) * text +
b * image)`` for every ``w`` of ``WEIGHTS``, ``v`` of ``OTHER_TEXT_WEIGHTS`` and ``b`` of ``IMAGE_WEIGHTS``.

``--metric recall@50`` (or any of ``smar_sdk.evaluation.METRICS``) scores every cell and rule by that measure instead
of nDCG@10.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from quality import CATALOGS, DEFAULT_DATA, IMAGE_FIELDS, Bench, item_views, rank_scores

from smar_sdk import SMARModel
from smar_sdk.catalog import Product
from smar_sdk.evaluation import METRICS, LabelledQuery, score_rankings
from smar_sdk.features import DEFAULT_CACHE_DIR
from smar_sdk.wording import QueryRewriter, colours_named, names_colour

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)
OTHER_TEXT_WEIGHTS = (0.0, 0.1, 0.25, 0.5)
IMAGE_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5)
COLOUR_CHECK_DEPTHS = (1, 3, 5, 8)
REWORDING_SEED = 12345  # training rewords with TrainConfig.seed (0 by default)


def blended(model: SMARModel, views: dict[str, torch.Tensor], texts: list[str], w: float, v: float = 0.0,
            b: float = 0.0) -> np.ndarray:
    """The vectors ``model`` stores with second-stage weights ``text_blend = w``, ``other_text_blend = v`` and
    ``image_blend = b`` (it re-weighs views computed once)."""
    config = model.config
    own = config.text_blend, config.other_text_blend, config.image_blend
    config.text_blend, config.other_text_blend, config.image_blend = w, v, b
    try:
        return model.second_stage(views["fused"], views["text"], views["image"], texts).numpy()
    finally:
        config.text_blend, config.other_text_blend, config.image_blend = own


def grid_blends(model: SMARModel, views: dict[str, torch.Tensor], texts: list[str]) -> dict[str, np.ndarray]:
    """``w=W, v=V, b=B``: the stored vectors ``normalise(fused + (W if the title names a colour else V) * text +
    B * image)`` for every weight of the grid."""
    return {f"w={w}, v={v}, b={b}": blended(model, views, texts, w, v, b)
            for w in WEIGHTS for v in OTHER_TEXT_WEIGHTS for b in IMAGE_WEIGHTS}


def stored_vectors(model: SMARModel, views: dict[str, torch.Tensor], texts: list[str]) -> np.ndarray:
    """What ``model`` stores for these items: its second-stage blend of the views, or a single-view model's view."""
    view = model.config.stored_view
    if view != "fused":
        return views[view].numpy()
    return model.second_stage(views["fused"], views["text"], views["image"], texts).numpy()


def catalog_means(cells: dict[str, dict[str, float]], rule: str) -> list[float]:
    """The mean of ``rule``'s scores over each catalog's cells, in ``CATALOGS`` order."""
    return [float(np.mean([scores[rule] for cell, scores in cells.items() if cell.startswith(f"{catalog} ")]))
            for catalog in CATALOGS]


def rule_means(cells: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per rule: the mean score (nDCG@10 unless ``--metric`` says otherwise) of all cells, of the colour-title cells
    and of the no-colour-title cells."""
    return {rule: dict(zip(("mean", "colour titles", "no-colour titles"),
                           (float(np.mean([scores[rule] for scores in cells.values()])), *catalog_means(cells, rule)),
                           strict=True))
            for rule in next(iter(cells.values()))}


def colour_checked(model: SMARModel, views: dict[str, torch.Tensor], texts: list[str],
                   colours: list[str]) -> dict[str, np.ndarray]:
    """``colour check K``: the vectors the model stores with its own weights, except that an item whose title's
    colours are none of the ``K`` of ``colours`` its image view scores highest gets ``other_text_blend``."""
    image = views["image"].numpy()
    ranked = -np.sort(-(image @ model.encode_queries(colours).T), axis=1)
    named = [colours_named(text) for text in texts]
    words = sorted({word for words in named for word in words})
    word_vectors = dict(zip(words, model.encode_queries(words), strict=True)) if words else {}
    title_colour = np.array([max((float(image[i] @ word_vectors[w]) for w in ws), default=-np.inf)
                             for i, ws in enumerate(named)])
    has_colour = torch.tensor([bool(ws) for ws in named])
    checked = {}
    for depth in COLOUR_CHECK_DEPTHS:
        agrees = torch.from_numpy(title_colour >= ranked[:, depth - 1] - 1e-6)
        checked[f"colour check {depth}"] = model.blend_views(views["fused"], views["text"], views["image"],
                                                               has_colour & agrees).numpy()
    return checked


def label_checked(model: SMARModel, views: dict[str, torch.Tensor], texts: list[str],
                  labels: list[str]) -> np.ndarray:
    """``label check``: the vectors the model stores with its own weights, except that an item whose title names
    colours, none of them its catalog colour label (``labels``, lower case), gets ``other_text_blend``."""
    agrees = torch.tensor([label in colours_named(text) for text, label in zip(texts, labels, strict=True)])
    return model.blend_views(views["fused"], views["text"], views["image"], agrees).numpy()


def rule_scores(labelled: list[LabelledQuery], rules: dict[str, np.ndarray], ids: list[str],
                metric: str = "ndcg@10") -> dict[str, float]:
    """Per rule, ``metric`` of the rankings its ``(queries, items)`` score matrix gives ``labelled``."""
    return {rule: score_rankings(labelled, rank_scores(matrix, ids), [metric])[metric]
            for rule, matrix in rules.items()}


def held_out_slice(bench: Bench, model: SMARModel, catalog: str) -> tuple[dict[str, list[LabelledQuery]],
                                                                          list[Product]]:
    """The products a ``quality.py --holdout`` model never saw, and the queries about them in each wording: the
    training one, and one rewording with a seed training never used."""
    fraction = float(model.config.training.get("holdout", 0.0))
    if not fraction:
        raise SystemExit("this model was trained on every train-split product: train it with quality.py --holdout")
    queries, items = bench.holdout_slice(catalog, fraction)
    rewriter = QueryRewriter(seed=REWORDING_SEED)
    return {"training wording": queries,
            "reworded": [LabelledQuery(query=rewriter.reword(q.query), relevant=q.relevant) for q in queries]}, items


def held_out_views(bench: Bench, model: SMARModel) -> Iterator[
        tuple[str, dict[str, list[LabelledQuery]], list[str], list[str], dict[str, torch.Tensor]]]:
    """Per held-out catalog and image size (``quality.py --holdout`` products): the cell name's prefix, the queries in
    each wording (training, and one rewording with a seed training never used), the items' ids and titles, and their
    views (``text``, ``image``, ``fused``; without the second stage)."""
    for catalog in CATALOGS:
        wordings, items = held_out_slice(bench, model, catalog)
        ids, texts = [p.id for p in items], [p.text for p in items]
        for field in IMAGE_FIELDS:
            states, mirrored = bench.states(items, field, model), bench.mirrored(items, field, model)
            computed = item_views(model, *states, mirrored=mirrored)
            views = {name: torch.from_numpy(vectors) for name, vectors in computed.items()}
            yield f"{catalog} / {field}", wordings, ids, texts, views


def held_out_cells(bench: Bench, model: SMARModel, per_query: bool = False, grid: bool = False,
                   colour_check: bool = False, metric: str = "ndcg@10") -> dict[str, dict[str, float]]:
    """``metric`` (nDCG@10 by default) per held-out cell (catalog / image size / wording) and second-stage rule:
    ``w=W`` for each blend weight, with ``per_query`` each ``colour queries A, others B`` choice between two stored
    vectors, with ``grid`` each ``w=W, v=V, b=B`` of ``grid_blends``, and with ``colour_check`` the model's own weights
    (``shipped``), each ``colour check K`` of ``colour_checked`` and ``label check`` (``label_checked``)."""
    cells: dict[str, dict[str, float]] = {}
    label_of = {p.id: str(p.payload.get("colour") or "").lower() for p in bench.products(CATALOGS[0], "train")}
    colours = sorted(set(label_of.values()) - {""})  # the catalog's colour labels
    for prefix, wordings, ids, texts, views in held_out_views(bench, model):
        labels = [label_of[i] for i in ids]
        checked = {"shipped": stored_vectors(model, views, texts), **colour_checked(model, views, texts, colours),
                   "label check": label_checked(model, views, texts, labels)} if colour_check else {}
        stored = {weight: blended(model, views, texts, weight) for weight in WEIGHTS}
        stored["text"] = views["text"].numpy()
        blends = grid_blends(model, views, texts) if grid else {}
        for wording, labelled in wordings.items():
            query_vectors = model.encode_queries([q.query for q in labelled])
            scores = {option: query_vectors @ vectors.T for option, vectors in stored.items()}
            colour_queries = np.array([names_colour(q.query) for q in labelled])[:, None]
            rules = {f"w={w}": scores[w] for w in WEIGHTS}
            rules |= {rule: query_vectors @ vectors.T for rule, vectors in (blends | checked).items()}
            if per_query:
                rules |= {f"colour queries {a}, others {b}": np.where(colour_queries, scores[a], scores[b])
                          for a in stored for b in stored if a != b}
            cells[f"{prefix} / {wording}"] = rule_scores(labelled, rules, ids, metric)
    return cells


def held_out_parser(doc: str, results: str) -> argparse.ArgumentParser:
    """The arguments of every held-out benchmark: model directories, ``--data`` and ``--out`` (default
    ``benchmarks/results/RESULTS``); ``doc``'s first line describes it."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="model directories from quality.py --holdout")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / results)
    return parser


def held_out_results(doc: str, results: str, cells: Callable[[Bench, SMARModel], Any]) -> tuple[
        argparse.Namespace, Bench, dict[str, Any]]:
    """A held-out benchmark without options of its own: its arguments (``held_out_parser``), the bench, and
    ``cells(bench, model)`` for each model directory."""
    args = held_out_parser(doc, results).parse_args()
    bench = Bench(args.data, epochs=0, cache_dir=DEFAULT_CACHE_DIR)
    return args, bench, {str(d): cells(bench, SMARModel.load(d).eval()) for d in args.models}


def main() -> None:
    parser = held_out_parser(__doc__, "view_blend.json")
    parser.add_argument("--per-query", action="store_true",
                        help="also score a per-query choice between two stored vectors (colour queries or not)")
    parser.add_argument("--grid", action="store_true",
                        help="also score blends with a text weight for titles without colour words and an image weight")
    parser.add_argument("--colour-check", action="store_true",
                        help="also score the second stage with the title's colour checked against the image")
    parser.add_argument("--metric", choices=METRICS, default="ndcg@10",
                        help="the score of each cell and rule (default: %(default)s)")
    args = parser.parse_args()
    bench = Bench(args.data, epochs=0, cache_dir=DEFAULT_CACHE_DIR)
    results = {str(d): held_out_cells(bench, SMARModel.load(d).eval(), args.per_query, args.grid,
                                           args.colour_check, args.metric)
               for d in args.models}
    every_cell = [scores for cells in results.values() for scores in cells.values()]
    means = {rule: float(np.mean([scores[rule] for scores in every_cell])) for rule in every_cell[0]}
    chosen = max(WEIGHTS, key=lambda w: (round(means[f"w={w}"], 4), -w))  # ties go to the smaller blend
    print("| model | cell | " + " | ".join(f"w={w}" for w in WEIGHTS) + " |")
    print("|---|---|" + "---:|" * len(WEIGHTS))
    for directory, cells in results.items():
        for cell, scores in cells.items():
            print(f"| {Path(directory).name} | {cell} | " + " | ".join(f"{scores[f'w={w}']:.3f}" for w in WEIGHTS)
                  + " |")
    print("| **mean** | | " + " | ".join(f"**{means[f'w={w}']:.4f}**" for w in WEIGHTS) + " |")
    print(f"\nchosen on held-out products: text_blend = {chosen}")
    if args.per_query:
        print(f"\nbest per-query choices (mean {args.metric} over the same cells):")
        for rule in sorted((r for r in means if r.startswith("colour queries")), key=means.get, reverse=True)[:5]:
            print(f"  {rule}: {means[rule]:.4f} (one vector for every query, w={chosen}: {means[f'w={chosen}']:.4f})")
    if args.grid:
        print(f"\nbest one-vector blends (mean {args.metric} over the same cells):")
        for rule in sorted((r for r in means if ", b=" in r), key=means.get, reverse=True)[:8]:
            print(f"  {rule}: {means[rule]:.4f} (w={chosen} alone: {means[f'w={chosen}']:.4f})")
    if args.colour_check:
        print(f"\ncolour check (mean {args.metric} over the same cells; colour titles, no-colour titles):")
        for directory, cells in results.items():
            for rule in ["shipped", *(f"colour check {k}" for k in COLOUR_CHECK_DEPTHS), "label check"]:
                colour, no_colour = catalog_means(cells, rule)
                print(f"  {Path(directory).name}, {rule}: {np.mean([s[rule] for s in cells.values()]):.4f} "
                      f"({colour:.4f}, {no_colour:.4f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"metric": args.metric, "weights": WEIGHTS, "cells": results, "mean": means,
                                    "chosen": chosen}, indent=2) + "\n")


if __name__ == "__main__":
    main()

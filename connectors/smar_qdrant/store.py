"""``QdrantStore``: the smar-sdk store protocol on qdrant-client."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import logging
import os
import re
import threading
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import numpy as np
from qdrant_client import QdrantClient, models

from smar_sdk.errors import StoreError, VectorSizeError
from smar_sdk.filters import EXACT_FLOAT_INTEGERS, Condition, Equals, OneOf, Range, Scalar
from smar_sdk.store import (
    HASH_PAYLOAD_KEY,
    ID_PAYLOAD_KEY,
    VECTOR_HASH_PAYLOAD_KEY,
    Hit,
    Metric,
    check_batch,
    check_ids,
    check_metric,
    check_not_foreign,
    check_search,
    closed_error,
    collection_matches,
    missing_collection_error,
    point_uuid,
    safe_uri,
    uri_text,
)

DEFAULT_PATH = "./smar_data"
MIN_CLIENT = (1, 12)  # the qdrant-client this SDK requires at least (pyproject.toml)
Engine = Literal["local", "edge"]
DEFAULT_ENGINE: Engine = "edge"  # the engine of new embedded folders (if installed); existing ones keep theirs
logger = logging.getLogger(__name__)
DISTANCES = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT, "euclid": models.Distance.EUCLID}
METRIC_NAMES = {distance.value: name for name, distance in DISTANCES.items()}  # Qdrant's "Cosine" -> "cosine"
T = TypeVar("T")
ONE_OPENER_HINT = ("; an embedded store folder can be open by one store at a time: stop the other process using it, "
                   "or, in one process, open the store once and share it (SMARIndexer / SMARRetriever store=...)")


def build_filter(conditions: list[Condition] | None, q: Any, range_type: Any,
                 boolean: Callable[[bool], Any] = bool) -> Any:
    """Translate SDK conditions into a filter (AND of all conditions) of a Qdrant API: ``q`` is the module holding
    ``Filter``, ``FieldCondition``, ``MatchValue`` and ``MatchAny`` (qdrant-client's ``models`` or
    ``qdrant_edge``), ``range_type`` its float range and ``boolean`` what its ``MatchValue`` reads as a boolean.

    The result matches as ``matches_conditions`` does: a number equals is a closed range, so that 30 and 30.0 match
    each other (``MatchValue`` compares an int with stored ints only and takes no float), except for an integer a
    float cannot hold exactly (a 64-bit SKU), which ``MatchValue`` compares exactly. Field names are quoted: Qdrant
    reads a key as a path, where a space or ``:`` is not allowed bare."""
    if not conditions:
        return None

    def any_of(field: str, values: tuple[Scalar, ...]) -> Any:
        key = payload_key(field)
        texts = [v for v in values if isinstance(v, str)]
        matches = [q.FieldCondition(key=key, match=q.MatchAny(any=texts))] if texts else []
        for value in (v for v in values if not isinstance(v, str)):
            if isinstance(value, bool):
                matches.append(q.FieldCondition(key=key, match=q.MatchValue(value=boolean(value))))
            elif isinstance(value, float) or abs(value) < EXACT_FLOAT_INTEGERS:  # 30 also matches a stored 30.0
                matches.append(q.FieldCondition(key=key, range=range_type(gte=value, lte=value)))
            else:
                matches.append(q.FieldCondition(key=key, match=q.MatchValue(value=value)))
        return matches[0] if len(matches) == 1 else q.Filter(should=matches)

    must: list[Any] = []
    for cond in conditions:
        if isinstance(cond, Equals | OneOf):
            must.append(any_of(cond.field, (cond.value,) if isinstance(cond, Equals) else cond.values))
        elif isinstance(cond, Range):
            must.append(q.FieldCondition(key=payload_key(cond.field), range=range_type(
                gt=cond.gt, gte=cond.gte, lt=cond.lt, lte=cond.lte)))
    return q.Filter(must=must)


def payload_key(field: str) -> str:
    """A top-level payload field as a Qdrant key: quoted, so that Qdrant's path syntax reads it as one name (the SDK
    refuses field names holding a double quote, ``.`` or ``[]``)."""
    return f'"{field}"'


def to_qdrant_filter(conditions: list[Condition] | None) -> models.Filter | None:
    """Translate SDK conditions into a qdrant-client filter."""
    return build_filter(conditions, models, models.Range)


SERVER_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|[\w.-]+:\d+(/|$)")  # another scheme, or host:port


def folder_engine(uri: str | None) -> Engine | None:
    """The engine whose files an embedded folder holds (local mode writes ``meta.json``), or None if neither."""
    folder = Path(uri or DEFAULT_PATH)
    if (folder / "meta.json").exists():
        return "local"
    if (folder / "edge").is_dir():
        return "edge"
    return None


def select_engine(uri: str | os.PathLike[str] | None, engine: Engine | None = None) -> Engine | None:
    """The embedded engine for ``uri``: the folder's own, else the one asked for, else ``DEFAULT_ENGINE``; None for
    a server URL. Asking a folder for the other engine's format is refused (one format per folder)."""
    uri = uri_text(uri)
    if uri and uri.startswith(("http://", "https://")):
        if engine is not None:
            raise StoreError(f"engine={engine!r} is for embedded folders, not for the server {safe_uri(uri)}")
        return None
    if uri and SERVER_LIKE.match(uri) and not Path(uri).exists():
        raise StoreError(f"--uri {uri!r} looks like a server address, but a Qdrant server takes an http(s):// URL "
                         "(e.g. http://localhost:6333) and an embedded store a folder path; write the one you mean")
    if engine is not None and engine not in ("local", "edge"):
        raise StoreError(f"unknown Qdrant engine {engine!r}; choose 'local' or 'edge'")
    check_not_foreign(uri or DEFAULT_PATH, "qdrant")
    found = folder_engine(uri)
    if engine is not None and found is not None and found != engine:
        raise StoreError(f"{uri or DEFAULT_PATH} holds a Qdrant {found!r}-engine store; open it with "
                         f"engine={found!r} or use another folder for engine={engine!r}")
    return found or engine or default_engine()


def default_engine() -> Engine:
    """``DEFAULT_ENGINE``, or local mode when the Edge engine (``qdrant-edge-py``) cannot be imported."""
    return "local" if DEFAULT_ENGINE == "edge" and importlib.util.find_spec("qdrant_edge") is None else DEFAULT_ENGINE


def edge_only_options() -> set[str]:
    """Constructor options only the Qdrant Edge engine takes (its index and search tuning)."""
    from .edge import QdrantEdgeStore

    return set(inspect.signature(QdrantEdgeStore.__init__).parameters) - set(
        inspect.signature(QdrantStore.__init__).parameters)


def minor_version(version: str) -> tuple[int, int] | None:
    """A version's (major, minor), or None when it does not read as one ("dev")."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return None
    return major, minor


def version_advice(client: str, server: str) -> str | None:
    """What to do when qdrant-client ``client`` does not support a server of version ``server`` (its rule: the same
    major version, minor versions at most 1 apart); None when it does, or a version does not read as one."""
    ours, theirs = minor_version(client), minor_version(server)
    if ours is None or theirs is None or ours[0] == theirs[0] and abs(ours[1] - theirs[1]) <= 1:
        return None
    advice = f"upgrade the server to {ours[0]}.{ours[1]}"
    if theirs >= (MIN_CLIENT[0], MIN_CLIENT[1] - 1):  # a client this SDK takes speaks to it
        version = "{}.{}.0".format(*max(theirs, MIN_CLIENT))
        advice += f', or install the client of its version (pip install "qdrant-client~={version}")'
    return advice


class QdrantStore:
    """A Qdrant collection. ``uri`` is a folder for an embedded engine (default ``./smar_data``) or an
    ``http(s)://host:port`` URL of a server or cluster; ``api_key`` authenticates against a server.

    Server-only options (``shard_number``, ``replication_factor``, ``write_consistency_factor``,
    ``on_disk``, ``prefer_grpc``, ``timeout``) are passed through when the collection is created.

    ``engine`` picks the embedded engine of a folder: ``"local"`` (qdrant-client's local mode, brute force) or
    ``"edge"`` (Qdrant Edge with HNSW, see ``QdrantEdgeStore`` for its options); by default an existing folder
    keeps the engine that wrote it and a new one gets ``DEFAULT_ENGINE``. Server URLs take no engine.

    One store object may be shared by threads (an embedded folder can be open once per process, so an indexer and
    retrievers in one process share it): local mode is not thread-safe, so its calls take turns under a lock.
    """

    def __new__(cls, uri: str | os.PathLike[str] | None = None,
                collection: str = "products", *args: Any, engine: Engine | None = None,
                **options: Any) -> QdrantStore:
        text = uri_text(uri, DEFAULT_PATH)
        selected = select_engine(uri, engine) if cls is QdrantStore else None
        if selected and text.endswith(".db") and not Path(text).exists():
            logger.warning("%s will be a Qdrant folder; a name ending in .db is a Milvus Lite store's: for Milvus, "
                           "pass --store milvus (store='milvus')", text)
        if selected == "edge":
            from .edge import QdrantEdgeStore

            cls = QdrantEdgeStore
        elif cls is QdrantStore and (edge_only := sorted(set(options) & edge_only_options())):
            where = (f"{safe_uri(text)} is a Qdrant server" if selected is None
                     else f"{text} is a local-mode folder" if folder_engine(text)
                     else "qdrant-edge-py is not installed, so new folders use local mode (pip install qdrant-edge-py)")
            raise StoreError(f"{', '.join(edge_only)}: options of the embedded Qdrant Edge engine only, and {where}; "
                             "leave them out")
        return super().__new__(cls)

    def __init__(self, uri: str | os.PathLike[str] | None = None,
                 collection: str = "products", api_key: str | None = None,
                 prefer_grpc: bool = False, timeout: float = 30.0, shard_number: int | None = None,
                 replication_factor: int | None = None, write_consistency_factor: int | None = None,
                 on_disk: bool = False, engine: Engine | None = None) -> None:
        self.uri = uri_text(uri, DEFAULT_PATH)
        self.engine = None if self.uri.startswith(("http://", "https://")) else "local"
        self.collection = collection
        self.is_server = self.uri.startswith(("http://", "https://"))
        self._collection_options = {"shard_number": shard_number, "replication_factor": replication_factor,
                                    "write_consistency_factor": write_consistency_factor}
        self._on_disk = on_disk
        self._closed = False
        self._dim: int | None = None
        self._metric: str | None = None  # read with the size; "euclid" scores are distances
        # qdrant-client's local mode mutates numpy arrays in place: a search during an upsert can fail or mix points
        self._turns: AbstractContextManager[Any] = nullcontext() if self.is_server else threading.RLock()
        if self.is_server and api_key and self.uri.startswith("http://"):
            logger.warning("the API key goes to %s over plain http://, readable on the way: use https:// outside a "
                           "trusted network", self.shown_uri)
        try:
            if self.is_server:
                with warnings.catch_warnings():  # its raw warning of a key over http://: said in one line above
                    warnings.filterwarnings("ignore", "Api key is used with an insecure connection", UserWarning)
                    self.client = QdrantClient(url=self.uri, api_key=api_key, prefer_grpc=prefer_grpc,
                                               timeout=timeout, check_compatibility=False)
                self._version_check = threading.Thread(target=self._check_server_version, args=(api_key, timeout),
                                                       daemon=True)
                self._version_check.start()  # in the background, as qdrant-client does: a slow server delays nothing
            else:
                Path(self.uri).mkdir(parents=True, exist_ok=True)
                self.client = QdrantClient(path=self.uri)
        except (RuntimeError, OSError, ValueError) as exc:
            raise StoreError(f"cannot open Qdrant at {self.shown_uri}: {exc}{ONE_OPENER_HINT}") from exc

    def _check_server_version(self, api_key: str | None, timeout: float) -> None:
        """Warn in one line when the server's version is one this qdrant-client does not support. Asked with a
        request of its own (the client's connections are set up by the first real call, unshared); a server that
        does not answer is left to that call."""
        try:
            answer = httpx.get(self.uri, headers={"api-key": api_key} if api_key else None, timeout=timeout)
            server = str(answer.json()["version"])
        except Exception:  # noqa: BLE001 - unreachable or not Qdrant: the first call says so, clearly
            return
        client = importlib.metadata.version("qdrant-client")
        if advice := version_advice(client, server):
            logger.warning("the Qdrant server at %s runs %s, which qdrant-client %s does not support (it speaks to "
                           "servers within one minor version of its own): %s", self.shown_uri, server, client, advice)

    @property
    def shown_uri(self) -> str:
        """The URI for messages: never a password written into it (Qdrant Edge shares this with its folder path)."""
        return safe_uri(self.uri)

    # ----- helpers -----
    def _check_open(self) -> None:
        if self._closed:
            raise closed_error(self._where(), self.collection)

    def _where(self) -> str:
        return f"Qdrant server {self.shown_uri}" if self.is_server else f"embedded Qdrant at {self.uri}"

    @contextmanager
    def _errors(self, action: str):
        try:
            yield
        except (StoreError, VectorSizeError):
            raise
        except Exception as exc:  # qdrant-client raises httpx, grpc and its own exception types
            raise self._failure(action, exc) from exc

    def _failure(self, action: str, exc: Exception) -> StoreError:
        """The one-line error for a failed call: what, on which collection, where, and what to check."""
        where = self._where()
        hint = "; is the server running and the URL/API key right?" if self.is_server else ""
        reason = " ".join(str(exc).split())  # one line: a server's answer can span several
        return StoreError(f"{action} (collection {self.collection!r}) failed at {where}: "
                          f"{type(exc).__name__}: {reason}{hint}")

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        self._check_open()
        with self._turns, self._errors(action):
            return fn()

    def _exists(self) -> bool:
        return self._call("checking the collection", lambda: self.client.collection_exists(self.collection))

    def dimension(self) -> int | None:
        """The collection's vector size, or None when it does not exist yet."""
        if self._dim is None and self._exists():
            info = self._call("reading the collection", lambda: self.client.get_collection(self.collection))
            params = info.config.params.vectors
            if not isinstance(params, models.VectorParams):
                raise StoreError(f"collection {self.collection!r} at {self.shown_uri} was not made by smar-sdk (it "
                                 f"has named vectors {sorted(params or {})}, smar-sdk one unnamed vector): give "
                                 "smar-sdk a collection of its own (--collection NAME)")
            self._dim = int(params.size)
            self._metric = metric_name(params.distance.value)
        return self._dim

    def _require_dim(self) -> int:
        dim = self.dimension()
        if dim is None:
            raise missing_collection_error(self, self.shown_uri)
        return dim

    # ----- the store protocol -----
    def ensure_collection(self, dim: int, metric: Metric = "cosine") -> None:
        self._check_open()  # a known size would otherwise answer without a call
        check_metric(metric)
        if collection_matches(self.collection, self.shown_uri, self.dimension(), dim, self._metric, metric):
            return
        options = {k: v for k, v in self._collection_options.items() if v is not None} if self.is_server else {}
        params = models.VectorParams(size=dim, distance=DISTANCES[metric], on_disk=self._on_disk or None)
        self._call("creating the collection", lambda: self.client.create_collection(
            self.collection, vectors_config=params, **options))
        self._dim, self._metric = dim, metric

    def upsert(self, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        self._check_open()
        if not ids:
            return
        array, payloads = check_batch(ids, vectors, payloads, self._require_dim(), self.collection)
        points = models.Batch(ids=[point_uuid(i) for i in ids], vectors=array.tolist(),
                              payloads=[{**p, ID_PAYLOAD_KEY: i} for i, p in zip(ids, payloads, strict=True)])
        self._call("upserting", lambda: self.client.upsert(self.collection, points=points, wait=True))

    def delete(self, ids: list[str]) -> None:
        check_ids(ids)
        if not ids or not self._exists():
            return
        selector = models.PointIdsList(points=[point_uuid(i) for i in ids])
        self._call("deleting", lambda: self.client.delete(self.collection, points_selector=selector, wait=True))

    def search(self, vectors: np.ndarray, k: int, conditions: list[Condition] | None = None) -> list[list[Hit]]:
        self._check_open()
        array, k = check_search(vectors, k, self._require_dim(), self.collection)
        if not len(array):
            return []
        query_filter = to_qdrant_filter(conditions)
        requests = [models.QueryRequest(query=v.tolist(), limit=k, filter=query_filter, with_payload=True)
                    for v in array]
        responses = self._call("searching", lambda: self.client.query_batch_points(self.collection, requests))
        return [[to_hit(point, self.collection, self._metric == "euclid") for point in response.points]
                for response in responses]

    def collections(self) -> list[str]:
        """The names of the collections at this URI (to name them when the one asked for does not exist)."""
        found = self._call("listing collections", self.client.get_collections)
        return sorted(c.name for c in found.collections)

    def count(self) -> int:
        if not self._exists():
            return 0
        return int(self._call("counting", lambda: self.client.count(self.collection, exact=True)).count)

    def ids(self) -> set[str]:
        """Every item id in the collection (used to prune items no longer in a catalog)."""
        found: set[str] = set()
        if not self._exists():
            return found
        offset = None
        while True:
            points, offset = self._call("listing ids", lambda o=offset: self.client.scroll(
                self.collection, limit=1024, offset=o, with_payload=[ID_PAYLOAD_KEY], with_vectors=False))
            found.update(str(p.payload[ID_PAYLOAD_KEY]) for p in points if p.payload)
            if offset is None:
                return found

    def stored_hashes(self, ids: list[str]) -> dict[str, str]:
        """Content hashes of the given ids that are stored (lets a re-run skip unchanged items)."""
        return self._payload_values(ids, HASH_PAYLOAD_KEY)

    def stored_vectors(self, wanted: dict[str, str]) -> dict[str, np.ndarray]:
        """The stored vectors of the ids in ``wanted`` whose stored vector hash is the one given (a row that changed
        in payload only keeps its vector); the vectors of the others are not read."""
        same = [i for i, vector_hash in self._payload_values(list(wanted), VECTOR_HASH_PAYLOAD_KEY).items()
                if wanted[i] == vector_hash]
        return {str(p.payload[ID_PAYLOAD_KEY]): np.asarray(p.vector, dtype=np.float32)
                for p in self._retrieve(same, [ID_PAYLOAD_KEY], vectors=True) if p.payload} if same else {}

    def _payload_values(self, ids: list[str], key: str) -> dict[str, str]:
        """The stored values of one of the SDK's payload keys, by id (ids stored without it are left out)."""
        if not ids or not self._exists():
            return {}
        return {str(p.payload[ID_PAYLOAD_KEY]): str(p.payload[key]) for p in self._retrieve(ids, [ID_PAYLOAD_KEY, key])
                if p.payload and key in p.payload}

    def _retrieve(self, ids: list[str], keys: list[str], vectors: bool = False) -> list[Any]:
        """The stored points of ``ids``, with the payload ``keys`` (and their vectors)."""
        return self._call("reading points", lambda: self.client.retrieve(
            self.collection, ids=[point_uuid(i) for i in ids], with_payload=keys, with_vectors=vectors))

    def close(self) -> None:
        with self._turns:
            self._closed = True
            self.client.close()

    def __enter__(self) -> QdrantStore:
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.shown_uri!r} collection={self.collection!r}>"

    def __exit__(self, *exc: object) -> None:
        self.close()


def metric_name(distance: str) -> str:
    """The SDK's name (``cosine``, ``dot``, ``euclid``) of a Qdrant distance name (``Cosine``, ...)."""
    return METRIC_NAMES.get(distance, distance.lower())


def to_hit(point: Any, collection: str, distance: bool = False) -> Hit:
    """A scored point of qdrant-client or Qdrant Edge as an SDK hit (original id, payload without bookkeeping);
    ``distance``: the score is a Euclidean distance, negated so that higher is better, as the protocol says. A point
    smar-sdk did not write (no original id in its payload) is a ``StoreError``: its collection is not the SDK's."""
    payload = dict(point.payload or {})
    if ID_PAYLOAD_KEY not in payload:
        raise StoreError(f"collection {collection!r} holds a point smar-sdk did not write (point id {point.id}, no "
                         f"{ID_PAYLOAD_KEY!r} in its payload): give smar-sdk a collection of its own "
                         "(--collection NAME)")
    item_id = str(payload.pop(ID_PAYLOAD_KEY))
    payload.pop(HASH_PAYLOAD_KEY, None)
    return Hit(id=item_id, score=-float(point.score) if distance else float(point.score), payload=payload)

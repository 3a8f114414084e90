"""``MilvusStore``: the smar-sdk store protocol on pymilvus ``MilvusClient``."""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.client.types import LoadState

from smar_sdk import store as sdk_store
from smar_sdk.errors import FilterError, StoreError
from smar_sdk.filters import EXACT_FLOAT_INTEGERS, INT64, Condition, Equals, OneOf, Range, Scalar
from smar_sdk.store import (
    HASH_PAYLOAD_KEY,
    VECTOR_HASH_PAYLOAD_KEY,
    Hit,
    Metric,
    check_batch,
    check_metric,
    check_not_foreign,
    check_search,
    closed_error,
    collection_matches,
    missing_collection_error,
    safe_uri,
    uri_text,
)

DEFAULT_URI = "./smar.db"
SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")
ID_FIELD, VECTOR_FIELD, PAYLOAD_FIELD = "id", "vector", "payload"
MAX_ID_BYTES = 1024  # the VarChar primary key's limit; catalogs enforce the same (smar_sdk.catalog.MAX_ID_BYTES)
METRICS: dict[str, str] = {"cosine": "COSINE", "dot": "IP", "euclid": "L2"}
METRIC_NAMES = {v: k for k, v in METRICS.items()}
COLLECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
BATCH = 1000  # rows per upsert/delete request, well under the server's message size limit
DEFAULT_EF = 64
DEFAULT_RETRY_SECONDS = 60.0
BACKOFF_FIRST, BACKOFF_FACTOR, BACKOFF_MAX = 0.5, 2.0, 5.0  # seconds between attempts: 0.5, 1, 2, 4, 5, 5, ...
TRANSIENT_GRPC = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# Milvus servers parse -9223372036854775808 as -(9223372036854775808), which overflows int64; Lite reads this form
# too, except as a list element (json_contains_any takes literals only), where the connector uses json_contains
SMALLEST_INT64 = f"({INT64.start + 1} - 1)"
CONNECT_FAILED = 2  # pymilvus' code (and Milvus' ServiceUnavailable) for "cannot reach the server"
COLLECTION_NOT_LOADED = 101
NOT_READY = (56, 57)  # Milvus' legacy NotReadyServe, NotReadyCoordActivating
TRANSIENT_TEXT = re.compile(r"not ready|unavailable|connection refused|deadline exceeded|channel not available|"
                            r"no available shard|shard delegator", re.IGNORECASE)
T = TypeVar("T")
logger = logging.getLogger(__name__)


class _Quiet(logging.Filter):
    """Mutes pymilvus' own error logs (with tracebacks) for calls whose failure we re-raise as one StoreError."""

    local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "active", False)


_QUIET = _Quiet()
for _name in ("pymilvus.decorators", "pymilvus.client.iterator.query_iterator", "pymilvus.client.connection_manager",
              "pymilvus.client.grpc_handler", "milvus_lite.server_manager"):
    logging.getLogger(_name).addFilter(_QUIET)


def _literal(value: Scalar) -> str:
    """A Milvus expression literal: a double-quoted, backslash-escaped string, true/false or a number."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return SMALLEST_INT64 if value == INT64.start else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"filter value {value!r} is not a finite number")
        return repr(value)
    return _string_literal(str(value))


def _forms(value: Scalar) -> list[Scalar]:
    """``value`` as every type a stored one may have to equal it: a whole number as both int and float (``3``,
    ``3.0``), which Milvus servers tell apart inside JSON lists."""
    if isinstance(value, str | bool) or not float(value).is_integer() or abs(value) >= EXACT_FLOAT_INTEGERS:
        return [value]
    return [value, int(value), float(value)]  # literals deduplicated


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string_literal(text: str) -> str:
    """A double-quoted Milvus string: backslash, quote, newline, return and tab escaped; other control characters
    raw, because Milvus's parser knows no ``\\u`` escape (``json.dumps`` writes one for them)."""
    return '"' + "".join(_ESCAPES.get(char, char) for char in text) + '"'


def to_milvus_filter(conditions: list[Condition] | None) -> str:
    """Translate SDK conditions into a Milvus boolean expression on the JSON payload field (AND of all)."""
    parts: list[str] = []
    for cond in conditions or []:
        key = f"{PAYLOAD_FIELD}[{_literal(cond.field)}]"
        values = [cond.value] if isinstance(cond, Equals) else cond.values if isinstance(cond, OneOf) else None
        if values is not None:
            # an OR of equalities (Milvus Lite does not accept `payload["k"] in [...]`), or an element of a list
            # (as Qdrant matches); a server compares values by type, so each is given in every type it may be stored as
            literals = list(dict.fromkeys(_literal(form) for v in values for form in _forms(v)))
            listed = [literal for literal in literals if literal != SMALLEST_INT64]
            elements = [f"json_contains_any({key}, [{', '.join(listed)}])"] if listed else []
            elements += [f"json_contains({key}, {SMALLEST_INT64})"] if len(listed) < len(literals) else []
            parts.append(_any_of([*(f"{key} == {literal}" for literal in literals), *elements]))
        elif isinstance(cond, Range):
            bounds = ((">", cond.gt), (">=", cond.gte), ("<", cond.lt), ("<=", cond.lte))
            parts.extend(f"{key} {op} {_literal(v)}" for op, v in bounds if v is not None)
    return " and ".join(parts)


def _any_of(terms: list[str]) -> str:
    """``terms`` joined by ``or`` as a balanced tree of parentheses: a Milvus server nests each ``or`` of a flat
    chain one level deeper in its query plan, which fails from about 50 terms; the tree nests about log2(n)."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return f"({_any_of(terms[:middle])} or {_any_of(terms[middle:])})"


def _id_filters(ids: list[str]) -> Iterator[str]:
    """``id in [...]`` expressions over the distinct ids, ``BATCH`` at a time."""
    unique = list(dict.fromkeys(str(i) for i in ids))
    for start in range(0, len(unique), BATCH):
        yield f"{ID_FIELD} in [{', '.join(_literal(i) for i in unique[start:start + BATCH])}]"


def _public(entity: dict[str, Any]) -> dict[str, Any]:
    """A hit's payload as written, without the indexer's content hash (as the Qdrant connector does)."""
    payload = dict(entity.get(PAYLOAD_FIELD) or {})
    payload.pop(HASH_PAYLOAD_KEY, None)
    return payload


def is_transient(exc: BaseException) -> bool:
    """Whether a failure means "the server is not there (yet)": worth retrying the same idempotent call."""
    if isinstance(exc, grpc.RpcError):
        return exc.code() in TRANSIENT_GRPC
    if isinstance(exc, MilvusException):
        return (exc.code in TRANSIENT_GRPC or exc.code == CONNECT_FAILED or exc.compatible_code in NOT_READY
                or exc.retriable or bool(TRANSIENT_TEXT.search(exc.message or "")))
    return isinstance(exc, ConnectionError | TimeoutError)


def is_not_loaded(exc: BaseException) -> bool:
    """Whether a call failed because the collection is not loaded (as after a server restart): load, then retry."""
    return isinstance(exc, MilvusException) and (exc.code == COLLECTION_NOT_LOADED
                                                  or "not loaded" in (exc.message or "").lower())


def backoff_delays(first: float = BACKOFF_FIRST) -> Iterator[float]:
    """Exponential backoff: ``first``, doubled each time, capped at ``BACKOFF_MAX`` seconds."""
    delay = first
    while True:
        yield delay
        delay = min(delay * BACKOFF_FACTOR, BACKOFF_MAX)


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class MilvusStore:
    """A Milvus collection. ``uri`` is a ``.db`` file for Milvus Lite (default ``./smar.db``) or the
    ``http(s)://host:port`` URI of a server or cluster; ``api_key`` is the server's token (``user:password``
    or an API key), never printed.

    Each item is a row: the original id (VarChar primary key), the vector (``FLOAT_VECTOR``) and the payload
    (a JSON field). ``index_type`` defaults to ``FLAT`` (exact) on Milvus Lite and ``AUTOINDEX`` on a server;
    ``index_params`` and ``search_params`` (e.g. ``{"ef": 128}`` for HNSW) are passed through. ``metric``,
    when given, overrides the metric asked of :meth:`ensure_collection`.

    ``consistency_level`` (of the collection and of searches) defaults to ``Session``: a process reads its own
    writes at once, and searches do not wait for the server's next time tick as ``Strong`` ones do (5 ms instead of
    400 ms per search at 1M vectors on a server). ``count()``, ``ids()`` and ``stored_hashes()`` (the indexer's
    resume check) are always ``Strong``, so a re-run in a new process sees every row an earlier run wrote, even
    while a restarted server is still replaying its log.

    A server that is unreachable, restarting or not ready is retried with exponential backoff (0.5 s doubling to
    5 s) for up to ``retry_seconds`` per call (default 60; 0 turns retries off), then the call fails with a
    ``StoreError`` saying so. Every retried call is idempotent (upserts by primary key, deletes, reads; creating
    the collection skips the steps already done), so a retry or a re-run never doubles a row.
    """

    def __init__(self, uri: str | os.PathLike[str] | None = None,
                 collection: str = "products", api_key: str | None = None,
                 index_type: str | None = None, index_params: dict[str, Any] | None = None,
                 search_params: dict[str, Any] | None = None, metric: Metric | None = None, db_name: str = "",
                 timeout: float = 30.0, consistency_level: str = "Session",
                 retry_seconds: float = DEFAULT_RETRY_SECONDS) -> None:
        self.uri = uri_text(uri, DEFAULT_URI)
        self.collection = collection
        self.is_server = self.uri.startswith(SERVER_SCHEMES)
        if not self.is_server:
            check_not_foreign(self.uri, "milvus")
        self.index_type = (index_type or ("AUTOINDEX" if self.is_server else "FLAT")).upper()
        self.index_params = dict(index_params or ({"M": 16, "efConstruction": 200} if self.index_type == "HNSW"
                                                  else {}))
        self.search_params = dict(search_params or {})
        self.metric = metric
        self.consistency_level = consistency_level
        self.retry_seconds = max(0.0, float(retry_seconds))
        self._token = api_key or ""
        self._secrets = [secret for secret in (api_key, urlsplit(self.uri).password) if secret]
        if metric is not None:
            check_metric(metric)
        self._dim: int | None = None
        self._indexed = False  # whether the collection's vector index exists (a half-created one has none)
        self._metric_type = METRICS[metric or "cosine"]
        self._loaded = False
        if not COLLECTION_NAME.fullmatch(collection):
            raise StoreError(f"{collection!r} is not a valid Milvus collection name: use letters, digits and "
                             "underscores, starting with a letter or underscore (e.g. --collection my_products)")
        if not self.is_server and Path(self.uri).suffix != ".db":
            raise StoreError(f"Milvus Lite keeps its data in a file ending in .db, got {self.uri!r}; use "
                             "e.g. --uri ./smar.db, or an http(s)://host:port URI for a Milvus server")
        self._connect_args = {"db_name": db_name, "timeout": timeout}
        self._client: MilvusClient | None = None
        self._closed = False
        self._connecting = threading.Lock()  # threads sharing a store on a new file must not start two clients
        if not self._missing_file():  # a Lite file is created by the first write, so that reading leaves none
            self._client = self._connect()

    # ----- helpers -----
    def _missing_file(self) -> bool:
        """Whether this is a Milvus Lite store that does not exist (yet): no such path, or an empty folder."""
        path = Path(self.uri)
        return not self.is_server and (not path.exists() or path.is_dir() and not any(path.iterdir()))

    def _connect(self) -> MilvusClient:
        if not self.is_server:
            if Path(self.uri).is_file():
                raise StoreError(f"{self.uri} is a file, but Milvus Lite keeps its data in a folder of that name, so "
                                 "this is not a Milvus Lite store (another program's file?); use another --uri, or "
                                 "move the file away")
            try:
                Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder of Milvus Lite file {self.uri}: {exc.strerror} "
                                 f"({exc.filename}); use a --uri in a folder you can write") from exc
        return self._call("connecting", self._new_client, connecting=True)

    def _new_client(self) -> MilvusClient:
        """A client, refused when its ``db_name`` names no database on the server (pymilvus connects to one anyway:
        reads then find nothing and writes fail with "not found")."""
        client = MilvusClient(uri=self.uri, token=self._token, **self._connect_args)
        db_name = self._connect_args["db_name"]
        if not (self.is_server and db_name):
            return client
        try:
            databases = client.list_databases()
        except BaseException:
            client.close()  # a retry makes a new client: this one must not stay open
            raise
        if db_name not in databases:
            client.close()
            raise StoreError(f"database {db_name!r} does not exist at {self._where()} (it has "
                             f"{', '.join(map(repr, databases))}): check db_name, or create it first "
                             f"(MilvusClient(uri).create_database({db_name!r}))")
        return client

    @property
    def client(self) -> MilvusClient:
        """The pymilvus client; for a Milvus Lite file that does not exist yet, connecting creates it."""
        if self._client is None:
            with self._connecting:
                if self._client is None:
                    self._client = self._connect()
        return self._client

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error(self._where(), self.collection)

    def _where(self) -> str:
        return f"Milvus server {safe_uri(self.uri)}" if self.is_server else f"Milvus Lite at {self.uri}"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _hint(self, exc: Exception, connecting: bool, started: float) -> str:
        """What to do about a failed call: after retries, how long they ran and how to resume."""
        if self.is_server and (is_transient(exc) or is_not_loaded(exc)):
            return (f"; no answer after retrying for {time.monotonic() - started:.1f}s (retry_seconds="
                    f"{self.retry_seconds:g}): is the server running and the URI right? Start it, then re-run the "
                    "same command (an index run skips the rows it finished)")
        if self.is_server and connecting:
            return ("; is the server running, and are the URI (http(s)://host:port, gRPC port, default 19530) "
                    "and the API key/token right?")
        return ("; is another process using this file (a Milvus Lite file can be open in one process at a time: "
                "stop it or use another --uri), is milvus-lite installed (pip install \"smar-sdk[milvus]\") and is the "
                "file writable?" if connecting else "")

    @contextmanager
    def _errors(self, action: str, connecting: bool = False, started: float | None = None) -> Iterator[None]:
        started = time.monotonic() if started is None else started
        was_quiet, _QUIET.local.active = getattr(_QUIET.local, "active", False), True
        try:
            yield
        except (StoreError, FilterError):
            raise
        except Exception as exc:  # pymilvus raises MilvusException and its children, grpc and OS errors
            what = f"cannot connect to {self._where()}" if connecting else \
                f"{action} (collection {self.collection!r}) failed at {self._where()}"
            leaks = any(secret in str(exc) for secret in self._secrets)
            message = self._scrub(f"{what}: {_reason(exc)}{self._hint(exc, connecting, started)}")
            raise StoreError(message) from (None if leaks else exc)
        finally:
            _QUIET.local.active = was_quiet

    def _call(self, action: str, fn: Callable[[], T], connecting: bool = False) -> T:
        """Run one client call. On a server, transient failures (unreachable, restarting, not ready, collection not
        loaded yet) are retried with exponential backoff for up to ``retry_seconds``; then one StoreError."""
        self._check_open()
        started, delays, reload = time.monotonic(), backoff_delays(), False
        with self._errors(action, connecting, started):
            while True:
                try:
                    if reload:
                        self.client.load_collection(self.collection)
                    return fn()
                except Exception as exc:
                    reload = reload or is_not_loaded(exc)
                    delay = self._retry_delay(action, exc, started, next(delays))
                    if delay is None:
                        raise
                time.sleep(delay)

    def _retry_delay(self, action: str, exc: Exception, started: float, backoff: float) -> float | None:
        """Seconds to wait before retrying ``exc``, or None when it is not transient or the budget is spent."""
        remaining = self.retry_seconds - (time.monotonic() - started)
        if not self.is_server or remaining <= 0 or not (is_transient(exc) or is_not_loaded(exc)):
            return None
        logger.warning("%s", self._scrub(f"{action}: {self._where()} is not available ({_reason(exc)}); retrying "
                                         f"in {min(backoff, remaining):.1f}s (for up to {remaining:.0f}s more)"))
        return min(backoff, remaining)

    def _exists(self) -> bool:
        if self._dim is None and self._client is None and self._missing_file():
            return False  # not even the file: nothing to create by asking
        return self._dim is not None or bool(self._call("checking the collection",
                                                        lambda: self.client.has_collection(self.collection)))

    def dimension(self) -> int | None:
        """The collection's vector size, or None when it does not exist yet."""
        if self._dim is None and self._exists():
            info = self._call("reading the collection", lambda: self.client.describe_collection(self.collection))
            fields = {f["name"]: f for f in info["fields"]}
            vector = fields.get(VECTOR_FIELD)
            if ID_FIELD not in fields or PAYLOAD_FIELD not in fields or vector is None \
                    or vector["type"] != DataType.FLOAT_VECTOR:
                raise StoreError(f"collection {self.collection!r} at {self._where()} was not made by smar-sdk "
                                 f"(it needs the fields {ID_FIELD}, {VECTOR_FIELD}, {PAYLOAD_FIELD}); use another "
                                 "--collection")
            indexes = self._call("reading the index", lambda: self.client.list_indexes(self.collection, VECTOR_FIELD))
            self._indexed = bool(indexes)
            if indexes:
                index = self._call("reading the index",
                                   lambda: self.client.describe_index(self.collection, indexes[0]))
                self._metric_type = str(index.get("metric_type", self._metric_type)).upper()
                self.index_type = str(index.get("index_type", self.index_type)).upper()
            self._dim = int(vector["params"]["dim"])
        return self._dim

    def _require_dim(self) -> int:
        dim = self.dimension()
        if dim is None:
            raise missing_collection_error(self, self._where())
        return dim

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            state = self._call("loading the collection", lambda: self.client.get_load_state(self.collection))
            if state.get("state") != LoadState.Loaded:
                self._call("loading the collection", lambda: self.client.load_collection(self.collection))
            self._loaded = True

    def _search_params(self, k: int) -> dict[str, Any]:
        params = dict(self.search_params)
        if self.index_type == "HNSW":
            params["ef"] = max(k, int(params.get("ef", DEFAULT_EF)))
        return {"metric_type": self._metric_type, "params": params}

    # ----- the store protocol -----
    def ensure_collection(self, dim: int, metric: Metric = "cosine") -> None:
        self._check_open()  # a known size would otherwise answer without a call
        check_metric(metric)
        existing = self.dimension()
        made_for = METRIC_NAMES.get(self._metric_type, self._metric_type.lower()) if self._indexed else None
        if collection_matches(self.collection, self._where(), existing, dim, made_for, self.metric or metric) \
                and self._indexed:
            return  # else new, or left half-created (no index) by an interrupted run: finish it
        metric_type = METRICS[self.metric or metric]
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID_FIELD, DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field(PAYLOAD_FIELD, DataType.JSON)
        index = MilvusClient.prepare_index_params()
        index.add_index(field_name=VECTOR_FIELD, index_type=self.index_type, metric_type=metric_type,
                        params=self.index_params)
        self._call("creating the collection", lambda: self._create(schema, index))
        self._dim, self._metric_type, self._loaded, self._indexed = dim, metric_type, True, True

    def _create(self, schema: Any, index: Any) -> None:
        """Create, index and load the collection, skipping what exists: safe to retry after a half-done attempt."""
        if not self.client.has_collection(self.collection):
            self.client.create_collection(self.collection, schema=schema, consistency_level=self.consistency_level)
        if not self.client.list_indexes(self.collection, VECTOR_FIELD):
            self.client.create_index(self.collection, index)
        self.client.load_collection(self.collection)

    def upsert(self, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        self._check_open()
        if not len(ids):
            return
        array, payloads = check_batch(ids, vectors, payloads, self._require_dim(), self.collection)
        latest = {str(item_id): row for row, item_id in enumerate(ids)}  # a repeated id: the last one wins
        for item_id in latest:
            if len(item_id.encode()) > MAX_ID_BYTES:
                raise StoreError(f"item id {item_id[:40]!r}... is longer than {MAX_ID_BYTES} bytes, the most a "
                                 f"Milvus collection ({self.collection!r}) made by smar-sdk holds")
        rows = [{ID_FIELD: item_id, VECTOR_FIELD: array[row].tolist(), PAYLOAD_FIELD: payloads[row]}
                for item_id, row in latest.items()]
        self._ensure_loaded()
        for start in range(0, len(rows), BATCH):
            self._call("upserting", lambda b=rows[start:start + BATCH]: self.client.upsert(self.collection, b))

    def delete(self, ids: list[str]) -> None:
        sdk_store.check_ids(ids)
        if not len(ids) or not self._exists():
            return
        self._ensure_loaded()
        for expr in _id_filters(ids):
            self._call("deleting", lambda e=expr: self.client.delete(self.collection, filter=e))

    def search(self, vectors: np.ndarray, k: int, conditions: list[Condition] | None = None) -> list[list[Hit]]:
        self._check_open()
        array, k = check_search(vectors, k, self._require_dim(), self.collection)
        if not len(array):
            return []
        expr = to_milvus_filter(conditions)
        self._ensure_loaded()
        results = self._call("searching", lambda: self.client.search(
            self.collection, data=array.tolist(), limit=k, filter=expr, output_fields=[PAYLOAD_FIELD],
            search_params=self._search_params(k), consistency_level=self.consistency_level))
        sign = -1.0 if self._metric_type == "L2" else 1.0  # L2 is a distance: negate so that higher is better
        return [[Hit(id=str(hit["id"]), score=sign * float(hit["distance"]), payload=_public(hit["entity"]))
                 for hit in hits] for hits in results]

    def collections(self) -> list[str]:
        """The names of the collections at this URI (to name them when the one asked for does not exist)."""
        if self._missing_file():
            return []
        return sorted(self._call("listing collections", self.client.list_collections))

    def count(self) -> int:
        """The exact number of items (a strongly consistent ``count(*)`` query)."""
        if not self._exists():
            return 0
        self._ensure_loaded()
        rows = self._call("counting", lambda: self.client.query(
            self.collection, filter="", output_fields=["count(*)"], consistency_level="Strong"))
        return int(rows[0]["count(*)"])

    def ids(self) -> set[str]:
        """Every item id in the collection (used to prune items no longer in a catalog)."""
        found: set[str] = set()
        if not self._exists():
            return found
        self._ensure_loaded()
        return self._call("listing ids", self._all_ids)

    def _all_ids(self) -> set[str]:
        """One pass of a query iterator over every id (retried as a whole: an iterator cannot resume)."""
        found: set[str] = set()
        iterator = self.client.query_iterator(self.collection, batch_size=BATCH, filter=f'{ID_FIELD} != ""',
                                              output_fields=[ID_FIELD], consistency_level="Strong")
        try:
            while batch := iterator.next():
                found.update(str(row[ID_FIELD]) for row in batch)
        finally:
            iterator.close()
        return found

    def stored_hashes(self, ids: list[str]) -> dict[str, str]:
        """Content hashes stored for the given ids (lets a re-run of the indexer skip unchanged items)."""
        return self._payload_values(ids, HASH_PAYLOAD_KEY)

    def stored_vectors(self, wanted: dict[str, str]) -> dict[str, np.ndarray]:
        """The stored vectors of the ids in ``wanted`` whose stored vector hash is the one given (a row that changed
        in payload only keeps its vector); the vectors of the others are not read."""
        same = [i for i, vector_hash in self._payload_values(list(wanted), VECTOR_HASH_PAYLOAD_KEY).items()
                if wanted[i] == vector_hash]
        return {i: np.asarray(row[VECTOR_FIELD], dtype=np.float32) for i, row in self._rows(same, VECTOR_FIELD).items()}

    def _payload_values(self, ids: list[str], key: str) -> dict[str, str]:
        """The stored values of one of the SDK's payload keys, by id (ids stored without it are left out)."""
        payloads = {i: row.get(PAYLOAD_FIELD) or {} for i, row in self._rows(ids, PAYLOAD_FIELD).items()}
        return {i: str(payload[key]) for i, payload in payloads.items() if key in payload}

    def _rows(self, ids: list[str], field: str) -> dict[str, dict[str, Any]]:
        """The stored rows (id and ``field``) of the given ids, by id."""
        found: dict[str, dict[str, Any]] = {}
        if not len(ids) or not self._exists():
            return found
        self._ensure_loaded()
        for expr in _id_filters(ids):
            rows = self._call("reading stored points", lambda e=expr: self.client.query(
                self.collection, filter=e, output_fields=[ID_FIELD, field], consistency_level="Strong"))
            found.update((str(row[ID_FIELD]), row) for row in rows)
        return found

    def close(self) -> None:
        self._closed = True
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> MilvusStore:
        return self

    def __repr__(self) -> str:
        return f"<MilvusStore {safe_uri(self.uri)!r} collection={self.collection!r}>"

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The store protocol, the one seam between the SDK and a vector database, and connector discovery."""

from __future__ import annotations

import difflib
import inspect
import json
import os
import uuid
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from pydantic import BaseModel

from .errors import ConnectorNotFoundError, StoreError, VectorSizeError
from .filters import Condition

ENTRY_POINT_GROUP = "smar_sdk.connectors"
ID_NAMESPACE = uuid.UUID("8f0b7a4e-3c51-4d8e-9a57-2f6f1b0de2a1")
ID_PAYLOAD_KEY = "_smar_id"
HASH_PAYLOAD_KEY = "_smar_hash"
MODEL_PAYLOAD_KEY = "_smar_model"  # the fingerprint of the model files that encoded the point
VIEW_PAYLOAD_KEY = "_smar_view"  # the item view stored: fused, text or image
VECTOR_HASH_PAYLOAD_KEY = "_smar_vector_hash"  # what the vector alone was made from: a payload change keeps it
RESERVED_PAYLOAD_KEYS = (ID_PAYLOAD_KEY, HASH_PAYLOAD_KEY, MODEL_PAYLOAD_KEY, VIEW_PAYLOAD_KEY,
                         VECTOR_HASH_PAYLOAD_KEY)
Metric = Literal["cosine", "dot", "euclid"]


def catalog_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A stored payload without the SDK's bookkeeping keys (``RESERVED_PAYLOAD_KEYS``): the catalog row's fields."""
    return {key: value for key, value in payload.items() if key not in RESERVED_PAYLOAD_KEYS}


class Hit(BaseModel):
    """One search result: the item's original id, its score (higher is better) and its payload."""

    id: str
    score: float
    payload: dict[str, Any]


def safe_uri(uri: str) -> str:
    """The URI without any ``user:password@`` part, fit for messages and ``info``."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def point_uuid(item_id: str) -> str:
    """The deterministic database id of an item id (uuid5), identical across connectors and runs."""
    return str(uuid.uuid5(ID_NAMESPACE, item_id))


@runtime_checkable
class VectorStore(Protocol):
    """What a connector implements. Constructed as ``Store(uri=..., collection=..., **options)``."""

    collection: str

    def ensure_collection(self, dim: int, metric: Metric = "cosine") -> None: ...

    def upsert(self, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None: ...

    def delete(self, ids: list[str]) -> None: ...

    def search(self, vectors: np.ndarray, k: int, conditions: list[Condition] | None = None) -> list[list[Hit]]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...

    def __enter__(self) -> VectorStore: ...

    def __exit__(self, *exc: object) -> None: ...


def available_connectors() -> dict[str, Any]:
    """Connector names registered in the ``smar_sdk.connectors`` entry-point group."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def connector_takes(store: str, option: str) -> bool:
    """True when the connector registered as ``store`` accepts the constructor option ``option`` (False when it is
    unknown or cannot be imported: ``open_store`` then explains)."""
    try:
        cls = available_connectors()[store].load()
    except (KeyError, ImportError):
        return False
    parameters = inspect.signature(cls.__init__).parameters
    return option in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def uri_text(uri: str | os.PathLike[str] | None, default: str | None = None) -> str | None:
    """A store's ``uri`` as text (a ``pathlib.Path`` is a path like a string; a leading ``~`` is the home folder, also
    where no shell expanded it: an env file, ``--uri=~/x``); ``default`` when none is given."""
    return os.path.expanduser(os.fspath(uri)) if uri else default


def missing_collection_error(store: Any, where: str, command_line: bool = False) -> StoreError:
    """The error for a collection that does not exist at ``where`` (a database and its URI): the likely one meant
    (a mistyped name), or the ones there are; options named as on the ``command_line`` or as Python arguments."""
    listing = getattr(store, "collections", None)  # optional in the store protocol
    try:
        names = [name for name in listing() if name != store.collection] if callable(listing) else []
    except StoreError:
        names = []
    close = difflib.get_close_matches(store.collection, names, 1)
    guess = f"--collection {close[0]}" if close and command_line else f"collection={close[0]!r}" if close else ""
    there = (f"; did you mean {guess}?" if guess else
             f"; it holds {', '.join(map(repr, names[:10]))}" if names else "; it holds no collection")
    check = "--store, --uri and --collection" if command_line else "store, uri and collection"
    return StoreError(f"collection {store.collection!r} does not exist at {where}{there} (index a catalog first, or "
                      f"check {check})")


def closed_error(where: str, collection: str) -> StoreError:
    """The one error of every call on a store after ``close()`` (``where``: the database and its URI)."""
    return StoreError(f"the store {where} (collection {collection!r}) is closed; open it again (open_store, a new "
                      "SMARIndexer or SMARRetriever) to use it")


def _written_by(folder: Path) -> str | None:
    """The embedded database whose files ``folder`` holds, if one of the built-in connectors' does."""
    if (folder / "meta.json").is_file() or (folder / "edge").is_dir():
        return "qdrant"
    if (folder / "LOCK").is_file() and (folder / "collections").is_dir():
        return "milvus"
    return None


def check_not_foreign(path: str, connector: str) -> None:
    """Refuse an embedded store folder another connector's database wrote: opening it with ``connector`` would
    write that database's files in among the other's, and find nothing."""
    found = _written_by(Path(path))
    if found and found != connector:
        raise StoreError(f"{path} holds a store of the {found!r} connector, not {connector!r}: open it with --store "
                         f"{found}, or give --store {connector} another --uri")


def open_store(store: str, uri: str | os.PathLike[str] | None = None, collection: str = "products",
               **options: Any) -> VectorStore:
    """Instantiate the connector registered under the name ``store`` (``qdrant``, ``milvus``, ...)."""
    uri = uri_text(uri)
    name = store
    connectors = available_connectors()
    if name not in connectors:
        known = ", ".join(sorted(connectors)) or "none"
        raise ConnectorNotFoundError(f"unknown store {name!r}; installed connectors: {known} "
                                     f"(third-party ones register in the {ENTRY_POINT_GROUP!r} entry-point group)")
    try:
        cls = connectors[name].load()
    except ImportError as exc:
        raise StoreError(f"connector {name!r} is installed but cannot be imported ({exc}); "
                         f"try `pip install \"smar-sdk[{name}]\"`") from exc
    try:
        return cls(uri=uri, collection=collection, **options)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise StoreError(f"connector {name!r} does not take the option {str(exc).rpartition(' ')[2]} "
                         f"(given: {', '.join(sorted(options))})") from exc


def check_metric(metric: str) -> Metric:
    """``metric`` when it is one the store protocol knows; else a StoreError naming the choices."""
    if metric not in get_args(Metric):
        raise StoreError(f"unknown metric {metric!r}; use one of {', '.join(get_args(Metric))}")
    return metric  # type: ignore[return-value]


def collection_matches(collection: str, where: str, existing: int | None, dim: int,
                       existing_metric: str | None = None, metric: str | None = None) -> bool:
    """True when the collection already exists with vectors of ``dim`` (and, when both are known, ``metric``);
    a different size or metric is an error."""
    if existing is None:
        return False
    if existing != dim:
        raise VectorSizeError(f"collection {collection!r} at {where} holds {existing}-d vectors but the model makes "
                              f"{dim}-d ones; use the model it was built with or another --collection")
    if existing_metric is not None and metric is not None and existing_metric != metric:
        raise StoreError(f"collection {collection!r} at {where} was made for the {existing_metric!r} metric, not "
                         f"{metric!r}; ask for {existing_metric!r} or use another --collection")
    return True


def check_ids(ids: object) -> None:
    """Refuse one id given where a list of ids is expected (a string would be read as its characters)."""
    if isinstance(ids, str | bytes):
        raise TypeError(f"ids must be a list of ids, not one string: use [{ids!r}]")


def check_search(vectors: np.ndarray, k: int, dim: int, collection: str) -> tuple[np.ndarray, int]:
    """A search's vectors, checked as :func:`check_vectors` does, and ``k`` as a Python int (1 or more; a numpy
    integer too)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a whole number of 1 or more (how many hits per query), got {k!r}")
    return check_vectors(vectors, dim, collection), int(k)


def json_value(value: Any) -> Any:
    """``json.dumps``' ``default``: numpy values (as pandas gives them) as the Python values they hold; anything else
    is not a JSON value (a ``TypeError``)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"a {type(value).__name__} is not a JSON value")


def _check_keys(value: Any) -> None:
    """Refuse object keys that are not strings: JSON would turn ``1`` into ``"1"`` (and lose one of ``1`` and
    ``"1"``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"key {key!r} is a {type(key).__name__}; JSON object keys are strings")
            _check_keys(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_keys(item)


def plain_payloads(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Payloads as plain JSON values, so every store keeps the same thing: numpy values as the Python values they
    hold; NaN, infinity, keys that are not strings and values JSON cannot express are a ``ValueError`` naming the
    payload."""
    plain = []
    for row, payload in enumerate(payloads):
        try:
            _check_keys(payload)
            plain.append(json.loads(json.dumps(payload, allow_nan=False, default=json_value)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"payload {row} cannot be stored as JSON ({exc}): give strings, numbers (not NaN or "
                             "infinity), booleans, null, lists and objects") from exc
    return plain


def check_batch(ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]], dim: int,
                collection: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """An upsert's vectors (as :func:`check_vectors` gives them) and payloads (as :func:`plain_payloads` does), after
    checking that ids, vectors and payloads align."""
    array = check_vectors(vectors, dim, collection)
    if not len(ids) == len(array) == len(payloads):
        raise ValueError(f"{len(ids)} ids, {len(array)} vectors and {len(payloads)} payloads differ in length")
    return array, plain_payloads(payloads)


def check_vectors(vectors: np.ndarray, dim: int, collection: str) -> np.ndarray:
    """Validate a batch of vectors against a collection's size; return a C-contiguous float32 copy."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"vectors must be one vector or a 2-d batch (rows x {dim}), got shape {array.shape}")
    if array.shape[1] != dim:
        raise VectorSizeError(f"collection {collection!r} holds {dim}-d vectors but got {array.shape[-1]}-d ones; "
                              "use the model the collection was built with, or a new --collection")
    if not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise ValueError(f"vector {row} holds NaN or infinity (or a number too large for float32); no search "
                         "could find it")
    return np.ascontiguousarray(array)

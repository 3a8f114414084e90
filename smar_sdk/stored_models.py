"""Which model and item view encoded a collection's products: read from the fingerprint and view each stored point
carries."""

from __future__ import annotations

import numpy as np

from .errors import StoreError
from .store import MODEL_PAYLOAD_KEY, VIEW_PAYLOAD_KEY, VectorStore


def stored_dimension(store: VectorStore) -> int | None:
    """The collection's vector size, or None when it does not exist or the connector cannot tell."""
    dimension = getattr(store, "dimension", None)
    return dimension() if callable(dimension) else None


def sampled_payloads(store: VectorStore, probes: int = 1, k: int = 1) -> list[dict]:
    """Payloads of the stored products found by ``probes`` searches (``k`` hits each) in spread-out directions; empty
    for a missing or empty collection or a connector that cannot tell its vector size."""
    dim = stored_dimension(store)
    if not dim:
        return []
    directions = np.random.default_rng(0).standard_normal((probes, dim)).astype(np.float32)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return [hit.payload for found in store.search(directions, k=k) for hit in found]


def sampled_payload(store: VectorStore) -> dict:
    """The payload of one stored product (:func:`sampled_payloads`), or an empty one when there is none."""
    payloads = sampled_payloads(store)
    return payloads[0] if payloads else {}


def sampled_models(store: VectorStore, probes: int = 8, k: int = 16) -> set[str]:
    """The files fingerprints of the models that encoded the products ``probes`` searches found (``k`` hits each):
    more than one means a half-replaced collection. Empty when there is none to sample."""
    return {payload[MODEL_PAYLOAD_KEY] for payload in sampled_payloads(store, probes, k)
            if MODEL_PAYLOAD_KEY in payload}


def sampled_model(store: VectorStore) -> str | None:
    """The files fingerprint of the model that encoded one stored product, or None when there is none to sample
    (:func:`sampled_payload`) or it was written before the SDK recorded the model."""
    return sampled_payload(store).get(MODEL_PAYLOAD_KEY)


def check_models(fingerprint: str, models: set[str], collection: str) -> None:
    """Stop when ``models`` (fingerprints of stored products a search found) are not all ``fingerprint``'s: scores
    of vectors from two models cannot be ranked together."""
    others = sorted(models - {fingerprint})
    if not others:
        return
    if fingerprint in models:
        raise StoreError(f"collection {collection!r} holds products of two models (files {fingerprint[:12]} and "
                         f"{others[0][:12]}): a re-index with --replace-model has not finished or left products it "
                         "did not re-encode (rows it rejected, ids no longer in the catalog); fix the rejected rows "
                         "and run it again over the whole catalog with --prune, or index into a new collection")
    raise StoreError(f"collection {collection!r} was indexed with another model (files {others[0][:12]}) "
                     f"than the one searching it ({fingerprint[:12]}): search with the model it was indexed with "
                     "(--model), or index the catalog again with this one")


def check_store_models(fingerprint: str, found: set[str], store: VectorStore) -> None:
    """:func:`check_models` on the models of the products a search ``found``. When none of them is this model's, a
    wider sample of the collection (:func:`sampled_models`) tells a half-replaced collection, whose advice is to
    finish the re-index, from one another model filled, whose advice is ``--model``."""
    if found and fingerprint not in found:
        found = found | sampled_models(store)
    check_models(fingerprint, found, store.collection)


def stored_view(payload: dict, fingerprint: str, default_view: str) -> str | None:
    """The item view a stored product holds. Points written before the SDK recorded the view hold the model's
    default view when this model wrote them (the command line always stored it); another model's are unknown."""
    view = payload.get(VIEW_PAYLOAD_KEY)
    if view is None and payload.get(MODEL_PAYLOAD_KEY) == fingerprint:
        return default_view
    return view


def check_views(views: set[str], collection: str) -> None:
    """Stop when ``views`` (item views of stored products a search found) are not all one: a title's text view and
    its fused view score a query on different scales."""
    if len(views) > 1:
        first, second = sorted(views)[:2]
        raise StoreError(f"collection {collection!r} holds products stored as two item views ({first} and {second}): "
                         "a re-index with another view has not finished; run it again over the whole catalog with "
                         "replace_model=True, prune=True (--replace-model --prune), or index into a new collection")


def check_index_model(fingerprint: str, view: str, default_view: str, store: VectorStore) -> None:
    """Stop before indexing with one model, or one item view, into a collection another model or view filled (one
    product sampled; ``default_view``: the model's own, see :func:`stored_view`)."""
    payload = sampled_payload(store)
    stored, found_view = payload.get(MODEL_PAYLOAD_KEY), stored_view(payload, fingerprint, default_view)
    if found_view is not None and found_view != view and stored in (None, fingerprint):
        raise StoreError(f"collection {store.collection!r} holds products stored as the {found_view} item view, and "
                         f"this run stores the {view} view; one ranking cannot mix them. Index with "
                         f"view={found_view!r}, into a new collection (--collection NAME), or re-encode every "
                         "product in place with --replace-model --prune (replace_model=True, prune=True; until "
                         "every product is re-encoded, a search whose results meet both views fails)")
    if stored is not None and stored != fingerprint:
        raise StoreError(f"collection {store.collection!r} holds products indexed with another model (files "
                         f"{stored[:12]}) than this one ({fingerprint[:12]}); mixing them would break every search. "
                         "Index into a new collection (--collection NAME), or re-encode every product in place with "
                         "--replace-model --prune (replace_model=True, prune=True; until every product is re-encoded, "
                         "a search whose results meet both models fails)")

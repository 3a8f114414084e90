"""``SMARRetriever``: a text query in, ranked products out."""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Iterable
from typing import Any

from .errors import VectorSizeError
from .filters import empty_filter_hint, parse_filter
from .indexer import StoreUser
from .model import SMARModel
from .query_synonyms import QuerySynonyms
from .store import MODEL_PAYLOAD_KEY, RESERVED_PAYLOAD_KEYS, Hit, VectorStore, catalog_payload
from .stored_models import (
    check_store_models,
    check_views,
    sampled_model,
    sampled_payloads,
    stored_dimension,
    stored_view,
)
from .text import NOT_UTF8, is_utf8

logger = logging.getLogger(__name__)

MAX_K = 16_384  # the most results one search returns (Milvus' limit; the CLI's -k stops at 10,000)


class SMARRetriever(StoreUser):
    """Encodes text queries with the model's query tower and searches the store's fused item vectors.

    ``synonyms`` (a ``QuerySynonyms``) rewrites each query's shopper words to the catalog's before encoding.
    """

    def __init__(self, model: SMARModel, store: str | VectorStore = "qdrant", uri: str | os.PathLike[str] | None = None,
                 collection: str = "products", *, synonyms: QuerySynonyms | None = None, **store_options: Any) -> None:
        if synonyms is not None and not isinstance(synonyms, QuerySynonyms):
            raise TypeError("synonyms must be a QuerySynonyms (QuerySynonyms(groups) or "
                            f"QuerySynonyms.from_file(path)), got {type(synonyms).__name__}")
        super().__init__(model, store, uri, collection, **store_options)
        self.synonyms = synonyms

    def search(self, query: str, k: int = 10, filter: dict[str, Any] | None = None, *,
               explain_empty: bool = True) -> list[Hit]:
        """The ``k`` best products for one query, best first, optionally filtered (``{"gender": "Women"}``)."""
        return self.search_many([query], k=k, filter=filter, explain_empty=explain_empty)[0]

    def search_many(self, queries: Iterable[str], k: int = 10, filter: dict[str, Any] | None = None, *,
                    explain_empty: bool = True) -> list[list[Hit]]:
        """Search several queries at once (one encoder batch, one store round trip). When a filter finds nothing,
        a warning says why if a sample of stored products tells (:meth:`filter_hint`; ``explain_empty=False``
        for none)."""
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise ValueError(f"k must be an integer from 1 to {MAX_K:,}, got {k!r}")
        k = int(k)  # numpy integers too
        if isinstance(queries, str):
            raise TypeError("search_many takes a list of queries; for one query string use search(query)")
        queries = list(queries)  # a generator is read once, here
        if blank := [i for i, query in enumerate(queries) if not isinstance(query, str) or not query.strip()]:
            raise ValueError(f"queries must be non-blank strings; query {blank[0]} is {queries[blank[0]]!r}")
        if not_text := [i for i, query in enumerate(queries) if not is_utf8(query)]:
            raise ValueError(f"query {not_text[0]} ({queries[not_text[0]]!r}) holds {NOT_UTF8}")
        if not queries:
            return []
        conditions = parse_filter(filter)
        if self.synonyms is not None:
            queries = [self.synonyms.rewrite(query) for query in queries]
        results = self.store.search(self.model.encode_queries(queries), k=k, conditions=conditions)
        check_indexed_with(self.model, results, self.store)
        if explain_empty and filter and not any(results) and (hint := self.filter_hint(filter)):
            logger.warning("note: the filter found nothing: %s", hint)
        return [[_public(hit) for hit in hits] for hits in results]

    def filter_hint(self, filter: dict[str, Any]) -> str | None:
        """Why ``filter`` may match no stored product, judged from a sample of stored payloads: a field they lack,
        a value that differs only in case, or a number where they hold text (filters are typed)."""
        payloads = [catalog_payload(payload) for payload in sampled_payloads(self.store, 8, 16)]
        return empty_filter_hint(filter, payloads)


def check_indexed_with(model: SMARModel, results: list[list[Hit]], store: VectorStore) -> None:
    """Stop when any hit was encoded by another model than the one encoding the queries, or the hits mix item views:
    their scores would not rank together. Points written before the SDK recorded the model pass."""
    hits = [hit for found in results for hit in found]
    fingerprint, default_view = model.fingerprint, model.config.stored_view
    check_store_models(fingerprint, {hit.payload.get(MODEL_PAYLOAD_KEY) for hit in hits} - {None}, store)
    check_views({stored_view(hit.payload, fingerprint, default_view) for hit in hits} - {None}, store.collection)


def check_store_serves(model: SMARModel, store: VectorStore) -> None:
    """Stop when the collection's vectors cannot answer this model's queries: another vector size, or products
    (one sampled) encoded by another model."""
    dim = stored_dimension(store)
    if dim is not None and dim != model.dim:
        raise VectorSizeError(f"collection {store.collection!r} holds {dim}-d vectors but the model makes "
                              f"{model.dim}-d ones: use the model the collection was indexed with (--model)")
    check_store_models(model.fingerprint, {sampled_model(store)} - {None}, store)


def _public(hit: Hit) -> Hit:
    """Drop the SDK's bookkeeping fields from a hit's payload."""
    if any(key in hit.payload for key in RESERVED_PAYLOAD_KEYS):
        return hit.model_copy(update={"payload": catalog_payload(hit.payload)})
    return hit

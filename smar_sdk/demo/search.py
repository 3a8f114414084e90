"""The demo's search logic: SMAR (fused) ranking from the store, and a text-only re-ranking for comparison.

Text-only mode is honest but bounded: the store holds fused vectors only, so the demo takes the top
``pool`` fused candidates (with the same filters) and re-ranks them by the model's *text view* of each
item (its title through the text encoder and text head, no image), scored against the same query
vector. With a catalog no bigger than ``pool`` this is the exact text-only ranking of the whole catalog.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field

from ..filters import empty_filter_hint, filter_text, parse_filter, typed_filter_value
from ..model import SMARModel
from ..query_synonyms import QuerySynonyms
from ..retriever import check_indexed_with
from ..store import Hit, VectorStore, catalog_payload
from .images import payload_url

Mode = Literal["fused", "text"]
MODE_LABELS: dict[str, str] = {
    "fused": "SMAR fused: the query against each product's fused title+image vector, searched in the store",
    "text": "text-only: the top {pool} fused candidates re-ranked by the model's title-only (text view) vector",
}
TEXT_CACHE_SIZE = 20_000


class Card(BaseModel):
    """One card of the grid."""

    id: str
    score: float
    title: str
    attributes: dict[str, str]
    image_url: str | None


class SearchResult(BaseModel):
    """What ``GET /api/search`` answers."""

    query: str
    searched_as: str = Field(description="the query after the shop's synonyms (the query itself without any)")
    mode: Mode
    mode_label: str
    filters: dict[str, str]
    hits: list[Card]
    facets: dict[str, dict[str, int]] = Field(description="value counts among the top `max(pool, k)` unfiltered hits")
    note: str | None = Field(None, description="why the filters may have found nothing (a field no product has, a "
                                               "value that differs only in case), when they found nothing")
    milliseconds: float


class DemoSearch:
    """Answers demo queries against one store with one model; safe to call from several threads."""

    def __init__(self, model: SMARModel, store: VectorStore, text_fields: Sequence[str] | None = None,
                 facets: Sequence[str] = ("gender", "article_type"),
                 attributes: Sequence[str] = ("gender", "article_type", "colour"), pool: int = 200,
                 image_url: Callable[[Hit], str | None] | None = None, image_field: str = "image",
                 synonyms: QuerySynonyms | None = None) -> None:
        self.model = model
        self.synonyms = synonyms
        self.store = store
        self.text_fields = list(text_fields or model.config.text_fields)
        self.facets = list(facets)
        self.attributes = list(attributes)
        self.pool = pool
        self.image_url = image_url or (lambda hit: payload_url(hit, image_field))
        self._lock = threading.Lock()
        self._text_vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def count(self) -> int:
        """How many products the store holds."""
        with self._lock:
            return self.store.count()

    def mode_label(self, mode: Mode) -> str:
        return MODE_LABELS[mode].format(pool=self.pool)

    def search(self, query: str, k: int = 24, mode: Mode = "fused", filters: dict[str, str] | None = None
               ) -> SearchResult:
        """The ``k`` best products for ``query`` in ``mode``, with facet counts for the filter chips."""
        started = time.perf_counter()
        filters = {f: v for f, v in (filters or {}).items() if v}
        conditions = parse_filter({f: typed_filter_value([v]) for f, v in filters.items()})  # chip "2012": 2012 too
        searched_as = self.synonyms.rewrite(query) if self.synonyms else query
        with self._lock:
            vector = self.model.encode_queries([searched_as])
            unfiltered = self.store.search(vector, k=max(self.pool, k))[0]
            check_indexed_with(self.model, [unfiltered], self.store)
            if mode == "fused":
                hits = candidates = (self.store.search(vector, k=k, conditions=conditions)[0] if conditions
                                     else unfiltered[:k])
            else:
                candidates = (self.store.search(vector, k=self.pool, conditions=conditions)[0] if conditions
                              else unfiltered[: self.pool])
                hits = self._rerank_by_text(vector[0], candidates)[:k]
            if conditions:  # a filter can reach what the pool did not
                check_indexed_with(self.model, [candidates], self.store)
        note = (empty_filter_hint({f: typed_filter_value([v]) for f, v in filters.items()},
                                  [catalog_payload(h.payload) for h in unfiltered]) if filters and not hits else None)
        return SearchResult(query=query, searched_as=searched_as, mode=mode, mode_label=self.mode_label(mode),
                            filters=filters, hits=[self._card(h) for h in hits], facets=self._facets(unfiltered),
                            note=note, milliseconds=round((time.perf_counter() - started) * 1000, 1))

    def _rerank_by_text(self, query_vector: np.ndarray, candidates: list[Hit]) -> list[Hit]:
        if not candidates:
            return []
        vectors = self.text_view_vectors(candidates)
        scores = vectors @ query_vector
        order = np.argsort(-scores, kind="stable")
        return [candidates[i].model_copy(update={"score": float(scores[i])}) for i in order]

    def text_view_vectors(self, hits: list[Hit]) -> np.ndarray:
        """The model's text-view item vectors (item text only, no image) of the hits, cached by text."""
        texts = [" ".join(str(h.payload[f]) for f in self.text_fields if h.payload.get(f) not in (None, ""))
                 for h in hits]
        missing = list(dict.fromkeys(t for t in texts if t not in self._text_vectors))
        for text, vector in zip(missing, encode_text_view(self.model, missing), strict=True):
            self._text_vectors[text] = vector
        vectors = np.stack([self._text_vectors[t] for t in texts])
        while len(self._text_vectors) > TEXT_CACHE_SIZE:  # evict the oldest, after this request has its vectors
            self._text_vectors.popitem(last=False)
        return vectors

    def _card(self, hit: Hit) -> Card:
        payload = hit.payload
        attributes = {a: ", ".join(_elements(payload[a])) for a in self.attributes
                      if payload.get(a) not in (None, "", [])}
        title = str(payload.get("title") or " ".join(str(payload.get(f, "")) for f in self.text_fields)).strip()
        return Card(id=hit.id, score=round(hit.score, 4), title=title, attributes=attributes,
                       image_url=self.image_url(hit))

    def _facets(self, hits: list[Hit]) -> dict[str, dict[str, int]]:
        """Chip values and their counts; a list field counts each of its elements, as filters match them."""
        counts = {f: Counter(v for h in hits if h.payload.get(f) not in (None, "") for v in _elements(h.payload[f]))
                  for f in self.facets}
        return {f: dict(c.most_common()) for f, c in counts.items()}


def _elements(value: Any) -> list[str]:
    """A field's values as chip text, which filters read back (``filter_text``): the distinct elements of a list, or
    the value itself; objects and nested lists, which no filter matches, give no chip."""
    values = value if isinstance(value, list) else [value]
    return list(dict.fromkeys(filter_text(v) for v in values if isinstance(v, str | int | float)))


@torch.inference_mode()
def encode_text_view(model: SMARModel, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
    """Item vectors from text alone: the text encoder's pooled vector through the model's text head."""
    chunks = [model.text_head(model.text_encoder.encode(list(texts[i : i + batch_size])).pooled).float().numpy()
              for i in range(0, len(texts), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, model.dim), dtype=np.float32)

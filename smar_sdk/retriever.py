"""``SMARRetriever``: a text query in, ranked products out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .filters import parse_filter
from .indexer import StoreUser
from .store import Hit


class SMARRetriever(StoreUser):
    """Encodes text queries with the model's query tower and searches the store's fused item vectors."""

    def search(self, query: str, k: int = 10, filter: dict[str, Any] | None = None) -> list[Hit]:
        """The ``k`` best products for one query, best first, optionally filtered (``{"gender": "Women"}``)."""
        return self.search_many([query], k=k, filter=filter)[0]

    def search_many(self, queries: Sequence[str], k: int = 10, filter: dict[str, Any] | None = None) -> list[list[Hit]]:
        """Search several queries at once (one encoder batch, one store round trip)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not queries:
            return []
        conditions = parse_filter(filter)
        return self.store.search(self.model.encode_queries(list(queries)), k=k, conditions=conditions)

"""Which items count as right answers of a training query: pairs, and agreement on labelled catalog fields."""

from __future__ import annotations

import json

import torch

from .catalog import Product
from .errors import CatalogError

UNLABELLED = -3  # the code of a product without a value in a relevance or negative field


def label_text(value: object) -> str | None:
    """A payload value as a class label: None when there is none (missing, null, empty text or list); else the set
    of its elements (a plain value is a set of one), so ``["sale", "new"]`` and ``["new", "sale", "new"]`` are one
    class, and ``"sale"`` and ``["sale"]`` another."""
    if value in (None, "", []):
        return None
    return json.dumps(sorted({json.dumps(e, sort_keys=True) for e in (value if isinstance(value, list) else [value])}))


def pair_keys(queries: torch.Tensor, items: torch.Tensor, item_count: int) -> torch.Tensor:
    """Sorted unique keys of the (query, item) pairs: a sparse relevance table for any catalog size."""
    return torch.unique(queries * item_count + items)


def batch_positives(queries: torch.Tensor, items: torch.Tensor, keys: torch.Tensor, item_count: int) -> torch.Tensor:
    """``(queries, items)``: row i's query is paired with column j's item somewhere in the pairs file (in a batch,
    the same query or the same item as a row always is), and column j is a positive of row i, never a negative."""
    return torch.isin(queries[:, None] * item_count + items[None, :], keys)


def relevance_codes(products: list[Product], pair_queries: torch.Tensor, pair_items: torch.Tensor,
                    query_count: int, fields: list[str],
                    setting: str = "relevance field") -> tuple[torch.Tensor, torch.Tensor]:
    """Integer codes of ``fields``: ``(items, F)`` each product's values, ``UNLABELLED`` where it has none (missing,
    null or empty; a list field's value is its set of elements, :func:`label_text`); ``(queries, F)`` the value
    every item paired with the query shares, or -1 where they differ or one has none (the query is not known to name
    that field)."""
    for field in fields:
        if not any(field in p.payload for p in products):
            raise CatalogError(f"{setting} {field!r} is in no catalog row (fields: "
                               f"{', '.join(sorted(products[0].payload))}); check the spelling")
    vocabulary: dict[str, int] = {}
    labels = [[label_text(p.payload.get(f)) for f in fields] for p in products]
    items = torch.tensor([[UNLABELLED if label is None else vocabulary.setdefault(label, len(vocabulary))
                           for label in row] for row in labels], dtype=torch.long).view(len(products), len(fields))
    queries = torch.full((query_count, len(fields)), -2, dtype=torch.long)  # -2: no item seen yet
    for query, item in zip(pair_queries.tolist(), pair_items.tolist(), strict=True):
        seen, codes = queries[query], items[item]
        agreed = ((seen == -2) | (seen == codes)) & (codes != UNLABELLED)
        queries[query] = torch.where(agreed, codes, torch.full_like(codes, -1))
    return items, queries


def relevance_positives(query_codes: torch.Tensor, item_codes: torch.Tensor) -> torch.Tensor:
    """``(queries, items)``: column j's item has every field value row i's query names (``relevance_codes``)."""
    queries, items = query_codes[:, None, :], item_codes[None, :, :]
    return ((queries == -1) | (queries == items)).all(dim=-1)


def known_wrong(query_codes: torch.Tensor, item_codes: torch.Tensor) -> torch.Tensor:
    """``(queries, items)``: column j's item has another value than one row i's query names (``relevance_codes``);
    an item without a value there is not known to be wrong."""
    queries, items = query_codes[:, None, :], item_codes[None, :, :]
    return ((queries >= 0) & (items != UNLABELLED) & (queries != items)).any(dim=-1)

"""Attribute classifiers for training: each item view also learns to tell a product's labelled attributes.

SMAR's "semantic enhancement" as an auxiliary task: a linear head per catalog field (e.g. gender, colour,
article_type) reads an item view and predicts the field's value, so the view keeps what separates neighbouring
products (formal from casual shoes, navy from blue) even where the query pairs rarely contrast them. The heads exist
only while training (``TrainConfig.attribute_fields``); a saved model has none and searches exactly as without them.
"""

from __future__ import annotations

import torch
from torch import nn

from .catalog import Product
from .errors import CatalogError
from .labels import label_text

UNLABELLED = -1  # a product without a value for the field: no loss


class AttributeHeads(nn.Module):
    """One linear classifier per field over ``dim``-sized item views, with each product's class codes."""

    def __init__(self, dim: int, fields: list[str], products: list[Product]) -> None:
        super().__init__()
        self.fields = list(fields)
        codes, sizes = [], []
        for field in self.fields:
            values = [label_text(p.payload.get(field)) for p in products]  # a list: its set of elements
            labels = sorted({v for v in values if v is not None})
            if not labels:
                raise CatalogError(f"attribute field {field!r} has no value in any training row (fields: "
                                   f"{', '.join(sorted(products[0].payload)) if products else 'none'}); "
                                   "check the spelling")
            index = {label: i for i, label in enumerate(labels)}
            codes.append([UNLABELLED if v is None else index[v] for v in values])
            sizes.append(len(labels))
        self.register_buffer("codes", torch.tensor(codes, dtype=torch.long).T.reshape(len(products), len(fields)),
                             persistent=False)
        self.heads = nn.ModuleList(nn.Linear(dim, size) for size in sizes)

    def loss(self, views: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the fields of classifying ``items`` (product positions) from their ``views``."""
        losses = [nn.functional.cross_entropy(head(views), self.codes[items, f], ignore_index=UNLABELLED)
                  for f, head in enumerate(self.heads) if (self.codes[items, f] != UNLABELLED).any()]
        return torch.stack(losses).mean() if losses else views.sum() * 0.0

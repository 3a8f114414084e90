"""smar-sdk: modality-asymmetric retrieval for e-commerce (text queries, title+image products).

The names below load on first use (PEP 562), so ``import smar_sdk`` and the ``smar-sdk`` command line start without
importing torch until a model is needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_HOMES = {
    "FieldMapping": "catalog", "Product": "catalog", "Rejection": "catalog", "read_catalog": "catalog",
    "ImageEncoderConfig": "config", "SMARConfig": "config", "TextEncoderConfig": "config",
    "CatalogError": "errors", "ConnectorNotFoundError": "errors", "FilterError": "errors", "ImageError": "errors",
    "ModelError": "errors", "RowError": "errors", "SMARError": "errors", "StoreError": "errors",
    "TrainingError": "errors", "TrainingInterrupted": "errors", "VectorSizeError": "errors",
    "IndexReport": "indexer", "SMARIndexer": "indexer", "SMARModel": "model", "QuerySynonyms": "query_synonyms",
    "SMARRetriever": "retriever", "Hit": "store", "VectorStore": "store", "available_connectors": "store",
    "open_store": "store",
}
__all__ = [
    "CatalogError", "ConnectorNotFoundError", "FieldMapping", "FilterError", "Hit", "ImageEncoderConfig",
    "ImageError", "IndexReport", "ModelError", "Product", "QuerySynonyms", "Rejection", "RowError", "SMARConfig",
    "SMARError", "SMARIndexer", "SMARModel", "SMARRetriever", "StoreError", "TextEncoderConfig", "TrainingError",
    "TrainingInterrupted", "VectorSizeError", "VectorStore", "available_connectors", "open_store", "read_catalog",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'smar_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


if TYPE_CHECKING:
    from .catalog import FieldMapping, Product, Rejection, read_catalog
    from .config import ImageEncoderConfig, SMARConfig, TextEncoderConfig
    from .errors import (
        CatalogError,
        ConnectorNotFoundError,
        FilterError,
        ImageError,
        ModelError,
        RowError,
        SMARError,
        StoreError,
        TrainingError,
        TrainingInterrupted,
        VectorSizeError,
    )
    from .indexer import IndexReport, SMARIndexer
    from .model import SMARModel
    from .query_synonyms import QuerySynonyms
    from .retriever import SMARRetriever
    from .store import Hit, VectorStore, available_connectors, open_store

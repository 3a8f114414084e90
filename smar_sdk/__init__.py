"""smar-sdk: modality-asymmetric retrieval for e-commerce (text queries, title+image products)."""

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

__version__ = "0.1.0"

__all__ = [
    "CatalogError", "ConnectorNotFoundError", "FieldMapping", "FilterError", "Hit", "ImageEncoderConfig",
    "ImageError", "IndexReport", "ModelError", "Product", "QuerySynonyms", "Rejection", "RowError", "SMARConfig",
    "SMARError", "SMARIndexer", "SMARModel", "SMARRetriever", "StoreError", "TextEncoderConfig", "TrainingError",
    "TrainingInterrupted", "VectorSizeError",
    "VectorStore", "available_connectors", "open_store", "read_catalog",
]

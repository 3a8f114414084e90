"""Qdrant connector for smar-sdk: an embedded folder (local mode or Qdrant Edge) or a Qdrant server/cluster by URL."""

from .edge import QdrantEdgeStore
from .store import QdrantStore

__all__ = ["QdrantEdgeStore", "QdrantStore"]

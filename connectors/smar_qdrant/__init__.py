"""Qdrant connector for smar-sdk: embedded local mode (a folder) or a Qdrant server/cluster by URL."""

from .store import QdrantStore

__all__ = ["QdrantStore"]

"""Milvus connector for smar-sdk: Milvus Lite (a local ``.db`` file) or a Milvus server/cluster by URI."""

from .store import MilvusStore, to_milvus_filter

__all__ = ["MilvusStore", "to_milvus_filter"]

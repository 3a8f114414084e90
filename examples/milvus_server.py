"""The quick start against a Milvus server: same SDK calls, ``store="milvus"`` and the server's URI.

Needs the Milvus connector (``pip install "smar-sdk[milvus]"``) and a running Milvus (standalone or
cluster), e.g. ``docker run -p 19530:19530 milvusdb/milvus:latest milvus run standalone``. Without
``--uri`` it uses Milvus Lite, a local ``.db`` file. Time: as the quick start (30 s to 2 minutes for
``--limit 1000`` on 2 CPU cores); encoding dominates, the upserts to Milvus take a few seconds.

    python examples/milvus_server.py --uri http://127.0.0.1:19530
    python examples/milvus_server.py --uri https://my-cluster:19530 --token user:password --limit 0
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _common import index_then_search, myntra_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default=None,
                        help="Milvus server URI, e.g. http://127.0.0.1:19530 (default: a temporary Milvus Lite file)")
    parser.add_argument("--token", default=os.environ.get("SMAR_API_KEY"),
                        help="server token, user:password or an API key (default: $SMAR_API_KEY)")
    parser.add_argument("--collection", default="smar_example", help="collection to create or replace items in")
    parser.add_argument("--catalog", type=Path, default=None, help="catalog JSON Lines (default: shared Myntra)")
    parser.add_argument("--limit", type=int, default=1000, help="index only the first N products (0: all)")
    parser.add_argument("--model", default=None, help="trained model directory (default: the shipped model)")
    args = parser.parse_args()
    catalog = args.catalog or myntra_file("catalog.jsonl")
    store: dict[str, object] = {"store": "milvus", "collection": args.collection}
    if args.token:
        store["api_key"] = args.token
    with tempfile.TemporaryDirectory(prefix="smar-milvus-") as tmp:
        store["uri"] = args.uri or str(Path(tmp) / "smar.db")
        index_then_search(catalog, args.limit or None, args.model, **store)


if __name__ == "__main__":
    main()

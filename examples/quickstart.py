"""Quick start: index the shared Myntra products with the shipped SMAR model, then answer three text queries.

Shows the whole SDK in three calls: ``SMARModel.load()``, ``SMARIndexer(...).index(catalog)`` and
``SMARRetriever(...).search(query, k, filter)`` on an embedded Qdrant (a folder, no server).

Time on a 2-core CPU, where encoding runs at roughly 10-40 products/s depending on load: 30 s to 2 minutes
for the default ``--limit 1000``, 5 to 15 minutes for all 9,583 products (``--limit 0``), plus a few
seconds to load the model. Searches take well under a second each.

    python examples/quickstart.py                              # 1,000 products, temporary store
    python examples/quickstart.py --limit 0 --uri ./smar_data  # everything, kept for `smar-sdk search`
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import index_then_search, myntra_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=None, help="catalog JSON Lines (default: shared Myntra)")
    parser.add_argument("--limit", type=int, default=1000, help="index only the first N products (0: all)")
    parser.add_argument("--uri", default=None, help="embedded Qdrant folder to keep (default: a temporary one)")
    parser.add_argument("--model", default=None, help="trained model directory (default: the shipped model)")
    args = parser.parse_args()
    catalog = args.catalog or myntra_file("catalog.jsonl")
    with tempfile.TemporaryDirectory(prefix="smar-quickstart-") as tmp:
        index_then_search(catalog, args.limit or None, args.model, store="qdrant", uri=args.uri or tmp,
                          collection="products")


if __name__ == "__main__":
    main()

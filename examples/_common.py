"""Helpers shared by the examples: find the shared Myntra data, cut subsets, print hits."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from smar_sdk import Hit

MYNTRA = Path(__file__).resolve().parents[2] / "shared" / "data" / "myntra"
ATTRIBUTES = ("gender", "article_type", "colour")


def myntra_file(name: str, data: Path | None = None) -> Path:
    """A file of the Myntra-shaped data folder ``data`` (default: the shared one), with a clear message when absent."""
    path = (data or MYNTRA) / name
    if not path.is_file():
        raise SystemExit(f"{path} not found: these examples use the shared Myntra data (../shared/data/myntra); "
                         "pass --catalog (quickstart.py, milvus_server.py) or --data, a folder shaped like it "
                         "(compare_modalities.py, train_your_own.py)")
    return path


def add_data_option(parser: argparse.ArgumentParser) -> None:
    """``--data DIR``: a folder shaped like the shared Myntra data (catalogs with a ``split`` field, query files)."""
    parser.add_argument("--data", type=Path, default=None,
                        help=f"folder with the Myntra-shaped files (default: {MYNTRA})")


def subset_catalog(catalog: Path, out: Path, limit: int | None = None, split: str | None = None,
                   per_split: dict[str, int] | None = None) -> Path:
    """Write the first rows of ``catalog`` to ``out`` with absolute image paths (so ``out`` can live anywhere).

    ``limit`` caps the rows (only rows of ``split`` when given, None for no cap); ``per_split`` caps
    each split separately instead, e.g. ``{"train": 2000, "test": 500}``.
    """
    folder = catalog.resolve().parent
    caps: dict[str | None, int | None] = dict(per_split) if per_split else {split: limit}
    taken: Counter[str | None] = Counter()
    with catalog.open(encoding="utf-8") as source, out.open("w", encoding="utf-8") as target:
        for line in source:
            if not line.strip():
                continue
            row = json.loads(line)
            key = None if None in caps else row.get("split")
            if key not in caps or (caps[key] is not None and taken[key] >= caps[key]):
                continue
            taken[key] += 1
            for field in ("image", "thumbnail"):
                value = row.get(field)
                if isinstance(value, str) and "://" not in value and not Path(value).is_absolute():
                    row[field] = str(folder / value)
            target.write(json.dumps(row, ensure_ascii=False) + "\n")
            if all(cap is not None and taken[k] >= cap for k, cap in caps.items()):
                break
    return out


def describe(hit: Hit) -> str:
    attributes = "/".join(str(hit.payload[a]) for a in ATTRIBUTES if hit.payload.get(a))
    return f"{hit.payload.get('title', hit.id)} [{attributes}]"


def print_hits(query: str, hits: Iterable[Hit], note: str = "") -> None:
    print(f'\n"{query}"' + (f"  {note}" if note else ""))
    for rank, hit in enumerate(hits, start=1):
        print(f"  {rank:>2}. {hit.score:6.3f}  {describe(hit)}")


QUERIES: list[tuple[str, dict | None]] = [
    ("black casual shoes for men", None),
    ("red heels", {"gender": "Women"}),
    ("blue denim jeans", None),
]


def index_then_search(catalog: Path, limit: int | None, model_dir: str | None = None, k: int = 5,
                      queries: list[tuple[str, dict | None]] = QUERIES, **store: object) -> None:
    """Index (the first ``limit`` rows of) ``catalog`` with a SMAR model into ``store``, then search ``queries``."""
    import tempfile
    import time

    from smar_sdk import SMARIndexer, SMARModel, SMARRetriever

    model = SMARModel.load(model_dir)  # None: the shipped default model
    with tempfile.TemporaryDirectory(prefix="smar-example-") as tmp:
        if limit:
            catalog = subset_catalog(catalog, Path(tmp) / "catalog.jsonl", limit)
        with SMARIndexer(model, **store) as indexer:
            report = indexer.index(catalog)
            print(f"indexed {report.indexed} products ({report.unchanged} already stored unchanged, "
                  f"{report.rejected} rejected) in {report.seconds:.0f}s, {report.items_per_second:.0f}/s; the "
                  f"collection holds {indexer.store.count()}")
            # a retriever can share the indexer's open store (an embedded store is one client per folder)
            retriever = SMARRetriever(model, store=indexer.store)
            for query, filter_ in queries:
                started = time.perf_counter()
                hits = retriever.search(query, k=k, filter=filter_)
                note = (f"filter {filter_}, " if filter_ else "") + f"{1000 * (time.perf_counter() - started):.0f} ms"
                print_hits(query, hits, note)

"""Text-only vs SMAR: one text query against title-only item vectors and against fused title+image vectors.

Indexes the first ``--limit`` test-split Myntra products (never seen in training) twice with the same
model: once with the item tower's *text* view (the title alone, the text-only two-tower baseline) and
once with its *fused* view (title and image through cross-attention, what SMAR stores). Then it prints
the top results of a few labelled test queries side by side (``+`` marks a relevant product: same
gender, colour and article type as the query asks for) and scores every labelled query whose relevant
products are in the subset (nDCG@10, Recall@10/50, MRR@10). ``--no-colour`` uses the catalog whose
titles lack colour words, where only the image can tell a red shirt from a blue one.

Time on a 2-core CPU: 1 to 3 minutes for the default ``--limit 500`` (both indexing passes encode the
images), 4 to 10 minutes for the whole test split (``--limit 0``, 1,924 products).

    python examples/compare_modalities.py
    python examples/compare_modalities.py --no-colour --paraphrased
    python examples/compare_modalities.py --query "green kurta for women" --query "white sports shoes"
    python examples/compare_modalities.py --data my-data/   # a folder shaped like ../shared/data/myntra
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import add_data_option, myntra_file, subset_catalog

from smar_sdk import Hit, SMARIndexer, SMARModel, SMARRetriever
from smar_sdk.evaluation import LabelledQuery, read_queries, score_rankings

VIEWS = {"SMAR fused": "fused", "text-only": "text"}
DEPTH = 100
WIDTH = 58


def labelled_queries(path: Path, ids: set[str]) -> list[LabelledQuery]:
    """The labelled queries with relevant products in the subset, relevance restricted to the subset."""
    kept = []
    for query in read_queries(path):
        relevant = [i for i in query.relevant if i in ids]
        if relevant:
            kept.append(LabelledQuery(query=query.query, relevant=relevant))
    return kept


def cell(hit: Hit | None, relevant: set[str]) -> str:
    if hit is None:
        return ""
    mark = "+" if hit.id in relevant else " "
    text = f"{mark} {hit.payload.get('title', hit.id)} [{hit.payload.get('colour', '')}]"
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=500, help="index the first N test-split products (0: all)")
    parser.add_argument("--no-colour", action="store_true", help="titles without colour words (catalog_no_colour)")
    parser.add_argument("--paraphrased", action="store_true", help="use the paraphrased test queries")
    parser.add_argument("--query", action="append", default=[], help="your own query (repeatable; no relevance marks)")
    parser.add_argument("--show", type=int, default=3, help="labelled queries shown side by side")
    parser.add_argument("-k", type=int, default=5, help="results shown per query")
    parser.add_argument("--model", default=None, help="trained model directory (default: the shipped model)")
    add_data_option(parser)
    args = parser.parse_args()

    catalog = myntra_file("catalog_no_colour.jsonl" if args.no_colour else "catalog.jsonl", args.data)
    queries_file = myntra_file("test_queries_paraphrased.jsonl" if args.paraphrased else "test_queries.jsonl",
                               args.data)
    model = SMARModel.load(args.model)
    with tempfile.TemporaryDirectory(prefix="smar-compare-") as tmp:
        subset = subset_catalog(catalog, Path(tmp) / "catalog.jsonl", args.limit or None, split="test")
        ids = {json.loads(line)["id"] for line in subset.read_text().splitlines()}
        labelled = labelled_queries(queries_file, ids)
        shown = [(q, set()) for q in args.query] or \
            [(q.query, set(q.relevant)) for q in sorted(labelled, key=lambda q: -len(q.relevant))[: args.show]]
        asked = [q.query for q in labelled] + [query for query, _ in shown]
        results: dict[str, list[list[Hit]]] = {}
        for name, view in VIEWS.items():
            with SMARIndexer(model, uri=str(Path(tmp) / view), view=view) as indexer:
                report = indexer.index(subset, progress=False)
                results[name] = SMARRetriever(model, store=indexer.store).search_many(asked, k=DEPTH)
            print(f"{name:>10}: indexed {report.indexed} products ({view} view) in {report.seconds:.0f}s")

    names = list(VIEWS)
    for offset, (query, relevant) in enumerate(shown):
        position = len(labelled) + offset
        print(f'\n"{query}"' + (f"  ({len(relevant)} relevant in the subset)" if relevant else ""))
        print(f"      {names[0]:<{WIDTH}}  {names[1]}")
        columns = [results[name][position][: args.k] for name in names]
        for rank in range(args.k):
            left, right = (col[rank] if rank < len(col) else None for col in columns)
            print(f"  {rank + 1:>2}. {cell(left, relevant):<{WIDTH}}  {cell(right, relevant)}")

    if labelled:
        print(f"\n{len(labelled)} labelled queries ({queries_file.name}) over {len(ids)} products "
              f"({catalog.name}):")
        scores = {name: score_rankings(labelled, [[(h.id, h.score) for h in hits]
                                                  for hits in results[name][: len(labelled)]]) for name in names}
        metrics = list(next(iter(scores.values())))
        print("  " + " ".join(f"{m:>10}" for m in ["", *metrics]))
        for name in names:
            print("  " + f"{name:>10} " + " ".join(f"{scores[name][m]:>10.3f}" for m in metrics))


if __name__ == "__main__":
    main()

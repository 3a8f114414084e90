"""Quality of the shipped default model on the Myntra test split, as `smar-sdk eval` measures it.

For each catalog (titles with and without colour words) and image size (224-px `image`, 60x80
`thumbnail`), the test-split products are indexed once into a temporary embedded Qdrant with the
real `SMARIndexer`; both query files are then run through `SMARRetriever` and scored with ranx.
Writes a Markdown table to stdout (paste into BENCHMARKS.md) and JSON to --json-out.

    python benchmarks/shipped_model.py --data ../shared/data/myntra --json-out benchmarks/results/shipped.json

About 10 minutes on 2 CPU cores (image encoding dominates).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from smar_sdk import FieldMapping, SMARIndexer, SMARModel, SMARRetriever
from smar_sdk.evaluation import SEARCH_DEPTH, read_queries, score_rankings

CATALOGS = ("catalog.jsonl", "catalog_no_colour.jsonl")
IMAGE_FIELDS = ("image", "thumbnail")
QUERY_FILES = ("test_queries.jsonl", "test_queries_paraphrased.jsonl")


def run(data: Path, model_dir: Path | None) -> list[dict]:
    model = SMARModel.load(model_dir)
    results = []
    for catalog in CATALOGS:
        for image_field in IMAGE_FIELDS:
            mapping = FieldMapping(text_fields=model.config.text_fields, image_field=image_field)
            with (tempfile.TemporaryDirectory() as tmp,
                  SMARIndexer(model, uri=tmp, collection="bench", mapping=mapping) as indexer):
                report = indexer.index(data / catalog, only={"split": "test"})
                retriever = SMARRetriever(model, store=indexer.store)
                for query_file in QUERY_FILES:
                    queries = read_queries(data / query_file)
                    hits = retriever.search_many([q.query for q in queries], k=SEARCH_DEPTH)
                    metrics = score_rankings(queries, [[(h.id, h.score) for h in ranked] for ranked in hits])
                    results.append({"catalog": catalog, "image_field": image_field, "queries": query_file,
                                    "indexed": report.indexed, **metrics})
    return results


def markdown(results: list[dict]) -> str:
    lines = ["| catalog | images | queries | nDCG@10 | Recall@10 | Recall@50 | MRR@10 |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['catalog']} | {r['image_field']} | {r['queries']} | {r['ndcg@10']:.3f} | "
                     f"{r['recall@10']:.3f} | {r['recall@50']:.3f} | {r['mrr@10']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/myntra")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped one)")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    results = run(args.data, args.model)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()

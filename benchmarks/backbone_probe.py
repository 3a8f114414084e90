"""Screen offline image backbones before a full retrain: how well do their frozen features tell attributes apart?

For each backbone (``smar_sdk.config.IMAGE_BACKBONES``) and image size (``image``: 224-px photos, ``thumbnail``:
60x80), the frozen pooled vector of every train-split product is computed, and a linear probe (softmax
regression) per attribute (gender, colour, article type: what makes a product relevant to a query) is fitted on
the train-split products a ``--holdout`` model trains on and scored on the held-out ones. The test split is never
read. A backbone whose frozen features do not separate these attributes better is unlikely to help SMAR, whose
image tower only fine-tunes the top blocks.

    python benchmarks/backbone_probe.py --out benchmarks/results/backbone_probe.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from smar_sdk import FieldMapping, Product, SMARConfig, SMARModel, read_catalog
from smar_sdk.config import IMAGE_BACKBONES, image_backbone
from smar_sdk.features import FeatureCache, item_image_states
from smar_sdk.images import ImageLoader
from smar_sdk.training import held_out

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "myntra"
ATTRIBUTES = ("gender", "colour", "article_type")
IMAGE_FIELDS = ("image", "thumbnail")


def probe_accuracy(features: torch.Tensor, labels: list[str], train: torch.Tensor, steps: int = 300) -> float:
    """Held-out accuracy of a softmax regression fitted on the ``train`` rows (standardised features)."""
    classes = {label: i for i, label in enumerate(sorted(set(labels)))}
    target = torch.tensor([classes[label] for label in labels])
    mean, std = features[train].mean(0), features[train].std(0) + 1e-6
    x = (features - mean) / std
    torch.manual_seed(0)
    head = torch.nn.Linear(x.shape[1], len(classes))
    optimiser = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=1e-2)
    for _ in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(head(x[train]), target[train]).backward()
        optimiser.step()
    with torch.no_grad():
        return float((head(x[~train]).argmax(1) == target[~train]).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--backbones", nargs="+", default=list(IMAGE_BACKBONES), choices=list(IMAGE_BACKBONES))
    parser.add_argument("--holdout", type=float, default=0.125, help="held-out fraction, as quality.py --holdout")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "backbone_probe.json")
    args = parser.parse_args()
    records = read_catalog(args.data / "catalog.jsonl", FieldMapping(), {"split": "train"})
    products = [r for r in records if isinstance(r, Product)]
    train = torch.tensor([not held_out(p.id, args.holdout) for p in products])
    # rows of backbones not run now stay in the --out file, so backbones can be probed one run at a time
    results = [r for r in json.loads(args.out.read_text()) if r["backbone"] not in args.backbones] \
        if args.out.is_file() else []
    for name in args.backbones:
        model = SMARModel(SMARConfig(image_encoder=image_backbone(name, colour_features=False)))
        for field in IMAGE_FIELDS:
            started = time.perf_counter()
            features = item_image_states(model, products, field, ImageLoader(args.data), FeatureCache(None)).pooled
            seconds = time.perf_counter() - started
            result = {"backbone": name, "image_field": field, "images_per_second": round(len(products) / seconds, 1)}
            for attribute in ATTRIBUTES:  # 3 train-split products have no colour: a class of their own
                labels = [p.payload.get(attribute) or "?" for p in products]
                result[attribute] = round(probe_accuracy(features, labels, train), 4)
            print(json.dumps(result), flush=True)
            results.append(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

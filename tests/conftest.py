"""Fixtures: tiny real models (a 2-layer BERT sentence-transformer, a slim MobileNetV2) and real JPEG catalogs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from smar_sdk import ImageEncoderConfig, SMARConfig, SMARModel, TextEncoderConfig

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "myntra"
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 60), "black": (15, 15, 15),
           "white": (245, 245, 245), "yellow": (240, 220, 40)}
ARTICLES = ["shirt", "shoes", "dress", "watch", "bag"]
WORDS = sorted({*COLOURS, *ARTICLES, "for", "men", "women", "casual", "formal", "heels", "tee", "navy", "the", "a",
                "nice", "cotton", "leather", "sports", "kids"})


def build_sentence_transformer(directory: Path) -> Path:
    """A 2-layer, 32-wide BERT with a word-level vocabulary, wrapped as a sentence-transformers model."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    bert_dir = directory / "bert"
    bert_dir.mkdir(parents=True, exist_ok=True)
    vocab = {word: i for i, word in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(bert_dir)
    tokenizer.save_pretrained(bert_dir)
    transformer = models.Transformer(str(bert_dir), max_seq_length=16)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    st_dir = directory / "sentence-transformer"
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(st_dir))
    return st_dir


def build_cnn_weights(path: Path) -> Path:
    """Weights of a slim (width 0.25) torchvision MobileNetV2, saved as safetensors.

    Batch-norm statistics are calibrated on random images so the untrained network's features are
    not vanishingly small (a randomly initialised deep CNN in eval mode outputs almost zeros).
    """
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    network = torchvision.models.mobilenet_v2(width_mult=0.25)
    network.train()
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the calibration batches
    with torch.no_grad():
        for _ in range(8):
            network(torch.rand(8, 3, 64, 64) * torch.rand(8, 3, 1, 1) * 4 - 2)
    state = network.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> SMARConfig:
    root = tmp_path_factory.mktemp("tiny-model")
    return SMARConfig(
        dim=16, fusion_dim=16, fusion_heads=2, dropout=0.0,
        text_encoder=TextEncoderConfig(name_or_path=str(build_sentence_transformer(root)), max_tokens=16),
        image_encoder=ImageEncoderConfig(kind="torchvision", arch="mobilenet_v2",
                                         weights=str(build_cnn_weights(root / "cnn.safetensors")),
                                         arch_kwargs={"width_mult": 0.25}, image_size=64),
    )


@pytest.fixture(scope="session")
def tiny_model(tiny_config: SMARConfig) -> SMARModel:
    torch.manual_seed(0)
    return SMARModel(tiny_config)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_model: SMARModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model.save(tmp_path_factory.mktemp("saved") / "model")


def write_jpeg(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (48, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    for x in range(0, size[0], 8):  # a little texture so the JPEG is not a flat block
        for y in range(0, size[1], 8):
            image.putpixel((x, y), (x * 4 % 256, y * 4 % 256, 128))
    image.save(path, "JPEG", quality=90)


def product_rows() -> list[dict]:
    rows = []
    for i, (colour, article) in enumerate((c, a) for c in COLOURS for a in ARTICLES):
        rows.append({"id": f"sku-{i:03d}", "title": f"{colour} {article}", "image": f"images/{i:03d}.jpg",
                     "gender": "Women" if i % 2 else "Men", "colour": colour, "article_type": article,
                     "year": 2010 + i % 7})
    return rows


@pytest.fixture()
def catalog(tmp_path: Path) -> Path:
    """30 products (6 colours x 5 articles) with real JPEG images beside the catalog."""
    rows = product_rows()
    for i, row in enumerate(rows):
        write_jpeg(tmp_path / row["image"], COLOURS[row["colour"]])
        assert i == int(row["image"][7:10])
    path = tmp_path / "catalog.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def pairs(catalog: Path) -> Path:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    lines = []
    for row in rows:
        for query in (f"{row['colour']} {row['article_type']}", f"{row['article_type']} {row['colour']}",
                      f"nice {row['colour']} {row['article_type']} for {row['gender'].lower()}"):
            lines.append(json.dumps({"query": query, "item_id": row["id"]}))
    path = catalog.parent / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path

"""Tiny real models for tests and benchmarks: a 2-layer BERT sentence-transformer and a slim MobileNetV2."""

from __future__ import annotations

from pathlib import Path

import torch

from smar_sdk import ImageEncoderConfig, SMARConfig, TextEncoderConfig

WORDS = sorted({"red", "blue", "green", "black", "white", "yellow", "shirt", "shoes", "dress", "watch", "bag", "for",
                "men", "women", "casual", "formal", "heels", "tee", "navy", "the", "a", "nice", "cotton", "leather",
                "sports", "kids"})


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


def tiny_config(root: Path) -> SMARConfig:
    """The configuration of a tiny SMAR model (dim 16, 64-px images) whose backbones are built under ``root``."""
    return SMARConfig(
        dim=16, fusion_dim=16, fusion_heads=2, dropout=0.0,
        text_encoder=TextEncoderConfig(name_or_path=str(build_sentence_transformer(root)), max_tokens=16),
        image_encoder=ImageEncoderConfig(kind="torchvision", arch="mobilenet_v2",
                                         weights=str(build_cnn_weights(root / "cnn.safetensors")),
                                         arch_kwargs={"width_mult": 0.25}, image_size=64),
    )

"""Text backbone: any sentence-transformers model, giving token states and the pooled sentence vector."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from ..config import TextEncoderConfig
from ..errors import ModelError
from ..sources import resolve_source


@dataclass
class TextStates:
    """Per-token states ``(B, L, T)``, their mask ``(B, L)`` and the pooled vector ``(B, H)``."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor


class TextEncoder(nn.Module):
    """A sentence-transformers model loaded from a name, a local folder or a ``package:`` reference."""

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        self.config = config
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars are noise for SDK users
        hf_logging.set_verbosity_error()
        source = resolve_source(config.name_or_path)
        try:
            self.model = SentenceTransformer(source, device="cpu")
        except Exception as exc:  # the library raises many kinds (OSError, HTTP errors, ValueError)
            hint = "" if os.path.exists(source) else " (no local folder of that name; hub downloads may be off)"
            raise ModelError(f"cannot load text encoder {config.name_or_path!r}{hint}: {exc}") from exc
        self.model.max_seq_length = config.max_tokens
        self.hidden_size = int(_first_method(self.model, "get_embedding_dimension",
                                             "get_sentence_embedding_dimension")() or 0)
        if not self.hidden_size:
            raise ModelError(f"text encoder {config.name_or_path!r} does not report its embedding size")
        self.token_size = int(_first_method(self.model[0], "get_embedding_dimension",
                                            "get_word_embedding_dimension")() or self.hidden_size)
        self._tokenize = _first_method(self.model, "preprocess", "tokenize")

    def top_layers(self, count: int, setting: str) -> list[str]:
        """Parameter-name prefixes (relative to this encoder) of its last ``count`` transformer layers; ``setting``
        names the option that asked, for the error when there are not that many."""
        stacks = [(name, module) for name, module in self.named_modules() if isinstance(module, nn.ModuleList)]
        encoder = self.config.name_or_path
        if not stacks:
            raise ModelError(f"{setting} needs transformer layers, but text encoder {encoder!r} has no stack of "
                             "them; set it to 0")
        name, layers = max(stacks, key=lambda item: len(item[1]))
        if count > len(layers):
            raise ModelError(f"{setting} is {count}, but text encoder {encoder!r} has {len(layers)} layers")
        return [f"{name}.{i}." for i in range(len(layers) - count, len(layers))]

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self._tokenize(texts)

    def forward(self, features: dict[str, torch.Tensor]) -> TextStates:
        out = self.model(dict(features))
        return TextStates(
            tokens=out["token_embeddings"],
            mask=out["attention_mask"].to(torch.bool),
            pooled=out["sentence_embedding"],
        )

    def encode(self, texts: list[str]) -> TextStates:
        return self(self.tokenize(texts))


def _first_method(obj: object, *names: str):
    """The first of ``names`` that ``obj`` has (sentence-transformers renamed methods across versions)."""
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    raise ModelError(f"{type(obj).__name__} has none of {names}; unsupported sentence-transformers version")

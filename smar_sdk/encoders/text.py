"""Text backbone: any sentence-transformers model, giving token states and the pooled sentence vector."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No per-tensor "Loading weights" bars or load-time notes while loading, and the process's own transformers
    settings back afterwards (a user's logging is theirs)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


class TextEncoder(nn.Module):
    """A sentence-transformers model loaded from a name, a local folder or a ``package:`` reference."""

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        self.config = config
        from sentence_transformers import SentenceTransformer

        source = resolve_source(config.name_or_path)
        try:
            with _quiet_transformers():
                self.model = SentenceTransformer(source, device="cpu")
        except Exception as exc:  # the library raises many kinds (OSError, HTTP errors, ValueError)
            hint = "" if os.path.exists(source) else " (no local folder of that name; hub downloads may be off)"
            raise ModelError(f"cannot load text encoder {config.name_or_path!r}{hint}: {exc}") from exc
        limit = _position_limit(self.model)
        if limit and config.max_tokens > limit:
            raise ModelError(f"text_encoder.max_tokens is {config.max_tokens}, but text encoder "
                             f"{config.name_or_path!r} reads at most {limit} tokens; set max_tokens to {limit} or less")
        self.model.max_seq_length = config.max_tokens
        self.hidden_size = int(_first_method(self.model, "get_embedding_dimension",
                                             "get_sentence_embedding_dimension")() or 0)
        if not self.hidden_size:
            raise ModelError(f"text encoder {config.name_or_path!r} does not report its embedding size")
        self.token_size = int(_first_method(self.model[0], "get_embedding_dimension",
                                            "get_word_embedding_dimension")() or self.hidden_size)
        self._tokenize = _first_method(self.model, "preprocess", "tokenize")
        self._static_features: dict | None = None

    def top_layers(self, count: int, setting: str) -> list[str]:
        """Parameter-name prefixes (relative to this encoder) of its last ``count`` transformer layers; ``setting``
        names the option that asked, for the error when there are not that many."""
        name, layers = self._layer_stack(setting)
        if count > len(layers):
            raise ModelError(f"{setting} is {count}, but text encoder {self.config.name_or_path!r} has "
                             f"{len(layers)} layers")
        return [f"{name}.{i}." for i in range(len(layers) - count, len(layers))]

    def _layer_stack(self, setting: str = "fine-tuning") -> tuple[str, nn.ModuleList]:
        """The name and modules of the transformer's layer stack (its longest ``ModuleList``)."""
        stacks = [(name, module) for name, module in self.named_modules() if isinstance(module, nn.ModuleList)]
        if not stacks:
            raise ModelError(f"{setting} needs transformer layers, but text encoder {self.config.name_or_path!r} "
                             "has no stack of them; set it to 0")
        return max(stacks, key=lambda item: len(item[1]))

    def stem(self, features: dict[str, torch.Tensor], count: int) -> torch.Tensor:
        """Hidden states ``(B, L, T)`` entering the top ``count`` layers: the frozen part below them, whose output
        training can cache (only the layers below run)."""
        _, layers = self._layer_stack()
        captured: list[torch.Tensor] = []

        def capture(module: nn.Module, args: tuple, kwargs: dict) -> None:
            captured.append(args[0] if args else kwargs["hidden_states"])
            raise _StemReached

        handle = layers[len(layers) - count].register_forward_pre_hook(capture, with_kwargs=True)
        try:
            self.model(self._complete(features))
        except _StemReached:
            pass
        finally:
            handle.remove()
        return captured[0]

    def from_stem(self, features: dict[str, torch.Tensor], stem: torch.Tensor, count: int) -> TextStates:
        """The encoder's output for ``features`` given their :meth:`stem` below the top ``count`` layers: only the
        embeddings (whose output is replaced) and those layers run."""
        name, layers = self._layer_stack()
        parent_name, _, attribute = name.rpartition(".")
        parent = self.get_submodule(parent_name)
        top = nn.ModuleList(list(layers)[len(layers) - count:])

        def substitute(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            if args:
                return (stem, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": stem}

        handle = top[0].register_forward_pre_hook(substitute, with_kwargs=True)
        setattr(parent, attribute, top)  # the layers below are skipped for this call only
        try:
            return self(self._complete(features))
        finally:
            setattr(parent, attribute, layers)
            handle.remove()

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self._tokenize(texts)

    def _complete(self, features: dict[str, torch.Tensor]) -> dict:
        """``features`` (tensors only, e.g. cached ones) with the non-tensor entries the tokenizer also returns."""
        if self._static_features is None:
            self._static_features = {k: v for k, v in self.tokenize([""]).items() if not isinstance(v, torch.Tensor)}
        return {**self._static_features, **features}

    def forward(self, features: dict[str, torch.Tensor]) -> TextStates:
        out = self.model(dict(features))
        return TextStates(
            tokens=out["token_embeddings"],
            mask=out["attention_mask"].to(torch.bool),
            pooled=out["sentence_embedding"],
        )

    def encode(self, texts: list[str]) -> TextStates:
        return self(self.tokenize(texts))


class _StemReached(Exception):
    """Stops a forward pass once the hidden states entering the tuned layers are captured."""


def _position_limit(model: nn.Module) -> int | None:
    """How many tokens the transformer has position embeddings for, when its config says."""
    auto_model = getattr(model[0], "auto_model", None)
    limit = getattr(getattr(auto_model, "config", None), "max_position_embeddings", None)
    return limit if isinstance(limit, int) and limit > 0 else None


def _first_method(obj: object, *names: str):
    """The first of ``names`` that ``obj`` has (sentence-transformers renamed methods across versions)."""
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    raise ModelError(f"{type(obj).__name__} has none of {names}; unsupported sentence-transformers version")

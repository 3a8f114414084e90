"""What each training step feeds the heads: query vectors and item image and text states, sampled per pair.

Frozen parts are computed once and cached. Fine-tuned parts run every step, with gradients: the image backbone's
top blocks over the cached feature maps below them, the item text encoder's top layers over the cached hidden
states below them, and the query encoder (with tuned top layers) over the whole wording.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .catalog import Product
from .encoders import ImageStates, TextStates
from .features import (
    FeatureCache,
    ItemTextStates,
    item_colour_states,
    item_image_states,
    item_image_stems,
    item_text_states,
    item_text_stems,
    text_pooled,
)
from .images import ImageLoader
from .model import ItemView, SMARModel
from .wording import names_colour


def rows_of(variant: tuple[torch.Tensor, ...], items: torch.Tensor) -> list[torch.Tensor]:
    """The items' rows of every tensor of one variant (floats as float32)."""
    return [t[items].float() if t.is_floating_point() else t[items] for t in variant]


def mix(variants: list[tuple[torch.Tensor, ...]], items: torch.Tensor,
        generator: torch.Generator) -> list[torch.Tensor]:
    """Per pair, the item's rows of every tensor from one randomly chosen variant (floats as float32)."""
    pick = torch.randint(len(variants), (len(items),), generator=generator)
    mixed = rows_of(variants[0], items)
    for index, variant in enumerate(variants[1:], start=1):
        chosen = pick == index
        for position, tensor in enumerate(variant):
            rows = tensor[items].float() if tensor.is_floating_point() else tensor[items]
            shape = chosen.view(-1, *([1] * (rows.dim() - 1)))
            mixed[position] = torch.where(shape, rows, mixed[position])
    return mixed


def mixed_text(variants: list[ItemTextStates], colour_named: Sequence[torch.Tensor], items: torch.Tensor,
               generator: torch.Generator | None) -> tuple[TextStates, torch.Tensor]:
    """Per pair, the item's states from one randomly chosen text variant (the first without a generator), and
    whether that text names a colour (``colour_named``: one bool per item and variant)."""
    tensors = [(v.tokens, v.mask, v.pooled, n) for v, n in zip(variants, colour_named, strict=True)]
    *states, named = mix(tensors, items, generator) if generator is not None else rows_of(tensors[0], items)
    return TextStates(*states), named


def without_images(image: ImageStates, dropped: torch.Tensor) -> ImageStates:
    """``image`` with the rows where ``dropped`` (a bool per item) is true set to zero: no image for those items."""
    return ImageStates(image.tokens.masked_fill(dropped.view(-1, 1, 1), 0.0),
                       image.pooled.masked_fill(dropped.view(-1, 1), 0.0))


def _tune_only(model: SMARModel, module: str, prefixes: list[str]) -> list[torch.nn.Parameter]:
    """Freeze every parameter of ``module`` except those under ``prefixes``; return the tuned ones."""
    tuned = []
    for name, parameter in model.named_parameters():
        if name.startswith(f"{module}."):
            parameter.requires_grad_(name.startswith(tuple(prefixes)))
            if parameter.requires_grad:
                tuned.append(parameter)
    return tuned


class QueryInputs:
    """Pooled query-encoder vectors of each wording: cached once while the query encoder is frozen, computed
    per step (with gradients into its top layers) when ``SMARConfig.query_tuned_layers`` fine-tunes it."""

    def __init__(self, model: SMARModel, wordings: list[str], cache: FeatureCache, progress: bool) -> None:
        self.model, self.wordings = model, wordings
        self.tuned_prefixes = model.query_tuned_prefixes()
        self.cached = None if self.tuned_prefixes else text_pooled(model, wordings, cache, progress=progress)

    def trainable(self) -> list[torch.nn.Parameter]:
        """The fine-tuned layers' parameters; every other query-encoder parameter is frozen."""
        return _tune_only(self.model, "query_encoder", self.tuned_prefixes)

    def pooled(self, rows: torch.Tensor) -> torch.Tensor:
        if self.cached is not None:
            return self.cached[rows]
        return self.model.query_text_encoder.encode([self.wordings[i] for i in rows.tolist()]).pooled


class ItemTextInputs:
    """Item text states, per pair from one randomly chosen text variant (e.g. a title with or without its colour
    words), and whether that text names a colour. The first variant is the plain one.

    With a frozen text encoder they are cached whole. When ``SMARConfig.item_text_tuned_layers`` fine-tunes its top
    layers, the hidden states below them are cached, and those layers run every step over the sampled texts, with
    gradients, in chunks of texts of similar length (little padding).
    """

    chunk = 64  # texts per pass through the tuned layers

    def __init__(self, model: SMARModel, variants: list[list[str]], cache: FeatureCache, progress: bool) -> None:
        self.model, self.variants = model, variants
        self.tuned_prefixes = model.item_text_tuned_prefixes()
        self.colour_named = torch.tensor([[names_colour(t) for t in texts] for texts in variants])  # (variants, n)
        self.cached: list[ItemTextStates] | None = None
        if not self.tuned_prefixes:
            self.cached = [item_text_states(model, texts, cache, progress=progress) for texts in variants]
            return
        stems = [item_text_stems(model, texts, cache, progress=progress) for texts in variants]
        self.features = {k: torch.stack([s.features[k] for s in stems]) for k in stems[0].features}  # (variants, n, L)
        self.stems = torch.stack([s.stem for s in stems])  # (variants, n, L, T)

    def __len__(self) -> int:
        return len(self.variants[0])

    def trainable(self) -> list[torch.nn.Parameter]:
        """The fine-tuned layers' parameters; every other item text-encoder parameter is frozen."""
        return _tune_only(self.model, "text_encoder", self.tuned_prefixes)

    def states(self, items: torch.Tensor, generator: torch.Generator | None) -> tuple[TextStates, torch.Tensor]:
        """States of ``items``, each from a random variant (the plain one without a generator), and whether each
        one's text names a colour."""
        if self.cached is not None:
            return mixed_text(self.cached, self.colour_named, items, generator)
        pick = (torch.randint(len(self.variants), (len(items),), generator=generator) if generator is not None
                else torch.zeros(len(items), dtype=torch.long))
        return self._tuned(pick, items), self.colour_named[pick, items]

    def _tuned(self, pick: torch.Tensor, items: torch.Tensor) -> TextStates:
        """The tuned layers over the cached stems of variant ``pick[k]`` of item ``items[k]``, run on chunks of texts
        sorted by length, each cut to its longest text; then back in the given order, padded to one length."""
        lengths = self.features["attention_mask"][pick, items].sum(dim=1)
        order = torch.argsort(lengths, stable=True)
        width = int(lengths.max())
        pad = torch.nn.functional.pad
        tokens, masks, pooled = [], [], []
        for start in range(0, len(order), self.chunk):
            rows = order[start : start + self.chunk]
            variant, item, size = pick[rows], items[rows], int(lengths[rows].max())
            features = {k: v[variant, item, :size] for k, v in self.features.items()}
            out = self.model.text_encoder.from_stem(features, self.stems[variant, item, :size].float(),
                                                    self.model.config.item_text_tuned_layers)
            tokens.append(pad(out.tokens, (0, 0, 0, width - size)))
            masks.append(pad(out.mask, (0, width - size)))
            pooled.append(out.pooled)
        back = torch.argsort(order)
        return TextStates(torch.cat(tokens)[back], torch.cat(masks)[back], torch.cat(pooled)[back])


class ImageInputs:
    """Item image states, per pair from one randomly chosen variant: an image field (resolution augmentation), as
    each of ``loaders`` reads it (e.g. mirrored too: flip augmentation). The first loader's first field is the
    plain variant.

    With a frozen backbone they are cached whole. When ``SMARConfig.image_tuned_blocks`` fine-tunes its top
    blocks, the feature maps below them (and the colour parts) are cached, and the blocks run every step.
    With ``encode=False`` (no loss reads an image: text-only training) no image is read or encoded: the states are
    zeros of the right shape, and the random draws stay those of the encoded variants, so the run is the same.
    """

    def __init__(self, model: SMARModel, products: list[Product], image_fields: list[str],
                 loaders: list[ImageLoader], cache: FeatureCache, progress: bool, encode: bool = True) -> None:
        self.model = model
        self.blocks = model.config.image_tuned_blocks
        self.tuned_prefixes = model.image_tuned_prefixes()
        self.variant_count = len(loaders) * len(image_fields)
        self.variants: list[tuple[torch.Tensor, ...]] = []
        for loader in loaders if encode else []:
            for field in image_fields:
                self.variants.append(self._variant(products, field, loader, cache, progress))

    def _variant(self, products: list[Product], field: str, loader: ImageLoader, cache: FeatureCache,
                 progress: bool) -> tuple[torch.Tensor, ...]:
        model = self.model
        if not self.blocks:
            states = item_image_states(model, products, field, loader, cache, progress=progress)
            return states.tokens, states.pooled
        stems = item_image_stems(model, products, field, loader, cache, progress=progress)
        if not model.image_encoder.config.colour_features:
            return (stems,)
        colour = item_colour_states(model, products, field, loader, cache, progress=progress)
        return stems, colour.tokens, colour.pooled

    def trainable(self) -> list[torch.nn.Parameter]:
        """The fine-tuned blocks' parameters; every other image-encoder parameter is frozen."""
        return _tune_only(self.model, "image_encoder", self.tuned_prefixes)

    def states(self, items: torch.Tensor, generator: torch.Generator | None) -> ImageStates:
        """States of ``items``, each from a random image field; from the first field without a generator."""
        if not self.variants:
            return self._blank(items, generator)
        mixed = mix(self.variants, items, generator) if generator is not None else rows_of(self.variants[0], items)
        if not self.blocks:
            return ImageStates(*mixed)
        plain = self.model.image_encoder.from_stem(mixed[0], self.blocks)
        if len(mixed) == 1:
            return plain
        return ImageStates(torch.cat([plain.tokens, mixed[1]], dim=-1), torch.cat([plain.pooled, mixed[2]], dim=-1))

    def _blank(self, items: torch.Tensor, generator: torch.Generator | None) -> ImageStates:
        """Zero states for ``items``, drawing the variant choice ``mix`` would (a run's random stream is unchanged)."""
        if generator is not None:
            torch.randint(self.variant_count, (len(items),), generator=generator)
        encoder = self.model.image_encoder  # one zero row, broadcast: no batch-sized allocation every step
        return ImageStates(torch.zeros(1, encoder.token_count, encoder.state_dim).expand(len(items), -1, -1),
                           torch.zeros(1, encoder.state_dim).expand(len(items), -1))


@torch.no_grad()
def current_vectors(model: SMARModel, queries: QueryInputs, query_rows: torch.Tensor, texts: ItemTextInputs,
                    images: ImageInputs, view: ItemView, batch: int = 512,
                    stored: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """What the model being trained scores now: the vectors of the wordings at ``query_rows`` and the ``view``
    vectors of every item (its plain text, its first image field), in eval mode. With ``stored``, the fused view is
    the second stage's stored vector."""
    was_training = model.training
    model.eval()
    try:
        query_vectors = torch.cat([model.query_vectors(queries.pooled(query_rows[i : i + batch]))
                                   for i in range(0, len(query_rows), batch)])
        item_vectors = []
        for start in range(0, len(texts), batch):
            items = torch.arange(start, min(start + batch, len(texts)))
            states, named = texts.states(items, None) if view != "image" else (None, None)
            image = images.states(items, None) if view != "text" else None
            vectors = model.item_view(view, states, image)
            if view == "fused" and stored:
                vectors = model.blend_views(vectors, model.item_view("text", states, None),
                                            model.item_view("image", None, image), named)
            item_vectors.append(vectors)
    finally:
        model.train(was_training)
        model.image_encoder.eval()
    return query_vectors, torch.cat(item_vectors)

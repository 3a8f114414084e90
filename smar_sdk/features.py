"""Precompute frozen-backbone states for training, with an on-disk cache keyed by encoder and data."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .catalog import Product
from .encoders import ImageEncoder, ImageStates
from .encoders.colour import colour_states
from .errors import ImageError
from .images import ImageLoader
from .model import SMARModel

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "smar-sdk" / "features"


@dataclass
class ItemTextStates:
    tokens: torch.Tensor  # (n, L, T) float16
    mask: torch.Tensor  # (n, L) bool
    pooled: torch.Tensor  # (n, H) float32


@dataclass
class ItemImageStates:
    tokens: torch.Tensor  # (n, N, C) float16
    pooled: torch.Tensor  # (n, C) float32


def _cache_key(kind: str, encoder_config: str, keys: Sequence[str]) -> str:
    digest = hashlib.sha256(json.dumps([kind, encoder_config, list(keys)]).encode()).hexdigest()
    return f"{kind}-{digest[:24]}.safetensors"


class FeatureCache:
    """Stores tensors by a content key in ``directory`` (None disables caching)."""

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory else None

    def get(self, name: str) -> dict[str, torch.Tensor] | None:
        if self.directory and (self.directory / name).is_file():
            return load_file(str(self.directory / name))
        return None

    def put(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        if self.directory:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f".{name}.tmp"
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
            tmp.replace(self.directory / name)


@torch.inference_mode()
def text_pooled(model: SMARModel, texts: Sequence[str], cache: FeatureCache, batch_size: int = 256,
                progress: bool = True) -> torch.Tensor:
    """Pooled text-encoder vectors (queries)."""
    name = _cache_key("query", model.config.text_encoder.model_dump_json(), texts)
    if (hit := cache.get(name)) is not None:
        return hit["pooled"]
    chunks = [model.text_encoder.encode(list(texts[i : i + batch_size])).pooled
              for i in tqdm(range(0, len(texts), batch_size), desc="encoding queries", disable=not progress)]
    pooled = torch.cat(chunks).float()
    cache.put(name, {"pooled": pooled})
    return pooled


@torch.inference_mode()
def item_text_states(model: SMARModel, texts: Sequence[str], cache: FeatureCache, batch_size: int = 256,
                     progress: bool = True) -> ItemTextStates:
    """Title token states padded to the encoder's ``max_tokens``."""
    name = _cache_key("itemtext", model.config.text_encoder.model_dump_json(), texts)
    if (hit := cache.get(name)) is not None:
        return ItemTextStates(hit["tokens"], hit["mask"].bool(), hit["pooled"])
    length = model.config.text_encoder.max_tokens
    tokens, masks, pooled = [], [], []
    for i in tqdm(range(0, len(texts), batch_size), desc="encoding item texts", disable=not progress):
        states = model.text_encoder.encode(list(texts[i : i + batch_size]))
        pad = length - states.tokens.shape[1]
        tokens.append(torch.nn.functional.pad(states.tokens, (0, 0, 0, pad)).half())
        masks.append(torch.nn.functional.pad(states.mask, (0, pad)))
        pooled.append(states.pooled.float())
    result = ItemTextStates(torch.cat(tokens), torch.cat(masks), torch.cat(pooled))
    cache.put(name, {"tokens": result.tokens, "mask": result.mask.to(torch.uint8), "pooled": result.pooled})
    return result


@torch.inference_mode()
def item_image_states(model: SMARModel, products: Sequence[Product], image_field: str, loader: ImageLoader,
                      cache: FeatureCache, batch_size: int = 64, progress: bool = True) -> ItemImageStates:
    """Image-backbone states of each product's ``image_field`` image (decoded on two threads).

    The backbone's own states and the colour features are cached apart, so switching colour features on
    or off never re-runs the backbone.
    """
    encoder = model.image_encoder
    refs = [str(p.payload.get(image_field)) for p in products]
    keys = [f"{p.id}:{r}" for p, r in zip(products, refs, strict=True)]
    backbone_config = encoder.config.model_dump_json(exclude={"colour_features"})
    plain = _cached_image_states(cache, _cache_key(f"image-{image_field}", backbone_config, keys), products, refs,
                                 encoder, loader, encoder.backbone, f"encoding {image_field}s", batch_size, progress)
    if not encoder.config.colour_features:
        return plain
    def colours(pixels: torch.Tensor) -> ImageStates:
        return ImageStates(*colour_states(encoder.unnormalise(pixels), plain.tokens.shape[1]))

    colour = _cached_image_states(cache, _cache_key(f"colour-{image_field}", backbone_config, keys), products, refs,
                                  encoder, loader, colours, f"colours of {image_field}s", batch_size, progress)
    return ItemImageStates(torch.cat([plain.tokens, colour.tokens], dim=-1),
                           torch.cat([plain.pooled, colour.pooled], dim=-1))


def _cached_image_states(cache: FeatureCache, name: str, products: Sequence[Product], refs: list[str],
                         encoder: ImageEncoder, loader: ImageLoader, encode: Callable[[torch.Tensor], ImageStates],
                         desc: str, batch_size: int, progress: bool) -> ItemImageStates:
    if (hit := cache.get(name)) is not None:
        return ItemImageStates(hit["tokens"], hit["pooled"])

    def pixels(index: int) -> torch.Tensor:
        try:
            return encoder.preprocess(loader.load(refs[index]))
        except ImageError as exc:
            product = products[index]
            raise ImageError(f"training item {product.id} (catalog line {product.line}): {exc}") from exc

    tokens, pooled = [], []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i in tqdm(range(0, len(refs), batch_size), desc=desc, disable=not progress):
            states = encode(torch.stack(list(pool.map(pixels, range(i, min(i + batch_size, len(refs)))))))
            tokens.append(states.tokens.half())
            pooled.append(states.pooled.float())
    result = ItemImageStates(torch.cat(tokens), torch.cat(pooled))
    cache.put(name, {"tokens": result.tokens, "pooled": result.pooled})
    return result

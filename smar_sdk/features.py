"""Precompute frozen-backbone states for training, with an on-disk cache keyed by encoder and data."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .catalog import Product
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
    """Image-backbone states of each product's ``image_field`` image (decoded on two threads)."""
    refs = [str(p.payload.get(image_field)) for p in products]
    name = _cache_key(f"image-{image_field}", model.config.image_encoder.model_dump_json(),
                      [f"{p.id}:{r}" for p, r in zip(products, refs, strict=True)])
    if (hit := cache.get(name)) is not None:
        return ItemImageStates(hit["tokens"], hit["pooled"])

    def pixels(index: int) -> torch.Tensor:
        try:
            return model.image_encoder.preprocess(loader.load(refs[index]))
        except ImageError as exc:
            product = products[index]
            raise ImageError(f"training item {product.id} (catalog line {product.line}): {exc}") from exc

    tokens, pooled = [], []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i in tqdm(range(0, len(refs), batch_size), desc=f"encoding {image_field}s", disable=not progress):
            batch = torch.stack(list(pool.map(pixels, range(i, min(i + batch_size, len(refs))))))
            states = model.image_encoder(batch)
            tokens.append(states.tokens.half())
            pooled.append(states.pooled.float())
    result = ItemImageStates(torch.cat(tokens), torch.cat(pooled))
    cache.put(name, {"tokens": result.tokens, "pooled": result.pooled})
    return result

"""Precompute frozen-backbone states for training, with an on-disk cache keyed by encoder and data."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .catalog import Product
from .encoders import ImageStates
from .encoders.colour import colour_dim, colour_states
from .errors import ImageError
from .images import ImageLoader
from .model import SMARModel

logger = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "smar-sdk" / "features"


@dataclass
class ItemTextStates:
    tokens: torch.Tensor  # (n, L, T) float16
    mask: torch.Tensor  # (n, L) bool
    pooled: torch.Tensor  # (n, H) float32


@dataclass
class ItemTextStems:
    features: dict[str, torch.Tensor]  # tokenizer tensors, each (n, L), padded to max_tokens
    stem: torch.Tensor  # (n, L, T) float16: hidden states entering the fine-tuned layers


@dataclass
class ItemImageStates:
    tokens: torch.Tensor  # (n, N, C) float16
    pooled: torch.Tensor  # (n, C) float32


def _cache_key(kind: str, encoder_config: str, keys: Sequence[str]) -> str:
    digest = hashlib.sha256(json.dumps([kind, encoder_config, list(keys)]).encode()).hexdigest()
    return f"{kind}-{digest[:24]}.safetensors"


class FeatureCache:
    """Stores tensors by a content key in ``directory`` (None disables caching). The cache only saves time: an
    unreadable entry is a miss (and is replaced), and a folder that cannot be written turns caching off with a
    warning instead of stopping training."""

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory else None

    def has(self, name: str) -> bool:
        return bool(self.directory and (self.directory / name).is_file())

    def get(self, name: str) -> dict[str, torch.Tensor] | None:
        if not self.has(name):
            return None
        try:
            return load_file(str(self.directory / name))
        except Exception as exc:  # a truncated or damaged file: compute it again
            logger.warning("feature cache entry %s is unreadable (%s); computing it again", self.directory / name, exc)
            return None

    def put(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        if not self.directory:
            return
        tmp = self.directory / f".{name}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
            tmp.replace(self.directory / name)
        except OSError as exc:
            logger.warning("cannot write the feature cache in %s (%s); training goes on without caching (choose "
                           "another --cache-dir, or --no-cache)", self.directory, exc.strerror or exc)
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            self.directory = None


@torch.inference_mode()
def text_pooled(model: SMARModel, texts: Sequence[str], cache: FeatureCache, batch_size: int = 256,
                progress: bool = True) -> torch.Tensor:
    """Pooled text-encoder vectors (queries)."""
    name = _cache_key("query", model.config.text_encoder.model_dump_json() + weights_digest(model.text_encoder), texts)
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
    name = _cache_key("itemtext", model.config.text_encoder.model_dump_json() + weights_digest(model.text_encoder),
                      texts)  # the weights, fine-tuned or replaced in place under the same name, not only the name
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
def item_text_stems(model: SMARModel, texts: Sequence[str], cache: FeatureCache, batch_size: int = 256,
                    progress: bool = True) -> ItemTextStems:
    """Hidden states (and tokens) of each text below the item text encoder's ``item_text_tuned_layers`` fine-tuned
    layers, padded to ``max_tokens``: the frozen part of the title side, computed once and cached; training runs the
    tuned layers over them."""
    encoder, layers = model.text_encoder, model.config.item_text_tuned_layers
    tuned = tuple(p.removeprefix("text_encoder.") for p in model.item_text_tuned_prefixes())
    frozen = [v for k, v in encoder.state_dict().items() if not k.startswith(tuned)]
    name = _cache_key(f"itemtextstem{layers}", model.config.text_encoder.model_dump_json() + _tensor_digest(frozen),
                      texts)
    if (hit := cache.get(name)) is not None:
        stem = hit.pop("stem")
        return ItemTextStems(hit, stem)
    length = model.config.text_encoder.max_tokens
    features: dict[str, list[torch.Tensor]] = {}
    stems = []
    for i in tqdm(range(0, len(texts), batch_size), desc="encoding item texts below the tuned layers",
                  disable=not progress):
        batch = {k: v for k, v in encoder.tokenize(list(texts[i : i + batch_size])).items()
                 if isinstance(v, torch.Tensor)}
        stem = encoder.stem(batch, layers)
        pad = length - stem.shape[1]
        stems.append(torch.nn.functional.pad(stem, (0, 0, 0, pad)).half())
        for key, value in batch.items():
            features.setdefault(key, []).append(torch.nn.functional.pad(value, (0, pad)))
    result = ItemTextStems({k: torch.cat(v) for k, v in features.items()}, torch.cat(stems))
    cache.put(name, {**result.features, "stem": result.stem})
    return result


@torch.inference_mode()
def item_image_states(model: SMARModel, products: Sequence[Product], image_field: str, loader: ImageLoader,
                      cache: FeatureCache, batch_size: int = 64, progress: bool = True) -> ItemImageStates:
    """Image-encoder states of each product's ``image_field`` image (decoded on two threads).

    The backbone's own states and the colour features are cached apart, so switching colour features on
    or off never re-runs the backbone; when neither is cached, one decoding pass computes both. A model
    with fine-tuned image blocks runs them over the cached feature maps below them (:func:`item_image_stems`).
    """
    encoder, blocks = model.image_encoder, model.config.image_tuned_blocks
    if blocks:
        stems = item_image_stems(model, products, image_field, loader, cache, batch_size, progress)
        plain = _batched(lambda rows: encoder.from_stem(stems[rows].float(), blocks), len(products), batch_size)
        if not encoder.config.colour_features:
            return plain
        return _joined(plain, item_colour_states(model, products, image_field, loader, cache, batch_size, progress))
    plain_name = _image_cache_key("image", model, products, image_field, loader, weights_digest(encoder.backbone))

    def plain_states() -> ItemImageStates:
        return _cached(cache, plain_name) or _store(cache, plain_name, _encode_images(
            model, products, image_field, loader, encoder.backbone, f"encoding {image_field}s", batch_size, progress))

    if not encoder.config.colour_features:
        return plain_states()
    colour_name = _image_cache_key("colour", model, products, image_field, loader)
    if not cache.has(plain_name) and not cache.has(colour_name):
        both = _encode_images(model, products, image_field, loader, encoder, f"encoding {image_field}s", batch_size,
                              progress)
        width = both.pooled.shape[1] - colour_dim(encoder.config.foreground_colour)
        _store(cache, plain_name, ItemImageStates(both.tokens[..., :width], both.pooled[:, :width]))
        _store(cache, colour_name, ItemImageStates(both.tokens[..., width:], both.pooled[:, width:]))
        return both
    return _joined(plain_states(), item_colour_states(model, products, image_field, loader, cache, batch_size,
                                                      progress))


@torch.inference_mode()
def item_colour_states(model: SMARModel, products: Sequence[Product], image_field: str, loader: ImageLoader,
                       cache: FeatureCache, batch_size: int = 64, progress: bool = True) -> ItemImageStates:
    """The colour parts of each product's image states (``smar_sdk.encoders.colour``), cached."""
    encoder = model.image_encoder
    name = _image_cache_key("colour", model, products, image_field, loader)

    def colours(pixels: torch.Tensor) -> ImageStates:
        return ImageStates(*colour_states(encoder.unnormalise(pixels), encoder.token_count,
                                          encoder.config.foreground_colour))

    return _cached(cache, name) or _store(cache, name, _encode_images(
        model, products, image_field, loader, colours, f"colours of {image_field}s", batch_size, progress))


@torch.inference_mode()
def item_image_stems(model: SMARModel, products: Sequence[Product], image_field: str, loader: ImageLoader,
                     cache: FeatureCache, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
    """Feature maps ``(n, C, H, W)`` (float16) below the image backbone's ``image_tuned_blocks`` fine-tuned blocks:
    the frozen part of the image tower, computed once and cached; training runs the tuned blocks over them."""
    encoder, blocks = model.image_encoder, model.config.image_tuned_blocks
    frozen = [v for k, v in encoder.state_dict().items()
              if not k.startswith(tuple(encoder.top_blocks(blocks)))]  # a loaded model's stem may be rounded
    name = _image_cache_key(f"stem{blocks}", model, products, image_field, loader, _tensor_digest(frozen))

    def stem(pixels: torch.Tensor) -> ImageStates:
        grid = encoder.stem(pixels, blocks)
        return ImageStates(tokens=grid, pooled=grid.mean(dim=(2, 3)))

    states = _cached(cache, name) or _store(cache, name, _encode_images(
        model, products, image_field, loader, stem, f"encoding {image_field}s below the tuned blocks", batch_size,
        progress))
    return states.tokens


def _image_cache_key(kind: str, model: SMARModel, products: Sequence[Product], image_field: str,
                     loader: ImageLoader, extra: str = "") -> str:
    """The cache name of one kind of image state for these products' ``image_field`` images (as ``loader`` reads
    them: mirrored images are another key)."""
    encoder = model.image_encoder.config
    config = encoder.model_dump_json(exclude={"colour_features", "foreground_colour"}) + extra
    if kind == "colour" and encoder.foreground_colour:
        config += "+foreground"
    keys = [f"{p.id}:{loader.identity(p.payload.get(image_field))}" for p in products]
    return _cache_key(f"{kind}-{image_field}{'-mirrored' if loader.mirror else ''}", config, keys)


def weights_digest(module: torch.nn.Module) -> str:
    """A digest of a module's weights: states computed by it are cached under it, so weights replaced in place
    under the same name or path are not mistaken for the old ones."""
    return _tensor_digest(list(module.state_dict().values()))


def _tensor_digest(tensors: Sequence[torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _batched(function: Callable[[slice], ImageStates], total: int, batch_size: int) -> ItemImageStates:
    """``function`` over row slices of ``batch_size``: tokens as float16, pooled vectors as float32."""
    parts = [function(slice(i, i + batch_size)) for i in range(0, total, batch_size)]
    return ItemImageStates(torch.cat([p.tokens.half() for p in parts]), torch.cat([p.pooled.float() for p in parts]))


def _joined(plain: ItemImageStates, colour: ItemImageStates) -> ItemImageStates:
    return ItemImageStates(torch.cat([plain.tokens, colour.tokens], dim=-1),
                           torch.cat([plain.pooled, colour.pooled], dim=-1))


def _cached(cache: FeatureCache, name: str) -> ItemImageStates | None:
    hit = cache.get(name)
    return None if hit is None else ItemImageStates(hit["tokens"], hit["pooled"])


def _store(cache: FeatureCache, name: str, states: ItemImageStates) -> ItemImageStates:
    cache.put(name, {"tokens": states.tokens, "pooled": states.pooled})
    return states


def _encode_images(model: SMARModel, products: Sequence[Product], image_field: str, loader: ImageLoader,
                   encode: Callable[[torch.Tensor], ImageStates], desc: str, batch_size: int,
                   progress: bool) -> ItemImageStates:
    """``encode`` over the decoded images, batch by batch: tokens as float16, pooled vectors as float32."""
    encoder = model.image_encoder
    refs = [p.payload.get(image_field) for p in products]

    def pixels(index: int) -> torch.Tensor:
        try:
            if refs[index] is None:
                raise ImageError(f"no image field {image_field!r} in the row")
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
    return ItemImageStates(torch.cat(tokens), torch.cat(pooled))

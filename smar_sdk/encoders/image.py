"""Image backbone: a torchvision CNN or an open_clip vision tower, giving patch states and a pooled vector."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision import transforms

from ..config import ImageEncoderConfig
from ..errors import ModelError, load_problem
from ..images import as_rgb
from ..sources import resolve_source
from .colour import with_colour


@dataclass
class ImageStates:
    """Patch/grid states ``(B, N, C)`` and the pooled vector ``(B, C)``."""

    tokens: torch.Tensor
    pooled: torch.Tensor


def load_weights_file(path: str) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a tensors-only ``.pth`` (``weights_only``: no code runs)."""
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except (SafetensorError, OSError) as exc:
            raise ModelError(f"cannot read image weights {path}: {exc}; the file is damaged or not safetensors "
                             "(reinstall the weights package or copy the file again)") from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"cannot read image weights {path}: {exc} (only tensor files are accepted)") from exc
    if not isinstance(state, dict):
        raise ModelError(f"image weights {path} hold a {type(state).__name__}, expected a state dict")
    return state.get("state_dict", state)


def _load_checked(model: nn.Module, weights: str | None, arch: str) -> None:
    """Load a local weights file (``image_encoder.weights``) into ``model``; every parameter must be in it."""
    if not weights:
        return
    path = resolve_source(weights)
    if not Path(path).is_file():
        raise ModelError(f"image weights file {weights!r} not found (image_encoder.weights)")
    try:
        missing, _ = model.load_state_dict(load_weights_file(path), strict=False)
    except RuntimeError as exc:  # tensors of the wrong shape: weights of another architecture
        raise ModelError(f"image weights {path} do not fit {arch}: {load_problem(exc)}") from exc
    if missing:
        raise ModelError(f"image weights {path} do not fit {arch}: missing {missing[:3]}...")


@contextmanager
def _arch_kwargs_checked(config: ImageEncoderConfig) -> Iterator[None]:
    """Turn a builder's complaint about ``image_encoder.arch_kwargs`` into a ``ModelError`` naming the setting."""
    try:
        yield
    except TypeError as exc:
        raise ModelError(f"image_encoder.arch_kwargs {config.arch_kwargs} do not fit {config.arch!r}: {exc}") from exc


class _GridBackbone(nn.Module):
    """A CNN as a sequence of blocks (``trunk``) ending in its last feature map; tunable from the top."""

    trunk: nn.Sequential

    def forward(self, images: torch.Tensor) -> ImageStates:
        return self.top(self.trunk(images))

    def stem(self, images: torch.Tensor, blocks: int) -> torch.Tensor:
        """The feature map ``(B, C, H, W)`` before the trunk's last ``blocks`` modules."""
        return self.trunk[: len(self.trunk) - blocks](images)

    def top(self, grid: torch.Tensor, blocks: int = 0) -> ImageStates:
        """States from a feature map that still has to go through the trunk's last ``blocks`` modules."""
        if blocks:
            grid = self.trunk[len(self.trunk) - blocks :](grid)
        tokens = grid.flatten(2).transpose(1, 2)  # (B, H*W, C)
        return ImageStates(tokens=tokens, pooled=tokens.mean(dim=1))

    def top_blocks(self, count: int) -> list[str]:
        """Parameter-name prefixes (relative to this module) of the trunk's last ``count`` modules."""
        if not 0 < count < len(self.trunk):
            raise ModelError(f"image_tuned_blocks (--image-tuned-blocks) is {count}, but the image trunk has "
                             f"{len(self.trunk)} blocks; use 1 to {len(self.trunk) - 1}")
        return [f"trunk.{i}." for i in range(len(self.trunk) - count, len(self.trunk))]


class _TorchvisionGrid(_GridBackbone):
    """The convolutional trunk of a torchvision classifier, up to its last feature map."""

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        import torchvision.models as tvm

        builder = getattr(tvm, config.arch, None)
        if builder is None or not callable(builder):
            raise ModelError(f"unknown torchvision architecture {config.arch!r} (image_encoder.arch)")
        with _arch_kwargs_checked(config):
            model = builder(weights=None, **config.arch_kwargs)
        _load_checked(model, config.weights, config.arch)
        if hasattr(model, "features"):
            self.trunk = model.features
        else:  # ResNet-style: everything before global pooling and the classifier
            self.trunk = nn.Sequential(*list(model.children())[:-2])


class _EfficientNetLiteGrid(_GridBackbone):
    """EfficientNet-Lite (``efficientnet-lite-pytorch``): stem, its MBConv blocks and head as one trunk.

    Drop-connect is not applied (the blocks are called without a rate), like the model in eval mode.
    """

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise ModelError("image_encoder.kind 'efficientnet_lite' needs the efficientnet-lite-pytorch package: "
                             "pip install 'smar-sdk[efficientnet]'") from exc
        try:
            with _arch_kwargs_checked(config):
                model = EfficientNet.from_name(config.arch, **config.arch_kwargs)
        except ValueError as exc:
            raise ModelError(f"unknown EfficientNet-Lite architecture {config.arch!r} (image_encoder.arch; "
                             "efficientnet-lite0 to efficientnet-lite4)") from exc
        _load_checked(model, config.weights, config.arch)
        activation = model._swish
        self.trunk = nn.Sequential(
            nn.Sequential(model._conv_stem, model._bn0, activation),
            *model._blocks,
            nn.Sequential(model._conv_head, model._bn1, activation),
        )


class _OpenClipVision(nn.Module):
    """The vision tower of an open_clip model; ViTs expose their patch tokens."""

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        import open_clip

        pretrained = resolve_source(config.weights) if config.weights else None
        try:
            model = open_clip.create_model(config.arch, pretrained=pretrained, device="cpu", **config.arch_kwargs)
        except Exception as exc:
            raise ModelError(f"cannot build open_clip model {config.arch!r} with weights {pretrained!r}: "
                             f"{exc}") from exc
        self.visual = model.visual
        if hasattr(self.visual, "output_tokens"):
            self.visual.output_tokens = True

    def forward(self, images: torch.Tensor) -> ImageStates:
        out = self.visual(images)
        if isinstance(out, tuple):
            pooled, tokens = out
        else:
            pooled, tokens = out, out.unsqueeze(1)
        if tokens.shape[-1] != pooled.shape[-1]:  # tokens are pre-projection; project them like the pooled one
            proj = getattr(self.visual, "proj", None)
            tokens = tokens @ proj if proj is not None else tokens[..., : pooled.shape[-1]]
        return ImageStates(tokens=tokens, pooled=pooled)


_BACKBONES: dict[str, type[nn.Module]] = {
    "torchvision": _TorchvisionGrid,
    "efficientnet_lite": _EfficientNetLiteGrid,
    "open_clip": _OpenClipVision,
}


class ImageEncoder(nn.Module):
    """Image backbone plus its preprocessing; ``state_dim`` is the width of tokens and pooled vectors."""

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone: nn.Module = _BACKBONES[config.kind](config)
        self.transform = transforms.Compose(
            [
                transforms.Resize((config.image_size, config.image_size), antialias=True),
                transforms.ToTensor(),
                transforms.Normalize(config.mean, config.std),
            ]
        )
        self.backbone.eval()
        with torch.no_grad():
            probe = self(torch.zeros(1, 3, config.image_size, config.image_size))
        self.state_dim = int(probe.pooled.shape[-1])
        self.token_count = int(probe.tokens.shape[1])

    def top_blocks(self, count: int) -> list[str]:
        """Parameter-name prefixes (relative to this encoder) of the backbone's last ``count`` blocks."""
        if not isinstance(self.backbone, _GridBackbone):
            raise ModelError("image_tuned_blocks (--image-tuned-blocks) needs a CNN backbone, but the "
                             f"image encoder is open_clip {self.config.arch!r}; set it to 0")
        return [f"backbone.{prefix}" for prefix in self.backbone.top_blocks(count)]

    def stem(self, pixels: torch.Tensor, blocks: int) -> torch.Tensor:
        """Preprocessed pixels to the backbone's feature map before its last ``blocks`` blocks."""
        return self.backbone.stem(pixels, blocks)

    def from_stem(self, grid: torch.Tensor, blocks: int) -> ImageStates:
        """The backbone's own states (no colour parts) from a :meth:`stem` feature map."""
        return self.backbone.top(grid, blocks)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.transform(as_rgb(image))

    def unnormalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocessed pixels back to RGB in [0, 1]."""
        mean = pixels.new_tensor(self.config.mean).view(1, 3, 1, 1)
        return pixels * pixels.new_tensor(self.config.std).view(1, 3, 1, 1) + mean

    def forward(self, pixels: torch.Tensor) -> ImageStates:
        states = self.backbone(pixels)
        if not self.config.colour_features:
            return states
        return ImageStates(*with_colour(states.tokens, states.pooled, self.unnormalise(pixels),
                                        self.config.foreground_colour))

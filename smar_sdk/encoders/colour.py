"""Colour features of an image: what ImageNet-trained CNN features learn to ignore.

Shoppers name colours ("navy dress") and many titles do not, so the item tower needs the image's colour.
``with_colour`` appends to every patch state its patch's mean RGB and the whole image's colour histogram
(``LEVELS`` per channel, square-rooted bin fractions), and to the pooled vector the image's mean RGB and
the same histogram. They are fixed functions of the pixels: nothing to train, no weights to ship.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LEVELS = 4  # per channel: 4 x 4 x 4 = 64 histogram bins
COLOUR_DIM = 3 + LEVELS**3


def colour_histogram(rgb: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` pixels in [0, 1] -> ``(B, LEVELS**3)`` square roots of the joint RGB bin fractions."""
    levels = (rgb.clamp(0, 1) * LEVELS).long().clamp(max=LEVELS - 1)
    bins = (levels[:, 0] * LEVELS + levels[:, 1]) * LEVELS + levels[:, 2]
    flat = bins.flatten(1)
    counts = torch.zeros(len(rgb), LEVELS**3, dtype=rgb.dtype, device=rgb.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat, dtype=rgb.dtype))
    return (counts / flat.shape[1]).sqrt()


def patch_colours(rgb: torch.Tensor, count: int) -> torch.Tensor:
    """Mean RGB of each of ``count`` patches on a square grid, ``(B, count, 3)``; the image's mean colour for
    every patch when the states are not a square grid (e.g. a ViT's extra class token)."""
    side = math.isqrt(count)
    if side * side != count:
        return rgb.mean(dim=(2, 3)).unsqueeze(1).expand(-1, count, -1)
    return F.adaptive_avg_pool2d(rgb, side).flatten(2).transpose(1, 2)


def colour_states(rgb: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour parts of ``count`` patch states, ``(B, count, COLOUR_DIM)``, and of the pooled vector,
    ``(B, COLOUR_DIM)``, for pixels in [0, 1]."""
    histogram = colour_histogram(rgb)
    tokens = torch.cat([patch_colours(rgb, count), histogram.unsqueeze(1).expand(-1, count, -1)], dim=-1)
    return tokens, torch.cat([rgb.mean(dim=(2, 3)), histogram], dim=-1)


def with_colour(tokens: torch.Tensor, pooled: torch.Tensor, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch states ``(B, N, C)`` and pooled ``(B, C)`` with their colour parts appended (``C + COLOUR_DIM``)."""
    colour_tokens, colour_pooled = colour_states(rgb, tokens.shape[1])
    return (torch.cat([tokens, colour_tokens.to(tokens.dtype)], dim=-1),
            torch.cat([pooled, colour_pooled.to(pooled.dtype)], dim=-1))

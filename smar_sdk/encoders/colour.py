"""Colour features of an image: what ImageNet-trained CNN features learn to ignore.

Shoppers name colours ("navy dress") and many titles do not, so the item tower needs the image's colour.
``with_colour`` appends to every patch state its patch's mean RGB and the whole image's colour histogram
(``LEVELS`` per channel, square-rooted bin fractions), and to the pooled vector the image's mean RGB and
the same histogram. They are fixed functions of the pixels: nothing to train, no weights to ship.

Catalogue photos show the product on a near-white background, which dominates the whole-image histogram. With
``foreground=True`` every state also gets ``foreground_colour``: the mean RGB and a finer histogram
(``FOREGROUND_LEVELS`` per channel) of the pixels that are not background.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LEVELS = 4  # per channel: 4 x 4 x 4 = 64 histogram bins
COLOUR_DIM = 3 + LEVELS**3
FOREGROUND_LEVELS = 6  # per channel: 216 bins
FOREGROUND_DIM = 3 + FOREGROUND_LEVELS**3
BACKGROUND_BRIGHTNESS = 0.9  # a background pixel: every channel above this...
BACKGROUND_SPREAD = 0.06  # ...and its channels within this of each other (near-white, unsaturated)
MIN_FOREGROUND = 0.02  # below this fraction of product pixels, the whole image counts as the product


def colour_dim(foreground: bool) -> int:
    """Width of the colour parts appended to each state."""
    return COLOUR_DIM + (FOREGROUND_DIM if foreground else 0)


def colour_histogram(rgb: torch.Tensor, levels: int = LEVELS, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, 3, H, W)`` pixels in [0, 1] -> ``(B, levels**3)`` square roots of the joint RGB bin fractions, each
    pixel counted with its weight in ``weights`` ``(B, H, W)`` (default 1)."""
    quantised = (rgb.clamp(0, 1) * levels).long().clamp(max=levels - 1)
    flat = ((quantised[:, 0] * levels + quantised[:, 1]) * levels + quantised[:, 2]).flatten(1)
    mass = torch.ones_like(flat, dtype=rgb.dtype) if weights is None else weights.flatten(1).to(rgb.dtype)
    counts = torch.zeros(len(rgb), levels**3, dtype=rgb.dtype, device=rgb.device)
    counts.scatter_add_(1, flat, mass)
    return (counts / mass.sum(dim=1, keepdim=True)).sqrt()


def foreground_mask(rgb: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)``: the pixels that are not near-white background; every pixel where too few are."""
    bright, dark = rgb.max(dim=1).values, rgb.min(dim=1).values
    product = ~((dark > BACKGROUND_BRIGHTNESS) & (bright - dark < BACKGROUND_SPREAD))
    enough = product.flatten(1).float().mean(dim=1) >= MIN_FOREGROUND
    return product | ~enough.view(-1, 1, 1)


def foreground_colour(rgb: torch.Tensor) -> torch.Tensor:
    """``(B, FOREGROUND_DIM)``: mean RGB and ``FOREGROUND_LEVELS`` histogram of the product's own pixels."""
    mask = foreground_mask(rgb).to(rgb.dtype)
    mean = (rgb * mask.unsqueeze(1)).sum(dim=(2, 3)) / mask.sum(dim=(1, 2)).unsqueeze(1)
    return torch.cat([mean, colour_histogram(rgb, FOREGROUND_LEVELS, mask)], dim=1)


def patch_colours(rgb: torch.Tensor, count: int) -> torch.Tensor:
    """Mean RGB of each of ``count`` patches on a square grid, ``(B, count, 3)``; the image's mean colour for
    every patch when the states are not a square grid (e.g. a ViT's extra class token)."""
    side = math.isqrt(count)
    if side * side != count:
        return rgb.mean(dim=(2, 3)).unsqueeze(1).expand(-1, count, -1)
    return F.adaptive_avg_pool2d(rgb, side).flatten(2).transpose(1, 2)


def colour_states(rgb: torch.Tensor, count: int, foreground: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour parts of ``count`` patch states, ``(B, count, D)``, and of the pooled vector, ``(B, D)``, for
    pixels in [0, 1]; ``D = colour_dim(foreground)``."""
    image = [colour_histogram(rgb), *([foreground_colour(rgb)] if foreground else [])]
    shared = torch.cat(image, dim=-1)  # what every patch state gets: the whole image's colour
    tokens = torch.cat([patch_colours(rgb, count), shared.unsqueeze(1).expand(-1, count, -1)], dim=-1)
    return tokens, torch.cat([rgb.mean(dim=(2, 3)), shared], dim=-1)


def with_colour(tokens: torch.Tensor, pooled: torch.Tensor, rgb: torch.Tensor,
                foreground: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch states ``(B, N, C)`` and pooled ``(B, C)`` with their colour parts appended
    (``C + colour_dim(foreground)``)."""
    colour_tokens, colour_pooled = colour_states(rgb, tokens.shape[1], foreground)
    return (torch.cat([tokens, colour_tokens.to(tokens.dtype)], dim=-1),
            torch.cat([pooled, colour_pooled.to(pooled.dtype)], dim=-1))

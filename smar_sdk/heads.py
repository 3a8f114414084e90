"""The trainable SMAR heads: per-view projections and the cross-attention fusion of title and image."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProjectionHead(nn.Module):
    """Pooled backbone vector -> ``dim``: a linear map plus a small residual MLP, L2-normalised."""

    def __init__(self, in_dim: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, dim)
        self.mlp = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(dim, dim))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(pooled) + self.mlp(pooled), dim=-1)


class _CrossBlock(nn.Module):
    """One side attends to the other (pre-norm), then a feed-forward layer; residual throughout."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(width)
        self.norm_kv = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(2 * width, width))

    def forward(self, queries: torch.Tensor, context: torch.Tensor, context_pad: torch.Tensor | None) -> torch.Tensor:
        kv = self.norm_kv(context)
        attended, _ = self.attention(self.norm_q(queries), kv, kv, key_padding_mask=context_pad, need_weights=False)
        queries = queries + attended
        return queries + self.ff(self.norm_ff(queries))


def masked_mean(states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the token axis, counting only positions where ``mask`` is true."""
    if mask is None:
        return states.mean(dim=1)
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class CrossAttentionFusion(nn.Module):
    """Title tokens attend to image patches and image patches attend to title tokens; both are pooled,
    concatenated with the pooled backbone vectors and projected to the fused item vector."""

    def __init__(self, text_dim: int, text_pooled_dim: int, image_dim: int, width: int, dim: int, heads: int,
                 dropout: float) -> None:
        super().__init__()
        self.text_in = nn.Sequential(nn.Linear(text_dim, width), nn.LayerNorm(width))
        self.image_in = nn.Sequential(nn.Linear(image_dim, width), nn.LayerNorm(width))
        self.text_to_image = _CrossBlock(width, heads, dropout)
        self.image_to_text = _CrossBlock(width, heads, dropout)
        self.out = ProjectionHead(2 * width + text_pooled_dim + image_dim, dim, dropout)

    def forward(self, text_tokens: torch.Tensor, text_mask: torch.Tensor, text_pooled: torch.Tensor,
                image_tokens: torch.Tensor, image_pooled: torch.Tensor) -> torch.Tensor:
        text = self.text_in(text_tokens)
        image = self.image_in(image_tokens)
        text_attended = self.text_to_image(text, image, None)
        image_attended = self.image_to_text(image, text, ~text_mask)
        joint = torch.cat([masked_mean(text_attended, text_mask), image_attended.mean(dim=1), text_pooled,
                           image_pooled], dim=-1)
        return self.out(joint)

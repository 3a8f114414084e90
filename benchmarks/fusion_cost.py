"""Forward time per item of the cross-attention fusion at two widths, against the image backbone's full pass.

    python benchmarks/fusion_cost.py

One thread, batches of 64, the shipped model's encoders (MiniLM token states: 384 wide, 32 tokens; MobileNetV2 with
colour features: 49 patches). Used for "A wider fusion" in BENCHMARKS.md.
"""

from __future__ import annotations

import time

import torch

from smar_sdk import SMARConfig
from smar_sdk.encoders.image import ImageEncoder
from smar_sdk.heads import CrossAttentionFusion

BATCH, TITLE_TOKENS, PATCHES, TEXT_DIM = 64, 32, 49, 384
WIDTHS = ((256, 4), (512, 8))  # (fusion_dim, fusion_heads)


def ms_per_item(forward, *inputs: torch.Tensor, repeats: int = 3) -> float:
    """Mean wall time of ``forward(*inputs)`` per batch item, in milliseconds, after one warm-up call."""
    with torch.no_grad():
        forward(*inputs)
        started = time.perf_counter()
        for _ in range(repeats):
            forward(*inputs)
    return (time.perf_counter() - started) / repeats * 1000 / BATCH


def main() -> None:
    torch.set_num_threads(1)
    config = SMARConfig()
    image_encoder = ImageEncoder(config.image_encoder).eval()
    image_dim = image_encoder.state_dim
    states = (torch.randn(BATCH, TITLE_TOKENS, TEXT_DIM), torch.ones(BATCH, TITLE_TOKENS, dtype=torch.bool),
              torch.randn(BATCH, TEXT_DIM), torch.randn(BATCH, PATCHES, image_dim), torch.randn(BATCH, image_dim))
    for width, heads in WIDTHS:
        fusion = CrossAttentionFusion(TEXT_DIM, TEXT_DIM, image_dim, width, config.dim, heads, config.dropout).eval()
        print(f"fusion width {width}, {heads} heads: {ms_per_item(fusion, *states):.1f} ms per item")
    pixels = torch.randn(BATCH, 3, config.image_encoder.image_size, config.image_encoder.image_size)
    print(f"{config.image_encoder.arch}, {config.image_encoder.image_size} px: "
          f"{ms_per_item(image_encoder, pixels, repeats=1):.1f} ms per item")


if __name__ == "__main__":
    main()

"""Forward time per item of the cross-attention fusion at two widths, against the image backbone's full pass.

    python benchmarks/fusion_cost.py

One thread, batches of 64, the default model's encoders (MiniLM token states, titles at their token limit; MobileNetV2
with colour features, 7 x 7 patches), each width built by ``SMARModel`` itself. Used for "A wider fusion" in
BENCHMARKS.md.
"""

from __future__ import annotations

import time

import torch

from smar_sdk import SMARConfig, SMARModel

BATCH, PATCHES = 64, 49
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
    for width, heads in WIDTHS:
        model = SMARModel(SMARConfig(fusion_dim=width, fusion_heads=heads))
        text, image_dim = model.text_encoder, model.image_encoder.state_dim
        tokens = model.config.text_encoder.max_tokens
        states = (torch.randn(BATCH, tokens, text.token_size), torch.ones(BATCH, tokens, dtype=torch.bool),
                  torch.randn(BATCH, text.hidden_size), torch.randn(BATCH, PATCHES, image_dim),
                  torch.randn(BATCH, image_dim))
        print(f"fusion width {width}, {heads} heads: {ms_per_item(model.fusion, *states):.1f} ms per item")
    image = model.config.image_encoder
    pixels = torch.randn(BATCH, 3, image.image_size, image.image_size)
    print(f"{image.arch}, {image.image_size} px: {ms_per_item(model.image_encoder, pixels, repeats=1):.1f} ms per item")

if __name__ == "__main__":
    main()

"""The open_clip image backbone path, exercised with a tiny ViT config registered by the test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from smar_sdk import ImageEncoderConfig, SMARModel

TINY_VIT = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny_clip_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import open_clip

    root = tmp_path_factory.mktemp("clip")
    (root / "smar-tiny-vit.json").write_text(json.dumps(TINY_VIT))
    open_clip.add_model_config(root / "smar-tiny-vit.json")
    torch.manual_seed(0)
    model = open_clip.create_model("smar-tiny-vit", pretrained=None)
    checkpoint = root / "tiny-vit.pt"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    return checkpoint


def test_open_clip_vit_gives_patch_tokens_and_loads_checkpoint(tiny_config, tiny_clip_checkpoint: Path) -> None:
    config = tiny_config.model_copy(update={"image_encoder": ImageEncoderConfig(
        kind="open_clip", arch="smar-tiny-vit", weights=str(tiny_clip_checkpoint), image_size=32)})
    model = SMARModel(config)
    states = model.image_encoder(torch.zeros(2, 3, 32, 32))
    assert states.tokens.shape == (2, 16, 16)  # (32/8)^2 patches, projected to embed_dim
    assert states.pooled.shape == (2, 16)
    import open_clip

    reference = open_clip.create_model("smar-tiny-vit", pretrained=str(tiny_clip_checkpoint))
    with torch.no_grad():
        pooled = reference.visual(torch.zeros(1, 3, 32, 32))
    torch.testing.assert_close(model.image_encoder(torch.zeros(1, 3, 32, 32)).pooled, pooled)
    vectors = model.encode_items([{"title": "red shirt", "image": Image.new("RGB", (20, 30), (200, 0, 0))}])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_image_block_fine_tuning_refuses_open_clip_clearly(tiny_config, tiny_clip_checkpoint: Path) -> None:
    from smar_sdk.errors import ModelError

    config = tiny_config.model_copy(update={"image_tuned_blocks": 1, "image_encoder": ImageEncoderConfig(
        kind="open_clip", arch="smar-tiny-vit", weights=str(tiny_clip_checkpoint), image_size=32)})
    with pytest.raises(ModelError, match=r"needs a CNN backbone.*open_clip 'smar-tiny-vit'; set it to 0"):
        SMARModel(config).image_tuned_prefixes()

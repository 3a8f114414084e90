"""Colour features: the histogram and patch colours are right, reach the states, and survive save/load."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from smar_sdk import SMARConfig, SMARModel
from smar_sdk.encoders.colour import (
    COLOUR_DIM,
    FOREGROUND_LEVELS,
    LEVELS,
    colour_dim,
    colour_histogram,
    foreground_colour,
    patch_colours,
)


def test_histogram_puts_a_flat_colour_in_its_bin() -> None:
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1.0
    half = red.clone()
    half[..., 4:] = 1.0  # right half white
    bins = colour_histogram(torch.cat([red, half]))
    red_bin, white_bin = (LEVELS - 1) * LEVELS**2, LEVELS**3 - 1
    assert bins[0, red_bin] == 1.0 and bins[0].count_nonzero() == 1
    assert torch.allclose(bins[1, [red_bin, white_bin]], torch.tensor([0.5**0.5, 0.5**0.5]))
    assert torch.allclose((bins**2).sum(dim=1), torch.ones(2))  # square-rooted fractions


def test_patch_colours_follow_the_grid() -> None:
    image = torch.zeros(1, 3, 8, 8)
    image[:, 2, :, 4:] = 1.0  # right half blue
    grid = patch_colours(image, 4)
    assert torch.equal(grid[0, :, 2], torch.tensor([0.0, 1.0, 0.0, 1.0]))  # row-major 2 x 2
    assert torch.allclose(patch_colours(image, 5)[0, :, 2], torch.full((5,), 0.5))  # not a grid: the mean


def test_encoder_states_carry_the_image_colour(tiny_config: SMARConfig, tmp_path: Path) -> None:
    plain = SMARModel(tiny_config)
    config = tiny_config.model_copy(update={"image_encoder": tiny_config.image_encoder.model_copy(
        update={"colour_features": True})})
    model = SMARModel(config)
    assert model.image_encoder.state_dim == plain.image_encoder.state_dim + COLOUR_DIM
    red, white = Image.new("RGB", (40, 40), (255, 0, 0)), Image.new("RGB", (40, 40), (255, 255, 255))
    states = model.image_encoder(torch.stack([model.image_encoder.preprocess(im) for im in (red, white)]))
    histogram = states.pooled[:, -LEVELS**3:]
    assert histogram[0, (LEVELS - 1) * LEVELS**2] > 0.99 and histogram[1, -1] > 0.99  # pixels un-normalised
    assert torch.allclose(states.pooled[0, -COLOUR_DIM:-LEVELS**3], torch.tensor([1.0, 0.0, 0.0]), atol=0.01)
    assert torch.allclose(states.tokens[:, :, -COLOUR_DIM:].mean(dim=1), states.pooled[:, -COLOUR_DIM:], atol=0.01)
    vectors = model.encode_item_inputs(["shirt", "shirt"], [red, white])
    assert abs(vectors[0] - vectors[1]).max() > 1e-3
    reloaded = SMARModel.load(model.save(tmp_path / "colour-model"))
    assert reloaded.config.image_encoder.colour_features
    assert reloaded.image_encoder.state_dim == model.image_encoder.state_dim


def test_saved_configs_without_the_key_keep_the_plain_backbone(tiny_model_dir: Path, tmp_path: Path) -> None:
    assert SMARConfig().image_encoder.colour_features  # new models read colour
    saved = json.loads((tiny_model_dir / "config.json").read_text())
    saved["image_encoder"].pop("colour_features")
    assert not SMARConfig.model_validate(saved).image_encoder.colour_features


def test_training_states_match_the_encoder_and_reuse_the_backbone_cache(tiny_config: SMARConfig, catalog: Path,
                                                                         tmp_path: Path) -> None:
    from smar_sdk import FieldMapping, Product, read_catalog
    from smar_sdk.features import FeatureCache, item_image_states
    from smar_sdk.images import ImageLoader

    products = [r for r in read_catalog(catalog, FieldMapping()) if isinstance(r, Product)][:6]
    config = tiny_config.model_copy(update={"image_encoder": tiny_config.image_encoder.model_copy(
        update={"colour_features": True})})
    model, plain_model = SMARModel(config), SMARModel(tiny_config)
    cache, loader = FeatureCache(tmp_path / "cache"), ImageLoader(catalog.parent)
    plain = item_image_states(plain_model, products, "image", loader, cache, progress=False)
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()) == ["image"]
    coloured = item_image_states(model, products, "image", loader, cache, progress=False)
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()) == ["colour", "image"]  # reused
    pixels = torch.stack([model.image_encoder.preprocess(loader.load(p.payload["image"])) for p in products])
    direct = model.image_encoder(pixels)
    assert torch.allclose(coloured.pooled, direct.pooled, atol=1e-4)
    assert torch.allclose(coloured.tokens.float(), direct.tokens, atol=1e-2)  # tokens are cached as float16
    assert torch.equal(coloured.pooled[:, : plain.pooled.shape[1]], plain.pooled)
    cold = item_image_states(model, products, "image", loader, FeatureCache(tmp_path / "cold"), progress=False)
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "cold").iterdir()) == ["colour", "image"]  # one pass
    assert torch.equal(cold.tokens, coloured.tokens) and torch.equal(cold.pooled, coloured.pooled)
    again = item_image_states(model, products, "image", loader, FeatureCache(tmp_path / "cold"), progress=False)
    assert torch.equal(again.tokens, coloured.tokens) and torch.equal(again.pooled, coloured.pooled)


def test_foreground_colour_reads_the_product_not_the_white_background() -> None:
    photo = torch.ones(1, 3, 20, 20)  # a white background...
    photo[:, :, 5:10, 5:10] = torch.tensor([0.0, 0.0, 0.5]).view(1, 3, 1, 1)  # ...with a small navy product
    white = torch.ones(1, 3, 20, 20)  # a white product: too few non-background pixels, so all of them count
    features = foreground_colour(torch.cat([photo, white]))
    navy_bin = 3 + int(0.5 * FOREGROUND_LEVELS)  # r = 0, g = 0, b = level 3
    assert torch.allclose(features[0, :3], torch.tensor([0.0, 0.0, 0.5]))  # the product's mean, not the image's
    assert features[0, navy_bin] == 1.0 and features[0, 3:].count_nonzero() == 1
    assert torch.allclose(features[1, :3], torch.ones(3)) and features[1, -1] == 1.0
    assert colour_histogram(photo)[0, -1] > 0.9  # the whole-image histogram is mostly background


def test_foreground_colour_widens_the_states_and_keeps_the_backbone_cache(tiny_config: SMARConfig,
                                                                        catalog: Path) -> None:
    from smar_sdk.catalog import FieldMapping, Product, read_catalog
    from smar_sdk.features import _image_cache_key
    from smar_sdk.images import ImageLoader

    def with_colour(**flags: bool) -> SMARModel:
        return SMARModel(tiny_config.model_copy(update={"image_encoder": tiny_config.image_encoder.model_copy(
            update={"colour_features": True, **flags})}))

    whole, fore = with_colour(), with_colour(foreground_colour=True)
    assert fore.image_encoder.state_dim == whole.image_encoder.state_dim + colour_dim(True) - COLOUR_DIM
    products = [r for r in read_catalog(catalog, FieldMapping()) if isinstance(r, Product)]
    loader = ImageLoader(base_dir=catalog.parent)
    keys = {kind: [_image_cache_key(kind, m, products, "image", loader) for m in (whole, fore)]
            for kind in ("image", "stem3", "colour")}
    assert keys["image"][0] == keys["image"][1] and keys["stem3"][0] == keys["stem3"][1]  # backbone states reused
    assert keys["colour"][0] != keys["colour"][1]
    pixels = torch.stack([fore.image_encoder.preprocess(Image.new("RGB", (40, 40), (200, 30, 30)))])
    assert fore.image_encoder(pixels).pooled.shape[1] == fore.image_encoder.state_dim

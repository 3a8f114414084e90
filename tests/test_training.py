"""Training: the loss falls, a planted positive ranks first, runs are deterministic, saved models reload."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from smar_sdk import CatalogError, FieldMapping, ImageError, SMARModel, TrainingInterrupted
from smar_sdk.config import DEFAULT_IMAGE_WEIGHTS, IMAGE_BACKBONES, ImageEncoderConfig, SMARConfig, image_backbone
from smar_sdk.errors import ModelError
from smar_sdk.indexer import SMARIndexer
from smar_sdk.training import TrainConfig, contrastive_loss, train
from smar_sdk.weight_average import WeightAverage

from .conftest import COLOURS, write_jpeg


def test_contrastive_loss_prefers_aligned_pairs() -> None:
    eye = torch.eye(4)
    positives = torch.eye(4, dtype=torch.bool)
    aligned = contrastive_loss(eye, eye, positives, torch.tensor(10.0))
    shuffled = contrastive_loss(eye, eye[[1, 2, 3, 0]], positives, torch.tensor(10.0))
    assert aligned < 0.01 < shuffled
    both = torch.ones(4, 4, dtype=torch.bool)  # everything positive -> nothing to learn
    assert contrastive_loss(eye, eye[[1, 2, 3, 0]], both, torch.tensor(10.0)) == pytest.approx(0.0, abs=1e-6)


def test_items_paired_with_a_query_anywhere_are_its_positives() -> None:
    from smar_sdk.training import batch_positives, pair_keys

    # the pairs file: q0-i0, q1-i1, q0-i2 (q0 names two items, as attribute-made queries do)
    keys = pair_keys(torch.tensor([0, 1, 0]), torch.tensor([0, 1, 2]), item_count=3)
    batch_queries, batch_items = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 1, 2, 1])
    expected = torch.tensor([[True, False, True, False],  # q0: i0 and i2, even from other rows
                             [False, True, False, True],
                             [True, False, True, False],
                             [False, True, False, True]])
    assert torch.equal(batch_positives(batch_queries, batch_items, keys, 3), expected)


def test_training_lowers_loss_and_ranks_planted_positive_first(tiny_config, catalog: Path, pairs: Path,
                                                               tmp_path: Path) -> None:
    config = TrainConfig(epochs=25, batch_size=16, learning_rate=5e-3, seed=1)
    model, report = train(catalog, pairs, tmp_path / "trained", tiny_config, config, cache_dir=None, progress=False)
    assert report.pairs == 90 and report.items == 30
    assert report.last_loss < 0.6 * report.first_loss
    reloaded = SMARModel.load(tmp_path / "trained")
    rows = [{"title": "red shoes", "image": "images/001.jpg"}, {"title": "blue shoes", "image": "images/006.jpg"},
            {"title": "green bag", "image": "images/014.jpg"}]
    items = reloaded.encode_items(rows, base_dir=catalog.parent)
    queries = reloaded.encode_queries(["red shoes", "blue shoes", "green bag"])
    assert (np.argmax(queries @ items.T, axis=1) == [0, 1, 2]).all()
    assert reloaded.config.training["report"]["pairs"] == 90


def test_training_is_deterministic(tiny_config, catalog: Path, pairs: Path) -> None:
    config = TrainConfig(epochs=2, batch_size=16, seed=3)
    first, _ = train(catalog, pairs, None, tiny_config, config, cache_dir=None, progress=False)
    second, _ = train(catalog, pairs, None, tiny_config, config, cache_dir=None, progress=False)
    np.testing.assert_allclose(first.encode_queries(["red shirt"]), second.encode_queries(["red shirt"]), atol=1e-6)


def test_train_stored_vector_trains_the_second_stage_vector(tiny_config, catalog: Path, pairs: Path) -> None:
    blended = tiny_config.model_copy(update={"text_blend": 0.75, "image_blend": 0.2})
    with pytest.raises(ValueError, match="no second-stage weight"):
        train(catalog, pairs, None, tiny_config, TrainConfig(epochs=1, train_stored_vector=True), cache_dir=None,
              progress=False)
    runs = [train(catalog, pairs, None, blended, TrainConfig(epochs=2, batch_size=16, seed=3, train_stored_vector=on),
                  cache_dir=None, progress=False)[0] for on in (False, True)]
    plain, stored = (model.encode_queries(["red shirt"]) for model in runs)
    assert not np.allclose(plain, stored, atol=1e-4)  # the fused loss's gradient now flows through the blend
    assert runs[1].config.training["train_stored_vector"] is True


def test_blank_images_zero_only_the_dropped_rows() -> None:
    from smar_sdk.encoders import ImageStates
    from smar_sdk.train_inputs import without_images

    image = ImageStates(torch.ones(3, 4, 5), torch.ones(3, 5))
    blanked = without_images(image, torch.tensor([False, True, False]))
    assert blanked.tokens[1].abs().sum() == 0 and blanked.pooled[1].abs().sum() == 0
    assert torch.equal(blanked.tokens[[0, 2]], image.tokens[[0, 2]]) and torch.equal(blanked.pooled[[0, 2]],
                                                                                     image.pooled[[0, 2]])


def test_fusion_image_dropout_blanks_that_fraction_of_fused_images(tiny_config, catalog: Path, pairs: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import smar_sdk.training as training

    dropped_fractions: list[float] = []
    blanked, fused_inputs = [], []
    blank, item_view = training.without_images, SMARModel.item_view

    def spy(image, dropped):
        dropped_fractions.append(dropped.float().mean().item())
        blanked.append(blank(image, dropped))
        return blanked[-1]

    def fused_spy(model, view, text, image):
        if view == "fused" and model.training:
            fused_inputs.append(image)
        return item_view(model, view, text, image)

    monkeypatch.setattr(training, "without_images", spy)
    monkeypatch.setattr(SMARModel, "item_view", fused_spy)
    runs = [train(catalog, pairs, None, tiny_config, TrainConfig(epochs=2, batch_size=16, seed=3,
                                                                 fusion_image_dropout=p),
                  cache_dir=None, progress=False)[0] for p in (0.0, 0.5)]
    assert len(dropped_fractions) == runs[1].config.training["report"]["steps"]  # every step of the p > 0 run
    assert 0.3 < np.mean(dropped_fractions) < 0.7
    assert all(any(x is y for y in fused_inputs) for x in blanked)  # the fused view reads the blanked images
    assert runs[1].config.training["fusion_image_dropout"] == 0.5
    plain, dropped = (model.encode_queries(["red shirt"]) for model in runs)
    assert not np.allclose(plain, dropped, atol=1e-4)
    text_only = [train(catalog, pairs, None, tiny_config, TrainConfig(epochs=2, batch_size=16, seed=3, image_weight=0,
                                                                      fused_weight=0, fusion_image_dropout=p),
                       cache_dir=None, progress=False)[0] for p in (0.0, 0.5)]
    np.testing.assert_array_equal(*(model.encode_queries(["red shirt"]) for model in text_only))  # no fused loss


def test_fusion_image_dropout_can_spare_titles_without_colour(tiny_config, catalog: Path, pairs: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import smar_sdk.training as training
    from smar_sdk.train_inputs import ItemTextInputs

    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    variant = catalog.parent / "no-colour.jsonl"
    variant.write_text("".join(json.dumps({**r, "title": r["article_type"]}) + "\n" for r in rows))
    steps: list[tuple[torch.Tensor, torch.Tensor]] = []
    text_states, blank = ItemTextInputs.states, training.without_images

    def text_spy(self, items, generator):
        text, named = text_states(self, items, generator)
        steps.append((named, None))
        return text, named

    def blank_spy(image, dropped):
        steps[-1] = (steps[-1][0], dropped)
        return blank(image, dropped)

    monkeypatch.setattr(ItemTextInputs, "states", text_spy)
    monkeypatch.setattr(training, "without_images", blank_spy)
    train(catalog, pairs, None, tiny_config, TrainConfig(epochs=2, batch_size=16, fusion_image_dropout=0.9,
                                                         fusion_image_dropout_colour_titles=True,
                                                         text_variant_catalogs=[str(variant)]),
          cache_dir=None, progress=False)
    named = torch.cat([n for n, _ in steps])
    dropped = torch.cat([d for _, d in steps])
    assert (~named).sum() > 0 and not dropped[~named].any()  # a title without colour keeps its image
    assert dropped[named].float().mean() > 0.7


def test_text_only_training_reads_no_image_and_trains_the_same_model(tiny_config, catalog: Path, pairs: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import smar_sdk.training as training
    from smar_sdk.train_inputs import ImageInputs

    text_only = TrainConfig(epochs=2, batch_size=16, seed=4, image_weight=0.0, fused_weight=0.0, mirror_images=True,
                            image_fields=["image", "thumb"], hard_negatives=4, negative_fields=["colour"])
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    catalog.write_text("".join(json.dumps({**r, "thumb": r["image"]}) + "\n" for r in rows))
    with monkeypatch.context() as patch:  # as before: every image encoded, though no loss reads it
        patch.setattr(training, "ImageInputs", lambda *args, **kwargs: ImageInputs(*args, **{**kwargs, "encode": True}))
        encoded, _ = train(catalog, pairs, None, tiny_config, text_only, cache_dir=None, progress=False)
    for image in (catalog.parent / "images").iterdir():
        image.unlink()
    unread, _ = train(catalog, pairs, None, tiny_config, text_only, cache_dir=None, progress=False)
    texts = [r["title"] for r in rows[:4]]
    np.testing.assert_array_equal(encoded.encode_queries(texts), unread.encode_queries(texts))
    np.testing.assert_array_equal(encoded.text_head.linear.weight.detach().numpy(),
                                  unread.text_head.linear.weight.detach().numpy())


@pytest.mark.parametrize(("weights", "view"), [((1.0, 0.0, 0.0), "text"), ((0.0, 1.0, 0.0), "image"),
                                               ((1.0, 1.0, 0.0), "text"), ((0.5, 0.5, 0.2), "fused")])
def test_a_model_indexes_the_view_its_training_taught(tiny_config, catalog: Path, pairs: Path, tmp_path: Path,
                                                      weights: tuple[float, float, float], view: str) -> None:
    text, image, fused = weights
    config = TrainConfig(epochs=1, batch_size=16, text_weight=text, image_weight=image, fused_weight=fused)
    model, _ = train(catalog, pairs, tmp_path / "m", tiny_config, config, cache_dir=None, progress=False)
    reloaded = SMARModel.load(tmp_path / "m")
    assert model.config.stored_view == reloaded.config.stored_view == view
    with SMARIndexer(reloaded, uri=str(tmp_path / "store")) as indexer:
        assert indexer.view == view
    with SMARIndexer(reloaded, uri=str(tmp_path / "store2"), view="fused") as indexer:
        assert indexer.view == "fused"  # an explicit view still wins


def test_a_trained_models_config_starts_a_new_run_from_pretrained_weights(tiny_config, catalog: Path, pairs: Path,
                                                                            tmp_path: Path) -> None:
    saved = {"trained_backbone_prefixes": ["image_encoder."], "training": {"epochs": 9}}
    shipped_like = SMARConfig(image_encoder=ImageEncoderConfig(weights=None), **saved).training_base()
    assert shipped_like.image_encoder.weights == DEFAULT_IMAGE_WEIGHTS
    assert shipped_like.trained_backbone_prefixes == [] and shipped_like.training == {}
    lite = SMARConfig(image_encoder=image_backbone("efficientnet-lite0", weights=None), **saved).training_base()
    assert lite.image_encoder.weights == IMAGE_BACKBONES["efficientnet-lite0"]["weights"]
    train(catalog, pairs, tmp_path / "first", tiny_config, TrainConfig(epochs=1, batch_size=16), cache_dir=None,
          progress=False)
    trained = SMARConfig.model_validate_json((tmp_path / "first" / "config.json").read_text())
    assert trained.image_encoder.weights is None  # the tiny backbone (width 0.25) has no pretrained file to restore
    with pytest.raises(ModelError, match="no weights for its torchvision image backbone 'mobilenet_v2'.*--image-we"):
        train(catalog, pairs, None, trained, TrainConfig(epochs=1, batch_size=16), cache_dir=None, progress=False)
    again = trained.model_copy(update={"image_encoder": tiny_config.image_encoder})
    model, _ = train(catalog, pairs, None, again, TrainConfig(epochs=1, batch_size=16), cache_dir=None, progress=False)
    assert model.config.training["epochs"] == 1


def test_feature_cache_is_reused(tiny_config, catalog: Path, pairs: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=16)
    train(catalog, pairs, None, tiny_config, config, cache_dir=tmp_path / "cache", progress=False)
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir())
    assert cached == ["image", "itemtext", "query"]
    a, _ = train(catalog, pairs, None, tiny_config, config, cache_dir=tmp_path / "cache", progress=False)
    b, _ = train(catalog, pairs, None, tiny_config, config, cache_dir=None, progress=False)
    np.testing.assert_allclose(a.encode_queries(["red shirt"]), b.encode_queries(["red shirt"]), atol=1e-5)
    assert len(list((tmp_path / "cache").iterdir())) == 3  # the second run read everything from the cache
    replace_first_photo(catalog)  # same name, another picture: its features are computed again
    train(catalog, pairs, None, tiny_config, config, cache_dir=tmp_path / "cache", progress=False)
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir())
    assert cached == ["image", "image", "itemtext", "query"]


def perturb_weights(path: Path) -> None:
    """Overwrite a safetensors file in place with slightly different weights (an encoder fine-tuned or upgraded
    under the same name)."""
    state = load_file(str(path))
    save_file({k: v * 1.1 if v.is_floating_point() else v for k, v in state.items()}, str(path))


def test_feature_cache_and_checkpoint_follow_the_encoders_weights_not_their_names(
        tiny_config, catalog: Path, pairs: Path, tmp_path: Path) -> None:
    text_dir = shutil.copytree(tiny_config.text_encoder.name_or_path, tmp_path / "text-encoder")
    image_file = Path(shutil.copy(tiny_config.image_encoder.weights, tmp_path / "cnn.safetensors"))
    config = tiny_config.model_copy(update={
        "text_encoder": tiny_config.text_encoder.model_copy(update={"name_or_path": str(text_dir)}),
        "image_encoder": tiny_config.image_encoder.model_copy(update={"weights": str(image_file)})})
    settings = TrainConfig(epochs=2, batch_size=16)
    with pytest.raises(KeyboardInterrupt):
        train(catalog, pairs, tmp_path / "model", config, settings, cache_dir=tmp_path / "cache", progress=False,
              on_epoch=crash_after_first_epoch)
    perturb_weights(text_dir / "model.safetensors")
    perturb_weights(image_file)
    seen: list[int] = []
    cached, _ = train(catalog, pairs, tmp_path / "model", config, settings, cache_dir=tmp_path / "cache",
                      progress=False, on_epoch=lambda epoch, loss: seen.append(epoch))
    assert seen == [1, 2]  # the checkpoint was made with the old weights: not resumed
    fresh, _ = train(catalog, pairs, None, config, settings, cache_dir=None, progress=False)
    np.testing.assert_allclose(cached.encode_queries(["red shirt"]), fresh.encode_queries(["red shirt"]), atol=1e-5)
    rows = [json.loads(line) for line in catalog.read_text().splitlines()[:4]]
    np.testing.assert_allclose(cached.encode_items(rows, base_dir=catalog.parent),
                               fresh.encode_items(rows, base_dir=catalog.parent), atol=1e-5)
    kinds = sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir())
    assert kinds == ["image", "image", "itemtext", "itemtext", "query", "query"]


def test_a_missing_text_variant_catalog_is_named(tiny_config, catalog: Path, pairs: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=16, text_variant_catalogs=[str(tmp_path / "nosuch.jsonl")])
    with pytest.raises(CatalogError, match="text-variant catalog .*nosuch.jsonl is not a file: check the path"):
        train(catalog, pairs, None, tiny_config, config, cache_dir=None, progress=False)


def test_a_kill_between_the_checkpoint_renames_loses_no_epoch(tiny_config, catalog: Path, pairs: Path,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rename, saves = Path.rename, []

    class Killed(BaseException):
        """A kill -9: no handler of the trainer runs."""

    def killed_in_the_second_swap(self: Path, target: Path) -> Path:
        if self.name == ".checkpoint.tmp":
            saves.append(self)
            if len(saves) == 2:  # the old checkpoint is already moved aside
                raise Killed
        return rename(self, target)

    config = TrainConfig(epochs=3, batch_size=16)
    monkeypatch.setattr(Path, "rename", killed_in_the_second_swap)
    with pytest.raises(Killed):
        train(catalog, pairs, tmp_path / "model", tiny_config, config, cache_dir=None, progress=False)
    monkeypatch.setattr(Path, "rename", rename)
    assert not (tmp_path / "model" / ".checkpoint").exists() and (tmp_path / "model" / ".checkpoint.old").is_dir()
    seen: list[int] = []
    train(catalog, pairs, tmp_path / "model", tiny_config, config, cache_dir=None, progress=False,
          on_epoch=lambda epoch, loss: seen.append(epoch))
    assert seen == [3]  # resumed after epoch 2, whose checkpoint was written whole
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "model.safetensors"]


def test_a_mapping_that_names_no_text_fields_keeps_the_models(tiny_config, catalog: Path, pairs: Path) -> None:
    config = tiny_config.model_copy(update={"text_fields": ["gender", "title"]})
    settings = TrainConfig(epochs=1, batch_size=16)
    model, _ = train(catalog, pairs, None, config, settings, mapping=FieldMapping(image_field="image"),
                     cache_dir=None, progress=False)
    assert model.config.text_fields == ["gender", "title"]
    model, _ = train(catalog, pairs, None, config, settings, mapping=FieldMapping(text_fields=["title"]),
                     cache_dir=None, progress=False)
    assert model.config.text_fields == ["title"]  # named on the mapping: the mapping's


def test_pairs_without_known_items_fail_clearly(tiny_config, catalog: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad-pairs.jsonl"
    bad.write_text('{"query": "red", "item_id": "nope"}\nnot json\n')
    with pytest.raises(CatalogError, match="no usable"):
        train(catalog, bad, None, tiny_config, TrainConfig(epochs=1), cache_dir=None, progress=False)
    bad.write_text('{"query": "red shirt", "item_id": "sku-000"}\n{"query": "shirts", "item_id": "sku-000"}\n')
    with pytest.raises(CatalogError, match="every usable pair names the same item .'sku-000'.*needs two or more"):
        train(catalog, bad, None, tiny_config, TrainConfig(epochs=1), cache_dir=None, progress=False)


def test_a_repeated_catalog_id_trains_its_last_row_once(tiny_config, catalog: Path, pairs: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    rows = catalog.read_text().splitlines()
    catalog.write_text(rows[3].replace('"title": "', '"title": "old ') + "\n" + "\n".join(rows) + "\n")
    _, report = train(catalog, pairs, None, tiny_config, TrainConfig(epochs=1), cache_dir=None, progress=False)
    assert report.items == 30 and "1 earlier row(s) of repeated ids dropped; training keeps" in caplog.text
    plain = catalog.parent / "plain.jsonl"
    plain.write_text("\n".join(rows) + "\n")
    _, again = train(plain, pairs, None, tiny_config, TrainConfig(epochs=1), cache_dir=None, progress=False)
    assert (again.first_loss, again.last_loss) == (report.first_loss, report.last_loss)  # same products, same order


def test_a_run_needs_a_loss_to_train() -> None:
    with pytest.raises(ValueError, match="are all 0, so there is no loss to train"):
        TrainConfig(text_weight=0, image_weight=0, fused_weight=0)


def test_training_synonyms_are_written_bare() -> None:
    with pytest.raises(ValueError, match="""synonyms: the phrase '"tee"' is quoted or bracketed"""):
        TrainConfig(query_variants=2, synonyms=[["t-shirt", '"tee"']])
    assert TrainConfig(query_variants=2, synonyms=[['tv 55"', "television"]]).synonyms  # one mark is part of it


def test_pairs_whose_query_or_id_is_not_text_are_skipped(tmp_path: Path) -> None:
    from smar_sdk.training import read_pairs

    path = tmp_path / "pairs.jsonl"
    rows = [{"query": None, "item_id": "s1"}, {"query": ["red", "dress"], "item_id": "s1"}, {"query": {"a": 1},
            "item_id": "s1"}, {"query": "red", "item_id": True}, {"query": " red dress ", "item_id": 7},
            {"query": "blue", "item_id": "s1"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_pairs(path, {"s1", "7"}) == ([("red dress", "7"), ("blue", "s1")], 4)


def test_training_reads_images_from_the_mapped_field(tiny_config, catalog: Path, pairs: Path) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    catalog.write_text("".join(json.dumps({**{k: v for k, v in r.items() if k != "image"}, "pic": r["image"]}) + "\n"
                               for r in rows))
    mapping = FieldMapping(text_fields=["title"], image_field="pic")
    _, report = train(catalog, pairs, None, tiny_config, TrainConfig(epochs=1, batch_size=16), mapping,
                      cache_dir=None, progress=False)
    assert report.steps == 5
    two_fields = TrainConfig(epochs=1, image_fields=["pic", "thumb"])
    with pytest.raises(CatalogError, match="none of its 30 rows has the field 'thumb' \\(--image-field-extra"):
        train(catalog, pairs, None, tiny_config, two_fields, mapping, cache_dir=None, progress=False)
    catalog.write_text("".join(json.dumps({**r, "pic": r["image"], **({"thumb": r["image"]} if i else {})}) + "\n"
                               for i, r in enumerate(rows)))  # every row but the first has one
    with pytest.raises(ImageError, match="1 training image.*catalog line 1 \\(id .*\\), field 'thumb': missing"):
        train(catalog, pairs, None, tiny_config, two_fields, mapping, cache_dir=None, progress=False)


def test_every_missing_or_undecodable_training_image_is_named_before_the_image_pass(
        tiny_config, catalog: Path, pairs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    for row in (rows[3], rows[17]):
        (catalog.parent / row["image"]).unlink()
    truncated = catalog.parent / rows[28]["image"]  # late in the catalog: the pass would reach it last
    truncated.write_bytes(truncated.read_bytes()[:300])  # a copy cut short: the header reads, the pixels do not
    (catalog.parent / rows[29]["image"]).write_bytes(b"not a picture")
    monkeypatch.setattr("smar_sdk.training.ImageInputs", lambda *a, **k: pytest.fail("the image pass started"))
    with pytest.raises(ImageError, match=r"4 training image\(s\) cannot be read: catalog line 4 .*image file .*"
                                         r"not found.*; catalog line 18 .*; catalog line 29 .*cannot be decoded: .*"
                                         r"Truncated.*; catalog line 30 .*not an image format .*Fix or remove those "
                                         r"rows"):
        train(catalog, pairs, None, tiny_config, TrainConfig(epochs=1, batch_size=16), cache_dir=None, progress=False)


def test_text_variants_and_image_fields_are_sampled(tiny_config, catalog: Path, pairs: Path, tmp_path: Path) -> None:
    from smar_sdk.features import ItemTextStates
    from smar_sdk.train_inputs import mix, mixed_text

    mask = torch.ones(4, 3, dtype=torch.bool)
    plain = ItemTextStates(torch.zeros(4, 3, 2, dtype=torch.float16), mask, torch.zeros(4, 2))
    other = ItemTextStates(torch.ones(4, 3, 2, dtype=torch.float16), mask, torch.ones(4, 2))
    named = [torch.zeros(4, dtype=torch.bool), torch.ones(4, dtype=torch.bool)]
    items, generator = torch.arange(4).repeat(50), torch.Generator().manual_seed(0)
    mixed, colour_named = mixed_text([plain, other], named, items, generator)
    picked = mixed.pooled[:, 0]
    assert 0.3 < picked.mean() < 0.7 and torch.equal(mixed.tokens[:, 0, 0], picked)  # per pair, consistently
    assert torch.equal(colour_named, picked.bool())  # the colour flag of the text each pair got
    tokens, pooled = mix([(torch.zeros(4, 5, 2, dtype=torch.float16), torch.zeros(4, 2))], torch.arange(4),
                         torch.Generator())
    assert tokens.shape == (4, 5, 2) and tokens.dtype == torch.float32
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    variant = catalog.parent / "no-colour.jsonl"
    variant.write_text("".join(json.dumps({**r, "title": r["article_type"]}) + "\n" for r in rows))
    config = TrainConfig(epochs=2, batch_size=16, text_variant_catalogs=[str(variant)])
    _, report = train(catalog, pairs, None, tiny_config, config, cache_dir=tmp_path / "cache", progress=False)
    assert report.steps == 10
    assert len([p for p in (tmp_path / "cache").iterdir() if p.name.startswith("itemtext")]) == 2


def crash_after_epoch(last: int) -> Callable[[int, float], None]:
    """An ``on_epoch`` callback that stops training like Ctrl-C once epoch ``last`` is checkpointed."""
    def crash(epoch: int, loss: float) -> None:
        if epoch == last:
            raise KeyboardInterrupt
    return crash


crash_after_first_epoch = crash_after_epoch(1)


@pytest.mark.parametrize("tuned_text", [False, True], ids=["frozen-text", "tuned-text"])
def test_interrupted_training_resumes_to_the_same_model(tiny_config, catalog: Path, pairs: Path, tmp_path: Path,
                                                        tuned_text: bool) -> None:
    config = TrainConfig(epochs=3, batch_size=16, seed=5)
    if tuned_text:  # tuned title layers are checkpointed with the heads
        tiny_config = tiny_config.model_copy(update={"query_tuned_layers": 1, "item_text_tuned_layers": 1})
    straight, _ = train(catalog, pairs, tmp_path / "straight", tiny_config, config, cache_dir=None, progress=False)
    assert not (tmp_path / "straight" / ".checkpoint").exists()  # cleared once the model is saved

    with pytest.raises(KeyboardInterrupt):
        train(catalog, pairs, tmp_path / "resumed", tiny_config, config, cache_dir=None, progress=False,
              on_epoch=crash_after_first_epoch)
    assert (tmp_path / "resumed" / ".checkpoint" / "state.pt").is_file()
    seen: list[int] = []
    resumed, report = train(catalog, pairs, tmp_path / "resumed", tiny_config, config, cache_dir=None,
                            progress=False, on_epoch=lambda epoch, loss: seen.append(epoch))
    assert seen == [2, 3] and report.steps == 15  # epoch 1 was not redone
    queries = ["red shirt", "blue bag"]
    np.testing.assert_allclose(resumed.encode_queries(queries), straight.encode_queries(queries), atol=1e-5)
    rows = [json.loads(line) for line in catalog.read_text().splitlines()[:4]]
    np.testing.assert_allclose(resumed.encode_items(rows, base_dir=catalog.parent, view="text"),
                               straight.encode_items(rows, base_dir=catalog.parent, view="text"), atol=1e-5)
    straight_state, resumed_state = straight.state_dict(), resumed.state_dict()  # fusion, image head, blends too
    assert straight_state.keys() == resumed_state.keys()
    for name, tensor in straight_state.items():
        torch.testing.assert_close(resumed_state[name], tensor, atol=1e-5, rtol=0, msg=name)


def test_weight_average_is_the_mean_of_the_counted_steps() -> None:
    weight = torch.nn.Parameter(torch.zeros(3))
    average = WeightAverage([weight])
    average.apply()  # nothing counted: the weights stay
    assert torch.equal(weight.data, torch.zeros(3))
    for value in (1.0, 2.0, 6.0):
        weight.data.fill_(value)
        average.add()
    resumed = WeightAverage([weight])
    resumed.load(average.state())
    resumed.apply()
    assert torch.allclose(weight.data, torch.full((3,), 3.0))
    with pytest.raises(ValueError, match="averages 1 weights, this run 2"):
        WeightAverage([weight, torch.nn.Parameter(torch.zeros(1))]).load(average.state())


def test_averaged_weights_are_saved_and_resume_to_the_same_model(tiny_config, catalog: Path, pairs: Path,
                                                                  tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="average_last_epochs .4. is more than the 3 epochs"):
        TrainConfig(epochs=3, average_last_epochs=4)
    config = TrainConfig(epochs=3, batch_size=16, seed=5, average_last_epochs=2)
    last, _ = train(catalog, pairs, None, tiny_config, config.model_copy(update={"average_last_epochs": 0}),
                    cache_dir=None, progress=False)
    straight, _ = train(catalog, pairs, None, tiny_config, config, cache_dir=None, progress=False)
    with pytest.raises(KeyboardInterrupt):  # the running sums of epoch 2 go into the checkpoint of epoch 2
        train(catalog, pairs, tmp_path / "m", tiny_config, config, cache_dir=None, progress=False,
              on_epoch=crash_after_epoch(2))
    resumed, _ = train(catalog, pairs, tmp_path / "m", tiny_config, config, cache_dir=None, progress=False)
    assert resumed.config.training["average_last_epochs"] == 2
    queries = ["red shirt", "blue bag"]
    np.testing.assert_allclose(resumed.encode_queries(queries), straight.encode_queries(queries), atol=1e-5)
    for name, tensor in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, atol=1e-5, rtol=0, msg=name)
    assert not np.allclose(straight.encode_queries(queries), last.encode_queries(queries), atol=1e-4)


def replace_first_photo(catalog: Path) -> None:
    """Overwrite the first product's image file with another picture under the same name."""
    first = json.loads(catalog.read_text().splitlines()[0])
    photo = catalog.parent / first["image"]
    write_jpeg(photo, COLOURS["yellow" if first["colour"] != "yellow" else "red"])
    later = photo.stat().st_mtime + 2
    os.utime(photo, (later, later))  # a new modification time even on coarse-clock file systems


@pytest.mark.parametrize("edit", ["catalog row", "photo"])
def test_checkpoint_of_edited_data_is_not_resumed(tiny_config, catalog: Path, pairs: Path, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture, edit: str) -> None:
    config = TrainConfig(epochs=2, batch_size=16, seed=5)

    with pytest.raises(KeyboardInterrupt):
        train(catalog, pairs, tmp_path / "m", tiny_config, config, cache_dir=None, progress=False,
              on_epoch=crash_after_first_epoch)
    if edit == "photo":
        replace_first_photo(catalog)
    else:
        catalog.write_text(catalog.read_text().replace("shirt", "blouse", 1))  # same rows and counts, edited in place
    seen: list[int] = []
    train(catalog, pairs, tmp_path / "m", tiny_config, config, cache_dir=None, progress=False,
          on_epoch=lambda epoch, loss: seen.append(epoch))
    assert seen == [1, 2] and "checkpoint" in caplog.text and "from another run" in caplog.text


def test_an_interrupt_says_how_many_epochs_of_this_very_run_a_rerun_resumes_after(
        tiny_config, catalog: Path, pairs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = TrainConfig(epochs=2, batch_size=16, seed=5)
    with pytest.raises(TrainingInterrupted) as first:
        train(catalog, pairs, tmp_path / "m", tiny_config, config, cache_dir=None, progress=False,
              on_epoch=crash_after_first_epoch)
    assert first.value.epochs_saved == 1 and first.value.checkpoint == tmp_path / "m" / ".checkpoint"

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("smar_sdk.training.QueryInputs", interrupted)  # Ctrl-C in the first feature pass
    for run_config, saved in [(config.model_copy(update={"seed": 6}), 0),  # another run: the checkpoint is not its
                              (config, 1)]:  # the same run: a re-run resumes after epoch 1
        with pytest.raises(TrainingInterrupted) as again:
            train(catalog, pairs, tmp_path / "m", tiny_config, run_config, cache_dir=None, progress=False)
        assert again.value.epochs_saved == saved
    monkeypatch.setattr("smar_sdk.training.read_catalog", interrupted)  # before the run is known
    with pytest.raises(TrainingInterrupted) as early:
        train(catalog, pairs, tmp_path / "m", tiny_config, config, cache_dir=None, progress=False)
    assert early.value.epochs_saved is None and early.value.checkpoint is None


def test_query_tower_fine_tunes_its_own_top_layers(tiny_config, catalog: Path, pairs: Path, tmp_path: Path) -> None:
    config = tiny_config.model_copy(update={"query_tuned_layers": 1})
    base = SMARModel(config)
    model, report = train(catalog, pairs, tmp_path / "tuned", config,
                          TrainConfig(epochs=25, batch_size=16, learning_rate=5e-3, encoder_learning_rate=1e-3,
                                      seed=1), cache_dir=None, progress=False)
    assert report.last_loss < 0.6 * report.first_loss
    tuned = model.query_tuned_prefixes()
    assert len(tuned) == 1 and tuned[0].endswith(".1.")  # the top one of the tiny encoder's 2 layers
    after, before = model.state_dict(), base.state_dict()
    changed = {k for k in after if k.startswith("query_encoder.") and not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith(tuned[0]) for k in changed)  # only the top layer moved
    assert all(torch.equal(after[k], before[k]) for k in after if k.startswith("text_encoder."))  # items: frozen
    reloaded = SMARModel.load(tmp_path / "tuned")
    queries = ["red shoes", "blue bag", "a green dress for women"]
    np.testing.assert_allclose(reloaded.encode_queries(queries), model.encode_queries(queries), atol=1e-6)
    assert not np.allclose(SMARModel.load(tmp_path / "tuned").encode_queries(queries),
                           base.encode_queries(queries), atol=1e-2)


def test_item_text_tower_fine_tunes_its_top_layers(tiny_config, catalog: Path, pairs: Path, tmp_path: Path) -> None:
    from smar_sdk.catalog import read_catalog
    from smar_sdk.features import FeatureCache, item_text_states

    config = tiny_config.model_copy(update={"query_tuned_layers": 1, "item_text_tuned_layers": 1})
    base = SMARModel(config)
    model, report = train(catalog, pairs, tmp_path / "tuned", config,
                          TrainConfig(epochs=25, batch_size=16, learning_rate=5e-3, encoder_learning_rate=1e-3,
                                      seed=1, hard_negatives=4, negative_fields=["colour"]),
                          cache_dir=tmp_path / "cache", progress=False)
    assert report.last_loss < 0.6 * report.first_loss
    tuned = model.item_text_tuned_prefixes()
    assert len(tuned) == 1 and tuned[0].startswith("text_encoder.") and tuned[0].endswith(".1.")
    after, before = model.state_dict(), base.state_dict()
    changed = {k for k in after if k.startswith("text_encoder.") and not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith(tuned[0]) for k in changed)  # only the items' top layer moved
    kinds = {p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()}
    assert "itemtextstem1" in kinds and "itemtext" not in kinds  # states below the tuned layer cached, not the rest
    # the saved model indexes like the trained one, and unlike the untrained encoder
    reloaded = SMARModel.load(tmp_path / "tuned")
    rows = [json.loads(line) for line in catalog.read_text().splitlines()[:6]]
    items = reloaded.encode_items(rows, base_dir=catalog.parent, view="text")
    np.testing.assert_allclose(items, model.encode_items(rows, base_dir=catalog.parent, view="text"), atol=1e-5)
    texts = [r["title"] for r in rows]
    with torch.no_grad():
        assert not torch.allclose(reloaded.text_encoder.encode(texts).pooled, base.text_encoder.encode(texts).pooled,
                                  atol=1e-3)
    # cached item states are keyed by the tuned weights: the trained model never reads the untrained one's
    products = list(read_catalog(catalog))[:6]
    cache = FeatureCache(tmp_path / "cache")
    untrained = item_text_states(base, texts, cache, progress=False)
    trained = item_text_states(reloaded, texts, cache, progress=False)
    with torch.no_grad():
        direct = reloaded.text_encoder.encode([p.text for p in products])
    torch.testing.assert_close(trained.pooled, direct.pooled.float(), atol=1e-5, rtol=0)
    assert not torch.allclose(trained.pooled, untrained.pooled, atol=1e-3)


def test_tuned_item_texts_are_sampled_like_cached_ones(tiny_config) -> None:
    from smar_sdk.features import FeatureCache
    from smar_sdk.train_inputs import ItemTextInputs

    variants = [["red shirt", "blue bag", "green shoes", "black watch"], ["shirt", "bag", "shoes", "watch"]]
    tuned = SMARModel(tiny_config.model_copy(update={"query_tuned_layers": 1, "item_text_tuned_layers": 1}))
    inputs = {name: ItemTextInputs(model, variants, FeatureCache(None), False)
              for name, model in (("cached", SMARModel(tiny_config)), ("tuned", tuned))}
    assert inputs["cached"].cached is not None and inputs["tuned"].cached is None
    items = torch.arange(4).repeat(10)
    drawn = {}
    for name, texts in inputs.items():
        generator = torch.Generator().manual_seed(5)
        _, named = texts.states(items, generator)
        drawn[name] = (named, torch.rand(3, generator=generator))  # what the run draws next
    assert torch.equal(drawn["cached"][0], drawn["tuned"][0])  # the same variant for every pair
    assert torch.equal(drawn["cached"][1], drawn["tuned"][1])  # and the same random stream afterwards
    assert 0 < drawn["tuned"][0].float().mean() < 1  # both variants were drawn
    states, named = inputs["tuned"].states(items[:4], None)  # no generator: the plain texts
    assert named.all() and states.pooled.requires_grad  # gradients reach the tuned layer


def test_tuned_item_texts_run_their_top_layers_over_cached_stems(tiny_config, tmp_path: Path) -> None:
    from smar_sdk.features import FeatureCache
    from smar_sdk.train_inputs import ItemTextInputs

    model = SMARModel(tiny_config.model_copy(update={"query_tuned_layers": 1, "item_text_tuned_layers": 1}))
    titles = ["red shirt", "a long blue cotton bag with two straps and a zip", "shoes", "black analogue watch"]
    variants = [titles, [t.replace("red ", "").replace("blue ", "") for t in titles]]
    inputs = ItemTextInputs(model, variants, FeatureCache(tmp_path), False)
    inputs.chunk = 3  # several chunks of different lengths, put back in order
    pick, items = torch.tensor([1, 0, 0, 1, 1, 0, 0]), torch.tensor([1, 3, 0, 2, 0, 1, 1])
    with torch.no_grad():
        got = inputs._tuned(pick, items)
        direct = model.text_encoder.encode([variants[v][i] for v, i in zip(pick.tolist(), items.tolist(), strict=True)])
    torch.testing.assert_close(got.pooled, direct.pooled, atol=2e-3, rtol=0)  # float16 stems
    assert torch.equal(got.mask, direct.mask)
    torch.testing.assert_close(got.tokens[got.mask], direct.tokens[direct.mask], atol=2e-3, rtol=0)
    again = ItemTextInputs(model, variants, FeatureCache(tmp_path), False)  # read back from the cache
    assert torch.equal(again.stems, inputs.stems) and len(list(tmp_path.iterdir())) == 2


def test_fusion_image_dropout_colour_titles_needs_a_dropout_fraction() -> None:
    with pytest.raises(ValueError, match="give that fraction too"):
        TrainConfig(fusion_image_dropout_colour_titles=True)


def test_item_text_tuning_needs_the_query_towers_own_encoder(tiny_config) -> None:
    with pytest.raises(ModelError, match="set query_tuned_layers"):
        SMARModel(tiny_config.model_copy(update={"item_text_tuned_layers": 1}))
    with pytest.raises(ModelError, match="item_text_tuned_layers .* is 9, but text encoder .* has 2 layers"):
        SMARModel(tiny_config.model_copy(update={"query_tuned_layers": 1,
                                                  "item_text_tuned_layers": 9})).item_text_tuned_prefixes()


def test_image_tower_fine_tunes_its_top_blocks_over_cached_feature_maps(tiny_config, catalog: Path, pairs: Path,
                                                                        tmp_path: Path) -> None:
    config = tiny_config.model_copy(update={"image_tuned_blocks": 2})
    base = SMARModel(config)
    model, report = train(catalog, pairs, tmp_path / "tuned", config,
                          TrainConfig(epochs=25, batch_size=16, learning_rate=5e-3, encoder_learning_rate=1e-3,
                                      seed=1), cache_dir=tmp_path / "cache", progress=False)
    assert report.last_loss < 0.6 * report.first_loss
    tuned = model.image_tuned_prefixes()
    assert tuned == ["image_encoder.backbone.trunk.17.", "image_encoder.backbone.trunk.18."]  # MobileNetV2's last 2
    after, before = model.state_dict(), base.state_dict()
    changed = {k for k in after if k.startswith("image_encoder.") and not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith(tuple(tuned)) for k in changed)  # only the top blocks moved
    assert {k for k in changed if "running_" in k} == set()  # batch-norm statistics stay frozen
    assert any(p.name.startswith("stem2-image") for p in (tmp_path / "cache").iterdir())
    # the saved model scores like the trained one: tuned blocks in float32, the frozen trunk rounded to float16
    loaded = SMARModel.load(tmp_path / "tuned")
    rows = [json.loads(line) for line in catalog.read_text().splitlines()[:6]]
    np.testing.assert_allclose(loaded.encode_items(rows, base_dir=catalog.parent),
                               model.encode_items(rows, base_dir=catalog.parent), atol=2e-2)
    # item states from the cache run the tuned blocks too: they match encoding the images from scratch
    from smar_sdk.catalog import read_catalog
    from smar_sdk.features import FeatureCache, item_image_states
    from smar_sdk.images import ImageLoader

    products = list(read_catalog(catalog))[:6]
    states = item_image_states(model, products, "image", ImageLoader(catalog.parent), FeatureCache(tmp_path / "cache"),
                               progress=False)
    pixels = torch.stack([model.image_encoder.preprocess(ImageLoader(catalog.parent).load(p.payload["image"]))
                          for p in products])
    with torch.no_grad():
        direct = model.image_encoder(pixels)
    torch.testing.assert_close(states.pooled, direct.pooled, atol=2e-2, rtol=0)


def test_image_tuned_blocks_out_of_range_fail_clearly(tiny_config) -> None:
    with pytest.raises(ModelError, match="image_tuned_blocks .* is 40, but the image trunk has 19 blocks"):
        SMARModel(tiny_config.model_copy(update={"image_tuned_blocks": 40})).image_tuned_prefixes()


def test_holdout_leaves_a_stable_fraction_of_products_out(tiny_config, catalog: Path, pairs: Path) -> None:
    from smar_sdk.training import held_out

    ids = [json.loads(line)["id"] for line in catalog.read_text().splitlines()]
    kept = [i for i in ids if not held_out(i, 0.3)]
    assert 0 < len(kept) < len(ids) and kept == [i for i in ids if not held_out(i, 0.3)]  # the same every time
    assert not any(held_out(i, 0.0) for i in ids) and set(kept) >= {i for i in ids if not held_out(i, 0.5)}
    _, full = train(catalog, pairs, None, tiny_config, TrainConfig(epochs=1, batch_size=16), cache_dir=None,
                    progress=False)
    _, report = train(catalog, pairs, None, tiny_config, TrainConfig(epochs=1, batch_size=16, holdout=0.3),
                      cache_dir=None, progress=False)
    assert report.items == len(kept) and report.pairs < full.pairs  # pairs of held-out products are skipped
    assert report.skipped_pairs == full.skipped_pairs + full.pairs - report.pairs


def _products(rows: list[dict]):
    from smar_sdk.catalog import Product

    return [Product(line=i + 1, id=str(i), text="t", image="i.jpg", payload=row) for i, row in enumerate(rows)]


def test_items_with_a_querys_field_values_are_its_positives() -> None:
    from smar_sdk.training import relevance_codes, relevance_positives

    products = _products([{"gender": "Men", "colour": "Red"}, {"gender": "Women", "colour": "Red"},
                          {"gender": "Men", "colour": "Blue"}, {"gender": "Men", "colour": "Red"}])
    # q0 is paired with items 0 and 1 (both red, genders differ: it names the colour only); q1 with item 2
    items, queries = relevance_codes(products, torch.tensor([0, 0, 1]), torch.tensor([0, 1, 2]), 2,
                                     ["gender", "colour"])
    assert queries[0, 0] == -1 and queries[0, 1] == items[0, 1] and torch.equal(queries[1], items[2])
    expected = torch.tensor([[True, True, False, True],     # every red item, item 3 never paired with q0
                             [False, False, True, False]])  # only the blue men's item
    assert torch.equal(relevance_positives(queries, items), expected)


def test_items_without_a_value_are_never_known_wrong() -> None:
    """A product with no colour (missing, null or empty) may be the right answer: hard-negative mining must not pick
    it, and a query paired with one is not known to name a colour."""
    from smar_sdk.labels import UNLABELLED, known_wrong, relevance_codes

    products = _products([{"colour": "Red"}, {"colour": "Blue"}, {}, {"colour": None}, {"colour": ""}])
    items, queries = relevance_codes(products, torch.tensor([0, 1, 1]), torch.tensor([0, 1, 2]), 2, ["colour"])
    assert items[2:].flatten().tolist() == [UNLABELLED] * 3
    assert queries.flatten().tolist() == [items[0, 0], -1]  # q1: blue and an unknown colour
    assert known_wrong(queries, items).tolist() == [[False, True, False, False, False], [False] * 5]


def test_relevance_field_missing_from_the_catalog_fails_clearly() -> None:
    from smar_sdk.training import relevance_codes

    with pytest.raises(CatalogError, match="'color' is in no catalog row"):
        relevance_codes(_products([{"colour": "Red"}]), torch.tensor([0]), torch.tensor([0]), 1, ["color"])


def test_relevance_fields_change_training(tiny_config, catalog: Path, pairs: Path) -> None:
    plain, _ = train(catalog, pairs, None, tiny_config, TrainConfig(epochs=1, batch_size=16), cache_dir=None,
                     progress=False)
    fields = TrainConfig(epochs=1, batch_size=16, relevance_fields=["colour"])  # every red item answers "red shirt"
    masked, _ = train(catalog, pairs, None, tiny_config, fields, cache_dir=None, progress=False)
    changed = [not torch.equal(a, b) for a, b in zip(plain.query_head.parameters(), masked.query_head.parameters(),
                                                      strict=True)]
    assert any(changed)  # the unpaired same-colour items stopped being negatives


def test_mirror_images_trains_on_flipped_images_cached_apart(tiny_config, catalog: Path, pairs: Path,
                                                             tmp_path: Path) -> None:
    from smar_sdk.catalog import read_catalog
    from smar_sdk.features import FeatureCache, item_image_states
    from smar_sdk.images import ImageLoader

    loader = ImageLoader(catalog.parent)
    image = loader.load("images/001.jpg")
    assert list(loader.mirrored().load("images/001.jpg").getdata()) == \
        list(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).getdata())
    cache = tmp_path / "cache"
    config = TrainConfig(epochs=2, batch_size=16, mirror_images=True)
    mirrored, _ = train(catalog, pairs, None, tiny_config, config, cache_dir=cache, progress=False)
    assert sorted(p.name.rsplit("-", 1)[0] for p in cache.iterdir() if p.name.startswith("image")) == \
        ["image-image", "image-image-mirrored"]
    plain, _ = train(catalog, pairs, None, tiny_config, config.model_copy(update={"mirror_images": False}),
                     cache_dir=None, progress=False)
    assert not np.allclose(mirrored.encode_queries(["red shirt"]), plain.encode_queries(["red shirt"]), atol=1e-4)
    # the cached mirrored states are those of the flipped images
    products = list(read_catalog(catalog))[:4]
    states = item_image_states(mirrored, products, "image", loader.mirrored(), FeatureCache(cache), progress=False)
    pixels = torch.stack([mirrored.image_encoder.preprocess(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
                          for image in (loader.load(p.payload["image"]) for p in products)])
    with torch.no_grad():
        torch.testing.assert_close(states.pooled, mirrored.image_encoder(pixels).pooled, atol=2e-2, rtol=0)


def test_pairs_file_reasons_bom_and_bytes_that_are_not_utf8(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from smar_sdk.training import read_pairs

    path = tmp_path / "pairs.jsonl"
    lines = [b'\xef\xbb\xbf{"query": "red shirt", "item_id": "a"}', b'{"query": "rouge \xe9t\xe9", "item_id": "a"}',
             b"not json", b'{"query": "  ", "item_id": "a"}', b'{"query": "bag", "item_id": "zz"}', b"",
             b'{"query": "blue bag", "item_id": 7}']
    path.write_bytes(b"\n".join(lines) + b"\n")
    with caplog.at_level("WARNING", logger="smar_sdk.training"):
        pairs, skipped = read_pairs(path, {"a", "7"})
    assert pairs == [("red shirt", "a"), ("blue bag", "7")] and skipped == 4
    assert "4 skipped (1 not UTF-8, e.g. line 2; 1 not a JSON" in caplog.text
    assert "1 whose item is not a valid catalog row (or is outside --only / the holdout), e.g. line 5" in caplog.text


def test_a_failed_run_leaves_none_of_the_folders_it_made(tiny_config, catalog: Path, tmp_path: Path) -> None:
    (tmp_path / "kept").mkdir()
    with pytest.raises(CatalogError):
        train(catalog, tmp_path / "no-pairs.jsonl", tmp_path / "kept" / "new" / "child" / "model", tiny_config,
              TrainConfig(epochs=1), cache_dir=None, progress=False)
    assert not any((tmp_path / "kept").iterdir())  # new/child/model all removed; kept was there before


def test_an_unwritable_out_dir_stops_before_any_work(tiny_config, catalog: Path, pairs: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr("smar_sdk.training.read_catalog", lambda *a, **k: pytest.fail("the catalog was read"))
    with pytest.raises(ModelError, match="cannot write the model to .*a-file/model: Not a directory; choose another"):
        train(catalog, pairs, tmp_path / "a-file" / "model", tiny_config, TrainConfig(epochs=1), cache_dir=None,
              progress=False)


def test_a_saved_model_is_readable_like_its_config(tiny_model: SMARModel, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        tiny_model.save(tmp_path / "m")
    finally:
        os.umask(old)
    assert (tmp_path / "m" / "model.safetensors").stat().st_mode & 0o777 == 0o644
    (tmp_path / "file").write_text("")
    with pytest.raises(ModelError, match="cannot save the model to .*file/m"):
        tiny_model.save(tmp_path / "file" / "m")


def test_a_damaged_checkpoint_weights_file_is_one_clear_error(tiny_config, catalog: Path, pairs: Path,
                                                               tmp_path: Path) -> None:
    config = TrainConfig(epochs=2, batch_size=16)
    with pytest.raises(KeyboardInterrupt):
        train(catalog, pairs, tmp_path / "m", tiny_config, config, cache_dir=None, progress=False,
              on_epoch=crash_after_first_epoch)
    weights = tmp_path / "m" / ".checkpoint" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelError, match="training checkpoint .*unreadable .*delete it to start over"):
        train(catalog, pairs, tmp_path / "m", tiny_config, config, cache_dir=None, progress=False)


def test_the_feature_cache_recomputes_damaged_entries_and_never_stops_training(
        tiny_config, catalog: Path, pairs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = TrainConfig(epochs=1, batch_size=16, seed=2)
    first, _ = train(catalog, pairs, None, tiny_config, config, cache_dir=tmp_path / "cache", progress=False)
    entries = sorted((tmp_path / "cache").iterdir())
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:100])
    with caplog.at_level("WARNING", logger="smar_sdk.features"):
        again, _ = train(catalog, pairs, None, tiny_config, config, cache_dir=tmp_path / "cache", progress=False)
    assert "is unreadable" in caplog.text
    assert all(e.stat().st_size > 100 for e in entries)  # recomputed and replaced
    np.testing.assert_allclose(again.encode_queries(["red shirt"]), first.encode_queries(["red shirt"]), atol=1e-6)
    (tmp_path / "a-file").write_text("")
    caplog.clear()
    with caplog.at_level("WARNING", logger="smar_sdk.features"):
        train(catalog, pairs, None, tiny_config, config, cache_dir=tmp_path / "a-file" / "cache", progress=False)
    assert caplog.text.count("cannot write the feature cache") == 1


def test_a_text_variant_catalog_that_matches_no_product_is_an_error(tiny_config, catalog: Path, pairs: Path,
                                                                     tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    titles_only = tmp_path / "titles_only.jsonl"
    titles_only.write_text("".join(json.dumps({"id": r["id"], "title": "x " + r["title"]}) + "\n" for r in rows))
    config = TrainConfig(epochs=1, batch_size=16, text_variant_catalogs=[str(titles_only)])
    with pytest.raises(CatalogError, match="has a valid row for none of the 30 training products.*line 1: field "
                                           "'image' is missing"):
        train(catalog, pairs, None, tiny_config, config, cache_dir=None, progress=False)
    some = tmp_path / "some.jsonl"
    some.write_text("".join(json.dumps({**r, "title": "x " + r["title"]}) + "\n" for r in rows[:10]))
    with caplog.at_level("WARNING", logger="smar_sdk.training"):
        train(catalog, pairs, None, tiny_config, config.model_copy(update={"text_variant_catalogs": [str(some)]}),
              cache_dir=None, progress=False)
    assert "has a valid row for 10 of the 30 training products" in caplog.text


def test_a_text_variant_catalog_spelled_another_way_resumes_the_same_run(tiny_config, catalog: Path, pairs: Path,
                                                                         tmp_path: Path, monkeypatch) -> None:
    """The checkpoint is tied to the variant file's contents, not to how its path is written."""
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    (catalog.parent / "no-colour.jsonl").write_text("".join(json.dumps({**r, "title": r["article_type"]}) + "\n"
                                                            for r in rows))
    monkeypatch.chdir(catalog.parent)
    config = TrainConfig(epochs=2, batch_size=16, text_variant_catalogs=["no-colour.jsonl"])
    with pytest.raises(KeyboardInterrupt):
        train(catalog, pairs, tmp_path / "m", tiny_config, config, cache_dir=None, progress=False,
              on_epoch=crash_after_first_epoch)
    seen: list[int] = []
    absolute = config.model_copy(update={"text_variant_catalogs": [str(catalog.parent / "." / "no-colour.jsonl")]})
    train(catalog, pairs, tmp_path / "m", tiny_config, absolute, cache_dir=None, progress=False,
          on_epoch=lambda epoch, loss: seen.append(epoch))
    assert seen == [2]


def test_pairs_with_one_query_or_no_products_left_are_clear_errors(tiny_config, catalog: Path, pairs: Path,
                                                                    tmp_path: Path) -> None:
    one_query = tmp_path / "one-query.jsonl"
    one_query.write_text("".join(json.dumps({"query": "nice shirt", "item_id": f"sku-{i:03d}"}) + "\n"
                                 for i in range(8)))
    with pytest.raises(CatalogError, match="every usable pair has the same query \\('nice shirt'\\)"):
        train(catalog, one_query, tmp_path / "model", tiny_config, TrainConfig(epochs=1, batch_size=4),
              cache_dir=None, progress=False)
    assert not (tmp_path / "model").exists()  # no empty --out folder left behind
    with pytest.raises(CatalogError, match="has no valid rows outside the held-out 100% \\(holdout\\)"):
        train(catalog, pairs, None, tiny_config, TrainConfig(epochs=1, holdout=0.999), cache_dir=None,
              progress=False)


def test_a_diverging_loss_stops_training_with_what_to_do(tiny_config, catalog: Path, pairs: Path) -> None:
    from smar_sdk.errors import TrainingError

    with pytest.raises(TrainingError, match="training diverged; lower the learning rate \\(lr 1e\\+30"):
        train(catalog, pairs, None, tiny_config, TrainConfig(epochs=2, batch_size=16, learning_rate=1e30),
              cache_dir=None, progress=False)


@pytest.mark.parametrize("setting", [{"seed": -1}, {"seed": 2**32}, {"temperature": 2.0}, {"temperature": 0.005}])
def test_settings_numpy_or_the_softmax_cannot_take_are_refused(setting: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(setting))):
        TrainConfig(**setting)


@pytest.mark.parametrize(("setting", "message"), [
    ({"hard_negatives": 8, "negative_fields": ["colour"], "epochs": 1}, "mined from the second epoch on"),
    ({"image_fields": ["image", "thumbnail", "image"]}, "names 'image' more than once"),
])
def test_settings_that_would_do_nothing_or_skew_sampling_are_refused(setting: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**setting)


def test_repeated_pairs_are_kept_and_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from smar_sdk.training import read_pairs

    path = tmp_path / "pairs.jsonl"
    lines = [{"query": "red shirt", "item_id": "a"}, {"query": "red shirt", "item_id": "b"}, {"bad": 1},
             {"query": "red shirt", "item_id": "a"}, {"query": "blue bag", "item_id": "a"}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    pairs, skipped = read_pairs(path, {"a", "b"})
    assert len(pairs) == 4 and skipped == 1  # a repeat is kept: it weighs that pair once more
    assert "1 lines repeat an earlier pair (the same query and item), e.g. line 4" in caplog.text

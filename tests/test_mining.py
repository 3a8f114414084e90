"""Hard negatives: mined from the model, only known wrong items, and they change what training learns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from smar_sdk.labels import pair_keys
from smar_sdk.mining import mine_hard_negatives, sample_negatives
from smar_sdk.training import TrainConfig, contrastive_loss, train


def test_mined_negatives_are_the_best_scoring_known_wrong_items() -> None:
    # one query naming colour 0; items: 0 paired, 1 same colour unpaired, 2 and 3 other colours, 4 other colour
    query_vectors = torch.tensor([[1.0, 0.0]])
    item_vectors = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.7, 0.3]])
    item_codes = torch.tensor([[0], [0], [1], [1], [2]])
    query_codes = torch.tensor([[0]])
    paired = pair_keys(torch.tensor([0]), torch.tensor([0]), item_count=5)
    mined = mine_hard_negatives(query_vectors, item_vectors, query_codes, item_codes, paired, pool=2)
    assert mined.tolist() == [[2, 4]]  # not the paired item 0, not the same-colour look-alike 1; best first
    padded = mine_hard_negatives(query_vectors, item_vectors, query_codes, item_codes, paired, pool=5)
    assert padded.tolist() == [[2, 4, 3, -1, -1]]


def test_a_paired_item_is_never_mined_even_with_other_field_values() -> None:
    # the query's two paired items differ in colour, so it names no colour; every unpaired item agrees with it
    item_codes = torch.tensor([[0], [1], [2]])
    query_codes = torch.tensor([[-1]])
    paired = pair_keys(torch.tensor([0, 0]), torch.tensor([0, 1]), item_count=3)
    mined = mine_hard_negatives(torch.ones(1, 2), torch.ones(3, 2), query_codes, item_codes, paired, pool=3)
    assert mined.tolist() == [[-1, -1, -1]]


def test_sampled_negatives_come_from_each_querys_own_mined_items() -> None:
    mined = torch.tensor([[5, 6, 7], [8, -1, -1], [-1, -1, -1]])
    generator = torch.Generator().manual_seed(0)
    samples = torch.stack([sample_negatives(mined, torch.tensor([0, 1, 2]), generator) for _ in range(200)])
    assert set(samples[:, 0].tolist()) == {5, 6, 7}
    assert set(samples[:, 1].tolist()) == {8} and set(samples[:, 2].tolist()) == {-1}


def test_only_known_wrong_extra_negatives_count_in_the_loss() -> None:
    eye = torch.eye(2)
    positives = torch.eye(2, dtype=torch.bool)
    scale = torch.tensor(10.0)
    plain = contrastive_loss(eye, eye, positives, scale)
    close = torch.tensor([[0.9, 0.1]])  # scores high for query 0
    counted = contrastive_loss(eye, eye, positives, scale, close, torch.tensor([[True], [True]]))
    ignored = contrastive_loss(eye, eye, positives, scale, close, torch.tensor([[False], [False]]))
    assert counted > plain + 0.05
    assert ignored == pytest.approx(plain.item())


def test_hard_negatives_need_labelled_fields() -> None:
    with pytest.raises(ValidationError, match="hard_negatives needs negative_fields"):
        TrainConfig(hard_negatives=8)


def test_hard_negatives_change_training_from_the_second_epoch(tiny_config, catalog: Path, pairs: Path) -> None:
    def trained(**options) -> tuple[torch.nn.Module, list[float]]:
        losses: list[float] = []
        config = TrainConfig(epochs=2, batch_size=16, seed=2, **options)
        model, report = train(catalog, pairs, None, tiny_config, config, cache_dir=None, progress=False,
                              on_epoch=lambda epoch, loss: losses.append(loss))
        assert torch.isfinite(torch.tensor(report.last_loss))
        return model.query_head, losses

    plain_head, plain = trained()
    mined_head, mined = trained(hard_negatives=8, negative_fields=["colour", "article_type"])
    assert mined[0] == plain[0]  # the first epoch has no trained model to mine with: the same steps
    assert mined[1] != plain[1]
    assert any(not torch.equal(a, b) for a, b in zip(plain_head.parameters(), mined_head.parameters(), strict=True))


def test_mining_with_the_stored_vector_scores_what_the_index_stores(tiny_config, catalog: Path) -> None:
    from smar_sdk import SMARModel
    from smar_sdk.catalog import FieldMapping, Product, read_catalog
    from smar_sdk.features import FeatureCache
    from smar_sdk.images import ImageLoader
    from smar_sdk.train_inputs import ImageInputs, ItemTextInputs, QueryInputs, current_vectors

    torch.manual_seed(0)
    model = SMARModel(tiny_config.model_copy(update={"text_blend": 0.75, "other_text_blend": 0.1,
                                                     "image_blend": 0.5}))
    products = [r for r in read_catalog(catalog, FieldMapping()) if isinstance(r, Product)]
    products[1] = products[1].model_copy(update={"text": "plain shoes"})  # a title naming no colour
    texts, cache = [p.text for p in products], FeatureCache(None)
    images = ImageInputs(model, products, ["image"], [ImageLoader(base_dir=catalog.parent)], cache, False)
    queries = QueryInputs(model, ["red shoes"], cache, False)
    args = (model, queries, torch.tensor([0]), ItemTextInputs(model, [texts], cache, False), images, "fused")
    _, stored = current_vectors(*args, stored=True)
    _, fused = current_vectors(*args)
    rows = [{"title": p.text, "image": p.payload["image"]} for p in products]
    indexed = torch.from_numpy(model.encode_items(rows, base_dir=catalog.parent))
    torch.testing.assert_close(stored, indexed, atol=2e-2, rtol=0)  # cached float16 states: close, not equal
    assert (stored - fused).norm(dim=1).min() > 0.05  # every item's vector moved, with or without a colour word

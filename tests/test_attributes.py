"""Attribute classifiers: an auxiliary training task that never reaches a saved model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from smar_sdk import CatalogError, Product, SMARModel
from smar_sdk.attributes import UNLABELLED, AttributeHeads
from smar_sdk.training import TrainConfig, train


def products(*payloads: dict) -> list[Product]:
    return [Product(line=i + 1, id=str(i), text="t", image="i.jpg", payload=p) for i, p in enumerate(payloads)]


def test_each_field_value_gets_a_class_and_a_missing_one_none() -> None:
    heads = AttributeHeads(4, ["colour", "gender"], products(
        {"colour": "Red", "gender": "Men"}, {"colour": "Blue", "gender": ""}, {"colour": "Red"}))
    assert heads.codes.tolist() == [[1, 0], [0, UNLABELLED], [1, UNLABELLED]]
    assert [head.out_features for head in heads.heads] == [2, 1]


def test_a_list_field_is_one_class_per_set_of_elements() -> None:
    from smar_sdk.labels import UNLABELLED as NO_LABEL
    from smar_sdk.labels import relevance_codes

    rows = products({"tags": ["sale", "new"]}, {"tags": ["new", "sale", "new"]}, {"tags": ["new"]}, {"tags": []},
                    {"tags": "new"})
    heads = AttributeHeads(4, ["tags"], rows)
    assert heads.codes.tolist() == [[0], [0], [1], [UNLABELLED], [1]] and heads.heads[0].out_features == 2
    items, _ = relevance_codes(rows, torch.tensor([0]), torch.tensor([0]), 1, ["tags"])
    assert items.tolist() == [[0], [0], [1], [NO_LABEL], [1]]  # the same set is the same answer, in any order


def test_a_field_in_no_row_fails_clearly() -> None:
    with pytest.raises(CatalogError, match="'color' has no value in any training row"):
        AttributeHeads(4, ["color"], products({"colour": "Red"}))


def test_the_loss_teaches_the_heads_to_tell_the_labels() -> None:
    torch.manual_seed(0)
    heads = AttributeHeads(32, ["colour"], products(*({"colour": c} for c in ["Red", "Blue"] * 8)))
    views = torch.nn.functional.normalize(torch.randn(16, 32), dim=-1)  # separable
    items = torch.arange(16)
    optimiser = torch.optim.Adam(heads.parameters(), lr=0.1)
    first = heads.loss(views, items).item()
    for _ in range(200):
        optimiser.zero_grad()
        loss = heads.loss(views, items)
        loss.backward()
        optimiser.step()
    assert loss.item() < first / 10
    assert torch.equal(heads.heads[0](views).argmax(dim=1), heads.codes[:, 0])


def test_unlabelled_items_add_no_loss() -> None:
    heads = AttributeHeads(4, ["colour"], products({"colour": "Red"}, {"colour": ""}))
    views = torch.randn(2, 4, requires_grad=True)
    heads.loss(views[1:], torch.tensor([1])).backward()
    assert views.grad is not None and not views.grad.any()


def test_attribute_loss_changes_training_and_leaves_no_head_in_the_model(tiny_config, catalog: Path, pairs: Path,
                                                                         tmp_path: Path) -> None:
    plain, _ = train(catalog, pairs, None, tiny_config, TrainConfig(epochs=1, batch_size=16), cache_dir=None,
                     progress=False)
    config = TrainConfig(epochs=1, batch_size=16, attribute_fields=["colour", "gender"], attribute_weight=1.0)
    taught, _ = train(catalog, pairs, tmp_path / "model", tiny_config, config, cache_dir=None, progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(plain.fusion.parameters(), taught.fusion.parameters(),
                                                        strict=True))
    assert not hasattr(taught, "attribute_heads")
    loaded = SMARModel.load(tmp_path / "model")
    assert not any(k.startswith("attribute_heads") for k in loaded.state_dict())
    assert loaded.config.training["attribute_fields"] == ["colour", "gender"]

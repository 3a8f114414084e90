"""The store protocol conformance suite, run against every registered connector (and real servers, when marked).

A connector passes when it behaves like the reference: exact counts, upsert-replaces, a search order equal to
a brute-force cosine ranking, the SDK filter semantics of ``matches_conditions``, payloads that round-trip as
written, a clear ``VectorSizeError``, and data that outlives the store object.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smar_sdk.errors import ConnectorNotFoundError, StoreError, VectorSizeError
from smar_sdk.filters import matches_conditions, parse_filter
from smar_sdk.store import (
    HASH_PAYLOAD_KEY,
    RESERVED_PAYLOAD_KEYS,
    VECTOR_HASH_PAYLOAD_KEY,
    Hit,
    VectorStore,
    open_store,
)

DIM = 16
StoreFactory = Callable[..., VectorStore]  # the `store_factory` fixture (see conftest.py)
COLOURS = ["red", "green", "blue"]
BIG_INTEGER = 2 ** 60  # neighbours a float cannot tell apart (a 64-bit EAN or SKU)
INT64_EDGES = [-(2 ** 63), -(2 ** 63) + 1, 2 ** 63 - 1, 0]  # the smallest integer is no literal in Milvus' parser


def make_items(n: int = 40, dim: int = DIM, seed: int = 0) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    ids = [f"sku-{i:03d}" for i in range(n)]
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    payloads = [{"title": f"item {i}", "colour": COLOURS[i % 3], "gender": "Women" if i % 2 else "Men",
                 "year": 2010 + i % 7, "price": round(5.0 + 2.5 * i, 2),
                 "tags": [f"t{i % 4}", COLOURS[(i + 1) % 3]], "sizes": [i % 5, float((i + 2) % 5)],
                 "article type": ["shirt", "shoe"][i % 2], "ean": BIG_INTEGER + i,
                 "in_stock": i % 3 == 0, "flags": [i % 2 == 0, "x"], "on_sale": [True, 1, 0.0, False][i % 4],
                 "serial": 2 ** 53 + i % 2, "int64": INT64_EDGES[i % 4], "int64s": [INT64_EDGES[i % 4], i]}
                for i in range(n)]
    return ids, vectors, payloads


def brute_force(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Cosine similarity of every query (rows) to every item (columns)."""
    items = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    qs = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return qs @ items.T


def assert_ranking(hits: list[Hit], ids: list[str], scores: np.ndarray, k: int, allowed: list[int] | None = None
                   ) -> None:
    """``hits`` are the ``k`` best of ``allowed`` items by cosine, best first, each with its cosine as score."""
    candidates = range(len(ids)) if allowed is None else allowed
    expected = sorted(candidates, key=lambda i: -scores[i])[:k]
    assert [h.id for h in hits] == [ids[i] for i in expected]
    assert [h.score for h in hits] == pytest.approx([float(scores[i]) for i in expected], abs=1e-4)


@pytest.fixture()
def filled(store_factory: StoreFactory) -> tuple[VectorStore, list[str], np.ndarray, list[dict[str, Any]]]:
    store = store_factory()
    ids, vectors, payloads = make_items()
    store.ensure_collection(DIM)
    store.upsert(ids, vectors, payloads)
    return store, ids, vectors, payloads


def test_new_store_is_empty(store_factory: StoreFactory) -> None:
    store = store_factory()
    assert store.count() == 0
    store.delete(["nothing-here"])  # deleting from a missing collection is a no-op
    with pytest.raises(StoreError):
        store.search(np.ones(DIM, dtype=np.float32), k=3)
    store.ensure_collection(DIM)
    store.ensure_collection(DIM)  # idempotent
    assert store.count() == 0
    assert store.search(np.ones(DIM, dtype=np.float32), k=3) == [[]]


def test_context_manager(store_factory: StoreFactory) -> None:
    with store_factory() as store:
        store.ensure_collection(DIM)
        assert store.count() == 0


def test_upsert_and_count(filled) -> None:
    store, ids, _, _ = filled
    assert store.count() == len(ids)
    if hasattr(store, "ids"):
        assert store.ids() == set(ids)


def test_reupsert_replaces(filled) -> None:
    store, ids, vectors, _ = filled
    new_vector = -vectors[3]
    store.upsert([ids[3]], new_vector[None, :], [{"title": "replaced", "colour": "black"}])
    store.upsert([ids[4], ids[4]], np.stack([vectors[5], vectors[4]]), [{"v": 1}, {"v": 2}])  # last one wins
    assert store.count() == len(ids)
    hits = store.search(new_vector, k=len(ids))[0]
    assert [h.id for h in hits].count(ids[3]) == 1
    assert hits[0].id == ids[3]
    assert hits[0].payload == {"title": "replaced", "colour": "black"}
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    top = store.search(vectors[4], k=1)[0][0]
    assert (top.id, top.payload) == (ids[4], {"v": 2})


def test_delete(filled) -> None:
    store, ids, vectors, _ = filled
    store.delete([ids[0], ids[1], "unknown-id", ids[0]])
    store.delete([])
    with pytest.raises(TypeError, match="not one string"):  # it would be read as ids of one character each
        store.delete(ids[2])
    assert store.count() == len(ids) - 2
    found = {h.id for h in store.search(vectors[0], k=len(ids))[0]}
    assert found == set(ids[2:])


def test_search_matches_brute_force(filled) -> None:
    store, ids, vectors, _ = filled
    queries = np.random.default_rng(1).normal(size=(3, DIM)).astype(np.float32)
    scores = brute_force(vectors, queries)
    results = store.search(queries, k=10)
    assert len(results) == 3
    for hits, row in zip(results, scores, strict=True):
        assert_ranking(hits, ids, row, k=10)
    single = store.search(queries[0], k=5)  # a single 1-d vector is a batch of one
    assert_ranking(single[0], ids, scores[0], k=5)
    assert len(store.search(queries[0], k=1000)[0]) == len(ids)


@pytest.mark.parametrize("spec", [
    {"colour": "red"},
    {"colour": ["red", "blue"]},
    {"year": {"gte": 2012, "lt": 2015}},
    {"price": {"gt": 30.0, "lte": 60}},
    {"gender": "Women", "year": {"lte": 2013}, "colour": ["green", "blue"]},
    {"colour": "purple"},
    {"price": 12.5},
    {"price": [7.5, 10.0, 30]},
    {"price": 10},
    {"price": [10, 15]},
    {"year": [2011, 2013]},
    {"tags": "t1"},
    {"tags": ["t3", "blue"], "colour": "red"},
    {"sizes": 3},
    {"sizes": [1, 2.0]},
    {"tags": "item"},
    {"article type": "shoe"},
    {"article type": ["shirt"], "colour": "red"},
    {"ean": BIG_INTEGER + 3},
    {"ean": [BIG_INTEGER + 5, BIG_INTEGER + 8, 7]},
    {"in_stock": True},
    {"in_stock": [False]},
    {"flags": True},
    {"serial": 2 ** 53},
    {"int64": -(2 ** 63)},
    {"int64": [-(2 ** 63), 2 ** 63 - 1]},
    {"int64s": -(2 ** 63)},
    {"int64s": [-(2 ** 63), 3]},
    {"int64": {"gte": -(2 ** 63), "lte": 0}},
    {"colour": [*(f"colour {i}" for i in range(300)), "red"]},
    {"year": list(range(1700, 2300)), "colour": [*(f"colour {i}" for i in range(100)), "blue", "green"]},
], ids=["equals", "in", "range", "float-range", "combined", "no-match", "float-equals", "float-in", "int-equals-float",
        "ints-in-floats", "ints-in", "list-equals", "list-in", "list-int-equals", "list-numbers-in", "list-no-match",
        "field-with-space", "field-with-space-in", "big-integer-equals", "big-integers-in",
        "boolean-equals", "boolean-in", "list-boolean-equals", "first-inexact-integer", "smallest-int64-equals",
        "int64-edges-in", "list-smallest-int64-equals", "list-smallest-int64-in", "from-smallest-int64",
        "in-many-texts", "in-many-numbers-and-texts"])
def test_filters(filled, spec: dict[str, Any]) -> None:
    assert_filtered_search(filled, spec)


@pytest.mark.parametrize("spec", [{"in_stock": 1}, {"on_sale": True}, {"on_sale": [0, "x"]}, {"on_sale": {"gte": 1}}],
                         ids=["one-is-not-true", "true-is-not-one", "zero-is-not-false", "range-skips-booleans"])
def test_booleans_are_not_numbers(filled, spec: dict[str, Any], request: pytest.FixtureRequest) -> None:
    if request.node.callspec.params["store_factory"] == "milvus":
        pytest.skip("Milvus Lite compares true with 1 (docs/connectors.md; tests/connectors/test_milvus.py)")
    assert_filtered_search(filled, spec)


def assert_filtered_search(filled, spec: dict[str, Any]) -> None:
    """The store's filtered searches give the best of the items ``matches_conditions`` accepts."""
    store, ids, vectors, payloads = filled
    conditions = parse_filter(spec)
    allowed = [i for i, payload in enumerate(payloads) if matches_conditions(payload, conditions)]
    queries = np.random.default_rng(2).normal(size=(2, DIM)).astype(np.float32)
    scores = brute_force(vectors, queries)
    for hits, row in zip(store.search(queries, k=8, conditions=conditions), scores, strict=True):
        assert_ranking(hits, ids, row, k=8, allowed=allowed)
        assert all(matches_conditions(h.payload, conditions) for h in hits)


def test_payload_round_trip(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.ensure_collection(DIM)
    payload = {
        "title": "Robe d'été « légère » — 女装 😀",
        "quoted": 'say "hi" \\ back\\slash\nnew line',
        "nested": {"sizes": ["S", "M", "XL"], "stock": {"S": 3, "M": 0}, "deep": [{"a": [1, 2.5, None]}]},
        "price": 1299.5, "year": 2015, "in_stock": True, "tags": [], "missing": None,
    }
    ids, vectors, _ = make_items(3)
    store.upsert(["ünï-cødé/ id #1", ids[1], ids[2]], vectors, [payload, {"colour": "red"}, {}])
    hits = store.search(vectors[0], k=3)[0]
    assert (hits[0].id, hits[0].payload) == ("ünï-cødé/ id #1", payload)
    assert {h.id: h.payload for h in hits}[ids[2]] == {}
    for spec in ({"title": payload["title"]}, {"quoted": payload["quoted"]}, {"title": [payload["title"], "x"]}):
        filtered = store.search(vectors[1], k=3, conditions=parse_filter(spec))[0]
        assert [h.id for h in filtered] == ["ünï-cødé/ id #1"], spec
    store.delete(["ünï-cødé/ id #1"])
    assert store.count() == 2


def test_edge_arguments_mean_the_same_on_every_store(filled) -> None:
    store, ids, vectors, _ = filled
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=f"k must be a whole number of 1 or more .*got {k!r}"):
            store.search(vectors[0], k=k)
    assert len(store.search(vectors[0], k=np.int64(2))[0]) == 2  # a numpy integer is a k, on every store
    assert store.search(np.zeros((0, DIM), dtype=np.float32), k=3) == []  # an empty batch: no queries, no answers
    for payload in ({"x": float("nan")}, {"x": [float("inf")]}, {"when": object()}, {"m": {1: "a", "1": "b"}}):
        with pytest.raises(ValueError, match="payload 0 cannot be stored as JSON"):
            store.upsert(["bad"], vectors[:1], [payload])
    store.upsert(["numpy"], vectors[:1], [{"n": np.int64(3), "f": np.float32(0.5), "v": np.array([1, 2])}])
    hit = store.search(vectors[0], k=1, conditions=parse_filter({"n": 3}))[0][0]
    assert (hit.id, hit.payload) == ("numpy", {"n": 3, "f": 0.5, "v": [1, 2]})
    assert store.count() == len(ids) + 1


def test_stored_hashes(store_factory: StoreFactory) -> None:
    """Optional: ``stored_hashes(ids)`` lets the indexer skip unchanged rows; the hash never shows in hits."""
    store = store_factory()
    if not hasattr(store, "stored_hashes"):
        pytest.skip("connector has no stored_hashes()")
    assert store.stored_hashes(["a"]) == {}
    ids, vectors, payloads = make_items(4)
    store.ensure_collection(DIM)
    store.upsert(ids, vectors, [{**p, HASH_PAYLOAD_KEY: f"h{i}"} for i, p in enumerate(payloads[:3])] + payloads[3:])
    assert store.stored_hashes([ids[0], ids[2], ids[3], "unknown", ids[0]]) == {ids[0]: "h0", ids[2]: "h2"}
    hit = store.search(vectors[1], k=1)[0][0]
    assert {k: v for k, v in hit.payload.items() if k not in RESERVED_PAYLOAD_KEYS} == payloads[1]


def test_stored_vectors(store_factory: StoreFactory) -> None:
    """Optional: ``stored_vectors({id: vector hash})`` gives the stored vectors of the ids stored with that vector
    hash, so a row that changed in payload only is rewritten with its vector instead of encoded again."""
    store = store_factory()
    if not hasattr(store, "stored_vectors"):
        pytest.skip("connector has no stored_vectors()")
    assert store.stored_vectors({"a": "v0"}) == {}
    ids, vectors, payloads = make_items(4)
    store.ensure_collection(DIM)
    store.upsert(ids, vectors, [{**p, VECTOR_HASH_PAYLOAD_KEY: f"v{i}"} for i, p in enumerate(payloads[:3])]
                 + payloads[3:])
    found = store.stored_vectors({ids[0]: "v0", ids[1]: "other", ids[2]: "v2", ids[3]: "v3", "unknown": "v9"})
    assert sorted(found) == [ids[0], ids[2]]  # another hash, no hash stored, no such id: not read
    for i in (0, 2):  # as stored: a cosine store may keep the unit vector
        vector = found[ids[i]]
        assert vector.dtype == np.float32 and vector.shape == (DIM,)
        np.testing.assert_allclose(vector / np.linalg.norm(vector), vectors[i] / np.linalg.norm(vectors[i]), atol=1e-5)


def test_wrong_vector_size(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.ensure_collection(DIM)
    with pytest.raises(VectorSizeError, match=store.collection):
        store.upsert(["a"], np.ones((1, DIM + 1), dtype=np.float32), [{}])
    with pytest.raises(VectorSizeError, match=store.collection):
        store.search(np.ones(DIM - 1, dtype=np.float32), k=3)
    with pytest.raises(VectorSizeError, match=store.collection):
        store.ensure_collection(DIM * 2)
    bad = np.ones((2, DIM), dtype=np.float32)
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="vector 1 holds NaN or infinity"):  # it could never be found
        store.upsert(["a", "b"], bad, [{}, {}])
    with pytest.raises(ValueError, match=r"a 2-d batch .*shape \(1, 2, "):
        store.search(np.ones((1, 2, DIM), dtype=np.float32), k=3)
    assert store.count() == 0


def test_close_and_reopen(store_factory: StoreFactory) -> None:
    ids, vectors, payloads = make_items(25)
    store = store_factory()
    store.ensure_collection(DIM)
    store.upsert(ids, vectors, payloads)
    store.close()
    for use in (store.count, store.ids, lambda: store.search(vectors[:1], k=1),
                lambda: store.upsert(ids[:1], vectors[:1], payloads[:1]), lambda: store.ensure_collection(DIM),
                lambda: store.delete(ids[:1]), lambda: store.upsert([], vectors[:0], []),
                lambda: store.search(vectors[:0], k=1)):
        with pytest.raises(StoreError, match=r"\(collection '.*products'\) is closed; open it again"):
            use()  # a closed store says so, on every store alike; it does not answer "empty"
    store.close()  # closing twice is harmless
    with store_factory() as reopened:
        assert reopened.count() == len(ids)
        scores = brute_force(vectors, vectors[:1])
        assert_ranking(reopened.search(vectors[0], k=7)[0], ids, scores[0], k=7)
        assert reopened.search(vectors[3], k=1)[0][0].payload == payloads[3]
        reopened.ensure_collection(DIM)  # an existing collection of the right size is fine
        reopened.delete(ids[:5])
    if "://" not in store_factory.uri:
        store_factory.uri = Path(store_factory.uri)  # a pathlib.Path names an embedded store as its text does
    with store_factory() as again:
        assert again.count() == len(ids) - 5


@pytest.mark.parametrize("metric", ["dot", "euclid"])
def test_other_metrics_rank_and_score_higher_is_better(store_factory: StoreFactory, metric: str) -> None:
    rng = np.random.default_rng(5)
    vectors, query = rng.normal(size=(20, 8)).astype(np.float32), rng.normal(size=8).astype(np.float32)
    truth = vectors @ query if metric == "dot" else -np.linalg.norm(vectors - query, axis=1)
    ids = [f"i{i}" for i in range(20)]
    with store_factory(f"m_{metric}") as store:
        store.ensure_collection(8, metric=metric)
        store.upsert(ids, vectors, [{}] * 20)
        hits = store.search(query, k=5)[0]
    assert [h.id for h in hits] == [ids[i] for i in np.argsort(-truth)[:5]]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)  # best first, and highest
    with store_factory(f"m_{metric}") as reopened:  # the metric is read back with the collection
        assert [h.score for h in reopened.search(query, k=5)[0]] == pytest.approx([h.score for h in hits])


def test_reopening_with_another_metric_is_an_error(store_factory: StoreFactory) -> None:
    ids, vectors, payloads = make_items(5)
    with store_factory("m_mismatch") as store:
        store.ensure_collection(DIM, metric="euclid")
        store.upsert(ids, vectors, payloads)
        store.ensure_collection(DIM, metric="euclid")  # the same metric again is fine
    with store_factory("m_mismatch") as reopened:
        with pytest.raises(StoreError, match="'euclid' metric, not 'cosine'"):
            reopened.ensure_collection(DIM)
        with pytest.raises(StoreError, match="unknown metric 'manhattan'"):
            reopened.ensure_collection(DIM, metric="manhattan")  # type: ignore[arg-type]
        assert reopened.count() == len(ids)  # nothing was dropped or recreated


def test_two_collections_side_by_side(store_factory: StoreFactory) -> None:
    small_ids, small, _ = make_items(10, dim=8, seed=3)
    large_ids, large, _ = make_items(15, dim=12, seed=4)
    with store_factory("alpha") as alpha:
        alpha.ensure_collection(8)
        alpha.upsert(small_ids, small, [{"in": "alpha"}] * 10)
    with store_factory("beta") as beta:
        beta.ensure_collection(12)
        beta.upsert(large_ids, large, [{"in": "beta"}] * 15)
        beta.delete(large_ids[:3])
    with store_factory("alpha") as alpha:
        assert alpha.count() == 10
        hits = alpha.search(small[0], k=20)[0]
        assert len(hits) == 10 and {h.payload["in"] for h in hits} == {"alpha"}
        with pytest.raises(VectorSizeError):
            alpha.search(large[0], k=1)
    with store_factory("beta") as beta:
        assert beta.count() == 12
        assert {h.payload["in"] for h in beta.search(large[5], k=20)[0]} == {"beta"}
        if callable(getattr(beta, "collections", None)):  # optional: names them when a collection is mistyped
            prefix = store_factory.prefix
            assert {f"{prefix}alpha", f"{prefix}beta"} <= set(beta.collections())
    with store_factory("alhpa") as typo:
        guess = (rf".*did you mean collection='{store_factory.prefix}alpha'"  # optional: a connector that can list
                 if callable(getattr(typo, "collections", None)) else "")
        with pytest.raises(StoreError, match=rf"collection '{store_factory.prefix}alhpa' does not exist{guess}"):
            typo.search(small[0], k=1)  # a retriever's first search names the collection meant


def test_unknown_connector_name() -> None:
    with pytest.raises(ConnectorNotFoundError, match="no-such-database"):
        open_store("no-such-database", uri="anywhere")

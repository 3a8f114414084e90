"""SMARIndexer + SMARRetriever on embedded Qdrant: indexing, search order, filters, rejects, re-indexing."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from smar_sdk import (
    CatalogError,
    ConnectorNotFoundError,
    SMARIndexer,
    SMARModel,
    SMARRetriever,
    StoreError,
    VectorSizeError,
    open_store,
)
from smar_sdk.catalog import FieldMapping, Product, read_catalog
from smar_sdk.filters import parse_filter
from smar_sdk.images import ImageLoader
from smar_sdk.indexer import _grouped, _read_ahead
from smar_sdk.store import VIEW_PAYLOAD_KEY
from smar_sdk.stored_models import sampled_model, sampled_payload

from .conftest import write_jpeg


def test_index_then_search_matches_brute_force(tiny_model: SMARModel, catalog: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    uri = str(tmp_path / "store")
    with catalog.open("a") as handle:
        handle.write("{broken\n")
    with SMARIndexer(tiny_model, uri=uri, batch_size=7) as indexer:
        report = indexer.index(catalog, progress=True)
    assert (report.indexed, report.rejected) == (30, 1) and report.seconds > 0
    assert "31/31" in capsys.readouterr().err  # the bar knows the total (and so an ETA) from the read-ahead
    catalog.write_text("".join(catalog.read_text().splitlines(keepends=True)[:-1]))
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    items = tiny_model.encode_items(rows, base_dir=catalog.parent)
    brute = dict(zip([r["id"] for r in rows], items @ tiny_model.encode_queries(["red shirt"])[0], strict=True))
    with SMARRetriever(tiny_model, uri=uri) as retriever:
        hits = retriever.search("red shirt", k=5)
        # same scores as a brute-force ranking (ties may order either way), best first
        np.testing.assert_allclose([h.score for h in hits], sorted(brute.values(), reverse=True)[:5], atol=1e-5)
        np.testing.assert_allclose([h.score for h in hits], [brute[h.id] for h in hits], atol=1e-5)
        assert hits[0].payload["title"] == rows[[r["id"] for r in rows].index(hits[0].id)]["title"]
        women = retriever.search("red shirt", k=30, filter={"gender": "Women"})
        assert len(women) == 15 and {h.payload["gender"] for h in women} == {"Women"}
        some = retriever.search("shirt", k=30, filter={"colour": ["red", "blue"], "year": {"gte": 2012}})
        assert some and all(h.payload["colour"] in {"red", "blue"} and h.payload["year"] >= 2012 for h in some)


def test_reindex_replaces_without_duplicates(tiny_model: SMARModel, catalog: Path, tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    with SMARIndexer(tiny_model, uri=uri) as indexer:
        indexer.index(catalog, progress=False)
        rows = [json.loads(line) for line in catalog.read_text().splitlines()]
        rows[0]["title"] = "yellow watch"
        catalog.write_text("".join(json.dumps(r) + "\n" for r in rows))
        indexer.index(catalog, progress=False)
        assert indexer.store.count() == 30
        with SMARRetriever(tiny_model, store=indexer.store) as retriever:
            hits = retriever.search("watch", k=30, filter={"title": "yellow watch"})
        assert sorted(h.id for h in hits) == sorted([rows[0]["id"], "sku-028"])  # changed row + the original one


def test_broken_rows_are_rejected_and_good_rows_indexed(tiny_model: SMARModel, catalog: Path, tmp_path: Path) -> None:
    (catalog.parent / "images" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    extra = ["{broken json", json.dumps({"id": "x1", "title": "red shirt", "image": "images/missing.jpg"}),
             json.dumps({"id": "x2", "title": "red shirt", "image": "images/corrupt.jpg"}),
             json.dumps({"id": "x3", "title": "red shirt", "image": "../../etc/passwd"})]
    catalog.write_text(catalog.read_text() + "\n".join(extra) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store")) as indexer:
        report = indexer.index(catalog, rejects_path=rejects, progress=False)
        assert indexer.store.count() == 30
    assert (report.indexed, report.rejected) == (30, 4)
    lines = {r.line: r.reason for r in report.rejections}
    assert set(lines) == {31, 32, 33, 34}
    assert "not valid JSON" in lines[31] and "not found" in lines[32] and "cannot be decoded" in lines[33]
    assert "leaves the catalog folder" in lines[34]
    written = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [w["line"] for w in written] == [31, 32, 33, 34] and written[0]["row"] == "{broken json"


def test_wrong_vector_size_and_unknown_connector(tiny_model: SMARModel, catalog: Path, tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    with open_store("qdrant", uri=uri) as store:
        store.ensure_collection(8)
    with pytest.raises(VectorSizeError, match="8-d vectors .* 16-d"), SMARIndexer(tiny_model, uri=uri) as indexer:
        indexer.index(catalog, progress=False)
    with pytest.raises(ConnectorNotFoundError, match="unknown store 'nosuchdb'.*qdrant"):
        SMARIndexer(tiny_model, store="nosuchdb")


def test_searching_with_another_model_than_the_index_is_an_error(tiny_model_dir: Path, catalog: Path,
                                                                    tmp_path: Path) -> None:
    indexed_with = SMARModel.load(tiny_model_dir)
    other = SMARModel.load(tiny_model_dir)
    with torch.no_grad():
        other.query_head.linear.weight.mul_(-1.0)  # same size, other weights
    other.save(tmp_path / "other")
    uri = str(tmp_path / "store")
    with SMARIndexer(indexed_with, uri=uri) as indexer:
        indexer.index(catalog, progress=False)
    with SMARRetriever(SMARModel.load(tiny_model_dir), uri=uri) as retriever:  # a copy of the same files is fine
        hit = retriever.search("red shirt", k=3)[0]
        assert not any(key.startswith("_smar") for key in hit.payload)  # the bookkeeping stays hidden
    with pytest.raises(StoreError, match="'products' was indexed with another model .*--model"), \
            SMARRetriever(SMARModel.load(tmp_path / "other"), uri=uri) as retriever:
        retriever.search("red shirt", k=3)
    with SMARRetriever(SMARModel.load(tmp_path / "other"), uri=uri) as retriever:  # what `smar-sdk info` shows
        assert sampled_model(retriever.store) == indexed_with.fingerprint != retriever.model.fingerprint


def test_indexing_with_another_model_is_refused_unless_it_replaces_every_product(tiny_model_dir: Path, catalog: Path,
                                                                                   tmp_path: Path) -> None:
    other = SMARModel.load(tiny_model_dir)
    with torch.no_grad():
        other.query_head.linear.weight.mul_(-1.0)  # same size, other weights
    other.save(tmp_path / "other")
    other = SMARModel.load(tmp_path / "other")
    uri = str(tmp_path / "store")
    with SMARIndexer(SMARModel.load(tiny_model_dir), uri=uri) as indexer:
        assert indexer.index(catalog, progress=False).not_replaced is None  # only a replace run counts them
    with SMARIndexer(other, uri=uri) as indexer:
        with pytest.raises(StoreError, match="'products' holds products indexed with another model .*--replace-model"):
            indexer.index(catalog, progress=False)
        assert {sampled_model(indexer.store)} == {SMARModel.load(tiny_model_dir).fingerprint}  # nothing written
        half = indexer.index(catalog, progress=False, only={"colour": "red"}, replace_model=True)
        assert (half.indexed, half.not_replaced, indexer.store.count()) == (5, 25, 30)
    two_models = "holds products of two models .*--replace-model has not finished or left products .*--prune"
    with pytest.raises(StoreError, match=two_models), SMARRetriever(other, uri=uri) as retriever:
        retriever.search("red shirt", k=30)
    with pytest.raises(StoreError, match=two_models), SMARRetriever(other, uri=uri) as retriever:
        retriever.search("red shirt", k=3, filter={"colour": "blue"})  # every hit one the re-index has not reached
    rows = catalog.read_text().splitlines()
    catalog.write_text("\n".join(rows[:-3]) + "\n")  # 3 products left the catalog meanwhile
    with SMARIndexer(other, uri=uri) as indexer:  # the re-index resumes: the red products stay as they are
        report = indexer.index(catalog, progress=False, replace_model=True)
        assert (report.indexed, report.unchanged, report.not_replaced, indexer.store.count()) == (22, 5, 3, 30)
    with pytest.raises(StoreError, match=two_models), SMARRetriever(other, uri=uri) as retriever:
        retriever.search("red shirt", k=30)  # the 3 products that left still hold the first model's vectors
    with SMARIndexer(other, uri=uri) as indexer:
        listings, list_ids = [], indexer.store.ids
        indexer.store.ids = lambda: listings.append(1) or list_ids()  # the ids are listed once, for both counts
        report = indexer.index(catalog, progress=False, replace_model=True, prune=True)
        assert (report.unchanged, report.pruned, report.not_replaced, indexer.store.count()) == (27, 3, 0, 27)
        assert len(listings) == 1
    with SMARRetriever(other, uri=uri) as retriever:
        assert len(retriever.search("red shirt", k=30)) == 27


def test_indexing_another_item_view_is_refused_unless_it_replaces_every_product(tiny_model_dir: Path, catalog: Path,
                                                                                 tmp_path: Path) -> None:
    model, uri = SMARModel.load(tiny_model_dir), str(tmp_path / "store")
    with SMARIndexer(model, uri=uri, view="text") as indexer:
        indexer.index(catalog, progress=False)
    with SMARIndexer(model, uri=uri) as indexer:
        with pytest.raises(StoreError, match="'products' holds products stored as the text item view, and this run "
                                             "stores the fused view.*view='text'.*--replace-model --prune"):
            indexer.index(catalog, progress=False)
        assert indexer.index(catalog, progress=False, only={"colour": "red"}, replace_model=True).indexed == 5
    with pytest.raises(StoreError, match=r"two item views \(fused and text\).*replace_model=True, prune=True"), \
            SMARRetriever(model, uri=uri) as retriever:
        retriever.search("red shirt", k=30)
    with SMARIndexer(model, uri=uri) as indexer:
        assert indexer.index(catalog, progress=False, replace_model=True).indexed == 25
    with SMARRetriever(model, uri=uri) as retriever:
        hits = retriever.search("red shirt", k=30)
    assert len(hits) == 30 and not any(key.startswith("_smar") for hit in hits for key in hit.payload)
    np.testing.assert_allclose(hits[0].score, float(model.encode_queries(["red shirt"])[0] @ model.encode_items(
        [json.loads(row) for row in catalog.read_text().splitlines() if json.loads(row)["id"] == hits[0].id],
        base_dir=catalog.parent)[0]), atol=1e-4)  # the fused view now


def test_points_written_before_views_were_recorded_hold_the_models_own_view(
        tiny_model_dir: Path, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, uri = SMARModel.load(tiny_model_dir), str(tmp_path / "store")
    with SMARIndexer(model, uri=uri) as indexer:
        upsert = indexer.store.upsert
        monkeypatch.setattr(indexer.store, "upsert", lambda ids, vectors, payloads: upsert(
            ids, vectors, [{k: v for k, v in p.items() if k != VIEW_PAYLOAD_KEY} for p in payloads]))
        indexer.index(catalog, progress=False)  # as an SDK that did not record the view wrote them
        assert VIEW_PAYLOAD_KEY not in sampled_payload(indexer.store)
    with SMARIndexer(model, uri=uri, view="text") as indexer:
        with pytest.raises(StoreError, match="holds products stored as the fused item view"):
            indexer.index(catalog, progress=False)
        indexer.index(catalog, progress=False, only={"colour": "red"}, replace_model=True)
    with pytest.raises(StoreError, match=r"two item views \(fused and text\)"), \
            SMARRetriever(model, uri=uri) as retriever:
        retriever.search("red shirt", k=30)
    rows = catalog.read_text().splitlines()
    broken = json.loads(rows[3])
    del broken["title"]
    catalog.write_text(json.dumps(broken) + "\n" + "\n".join(rows) + "\n")  # then the id's good row
    with SMARIndexer(model, uri=uri, view="text") as indexer:
        report = indexer.index(catalog, progress=False, replace_model=True)
    assert (report.rejected, report.indexed, report.unchanged, report.not_replaced) == (1, 25, 5, 0)
    with SMARRetriever(model, uri=uri) as retriever:
        assert len(retriever.search("red shirt", k=30)) == 30


def test_rerun_skips_unchanged_and_prune_removes_stale(catalog: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    model = SMARModel.load(tiny_model_dir)
    uri = str(tmp_path / "store")
    with SMARIndexer(model, uri=uri) as indexer:
        first = indexer.index(catalog, progress=False)
        again = indexer.index(catalog, progress=False)
        assert (first.indexed, again.indexed, again.unchanged) == (30, 0, 30)
        rows = [json.loads(line) for line in catalog.read_text().splitlines()]
        rows[3]["title"] = "nice cotton dress"
        rows = rows[:-2] + [{**rows[0], "id": "sku-new", "image": rows[0]["image"]}]
        catalog.write_text("".join(json.dumps(r) + "\n" for r in rows))
        update = indexer.index(catalog, progress=False, prune=True)
        assert (update.indexed, update.unchanged, update.pruned) == (2, 27, 2)
        assert indexer.store.count() == 29
        assert indexer.store.ids() == {r["id"] for r in rows}
    with SMARIndexer(SMARModel.load(tiny_model_dir), uri=uri) as indexer:  # same model files: still unchanged
        assert indexer.index(catalog, progress=False).unchanged == 29
    with SMARRetriever(model, uri=uri) as retriever:
        hit = retriever.search("dress", k=1, filter={"title": "nice cotton dress"})[0]
        assert hit.id == rows[3]["id"] and not any(k.startswith("_smar") for k in hit.payload)


@pytest.mark.parametrize(("held_rows", "per_id"), [(1, 4), (10, 1)])
def test_rows_held_for_a_repeated_id_are_bounded_and_the_last_row_still_wins(
        tiny_model: SMARModel, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held_rows: int,
        per_id: int) -> None:
    monkeypatch.setattr("smar_sdk.indexer.MAX_HELD_ROWS", held_rows)
    monkeypatch.setattr("smar_sdk.indexer.MAX_HELD_PER_ID", per_id)
    rows = [json.loads(line) for line in catalog.read_text().splitlines()][:4]
    lines = [{**rows[i % 4], "title": f"version {i // 4}"} for i in range(12)]  # 4 ids, 3 versions each
    catalog.write_text("".join(json.dumps(r) + "\n" for r in lines))
    records = list(read_catalog(catalog))
    repeats, rows = _read_ahead(catalog, FieldMapping(), None)
    assert rows == 12
    groups = list(_grouped(records, repeats))
    assert sorted(r.line for g in groups for r in g) == list(range(1, 13))  # every row exactly once
    assert max(len(g) for g in groups) <= min(held_rows, per_id) + 1  # never more held than the caps
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store"), batch_size=2) as indexer:
        for run in range(2):
            report = indexer.index(catalog, progress=False)
            assert report.indexed + report.unchanged + report.superseded == 12 and indexer.store.count() == 4
            assert (report.indexed, report.unchanged) == ((4, 0) if run == 0 else (0, 4))  # each id encoded once
            hits = indexer.store.search(tiny_model.encode_queries(["x"]), k=10)[0]
            assert {h.payload["title"] for h in hits} == {"version 2"}


def test_past_the_hold_limit_an_id_whose_last_row_is_broken_keeps_what_the_store_held(
        tiny_model: SMARModel, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("smar_sdk.indexer.MAX_HELD_ROWS", 1)
    rows = [json.loads(line) for line in catalog.read_text().splitlines()][:3]
    lines = [rows[0], rows[1], rows[2], {**rows[0], "image": "images/missing.jpg"}, rows[1]]  # A, B, C, A broken, B
    catalog.write_text("".join(json.dumps(r) + "\n" for r in lines))
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store")) as indexer:
        report = indexer.index(catalog, progress=False)
        assert (report.indexed, report.superseded, report.rejected) == (2, 2, 1)
        assert indexer.store.ids() == {rows[1]["id"], rows[2]["id"]}  # A's earlier row was let go unread


def test_a_replaced_or_deleted_photo_is_a_changed_row(tiny_model: SMARModel, catalog: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-run looks at the image files, not only their names: a photo replaced under the same name is encoded
    again, and a deleted one is rejected as on a first run while the stored product stays."""
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    photo = catalog.parent / rows[0]["image"]
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store")) as indexer:
        indexer.index(catalog, progress=False)
        write_jpeg(photo, (10, 200, 30), size=(64, 48))  # another picture, same file name
        replaced = indexer.index(catalog, progress=False)
        assert (replaced.indexed, replaced.unchanged, replaced.rejected) == (1, 29, 0)
        (stored,) = indexer.store.search(tiny_model.encode_items([rows[0]], base_dir=catalog.parent), k=1)[0]
        assert stored.id == rows[0]["id"] and stored.score == pytest.approx(1.0, abs=1e-5)  # the new photo's vector
        copy = shutil.copytree(catalog.parent, tmp_path / "copy", copy_function=shutil.copyfile,
                               ignore=shutil.ignore_patterns("store", "copy"))  # new modification times, same bytes
        assert indexer.index(copy / catalog.name, progress=False).unchanged == 30
        photo.unlink()
        deleted = indexer.index(catalog, progress=False)
        assert (deleted.indexed, deleted.unchanged, deleted.rejected) == (0, 29, 1)
        assert "not found" in deleted.rejections[0].reason and indexer.store.count() == 30
        write_jpeg(photo, (200, 10, 30))
        with monkeypatch.context() as legacy:  # a store written before the hash read image bytes ...
            legacy.setattr(ImageLoader, "version", lambda self, reference: reference)
            assert indexer.index(catalog, progress=False, resume=False).indexed == 30
        reads: list[str] = []
        with monkeypatch.context() as counting:
            counting.setattr(ImageLoader, "_read_file", lambda self, reference: reads.append(reference) or b"")
            upgraded = indexer.index(catalog, progress=False)  # ... is kept as it is, not re-encoded on upgrade
        assert (upgraded.indexed, upgraded.unchanged) == (0, 30) and reads == []  # nor are its photos read again
        url = Product(line=1, id="u", text="t", image="https://example.com/a.jpg", payload={})
        assert indexer.content_hash(url, loader=ImageLoader()) == indexer.content_hash(url)  # URL rows: as before


def test_prune_with_a_connector_that_cannot_list_ids_stops_before_any_work(tiny_model: SMARModel, catalog: Path,
                                                                           tmp_path: Path) -> None:
    class NoIds:  # a third-party connector without the optional ids()
        def __init__(self, store) -> None:
            self.inner, self.collection = store, store.collection

        def __getattr__(self, name: str):
            if name == "ids":
                raise AttributeError(name)
            return getattr(self.inner, name)

    with open_store("qdrant", uri=str(tmp_path / "store")) as store, SMARIndexer(tiny_model, store=NoIds(store)) as ix:
        with pytest.raises(StoreError, match="NoIds connector cannot list its ids, so it cannot prune"):
            ix.index(catalog, prune=True, progress=False)
        assert store.dimension() is None  # nothing was created or encoded
        assert ix.index(catalog, progress=False).indexed == 30


def test_prune_of_an_only_subset_is_refused(tiny_model: SMARModel, catalog: Path, tmp_path: Path) -> None:
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store")) as indexer:
        indexer.index(catalog, progress=False)
        with pytest.raises(ValueError, match="would delete every stored product outside the only= subset"):
            indexer.index(catalog, only={"gender": "Women"}, prune=True, progress=False)
        assert indexer.store.count() == 30
    with SMARIndexer(tiny_model, uri=str(tmp_path / "other")) as indexer:
        with pytest.raises(TypeError, match="only\\['gender'\\] must be a string, number or boolean"):
            indexer.index(catalog, only={"gender": ["Women"]}, progress=False)
        assert indexer.store.dimension() is None  # refused before the collection was created
        of_2011 = sum(json.loads(line)["year"] == 2011 for line in catalog.read_text().splitlines())
        assert indexer.index(catalog, only={"year": np.int64(2011)}, progress=False).indexed == of_2011 > 0


def test_repeated_id_keeps_its_last_good_row_across_resumed_runs(tiny_model: SMARModel, catalog: Path,
                                                                  tmp_path: Path) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()][:3]
    old, new = {**rows[0], "title": "old title"}, {**rows[0], "title": "new title"}
    broken = {**rows[0], "title": "broken last", "image": "images/missing.jpg"}
    broken_first = {**broken, "title": "broken first"}
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store")) as indexer:
        catalog.write_text(json.dumps(new) + "\n")
        indexer.index(catalog, progress=False)
        catalog.write_text("".join(json.dumps(r) + "\n" for r in (broken_first, old, new, broken, rows[1])))
        for _ in range(2):  # the stored row is the last good one, and stays it on every re-run
            report = indexer.index(catalog, progress=False)
            (hit,) = indexer.store.search(tiny_model.encode_queries(["x"]), k=5,
                                          conditions=parse_filter({"title": ["old title", "new title"]}))[0]
            assert hit.payload["title"] == "new title" and report.rejected == 2  # a replaced broken row still counts
        assert (report.indexed, report.superseded, report.unchanged) == (0, 1, 2)  # old: superseded by new


def test_repeated_id_in_two_batches_keeps_its_last_row_on_every_run(tiny_model: SMARModel, catalog: Path,
                                                                    tmp_path: Path) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()][:3]
    first, last = {**rows[0], "title": "first title"}, {**rows[0], "title": "last title"}
    catalog.write_text("".join(json.dumps(r) + "\n" for r in (first, rows[1], rows[2], last)))
    titles = parse_filter({"title": ["first title", "last title"]})
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store"), batch_size=2) as indexer:  # batches: 2 rows each
        for run in range(3):  # a batch's stored hashes are read before the batch ahead of it is written
            report = indexer.index(catalog, progress=False)
            (hit,) = indexer.store.search(tiny_model.encode_queries(["x"]), k=5, conditions=titles)[0]
            assert hit.payload["title"] == "last title"
            # the first row is never encoded, and an unchanged re-run encodes nothing
            assert (report.indexed, report.unchanged, report.superseded) == ((3, 0, 1) if run == 0 else (0, 3, 1))
        broken_last = {**last, "title": "broken last", "image": "images/missing.jpg"}
        catalog.write_text("".join(json.dumps(r) + "\n" for r in (first, rows[1], rows[2], broken_last)))
        report = indexer.index(catalog, progress=False)  # the last good row is the first one, two batches back
        (hit,) = indexer.store.search(tiny_model.encode_queries(["x"]), k=5, conditions=titles)[0]
        assert hit.payload["title"] == "first title" and report.rejected == 1
        assert (report.indexed, report.unchanged, report.superseded) == (1, 2, 0)


def test_a_store_that_refuses_the_model_leaves_the_rejects_file(tiny_model: SMARModel, catalog: Path,
                                                                tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.jsonl"
    rejects.write_text('{"line": 7, "reason": "from the last run"}\n')
    uri = str(tmp_path / "store")
    with SMARIndexer(tiny_model, uri=uri) as indexer:
        indexer.store.ensure_collection(tiny_model.dim + 1)  # a collection made for another model
        with pytest.raises(VectorSizeError):
            indexer.index(catalog, rejects_path=rejects, progress=False)
    assert "from the last run" in rejects.read_text()


def test_rejects_file_may_not_be_the_catalog_and_empty_catalogs_prune_nothing(tiny_model: SMARModel, catalog: Path,
                                                                              tmp_path: Path) -> None:
    before = catalog.read_text()
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store")) as indexer:
        indexer.index(catalog, progress=False)
        with pytest.raises(CatalogError, match="is the catalog itself"):
            indexer.index(catalog, rejects_path=catalog.parent / "." / catalog.name, prune=True, progress=False)
        assert catalog.read_text() == before
        empty = tmp_path / "empty.jsonl"
        empty.write_text("\n")
        assert indexer.index(empty, prune=True, progress=False).pruned == 0 and indexer.store.count() == 30
    rejects = tmp_path / "rejects.jsonl"
    rejects.write_text("kept\n")
    with SMARIndexer(tiny_model, uri=str(tmp_path / "other")) as indexer:
        with pytest.raises(CatalogError, match="is a folder; give the JSON Lines file in it"):
            indexer.index(catalog.parent, rejects_path=rejects)
        assert rejects.read_text() == "kept\n" and indexer.store.dimension() is None  # nothing made or erased
        report = indexer.index(catalog, only={"colour": "Chartreuse"}, progress=False)
        assert report.indexed == report.rejected == 0 and indexer.store.dimension() is None  # no empty collection


def test_blank_queries_and_a_bare_string_are_refused(tiny_model: SMARModel, catalog: Path, tmp_path: Path) -> None:
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store")) as indexer:
        indexer.index(catalog, progress=False)
    with SMARRetriever(tiny_model, uri=str(tmp_path / "store")) as retriever:
        for query in ("", "   "):
            with pytest.raises(ValueError, match="non-blank"):
                retriever.search(query)
        with pytest.raises(ValueError, match=r"query 1 \('blue \\udce9 bag'\) holds a lone surrogate escape"):
            retriever.search_many(["red dress", "blue \udce9 bag"])  # the tokenizer would raise a bare TypeError
        with pytest.raises(TypeError, match="list of queries"):
            retriever.search_many("red dress")
        assert retriever.search_many([]) == []
        assert [len(hits) for hits in retriever.search_many(q for q in ("red dress", "blue bag"))] == [10, 10]
        for k in (0, "3", True, 10**20, 2.0):
            with pytest.raises(ValueError, match="k must be an integer from 1 to 16,384"):
                retriever.search("red dress", k=k)
        assert len(retriever.search("red dress", k=np.int64(4))) == 4


def test_arguments_of_the_wrong_kind_are_named_at_once(tiny_model: SMARModel, catalog: Path, tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    with pytest.raises(TypeError, match="model must be a SMARModel .*got 'model'"):
        SMARRetriever("model", uri=uri)
    for store in (None, 123):
        with pytest.raises(TypeError, match=f"store must be a connector name .*got {store}"):
            SMARRetriever(tiny_model, store=store)
    with pytest.raises(TypeError, match="mapping must be a FieldMapping or a dict .*got 'sku'"):
        SMARIndexer(tiny_model, uri=uri, mapping="sku")
    with pytest.raises(TypeError, match="mapping has no field 'id_fld'; its fields are id_field, text_fields"):
        SMARIndexer(tiny_model, uri=uri, mapping={"id_fld": "sku"})  # not pydantic's multi-line error
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    with SMARIndexer(tiny_model, uri=uri) as indexer, catalog.open() as handle:
        for in_memory in (rows, iter(rows), handle):
            with pytest.raises(TypeError, match=r"catalog is the path of a JSON Lines file, got .*index_rows\(rows\)"):
                indexer.index(in_memory)
        assert indexer.index(str(catalog), progress=False).indexed == len(rows)  # a path as text works


def test_rows_in_memory_index_like_their_catalog_file(tiny_model: SMARModel, catalog: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    numpy_rows = [{**row, "year": np.int64(row["year"]), "sizes": np.array([38, 40])} for row in rows]
    with SMARIndexer(tiny_model, uri=str(tmp_path / "file")) as from_file:
        from_file.index(catalog, progress=False)
        expected = from_file.store.search(tiny_model.encode_queries(["red shirt"]), 30)[0]
    with SMARIndexer(tiny_model, uri=str(tmp_path / "rows")) as indexer:
        report = indexer.index_rows(iter(numpy_rows), images_dir=catalog.parent, progress=False)
        assert (report.indexed, report.rejected) == (30, 0)
        hits = indexer.store.search(tiny_model.encode_queries(["red shirt"]), 30)[0]
        assert [h.id for h in hits] == [h.id for h in expected]
        assert np.allclose([h.score for h in hits], [h.score for h in expected], atol=1e-5)
        assert hits[0].payload["year"] == next(r["year"] for r in rows if r["id"] == hits[0].id)
        assert hits[0].payload["sizes"] == [38, 40]
        assert indexer.index_rows(numpy_rows, images_dir=catalog.parent, progress=False).unchanged == 30  # resumes
        monkeypatch.chdir(catalog.parent)  # relative images start from the working directory by default
        broken = [numpy_rows[0], {**rows[1], "image": "images/missing.jpg"}, {**rows[2], "year": float("nan")}]
        report = indexer.index_rows(broken, progress=False)
        assert (report.unchanged, report.rejected) == (1, 2)
        assert [(r.line, r.id) for r in report.rejections] == [(2, rows[1]["id"]), (3, rows[2]["id"])]
        assert "missing.jpg" in report.rejections[0].reason and "NaN" in report.rejections[1].reason
        assert indexer.store.count() == 30  # nothing lost


def test_rows_that_cannot_be_written_stop_before_anything_is_indexed(tiny_model: SMARModel, catalog: Path,
                                                                     tmp_path: Path) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store")) as indexer:
        for bad, message in [([rows[0], ["sku-1", "red shirt"]], "row 2 is a list, not a mapping"),
                             ([rows[0], {**rows[1], "added": {1, 2}}], "row 2 cannot be written as JSON .*set"),
                             ([rows[0], rows[1], {**rows[2], "when": datetime.date(2024, 1, 1)}],
                              "row 3 cannot be written as JSON .*date")]:
            with pytest.raises(CatalogError, match=message):
                indexer.index_rows(bad, images_dir=catalog.parent, progress=False)
        assert indexer.store.count() == 0
        with pytest.raises(TypeError, match="must be an iterable of rows .*got one dict"):
            indexer.index_rows(rows[0])
        with pytest.raises(CatalogError, match="images_dir .* is not a folder"):
            indexer.index_rows(rows, images_dir=catalog)
        with pytest.raises(CatalogError, match=r"^rows: none of its 1 rows has the field 'image' \(--image-field, "
                                               r"FieldMapping.image_field\); its rows have 'id', 'img', 'title'"):
            indexer.index_rows([{"id": "a", "title": "red shirt", "img": "a.jpg"}], progress=False)
        surrogate = indexer.index_rows([{**rows[0], "title": "red \ud800 shirt"}], images_dir=catalog.parent,
                                       progress=False)
        assert surrogate.rejected == 1 and "lone surrogate" in surrogate.rejections[0].reason


def test_a_field_mapping_may_be_a_dict(tiny_model: SMARModel, catalog: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    catalog.write_text("".join(json.dumps({**{k: v for k, v in r.items() if k != "id"}, "sku": r["id"]}) + "\n"
                               for r in rows))
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store"), mapping={"id_field": "sku"}) as indexer:
        assert indexer.mapping.text_fields == tiny_model.config.text_fields
        assert indexer.index(catalog, progress=False).indexed == 30 and indexer.store.ids() == {r["id"] for r in rows}


def test_indexer_arguments_are_checked_and_config_changes_reencode(tiny_model_dir: Path, catalog: Path,
                                                                   tmp_path: Path) -> None:
    model = SMARModel.load(tiny_model_dir)
    for bad, message in [({"view": "txt"}, "view must be one of"), ({"batch_size": 0}, "batch_size"),
                         ({"loader_threads": 0}, "loader_threads")]:
        with pytest.raises(ValueError, match=message):
            SMARIndexer(model, uri=str(tmp_path / "unused"), **bad)
    with SMARIndexer(model, uri=str(tmp_path / "store")) as indexer:
        assert indexer.index(catalog, progress=False).indexed == 30
        model.config.image_blend = 0.3  # a second-stage weight changed in code changes every stored vector
        again = indexer.index(catalog, progress=False)
        assert (again.indexed, again.unchanged) == (30, 0)
        assert indexer.index(catalog, progress=False).unchanged == 30


def test_loader_threads_decode_a_batch_in_parallel(tiny_model: SMARModel, catalog: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    from smar_sdk.images import ImageLoader

    original, lock, state = ImageLoader.load, threading.Lock(), {"now": 0, "peak": 0}

    def slow_load(self: ImageLoader, reference: object):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.1)
        try:
            return original(self, reference)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(ImageLoader, "load", slow_load)
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store"), batch_size=8, loader_threads=4) as indexer:
        assert indexer.index(catalog, progress=False).indexed == 30
    assert state["peak"] >= 3, state  # 4 threads decode one batch's 8 images together


def test_store_options_next_to_an_open_store_are_refused(tiny_model: SMARModel, tmp_path: Path) -> None:
    with open_store("qdrant", uri=str(tmp_path / "store")) as store:
        for options, named in [({"collection": "other"}, "collection"), ({"uri": "elsewhere"}, "uri"),
                               ({"hnsw_ef": 64}, "hnsw_ef")]:
            with pytest.raises(ValueError, match=f"so {named} would be ignored"):
                SMARRetriever(tiny_model, store=store, **options)
        assert SMARRetriever(tiny_model, store=store, collection="products").store is store


def test_a_shared_store_builds_its_search_index_when_asked(tiny_model: SMARModel, catalog: Path,
                                                            tmp_path: Path) -> None:
    """A service that shares its store with an indexer gets the HNSW index over new rows from build_index(), not
    only when the store closes (Qdrant Edge builds it on optimize(), holding the interpreter meanwhile)."""
    with (open_store("qdrant", uri=str(tmp_path / "store"), indexing_threshold_kb=1) as store,
          SMARIndexer(tiny_model, store=store) as indexer):
        assert indexer.index(catalog, progress=False).indexed == 30
        assert store._shard.info().indexed_vectors_count == 0  # noqa: SLF001 - the engine's own count
        assert indexer.build_index() and store._shard.info().indexed_vectors_count == 30  # noqa: SLF001
        assert not indexer.build_index()  # nothing left to build


def test_objects_say_what_they_hold(tiny_model: SMARModel, tmp_path: Path) -> None:
    """Notebook users see the store, collection and size, never a password; type checkers see a typed package."""
    from smar_sdk import QuerySynonyms

    uri = str(tmp_path / "store")
    with SMARRetriever(tiny_model, uri=uri, collection="shop") as retriever:
        assert repr(retriever) == f"<SMARRetriever store=QdrantEdgeStore({uri!r}) collection='shop' dim=16>"
        assert repr(retriever.store) == f"<QdrantEdgeStore {uri!r} collection='shop'>"
    server = open_store("qdrant", uri="http://admin:hunter2@127.0.0.1:9", timeout=1)
    assert repr(server) == "<QdrantStore 'http://***@127.0.0.1:9' collection='products'>"
    server.close()
    assert repr(QuerySynonyms([["sunglasses", "sunnies", "shades"]])) == "<QuerySynonyms of 2 phrases>"
    assert repr(QuerySynonyms([["sneakers", "kicks"]])) == "<QuerySynonyms of 1 phrase>"
    assert all((Path(package.__file__).parent / "py.typed").is_file()
               for package in (__import__("smar_sdk"), __import__("smar_qdrant"), __import__("smar_milvus")))


def test_the_progress_bar_is_for_terminals_unless_asked(tiny_model: SMARModel, catalog: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store")) as indexer:
        indexer.index(catalog)  # stderr is captured here, not a terminal: a service's logs get no bar
        assert "indexing catalog.jsonl" not in capsys.readouterr().err
        indexer.index(catalog, progress=True)
        assert "indexing catalog.jsonl: 100%" in capsys.readouterr().err


def test_a_store_that_cannot_take_the_vectors_fails_before_the_catalog_is_read(
        tiny_model: SMARModel, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong vector size is told at once, not after a read-ahead over a large catalog."""
    with open_store("qdrant", uri=str(tmp_path / "store")) as store:
        store.ensure_collection(tiny_model.dim + 1)
    monkeypatch.setattr("smar_sdk.indexer._read_ahead", lambda *a: pytest.fail("the catalog was read first"))
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store")) as indexer, pytest.raises(VectorSizeError):
        indexer.index(catalog, progress=False)


@pytest.mark.parametrize("store", ["qdrant", "milvus"])
def test_a_price_change_rewrites_the_payload_and_keeps_the_vector(tiny_model: SMARModel, catalog: Path,
                                                                  tmp_path: Path, store: str) -> None:
    """A shop's daily price and stock changes re-encode nothing: only text and image make the vector."""
    pytest.importorskip("pymilvus") if store == "milvus" else None
    uri = str(tmp_path / ("store.db" if store == "milvus" else "store"))
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    with SMARIndexer(tiny_model, store=store, uri=uri) as indexer:
        assert indexer.index(catalog, progress=False).indexed == 30
        before = {h.id: h.score for h in SMARRetriever(tiny_model, store=indexer.store).search("red shirt", k=30)}
        repriced = [{**row, "price": 9.99, "in_stock": False} for row in rows]
        repriced[3]["title"] = "green denim jacket"  # its text changed: encoded again
        catalog.write_text("".join(json.dumps(row) + "\n" for row in repriced))
        report = indexer.index(catalog, progress=False)
        assert (report.indexed, report.payload_only, report.unchanged) == (1, 29, 0)
        hits = SMARRetriever(tiny_model, store=indexer.store).search("red shirt", k=30)
        assert all(h.payload["price"] == 9.99 and h.payload["in_stock"] is False for h in hits)
        assert {h.id: h.score for h in hits if h.id != rows[3]["id"]} == pytest.approx(
            {i: score for i, score in before.items() if i != rows[3]["id"]}, abs=1e-5)  # the same vectors
        assert indexer.index(catalog, progress=False).unchanged == 30  # and a re-run finds them all stored
        (catalog.parent / rows[5]["image"]).write_bytes((catalog.parent / rows[29]["image"]).read_bytes())
        changed = indexer.index(catalog, progress=False)  # a photo replaced under the same name is encoded
        assert (changed.indexed, changed.payload_only, changed.unchanged) == (1, 0, 29)


def test_indexing_with_another_number_of_text_fields_is_warned(tiny_model: SMARModel, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store"), mapping={"text_fields": ["name"]}):
        assert not caplog.text  # another name for the one field the model knows is a shop's own naming
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store"), mapping={"text_fields": ["brand", "name"]}):
        assert "the model was trained on 1 text field(s) ['title'], and this indexer joins 2: ['brand', 'name']" \
            in caplog.text

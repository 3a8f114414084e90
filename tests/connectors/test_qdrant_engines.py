"""The Qdrant connector's embedded engines: a folder keeps the engine that wrote it, mixing is refused."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from smar_qdrant import QdrantStore
from smar_qdrant.edge import QdrantEdgeStore, edge_folder  # imports qdrant_edge lazily
from smar_qdrant.store import select_engine

from smar_sdk.errors import StoreError

pytest.importorskip("qdrant_edge")


def fill(store: QdrantStore) -> None:
    with store:
        store.ensure_collection(4)
        store.upsert(["a", "b"], np.eye(4, dtype=np.float32)[:2], [{"n": 1}, {"n": 2}])


@pytest.mark.parametrize("engine", ["local", "edge"])
def test_folder_keeps_its_engine(tmp_path: Path, engine: str) -> None:
    uri = str(tmp_path / "store")
    fill(QdrantStore(uri=uri, engine=engine))  # type: ignore[arg-type]
    assert select_engine(uri) == engine
    with QdrantStore(uri=Path(uri)) as store:  # a pathlib.Path names the folder as its text does
        assert isinstance(store, QdrantEdgeStore) == (engine == "edge")
        assert store.count() == 2
        assert store.search(np.eye(4, dtype=np.float32)[1], k=1)[0][0].id == "b"
    other = "edge" if engine == "local" else "local"
    with pytest.raises(StoreError, match=f"engine='{engine}'"):
        QdrantStore(uri=uri, engine=other)  # type: ignore[arg-type]


def test_new_folders_get_qdrant_edge(tmp_path: Path) -> None:
    """The embedded default is Qdrant Edge (BENCHMARKS.md: 0.35 ms vs 119 ms for local mode at 35k real vectors)."""
    from smar_sdk.store import open_store

    uri = str(tmp_path / "fresh")
    with open_store("qdrant", uri=uri) as store:  # what `smar-sdk index` opens with no --store options
        assert isinstance(store, QdrantEdgeStore)
        store.ensure_collection(4)
    assert select_engine(uri) == "edge" and not (tmp_path / "fresh" / "meta.json").exists()


def test_a_home_folder_uri_is_expanded_where_no_shell_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from smar_sdk.store import open_store

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with open_store("qdrant", uri="~/store") as store:  # as SMAR_URI=~/store in an env file gives it
        store.ensure_collection(4)
        assert store.uri == str(tmp_path / "store")
    assert select_engine(tmp_path / "store") == "edge" and not (tmp_path / "~").exists()


def test_a_collection_name_too_long_for_a_folder_is_named(tmp_path: Path) -> None:
    fill(QdrantStore(uri=tmp_path / "store"))
    for name in ("x" * 256, "漢" * 30):  # 270 characters percent-encoded
        with pytest.raises(StoreError, match="too long for Qdrant Edge, .*: choose a shorter --collection"):
            QdrantStore(uri=tmp_path / "store", collection=name)
    assert QdrantStore(uri=tmp_path / "store", collection="漢" * 20).count() == 0  # 180 characters fit


def test_edge_options_elsewhere_name_the_engine_not_the_connector(tmp_path: Path) -> None:
    from smar_sdk.store import open_store

    fill(QdrantStore(uri=tmp_path / "local", engine="local"))
    server = ("http://user:pw@localhost:6333", {"exact": True}, r"http://\*\*\*@localhost:6333 is a Qdrant server")
    for uri, options, where in [(tmp_path / "local", {"hnsw_ef": 128}, "is a local-mode folder"), server]:
        with pytest.raises(StoreError, match=f"options of the embedded Qdrant Edge engine only, and .*{where}"):
            open_store("qdrant", uri=uri, **options)
    with pytest.raises(StoreError, match="connector 'qdrant' does not take the option 'hnsw_eff'"):
        open_store("qdrant", uri=tmp_path / "local", hnsw_eff=1)  # a misspelling is still the connector's


def test_edge_options_without_the_edge_package_say_to_install_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from smar_sdk.store import open_store

    monkeypatch.setattr("smar_qdrant.store.default_engine", lambda: "local")  # as without qdrant-edge-py
    with pytest.raises(StoreError, match=r"qdrant-edge-py is not installed, .*\(pip install qdrant-edge-py\)"):
        open_store("qdrant", uri=tmp_path / "new", hnsw_ef=128)


def test_a_new_qdrant_folder_named_like_a_milvus_lite_store_is_questioned(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="smar_qdrant.store"):
        fill(QdrantStore(uri=tmp_path / "shop.db"))
        assert "shop.db will be a Qdrant folder; a name ending in .db is a Milvus Lite store's" in caplog.text
        caplog.clear()
        QdrantStore(uri=tmp_path / "shop.db").close()  # an existing Qdrant folder: no question
        assert not caplog.text


def test_engine_is_for_folders_only() -> None:
    with pytest.raises(StoreError, match="embedded folders"):
        QdrantStore(uri="http://localhost:6333", engine="edge")
    with pytest.raises(StoreError, match="unknown Qdrant engine"):
        QdrantStore(uri="somewhere", engine="rocks")  # type: ignore[arg-type]


@pytest.mark.parametrize("uri", ["localhost:6333", "qdrant.internal:6334/", "ftp://host/x", "grpc://host:6334"])
def test_a_server_address_without_http_is_refused_not_made_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    uri: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match=f"--uri '{uri}' looks like a server address.*http://localhost:6333"):
        QdrantStore(uri=uri)
    assert list(tmp_path.iterdir()) == []  # no folder named after it
    (tmp_path / "shop:1").mkdir()  # an existing folder of that look is a folder
    QdrantStore(uri="shop:1").close()


def test_edge_options_and_optimize(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    ids = [str(i) for i in range(300)]
    with QdrantStore(uri=str(tmp_path / "s"), engine="edge", hnsw_m=8, full_scan_threshold=10, hnsw_ef=64) as store:
        store.ensure_collection(8)
        store.upsert(ids, vectors, [{}] * 300)
        assert isinstance(store, QdrantEdgeStore)
        store.optimize()
        assert store.search(vectors[7], k=1)[0][0].id == "7"
        store.exact = True
        queries = rng.normal(size=(5, 8)).astype(np.float32)
        expected = np.argsort(-(queries / np.linalg.norm(queries, axis=1, keepdims=True))
                              @ (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).T, axis=1)[:, :10]
        assert [[int(h.id) for h in hits] for hits in store.search(queries, k=10)] == expected.tolist()


def test_a_store_opened_before_the_collection_existed_is_told_to_open_it_again(tmp_path: Path) -> None:
    """A reader never opens what another process made later (the first opener locks the folder); it says what to do."""
    uri = str(tmp_path / "store")
    with QdrantEdgeStore(uri=uri) as service:
        assert service.count() == 0
        fill(QdrantEdgeStore(uri=uri))  # the index run (another process in production)
        for use in (lambda: service.search(np.eye(4, dtype=np.float32)[1], k=1), service.count, service.ids,
                    lambda: service.stored_hashes(["b"]), lambda: service.delete(["b"])):  # never "empty"
            with pytest.raises(StoreError, match=r"created after this store opened \(by another process or store "
                                                 r"object\): open the store again"):
                use()
    with QdrantEdgeStore(uri=uri) as reopened:
        assert reopened.search(np.eye(4, dtype=np.float32)[1], k=1)[0][0].id == "b"


def test_an_indexer_opened_before_another_made_the_collection_uses_it(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    with QdrantEdgeStore(uri=uri) as indexer:
        fill(QdrantEdgeStore(uri=uri))
        indexer.ensure_collection(4)  # once "path already contains segment data"
        assert indexer.count() == 2


def test_a_collection_folder_without_a_finished_collection_is_named(tmp_path: Path) -> None:
    unfinished = edge_folder(tmp_path / "store", "products")
    (unfinished / "segments").mkdir(parents=True)  # what a creation killed before staging folders left
    with QdrantEdgeStore(uri=str(tmp_path / "store")) as store, \
            pytest.raises(StoreError, match="holds an unfinished one: run again .* or delete that folder"):
        store.ensure_collection(4)
    assert [p.name for p in unfinished.parent.iterdir()] == ["products"]  # the staging folder is removed


def test_threads_sharing_a_store_create_its_collection_once(tmp_path: Path) -> None:
    with QdrantEdgeStore(uri=str(tmp_path / "store")) as store:
        start = threading.Barrier(8)

        def create(_: int) -> int:
            start.wait()
            store.ensure_collection(4)
            return store.count()

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(create, range(8))) == [0] * 8
    assert [p.name for p in (tmp_path / "store" / "edge").iterdir()] == ["products"]  # no staging folder left


def test_a_second_open_names_who_holds_it(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    fill(QdrantEdgeStore(uri=uri))
    forgotten = QdrantEdgeStore(uri=uri)  # a notebook cell run twice: the first store was never closed
    with pytest.raises(StoreError, match=r"this process already has it open, through a store that was not closed .*"
                                         r"close\(\) that one first, or share it"):
        QdrantEdgeStore(uri=str(tmp_path / "." / "store" / ".." / "store"))  # the same folder, spelled otherwise
    forgotten.close()
    QdrantEdgeStore(uri=uri).close()  # closed, it is free
    holder = subprocess.Popen([sys.executable, "-c", f"from smar_qdrant.edge import QdrantEdgeStore; "
                               f"s = QdrantEdgeStore(uri={uri!r}); print('open', flush=True); input()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        with pytest.raises(StoreError, match="one store at a time: stop the other process using it, or, in one "
                                             "process, open the store once"):
            QdrantEdgeStore(uri=uri)
    finally:
        holder.communicate("\n", timeout=60)


KILLED_WRITER = """
import os, numpy as np
from smar_qdrant.edge import QdrantEdgeStore
store = QdrantEdgeStore(uri={uri!r}, indexing_threshold_kb=1)
store.ensure_collection(8)
vectors = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
store.upsert([str(i) for i in range(300)], vectors, [{{}}] * 300)
os._exit(0)  # killed before close(), which would have built the index
"""


def test_a_writer_builds_the_index_a_killed_run_left_unbuilt(tmp_path: Path) -> None:
    """The re-run of a killed index run finds every row unchanged and writes nothing; it still builds the index."""
    uri = str(tmp_path / "store")
    subprocess.run([sys.executable, "-c", KILLED_WRITER.format(uri=uri)], check=True)
    with QdrantEdgeStore(uri=uri) as reader:  # a reader leaves the store as it is
        assert reader.count() == 300 and reader._live().info().indexed_vectors_count == 0
    with QdrantEdgeStore(uri=uri) as rerun:
        rerun.ensure_collection(8)  # what SMARIndexer does first
    with QdrantEdgeStore(uri=uri) as reader:
        assert reader._live().info().indexed_vectors_count == 300


def test_collections_smar_sdk_did_not_make_are_refused(tmp_path: Path) -> None:
    from qdrant_client import QdrantClient, models

    uri = str(tmp_path / "theirs")
    client = QdrantClient(path=uri)  # a folder another program filled through qdrant-client
    cosine = models.VectorParams(size=4, distance=models.Distance.COSINE)
    client.create_collection("products", vectors_config=cosine)
    client.upsert("products", points=[models.PointStruct(id=1, vector=[1.0, 0, 0, 0], payload={"title": "theirs"})])
    client.create_collection("named", vectors_config={"text": cosine})
    client.close()
    foreign_point = r"'products' holds a point smar-sdk did not write \(point id 1, .*--collection"
    with QdrantStore(uri=uri) as store, pytest.raises(StoreError, match=foreign_point):
        store.search(np.eye(4, dtype=np.float32)[:1], k=1)
    named = r"'named' at .* was not made by smar-sdk \(it has named vectors \['text'\]"
    with QdrantStore(uri=uri, collection="named") as store, pytest.raises(StoreError, match=named):
        store.ensure_collection(4)

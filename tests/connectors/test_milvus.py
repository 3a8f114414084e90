"""Milvus-specific behaviour: filter translation, URIs, errors and secrets, metrics, persistence, the CLI end to end."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import traceback
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("pymilvus")

from smar_milvus import MilvusStore, to_milvus_filter  # noqa: E402

from smar_sdk.cli import main  # noqa: E402
from smar_sdk.errors import FilterError, StoreError  # noqa: E402
from smar_sdk.filters import Equals, parse_filter  # noqa: E402


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_filter_translation() -> None:
    assert to_milvus_filter(None) == ""
    assert to_milvus_filter(parse_filter({"gender": "Women"})) == (
        '(payload["gender"] == "Women" or json_contains_any(payload["gender"], ["Women"]))')
    assert to_milvus_filter(parse_filter({"colour": ["Red", "Navy Blue"], "year": {"gte": 2012, "lt": 2016}})) == (
        '(payload["colour"] == "Red" or (payload["colour"] == "Navy Blue" or '
        'json_contains_any(payload["colour"], ["Red", "Navy Blue"]))) and '
        'payload["year"] >= 2012.0 and payload["year"] < 2016.0')
    assert to_milvus_filter(parse_filter({"new": True, "n": 3})) == (
        '(payload["new"] == true or json_contains_any(payload["new"], [true])) and '
        '(payload["n"] == 3 or (payload["n"] == 3.0 or json_contains_any(payload["n"], [3, 3.0])))')
    many = to_milvus_filter(parse_filter({"sku": [f"s{i}" for i in range(1000)]}))  # a tree, not a chain of 1,001
    assert many.count(" or ") == 1000 and max_nesting(many) == 11
    tricky = to_milvus_filter([Equals(field='we"ird\\key', value='a "quoted" \\ value\n女装')])
    assert tricky.startswith('(payload["we\\"ird\\\\key"] == "a \\"quoted\\" \\\\ value\\n女装" or ')
    with pytest.raises(FilterError):
        to_milvus_filter([Equals(field="x", value=float("nan"))])


def max_nesting(expression: str) -> int:
    depth = deepest = 0
    for char in expression:
        depth += (char == "(") - (char == ")")
        deepest = max(deepest, depth)
    return deepest


def test_milvus_lite_compares_true_with_one(tmp_path: Path) -> None:
    """The one documented filter difference: Milvus Lite matches a stored ``true`` with 1 and 1 with ``true`` (in
    equalities, lists and ranges), where Milvus servers, Qdrant and ``matches_conditions`` keep the JSON types apart.
    Should this start failing, Lite has become strict: drop the skip in ``test_booleans_are_not_numbers``."""
    with MilvusStore(uri=tmp_path / "lite.db") as store:  # a pathlib.Path names the file as its text does
        store.ensure_collection(4)
        store.upsert(["true", "one", "zero"], np.eye(4, dtype=np.float32)[:3], [{"f": True}, {"f": 1}, {"f": 0}])

        def found(spec: dict) -> set[str]:
            return {hit.id for hit in store.search(np.ones(4), k=5, conditions=parse_filter(spec))[0]}

        assert found({"f": True}) == found({"f": 1}) == found({"f": {"gte": 1}}) == {"true", "one"}
        assert found({"f": "true"}) == set() and found({"f": False}) == {"zero"}


def test_bad_uri_and_collection_name(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"\.db"):
        MilvusStore(uri=str(tmp_path / "folder"))
    with pytest.raises(StoreError, match="collection name"):
        MilvusStore(uri=str(tmp_path / "x.db"), collection="my-products")
    with pytest.raises(StoreError, match="unknown metric 'cosinus'"):
        MilvusStore(uri=str(tmp_path / "x.db"), metric="cosinus")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StoreError, match="cannot create the folder of Milvus Lite file .*a-file/x.db"):
        MilvusStore(uri=str(tmp_path / "a-file" / "x.db")).ensure_collection(4)
    (tmp_path / "notes.db").write_text("not milvus")
    with pytest.raises(StoreError, match="notes.db is a file, but Milvus Lite keeps its data in a folder"):
        MilvusStore(uri=str(tmp_path / "notes.db"))
    assert (tmp_path / "notes.db").read_text() == "not milvus"


def test_reading_a_missing_lite_file_creates_nothing(tmp_path: Path) -> None:
    """count, search, delete and ids on a .db path that does not exist (or is an empty folder) leave no file or
    folder behind; the first write creates it."""
    uri = tmp_path / "new" / "shop.db"
    with MilvusStore(uri=str(uri)) as store:
        assert store.dimension() is None and store.count() == 0 and store.ids() == set()
        assert store.stored_hashes(["a"]) == {}
        store.delete(["a"])
        with pytest.raises(StoreError, match="does not exist"):
            store.search(np.ones((1, 4), dtype=np.float32), k=1)
    result = CliRunner().invoke(main, ["count", "--store", "milvus", "--uri", str(uri)])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert list(tmp_path.iterdir()) == []
    uri.mkdir(parents=True)  # an empty folder made for it reads as missing too
    result = CliRunner().invoke(main, ["count", "--store", "milvus", "--uri", str(uri)])
    assert result.exit_code == 1 and "does not exist" in result.output and list(uri.iterdir()) == []
    with MilvusStore(uri=str(uri)) as store:
        store.ensure_collection(4)
        store.upsert(["a"], np.ones((1, 4), dtype=np.float32), [{}])
    with MilvusStore(uri=str(uri)) as store:
        assert uri.exists() and store.count() == 1


def test_threads_sharing_a_store_on_a_new_file_open_one_client(tmp_path: Path) -> None:
    """The first write creates the file; readers racing it reuse that client instead of opening the file again."""
    import threading

    def race(store: MilvusStore) -> list[Exception]:
        errors: list[Exception] = []
        started = threading.Barrier(4)

        def use(call) -> None:
            started.wait()
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(exc)

        calls = [lambda: store.ensure_collection(4)] + [lambda: [store.count() for _ in range(20)]] * 3
        threads = [threading.Thread(target=use, args=(call,)) for call in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        store.close()
        return errors

    for trial in range(3):
        assert race(MilvusStore(uri=str(tmp_path / f"race{trial}.db"))) == []


def test_ids_and_values_with_control_characters_round_trip(tmp_path: Path) -> None:
    ids = ["plain", "bad\x01id", "tab\tid", "del\x7f", 'quote"back\\slash\nline', "\\u0001 typed out"]
    with MilvusStore(uri=str(tmp_path / "ctrl.db")) as store:
        store.ensure_collection(4)
        vectors = np.eye(len(ids), 4, dtype=np.float32) + 0.1
        store.upsert(ids, vectors, [{"_smar_hash": f"h-{i}", "title": i} for i in ids])
        assert store.stored_hashes(ids) == {i: f"h-{i}" for i in ids}
        for value in ids:
            (hits,) = store.search(vectors[:1], k=10, conditions=parse_filter({"title": value}))
            assert [h.id for h in hits] == [value]
        store.delete(ids[1:])
        assert store.ids() == {"plain"}


def test_half_created_collection_is_finished(tmp_path: Path) -> None:
    """A run stopped between creating the collection and indexing it leaves no index; the next run completes it."""
    from pymilvus import DataType, MilvusClient

    uri = str(tmp_path / "half.db")
    client = MilvusClient(uri)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=1024)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("payload", DataType.JSON)
    client.create_collection("products", schema=schema)
    assert not client.list_indexes("products", "vector")
    client.close()
    with MilvusStore(uri=uri) as store:
        store.ensure_collection(4)
        assert store.client.list_indexes("products", "vector")  # a server cannot load a collection without one
        store.upsert(["a", "b"], np.eye(4, dtype=np.float32)[:2], [{}, {}])
        assert store.count() == 2 and store.search(np.eye(4, dtype=np.float32)[1], k=1)[0][0].id == "b"


def test_default_uri_is_a_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with MilvusStore() as store:
        store.ensure_collection(4)
        store.upsert(["a"], np.ones((1, 4)), [{}])
        assert store.count() == 1
    assert (tmp_path / "smar.db").exists()


def test_unreachable_server_names_uri_and_hides_secrets() -> None:
    port = closed_port()
    with pytest.raises(StoreError) as caught:
        MilvusStore(uri=f"http://127.0.0.1:{port}", api_key="s3cret-t0ken", timeout=5, retry_seconds=0)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "server running" in message
    assert "s3cret-t0ken" not in message
    with pytest.raises(StoreError) as caught:
        MilvusStore(uri=f"http://alice:hunter2@127.0.0.1:{port}", timeout=5, retry_seconds=0.5)
    assert "hunter2" not in str(caught.value)


def test_cli_error_is_one_line_without_token() -> None:
    result = CliRunner().invoke(main, ["count", "--store", "milvus", "--uri", f"http://127.0.0.1:{closed_port()}",
                                       "--api-key", "s3cret-t0ken", "--retry-seconds", "0"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "Milvus server" in result.output
    assert "s3cret-t0ken" not in result.output


def test_foreign_collection_is_a_clear_error(tmp_path: Path) -> None:
    from pymilvus import MilvusClient

    uri = str(tmp_path / "f.db")
    client = MilvusClient(uri)
    client.create_collection("theirs", dimension=4)
    client.close()
    with MilvusStore(uri=uri, collection="theirs") as store, pytest.raises(StoreError, match="not made by smar-sdk"):
        store.ensure_collection(4)


def test_data_persists_across_processes(tmp_path: Path) -> None:
    uri = str(tmp_path / "shared.db")
    writer = (
        "import numpy as np\nfrom smar_milvus import MilvusStore\n"
        f"with MilvusStore(uri={uri!r}) as s:\n"
        "    s.ensure_collection(4)\n"
        "    s.upsert(['a', 'b'], np.eye(4)[:2], [{'t': 'ä'}, {'t': 'b'}])\n"
    )
    subprocess.run([sys.executable, "-c", writer], check=True, timeout=300)
    with MilvusStore(uri=uri) as store:
        assert store.count() == 2
        assert store.search(np.eye(4)[0], k=1)[0][0].payload == {"t": "ä"}


def test_a_file_open_in_another_process_is_one_clear_error(tmp_path: Path) -> None:
    uri = str(tmp_path / "held.db")
    holder = subprocess.Popen([sys.executable, "-c", (
        f"import sys\nfrom smar_milvus import MilvusStore\ns = MilvusStore(uri={uri!r})\ns.ensure_collection(4)\n"
        "print('open', flush=True)\nsys.stdin.read()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        result = subprocess.run([sys.executable, "-m", "smar_sdk", "count", "--store", "milvus", "--uri", uri],
                                capture_output=True, text=True, timeout=300)
    finally:
        holder.communicate("", timeout=120)
    assert result.returncode == 1 and "is another process using this file" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with MilvusStore(uri=uri) as store:  # released: the file opens again, nothing lost
        assert store.count() == 0


# ----- the real CLI, Milvus against embedded Qdrant on the same catalog and model -----
def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    trace = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
    assert result.exit_code == 0, f"smar-sdk {' '.join(args)} -> exit {result.exit_code}\n{result.output}\n{trace}"
    return result.stdout


@pytest.mark.parametrize("where", ["milvus-lite", pytest.param(
    "milvus-server", marks=[pytest.mark.integration, pytest.mark.slow])])
def test_cli_index_and_search_match_qdrant(where: str, request: pytest.FixtureRequest, tiny_model_dir: Path,
                                           catalog: Path, tmp_path: Path) -> None:
    milvus_uri = str(tmp_path / "milvus.db") if where == "milvus-lite" else request.getfixturevalue("milvus_server_uri")
    collection = f"e2e_{uuid.uuid4().hex[:10]}"
    stores = {"qdrant": str(tmp_path / "qdrant"), "milvus": milvus_uri}
    model = ["--model", str(tiny_model_dir)]
    for store, uri in stores.items():
        where_args = ["--store", store, "--uri", uri, "--collection", collection]
        report = json.loads(cli("index", str(catalog), *model, *where_args, "--quiet", "--json"))
        assert (report["indexed"], report["rejected"]) == (30, 0)
    milvus_args = ["--store", "milvus", "--uri", milvus_uri, "--collection", collection]
    assert cli("count", *milvus_args).strip() == "30"
    again = json.loads(cli("index", str(catalog), *model, *milvus_args, "--quiet", "--json", "--prune"))
    assert (again["indexed"], again["unchanged"], again["pruned"]) == (0, 30, 0)  # resumed through stored_hashes
    smaller = catalog.with_name("smaller.jsonl")
    smaller.write_text("".join(catalog.read_text().splitlines(keepends=True)[:25]))
    pruned = json.loads(cli("index", str(smaller), *model, *milvus_args, "--quiet", "--json", "--prune"))
    assert (pruned["unchanged"], pruned["pruned"]) == (25, 5)  # pruned through ids() and delete()
    assert cli("count", *milvus_args).strip() == "25"
    cli("index", str(catalog), *model, *milvus_args, "--quiet")
    for extra in ([], ["--filter", "gender=Women", "--filter", "colour=red,blue"]):
        hits = {store: json.loads(cli("search", "red shirt", "-k", "10", *model, "--store", store, "--uri", uri,
                                      "--collection", collection, "--json", *extra))["hits"]
                for store, uri in stores.items()}
        ranked = {store: [(h["id"], round(h["score"], 5)) for h in store_hits] for store, store_hits in hits.items()}
        assert len(hits["milvus"]) == (10 if not extra else 5), ranked
        assert [h["id"] for h in hits["milvus"]] == [h["id"] for h in hits["qdrant"]], (extra, ranked)
        assert [h["score"] for h in hits["milvus"]] == pytest.approx([h["score"] for h in hits["qdrant"]], abs=1e-4)
        assert hits["milvus"] == [{**h, "score": m["score"]} for h, m in zip(hits["qdrant"], hits["milvus"],
                                                                             strict=True)]


def test_a_folder_of_the_other_database_is_refused_untouched(tmp_path: Path) -> None:
    from smar_sdk.store import open_store

    vector = np.ones((1, 4), dtype=np.float32)
    for name, options in [("qdrant-edge.db", {}), ("qdrant-local.db", {"engine": "local"})]:
        with open_store("qdrant", uri=tmp_path / name, **options) as store:
            store.ensure_collection(4)
            store.upsert(["a"], vector, [{}])
    with open_store("milvus", uri=tmp_path / "milvus.db") as store:
        store.ensure_collection(4)
        store.upsert(["a"], vector, [{}])
    before = {path: sorted(p.name for p in path.iterdir()) for path in tmp_path.iterdir()}
    for connector, path, found in [("milvus", tmp_path / "qdrant-edge.db", "qdrant"),
                                   ("milvus", tmp_path / "qdrant-local.db", "qdrant"),
                                   ("qdrant", tmp_path / "milvus.db", "milvus")]:
        with pytest.raises(StoreError, match=f"holds a store of the '{found}' connector, not '{connector}': open it "
                                             f"with --store {found}"):
            open_store(connector, uri=path).count()
    assert {path: sorted(p.name for p in path.iterdir()) for path in tmp_path.iterdir()} == before  # nothing written


@pytest.mark.integration
@pytest.mark.slow
def test_a_database_that_does_not_exist_is_named(milvus_server_uri: str) -> None:
    name = f"shop_{uuid.uuid4().hex[:10]}"
    with pytest.raises(StoreError, match=rf"database '{name}' does not exist at Milvus server .*'default'.*"
                                         rf"create_database\('{name}'\)"):
        MilvusStore(milvus_server_uri, db_name=name)  # not an empty store that every write then fails on
    with MilvusStore(milvus_server_uri, collection=name) as default:
        default.client.create_database(name)
    with MilvusStore(milvus_server_uri, collection=name, db_name=name) as store:
        store.ensure_collection(4)
        store.upsert(["a"], np.ones((1, 4), dtype=np.float32), [{"x": 1}])
        assert store.count() == 1
    with MilvusStore(milvus_server_uri, collection=name) as default:
        assert not default.client.has_collection(name)  # written to the named database, not the default one


def test_repr_names_the_place(tmp_path: Path) -> None:
    assert repr(MilvusStore(str(tmp_path / "m.db"), collection="shop")) == \
        f"<MilvusStore {str(tmp_path / 'm.db')!r} collection='shop'>"  # the file is not created by looking
    assert not (tmp_path / "m.db").exists()

"""The smar-sdk command line, run in-process through click's runner on a tiny model and embedded Qdrant."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from smar_sdk import CatalogError, SMARModel, TrainingInterrupted, open_store
from smar_sdk.cli import EXIT_REJECTED_ROWS, main

from .conftest import python_code


@pytest.fixture()
def run(tmp_path: Path, tiny_model_dir: Path):
    runner = CliRunner()

    def invoke(*args: str, model: bool = True, store: bool = True):
        extra = ["--model", str(tiny_model_dir)] if model else []
        extra += ["--uri", str(tmp_path / "store")] if store else []
        return runner.invoke(main, [*args, *extra], catch_exceptions=False)

    return invoke


def test_index_search_count_delete_info(run, catalog: Path, tmp_path: Path) -> None:
    result = run("index", str(catalog), "-q")
    assert result.exit_code == 0, result.output
    assert "indexed 30, rejected 0" in result.output
    assert run("count", model=False).output.strip() == "30"
    again = json.loads(run("index", str(catalog), "-q", "--json").stdout)
    assert again["unchanged"] == 30 and again["items_per_second"] == 0.0  # a property, in the JSON report too
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    catalog.write_text("".join(json.dumps({**row, "price": 5}) + "\n" for row in rows))
    repriced = run("index", str(catalog), "-q").output
    assert re.search(r"indexed 0, rejected 0, payload only 30 in .*s \(0\.0 items/s encoded, [\d.]+ rows/s read\)",
                     repriced), repriced
    assert again["rows_per_second"] == pytest.approx(30 / again["seconds"])  # a re-run's pace counts skipped rows
    assert re.search(r"unchanged 30 in .*s \(0\.0 items/s encoded, [\d.]+ rows/s read\)",
                     run("index", str(catalog), "-q").output)
    result = run("search", "red shirt", "-k", "3", "--filter", "gender=Women", "--json")
    hits = json.loads(result.stdout)["hits"]
    assert len(hits) == 3 and all(h["payload"]["gender"] == "Women" and set(h) == {"id", "score", "payload"}
                                  and "title" in h["payload"] for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    text = run("search", "red shirt", "-k", "2").output.splitlines()
    assert len(text) == 2 and text[0].lstrip().startswith("1.")
    result = run("delete", hits[0]["id"], "no-such-id", hits[0]["id"], model=False)
    assert "deleted 1 of 2 ids; 29 products remain" in result.stdout  # each id counted once
    assert result.stderr == "not in the collection: 'no-such-id'\n"
    blank = run("delete", hits[1]["id"], " ", model=False)
    assert blank.exit_code == 2 and "id 2 is blank" in blank.output
    info = json.loads(run("info", "--json").stdout)
    assert info["count"] == 29 and info["dim"] == 16 and info["collection"] == "products" and info["exists"]
    assert info["indexed_with_this_model"] is True and info["indexed_with"] == info["model_files"]
    for command, model in ((["count"], False), (["delete", hits[1]["id"]], False), (["search", "red shirt"], True)):
        typo = run(*command, "--collection", "prodcuts", model=model)
        assert typo.exit_code == 1 and f"collection 'prodcuts' does not exist at {tmp_path / 'store'}; did you " \
            "mean --collection products?" in typo.output, typo.output
    assert "it holds 'products'" in run("count", "--collection", "shop", model=False).output
    missing = json.loads(run("info", "--json", "--collection", "prodcuts").stdout)
    assert not missing["exists"] and missing["indexed_with"] is None and missing["indexed_with_this_model"] is None
    assert run("count", model=False).output.strip() == "29"
    assert info["collection_dim"] == 16 and missing["collection_dim"] is None
    with open_store("qdrant", uri=str(tmp_path / "store"), collection="wide") as wide:  # written by another tool
        wide.ensure_collection(32)
        wide.upsert(["a"], np.ones((1, 32), dtype=np.float32), [{"title": "red shirt"}])
    result = run("info", "--json", "--collection", "wide")
    other = json.loads(result.stdout)
    assert other["collection_dim"] == 32 and other["indexed_with_this_model"] is False
    assert "warning: collection 'wide' holds 32-d vectors and this model makes 16-d ones" in result.stderr


def test_rejected_rows_give_nonzero_exit_and_report(run, catalog: Path, tmp_path: Path) -> None:
    catalog.write_text(catalog.read_text() + '{"id": "bad"\n')
    rejects = tmp_path / "rejects.jsonl"
    result = run("index", str(catalog), "-q", "--rejects", str(rejects))
    assert result.exit_code == EXIT_REJECTED_ROWS
    assert "rejected line 31: not valid JSON" in result.output and "indexed 30, rejected 1" in result.output
    assert json.loads(rejects.read_text())["line"] == 31


def test_field_mapping_options(run, catalog: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    renamed = catalog.parent / "renamed.jsonl"
    renamed.write_text("".join(json.dumps({"sku": r["id"], "name": r["title"], "brand": "Acme", "pic": r["image"],
                                           "gender": r["gender"], "id": "legacy", "score": 4.5}) + "\n"
                               for r in rows))
    for option, value in [("--image-field", "picture"), ("--id-field", "SKU"), ("--text-fields", "brand,title")]:
        mapping = {"--id-field": "sku", "--text-fields": "brand,name", "--image-field": "pic", option: value}
        result = run("index", str(renamed), "-q", *(arg for pair in mapping.items() for arg in pair))
        missing = value.split(",")[-1]
        assert result.exit_code == 1
        assert f"none of its 30 rows has the field {missing!r} ({option}" in result.output
        assert "'brand', 'gender', 'id', 'name', 'pic', 'score', 'sku'" in result.output
        assert not (tmp_path / "store").exists()  # refused before the collection is created
    result = run("index", str(renamed), "-q", "--id-field", "sku", "--text-fields", "brand,name",
                 "--image-field", "pic")
    assert result.exit_code == 0, result.output
    hits = json.loads(run("search", "red shirt", "--json").stdout)["hits"]
    assert hits[0]["id"].startswith("sku-") and hits[0]["payload"]["brand"] == "Acme"
    assert hits[0]["payload"]["id"] == "legacy" and hits[0]["payload"]["score"] == 4.5  # the catalog's own fields
    line = run("search", "red shirt", "-k", "1").stdout  # no title field: the line shows the payload's fields
    assert f"name={hits[0]['payload']['name']}" in line and "brand=Acme" in line


def test_cli_filters_match_typed_payload_values(run, catalog: Path) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    typed = [{**row, "year": 2010 + i % 3, "price": 9.5 + i % 2, "in_stock": i % 2 == 0, "size": str(40 + i % 2),
              "category": ["Bags, Belts", "Bags"][i % 2], "gtin": f"1234567890123456789012{i % 2}"}
             for i, row in enumerate(rows)]
    catalog.write_text("".join(json.dumps(row) + "\n" for row in typed))
    assert run("index", str(catalog), "-q").exit_code == 0

    def found(*filters: str) -> list[dict]:
        args = [arg for f in filters for arg in ("--filter", f)]
        hits = json.loads(run("search", "red shirt", "-k", "30", *args, "--json").stdout)["hits"]
        return [h["payload"] for h in hits]

    assert {h["year"] for h in found("year=2011")} == {2011} and len(found("year=2011")) == 10
    assert {h["price"] for h in found("price=10.5")} == {10.5} and len(found("price=10.5")) == 15
    assert {h["size"] for h in found("size=41")} == {"41"} and len(found("size=41")) == 15
    assert len(found("year=2010,2012", "price=9.5")) == 10
    assert found(" year = 2010, 2012", "price= 9.5 ") == found("year=2010,2012", "price=9.5")  # spaces dropped
    assert {h["category"] for h in found('category="Bags, Belts"')} == {"Bags, Belts"}  # quoted: one value, commas too
    assert len(found('category="Bags, Belts"')) == 15
    assert {h["category"] for h in found("category=Bags, Belts")} == {"Bags"}  # unquoted: "Bags" or "Belts"
    assert {h["gtin"] for h in found("gtin=12345678901234567890121")} == {"12345678901234567890121"}  # beyond 64 bits
    assert {h["year"] for h in found("year>=2011")} == {2011, 2012} and len(found("year>=2011")) == 20  # ranges
    assert {h["year"] for h in found("year=2010..2011", "price<10")} == {2010, 2011}
    assert all(h["price"] == 9.5 for h in found("year=2010..2011", "price<10"))
    assert {h["year"] for h in found("year>2010", "year<=2011")} == {2011}
    for spec, note in [("gendr=Men", "no stored product sampled has the field 'gendr' (field names match exactly); "
                                     "did you mean 'gender'?"),
                       ("Gender=Men", "has the field 'Gender' (field names match exactly); did you mean 'gender'?"),
                       ("gender=women,nobody", "'gender' holds 'Women', and values match exactly, case included"),
                       ("in_stock=True", "'in_stock' holds 'true', and values match exactly, case included")]:
        result = run("search", "red shirt", "--filter", spec)
        assert result.exit_code == 0 and result.stdout == "no results\n" and note in result.stderr
    assert "note" not in run("search", "red shirt", "--filter", "gender=Nobody").stderr  # nothing to suggest
    assert {h["in_stock"] for h in found("in_stock=true")} == {True} and len(found("in_stock=true")) == 15
    assert {h["in_stock"] for h in found("in_stock=false")} == {False} and len(found("in_stock=false")) == 15
    twice = run("search", "red shirt", "--filter", "year=2010", "--filter", "year=2011")
    assert twice.exit_code == 2 and "filter field 'year' is given twice" in twice.output
    twice = run("index", str(catalog), "-q", "--only", "year=2010", "--only", "year=2011")
    assert twice.exit_code == 2 and "'year' is given twice" in twice.output
    spaced = json.loads(run("index", str(catalog), "-q", "--json", "--only", "year = 2011").stdout)
    assert spaced["indexed"] + spaced["unchanged"] == 10


def test_errors_are_one_clear_line(run, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(main, ["count", "--store", "nosuchdb"])
    assert result.exit_code == 1 and "unknown store 'nosuchdb'" in result.output
    assert "Traceback" not in result.output
    old_rejects = tmp_path / "rejects.jsonl"
    old_rejects.write_text("kept\n")
    with monkeypatch.context() as patched:  # told before the model loads (seconds for the shipped one)
        patched.setattr("smar_sdk.cli._load_model", lambda *a: pytest.fail("the model was loaded"))
        result = run("index", str(tmp_path / "missing.jsonl"), "--rejects", str(old_rejects))
    assert result.exit_code == 1 and "cannot open catalog" in result.output
    assert old_rejects.read_text() == "kept\n" and not (tmp_path / "store").exists()  # nothing created or erased
    result = run("index", str(catalog), "--rejects", str(tmp_path / "no-such-dir" / "r.jsonl"), "-q")
    assert result.exit_code == 1 and "cannot write the rejects file" in result.output
    assert not (tmp_path / "store").exists()  # refused before the collection is created
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes(catalog.read_text().encode("utf-16"))
    result = run("index", str(utf16), "-q")
    assert result.exit_code == 1 and "is UTF-16 text" in result.output
    assert not (tmp_path / "store").exists()  # refused before the collection is created
    result = run("index", str(catalog), "-q", "--prune", "--only", "split=test")
    assert result.exit_code == 2 and "--prune with --only would delete every stored product outside" in result.output
    result = run("index", str(catalog), "-q", "--only", "split=tset")
    assert result.exit_code == 4 and "indexed 0" in result.output  # a script's typo does not pass for success
    assert "does not exist" in run("count", model=False).output  # and no empty collection was made for it
    assert f"warning: {catalog} has no rows matching --only; no row has the field 'split'; its rows have " \
        "'article_type', 'colour'" in result.output
    result = run("index", str(catalog), "-q", "--only", "gender=women")
    assert result.exit_code == 4
    assert "no rows matching --only; the field 'gender' holds 'Women', not 'women'" in result.output
    for bad in ("novalue", "a.b=1"):  # a wrong argument: exit 2, before the model loads
        result = run("search", "x", "--filter", bad)
        assert result.exit_code == 2 and "Invalid value for --filter" in result.output
    result = CliRunner().invoke(main, ["search", "x", "--model", str(tmp_path / "nomodel")])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = CliRunner().invoke(main, ["search", "   "])
    assert result.exit_code == 2 and "the query is blank" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["search", "blue \udce9 skirt"])  # a Latin-1 byte in a UTF-8 shell
    assert result.exit_code == 2 and "Invalid value for QUERY: the query holds a lone surrogate" in result.output


@pytest.mark.parametrize(("line", "problem"), [
    ({"query": "  ", "relevant": ["x"]}, "query: Value error, the query is blank"),
    ({"query": "red", "relevant": []}, "relevant: List should have at least 1"),
])
def test_queries_that_cannot_be_scored_are_refused_with_their_line(tmp_path: Path, line: dict, problem: str) -> None:
    from smar_sdk.evaluation import read_queries

    path = tmp_path / "queries.jsonl"
    path.write_text(json.dumps({"query": "a", "relevant": ["x"]}) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(CatalogError, match=f"line 2: .*{problem}"):
        read_queries(path)


def test_queries_file_with_a_byte_order_mark_is_read_and_other_encodings_are_one_error(tmp_path: Path) -> None:
    from smar_sdk.evaluation import read_queries

    path = tmp_path / "queries.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"query": "red", "relevant": ["x"]}).encode() + b"\n")
    assert [q.query for q in read_queries(path)] == ["red"]
    path.write_bytes(b'{"query": "rouge \xe9t\xe9", "relevant": ["x"]}\n')
    with pytest.raises(CatalogError, match="is not UTF-8 text .*re-save it as UTF-8"):
        read_queries(path)
    lines = [json.dumps({"query": f"red{mark}shoes", "relevant": ["x"]}, ensure_ascii=False)
             for mark in ("\u2028", "\u2029", "\x85")]  # valid JSON text, unescaped; only "\n" ends a line
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    assert [q.query for q in read_queries(path)] == ["red\u2028shoes", "red\u2029shoes", "red\x85shoes"]


@pytest.mark.parametrize(("option", "value", "setting"), [
    ("--epochs", "0", "epochs"), ("--query-variants", "-1", "query_variants"), ("--lr", "0", "learning_rate"),
    ("--temperature", "0", "temperature"), ("--dim", "0", "dim"), ("--seed", "-1", "seed"),
])
def test_train_options_out_of_range_are_usage_errors(tiny_config, catalog: Path, pairs: Path, tmp_path: Path,
                                                     option: str, value: str, setting: str) -> None:
    base = tmp_path / "base-config.json"
    base.write_text(tiny_config.model_dump_json())
    result = CliRunner().invoke(main, ["train", "--catalog", str(catalog), "--pairs", str(pairs), "--out",
                                       str(tmp_path / "m"), "--model-config", str(base), "--no-cache", "-q",
                                       option, value])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "do not make a valid" in result.output and f"{setting}: Input should be greater than" in result.output
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("content", "says"), [
    (None, "base-config.json not found"),
    ('{"dim": "wide"}', "base-config.json is not a valid SMAR config"),
    ("{not json", "base-config.json is not a valid SMAR config"),
])
def test_a_bad_model_config_is_named(catalog: Path, pairs: Path, tmp_path: Path, content: str | None,
                                     says: str) -> None:
    base = tmp_path / "base-config.json"
    if content is not None:
        base.write_text(content)
    result = CliRunner().invoke(main, ["train", "--catalog", str(catalog), "--pairs", str(pairs), "--out",
                                       str(tmp_path / "m"), "--model-config", str(base), "--no-cache", "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert says in result.output
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("saved", "says"), [
    (0, "interrupted: no epoch of this run had finished; run the same command again to start over (finished feature "
        "passes are cached)"),
    (2, "keeps epochs 1-2 of this run; run the same command again to resume after them"),
    (None, "interrupted: run the same command again to resume (from this run's checkpoint in"),
])
def test_an_interrupted_train_says_how_to_resume(catalog: Path, pairs: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, saved: int | None,
                                                 says: str) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise TrainingInterrupted(saved, tmp_path / "m" / ".checkpoint")

    monkeypatch.setattr("smar_sdk.training.train", interrupted)
    command = ["train", "--catalog", str(catalog), "--pairs", str(pairs), "--out", str(tmp_path / "m"), "-q"]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 130 and "Aborted!" not in result.output
    assert says in " ".join(result.output.split())


def test_an_interrupted_index_says_how_to_resume(run, catalog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("smar_sdk.indexer.SMARIndexer.index", interrupted)
    result = run("index", str(catalog), "-q")
    assert result.exit_code == 130 and "Aborted!" not in result.output
    assert "interrupted: the rows written so far stay indexed; run the same command again to resume" in result.output


def test_ctrl_c_anywhere_exits_with_130(run, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("smar_sdk.model.SMARModel.load", interrupted)  # while the model loads
    result = run("search", "red shirt")
    assert result.exit_code == 130 and "interrupted" in result.output and "Aborted!" not in result.output


def test_index_with_another_model_needs_replace_model(run, catalog: Path, tiny_model_dir: Path,
                                                       tmp_path: Path) -> None:
    import torch

    from smar_sdk import SMARModel

    other = SMARModel.load(tiny_model_dir)
    with torch.no_grad():
        other.query_head.linear.weight.mul_(-1.0)
    other.save(tmp_path / "other")
    assert run("index", str(catalog), "-q").exit_code == 0
    refused = run("index", str(catalog), "-q", "--model", str(tmp_path / "other"), model=False)
    assert refused.exit_code == 1 and "holds products indexed with another model" in refused.output
    assert "--replace-model --prune" in refused.output
    half = run("index", str(catalog), "-q", "--replace-model", "--only", "colour=red", "--model",
               str(tmp_path / "other"), model=False)
    assert half.exit_code == 0 and "indexed 5" in half.output
    assert "warning: 25 stored products were not re-encoded by this run" in half.output
    info = json.loads(run("info", "--json", "--model", str(tmp_path / "other"), model=False).stdout)
    assert info["indexed_with_this_model"] is False and len(info["indexed_with"].split(", ")) == 2  # both models
    replaced = run("index", str(catalog), "-q", "--replace-model", "--prune", "--model", str(tmp_path / "other"),
                   model=False)
    assert replaced.exit_code == 0 and "indexed 25" in replaced.output and "warning" not in replaced.output
    assert run("search", "red shirt", "--model", str(tmp_path / "other"), model=False).exit_code == 0


def test_a_catalog_away_from_its_images_gets_a_hint_and_images_dir(run, catalog: Path, tmp_path: Path) -> None:
    away = tmp_path / "away" / "catalog.jsonl"
    away.parent.mkdir()
    away.write_text(catalog.read_text())
    result = run("index", str(away), "-q")
    assert result.exit_code == 3 and "indexed 0, rejected 30" in result.output
    assert f"hint: relative image paths start from {away.parent}; if the images are elsewhere" in result.output
    result = run("index", str(away), "-q", "--images-dir", str(catalog.parent))
    assert result.exit_code == 0 and "indexed 30, rejected 0" in result.output and "hint" not in result.output


def test_a_rejects_file_given_as_the_catalog_says_how_to_refeed_it(run, catalog: Path, tmp_path: Path) -> None:
    lines = catalog.read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([lines[0], lines[1].replace('"images/', '"missing/')]) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    assert run("index", str(broken), "-q", "--rejects", str(rejects)).exit_code == 3
    result = run("index", str(rejects), "-q")
    assert result.exit_code == 1 and "is a rejects file (its rows are id, line, reason, row)" in result.output
    assert f"jq -r .row {rejects} > fixed.jsonl" in result.output and "--images-dir" in result.output
    elsewhere = tmp_path / "fixes" / "fixed.jsonl"  # as the message says, from any folder
    elsewhere.parent.mkdir()
    elsewhere.write_text("".join(json.loads(line)["row"].replace('"missing/', '"images/') + "\n"
                                 for line in rejects.read_text().splitlines()))
    refed = run("index", str(elsewhere), "-q", "--images-dir", str(catalog.parent))
    assert refed.exit_code == 0 and "indexed 1, rejected 0" in refed.output


def test_a_piped_or_redirected_catalog_reads_relative_images_from_the_current_folder(
        tiny_model_dir: Path, catalog: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    for name, expected in (("/dev/stdin", "indexed 30, rejected 0"), ("-", "indexed 0, rejected 0, unchanged 30")):
        result = subprocess.run([sys.executable, "-m", "smar_sdk", "index", name, "-q", "--model",
                                 str(tiny_model_dir), "--uri", str(tmp_path / "store")], input=catalog.read_text(),
                                capture_output=True, text=True, cwd=catalog.parent, timeout=300)
        assert result.returncode == 0 and expected in result.stdout, result.stderr
    fifo = tmp_path / "feed.jsonl"  # a named pipe: opened once, as its writer sends it only once
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f'cat "{catalog}" > "{fifo}"'])
    result = subprocess.run([sys.executable, "-m", "smar_sdk", "index", str(fifo), "-q", "--model",
                             str(tiny_model_dir), "--uri", str(tmp_path / "fifo-store")], capture_output=True,
                            text=True, cwd=catalog.parent, timeout=120)
    assert writer.wait(timeout=30) == 0
    assert result.returncode == 0 and "indexed 30, rejected 0" in result.stdout, result.stderr
    elsewhere = tmp_path / "elsewhere" / "catalog.jsonl"  # redirected from a file away from the images: still the cwd
    elsewhere.parent.mkdir()
    elsewhere.write_text(catalog.read_text())
    with elsewhere.open() as redirect:
        result = subprocess.run([sys.executable, "-m", "smar_sdk", "index", "-", "-q", "--model", str(tiny_model_dir),
                                 "--uri", str(tmp_path / "redirected")], stdin=redirect, capture_output=True,
                                text=True, cwd=catalog.parent, timeout=300)
    assert result.returncode == 0 and "indexed 30, rejected 0" in result.stdout, result.stderr


def test_train_then_eval(run, tiny_config, catalog: Path, pairs: Path, tmp_path: Path) -> None:
    base = tmp_path / "base-config.json"
    base.write_text(tiny_config.model_dump_json())
    out = tmp_path / "my-model"
    result = run("train", "--catalog", str(catalog), "--pairs", str(pairs), "--out", str(out), "--model-config",
                 str(base), "--epochs", "3", "--batch-size", "16", "--no-cache", "-q", "--query-variants", "2",
                 "--colour-features", "--query-tuned-layers", "1", "--image-tuned-blocks", "1", "--text-blend", "0.5",
                 "--other-text-blend", "0.25", "--image-blend", "0.2",
                 "--relevance-field", "colour", "--relevance-field", "article_type", "--hard-negatives", "4",
                 "--negative-field", "colour", "--mirror-images", "--train-stored-vector",
                 "--fusion-image-dropout", "0.25", "--fusion-image-dropout-colour-titles", "--item-text-tuned-layers",
                 "1", "--attribute-field", "colour", "--attribute-field", "gender", "--attribute-weight", "0.2",
                 "--average-last-epochs", "2", model=False, store=False)
    assert result.exit_code == 0, result.output
    assert "trained on 90 pairs (" in result.output and (out / "model.safetensors").is_file()
    unique_queries = len({json.loads(line)["query"] for line in pairs.read_text().splitlines()})
    wordings = int(result.output.split("pairs (")[1].split(" query wordings")[0])
    assert unique_queries < wordings <= 3 * unique_queries
    saved = json.loads((out / "config.json").read_text())
    assert saved["training"]["query_variants"] == 2 and saved["image_encoder"]["colour_features"]
    assert saved["query_tuned_layers"] == 1 and any(p.startswith("query_encoder.")
                                                    for p in saved["trained_backbone_prefixes"])
    assert saved["image_tuned_blocks"] == 1 and "image_encoder.backbone.trunk.18." in saved["trained_backbone_prefixes"]
    assert (saved["text_blend"], saved["other_text_blend"], saved["image_blend"]) == (0.5, 0.25, 0.2)
    assert saved["training"]["relevance_fields"] == ["colour", "article_type"]
    assert saved["training"]["hard_negatives"] == 4 and saved["training"]["negative_fields"] == ["colour"]
    assert saved["training"]["mirror_images"] and saved["training"]["train_stored_vector"]
    assert saved["training"]["fusion_image_dropout"] == 0.25 and saved["training"]["fusion_image_dropout_colour_titles"]
    assert saved["training"]["attribute_fields"] == ["colour", "gender"]
    assert saved["training"]["attribute_weight"] == 0.2 and saved["training"]["average_last_epochs"] == 2
    assert saved["item_text_tuned_layers"] == 1 and any(p.startswith("text_encoder.")
                                                        for p in saved["trained_backbone_prefixes"])
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"query": "red shirt", "relevant": ["sku-000"]}) + "\n"
                       + json.dumps({"query": "blue bag", "relevant": ["sku-009"]}) + "\n")
    result = CliRunner().invoke(main, ["eval", "--catalog", str(catalog), "--queries", str(queries), "--model",
                                       str(out), "--json", "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["metrics"]) == {"ndcg@10", "recall@10", "recall@50", "mrr@10"}
    assert report["metrics"]["recall@50"] == 1.0 and report["indexed"] == 30 and report["queries"] == 2
    only = CliRunner().invoke(main, ["eval", "--catalog", str(catalog), "--queries", str(queries), "--model",
                                     str(out), "--json", "-q", "--only", "gender=Men"])
    genders = {r["id"]: r["gender"] for r in map(json.loads, catalog.read_text().splitlines())}
    women_only = [genders["sku-000"], genders["sku-009"]].count("Women")
    assert json.loads(only.stdout)["indexed"] == 15 and json.loads(only.stdout)["unanswerable"] == women_only > 0
    assert report["unanswerable"] == 0
    nothing = CliRunner().invoke(main, ["eval", "--catalog", str(catalog), "--queries", str(queries), "--model",
                                        str(out), "-q", "--only", "gender=Nobody"])
    assert nothing.exit_code == 1 and "nothing to score" in nothing.output and "gender" in nothing.output
    wrong_field = CliRunner().invoke(main, ["eval", "--catalog", str(catalog), "--queries", str(queries), "--model",
                                            str(out), "-q", "--id-field", "sku"])
    assert wrong_field.exit_code == 1 and "none of its 30 rows has the field 'sku' (--id-field" in \
        wrong_field.output  # stopped before indexing anything


def test_eval_warns_about_rejected_rows_with_the_first_reason(tiny_model: SMARModel, catalog: Path, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    from smar_sdk.evaluation import evaluate_model

    catalog.write_text(catalog.read_text() + '{"id": "broken", "title": ""}\n')
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"query": "red shirt", "relevant": ["sku-000", "broken", "gone"]}) + "\n"
                       + json.dumps({"query": "blue bag", "relevant": ["SKU-001"]}) + "\n")  # an id written otherwise
    report = evaluate_model(tiny_model, catalog, queries, progress=False)
    assert (report.indexed, report.rejected, report.unanswerable, report.missing_relevant) == (30, 1, 1, 3)
    assert ("1 of 2 queries have no relevant product among the 30 indexed; each scores 0 (the first, query 2 'blue "
            "bag', names 'SKU-001'; check --only, and that the queries file writes ids as the catalog's id field "
            "does)") in caplog.text
    assert "1 catalog rows were rejected and are not scored; the first, line 31: field 'title'" in caplog.text
    assert "1 queries have relevant products that were not indexed (of 3 such ids, the first 'SKU-001')" in caplog.text


def test_score_rankings_single_and_many_metrics() -> None:
    from smar_sdk.evaluation import LabelledQuery, score_rankings

    queries = [LabelledQuery(query="a", relevant=["x"]), LabelledQuery(query="b", relevant=["y", "z"])]
    rankings = [[("x", 0.9), ("w", 0.5)], [("w", 0.9), ("z", 0.8)]]
    assert score_rankings(queries, rankings, ["mrr@10"]) == {"mrr@10": 0.75}
    both = score_rankings(queries, rankings)
    assert both["recall@10"] == 0.75 and both["mrr@10"] == 0.75 and 0 < both["ndcg@10"] < 1


def test_queries_file_takes_integer_ids_like_catalogs(tmp_path: Path) -> None:
    from smar_sdk.evaluation import read_queries

    path = tmp_path / "queries.jsonl"
    path.write_text(json.dumps({"query": "a", "relevant": [10001, "x7"]}) + "\n")
    assert read_queries(path)[0].relevant == ["10001", "x7"]


def test_training_options_that_need_another_are_refused(catalog: Path, pairs: Path, tmp_path: Path) -> None:
    lexicon = tmp_path / "synonyms.txt"
    lexicon.write_text("sofa, couch\n")
    result = CliRunner().invoke(main, ["train", "--catalog", str(catalog), "--pairs", str(pairs), "--out",
                                       str(tmp_path / "m"), "--synonyms", str(lexicon)])
    assert result.exit_code == 2 and "--query-variants" in result.output
    result = CliRunner().invoke(main, ["train", "--catalog", str(catalog), "--pairs", str(pairs), "--out",
                                       str(tmp_path / "m"), "--hard-negatives", "8"])
    assert result.exit_code == 2 and "--negative-field" in result.output
    result = CliRunner().invoke(main, ["train", "--catalog", str(catalog), "--pairs", str(pairs), "--out",
                                       str(tmp_path / "m"), "--train-stored-vector"])
    assert result.exit_code == 2 and "--text-blend" in result.output
    result = CliRunner().invoke(main, ["train", "--catalog", str(catalog), "--pairs", str(pairs), "--out",
                                       str(tmp_path / "m"), "--dim", "4"])
    assert result.exit_code == 2 and "not make a valid model: dim" in result.output and not (tmp_path / "m").exists()
    for command in (["train", "--pairs", str(pairs), "--out", str(tmp_path / "m"), "--catalog"], ["index"]):
        result = CliRunner().invoke(main, [*command, str(catalog), "--text-fields", " , "])
        assert result.exit_code == 2 and "names no field" in result.output


def test_train_holdout_leaves_products_out(run, tiny_config, catalog: Path, pairs: Path, tmp_path: Path) -> None:
    base = tmp_path / "base-config.json"
    base.write_text(tiny_config.model_dump_json())
    common = ["train", "--catalog", str(catalog), "--pairs", str(pairs), "--model-config", str(base), "--epochs", "1",
              "--batch-size", "16", "--no-cache", "-q"]
    result = run(*common, "--out", str(tmp_path / "held"), "--holdout", "0.5", model=False, store=False)
    assert result.exit_code == 0, result.output
    items = int(result.output.split(" items:")[0].rsplit(" ", 1)[1])
    assert 0 < items < 30  # of the catalog's 30 products, the held-out ones were not trained on
    assert json.loads((tmp_path / "held" / "config.json").read_text())["training"]["holdout"] == 0.5
    again = run(*common, "--out", str(tmp_path / "held"), model=False, store=False)  # a model is never lost
    assert again.exit_code == 2 and "already holds a model (config.json, model.safetensors)" in again.output
    assert json.loads((tmp_path / "held" / "config.json").read_text())["training"]["holdout"] == 0.5
    replaced = run(*common, "--out", str(tmp_path / "held"), "--overwrite", model=False, store=False)
    assert replaced.exit_code == 0 and json.loads((tmp_path / "held" / "config.json").read_text())["training"][
        "holdout"] == 0.0
    result = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "all"), "--holdout", "1"])
    assert result.exit_code == 2 and "--holdout" in result.output
    result = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "typo"), "--relevance-field", "color"])
    assert result.exit_code == 1 and "relevance field 'color' is in no catalog row" in result.output
    result = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "typo"), "--image-field-extra", "thumb"])
    assert result.exit_code == 1 and "none of its 30 rows has the field 'thumb' (--image-field-extra, " \
        "TrainConfig.image_fields)" in result.output
    result = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "typo"), "--hard-negatives", "4",
                                       "--negative-field", "colr", "--epochs", "2"])
    assert result.exit_code == 1 and "negative field 'colr' is in no catalog row" in result.output
    result = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "typo"), "--attribute-field", "colr"])
    assert result.exit_code == 1 and "attribute field 'colr' has no value in any training row" in result.output


def test_the_command_line_starts_without_torch() -> None:
    """`smar-sdk --help`, `count` and `delete` need no model: importing torch would cost them seconds."""

    code = ("import sys, smar_sdk, smar_sdk.cli; assert 'torch' not in sys.modules, 'torch imported'; "
            "from smar_sdk import *; assert 'torch' in sys.modules and SMARModel.__name__ == 'SMARModel'; "
            "assert set(smar_sdk.__all__) <= set(dir(smar_sdk)); "
            "assert sorted(smar_sdk.__all__) == sorted(smar_sdk._HOMES)")
    python_code(code)

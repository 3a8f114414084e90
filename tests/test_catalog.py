"""Catalog parsing: every kind of broken row is rejected with its line number and reason."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from smar_sdk import CatalogError, FieldMapping, Product, Rejection, read_catalog

GOOD = {"id": "a1", "title": "red shirt", "image": "a.jpg", "colour": "red"}


def lines_to_catalog(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "catalog.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize(("line", "reason"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (json.dumps({**GOOD, "id": None}).encode(), "id field 'id' is missing"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "id"}).encode(), "missing"),
    (json.dumps({**GOOD, "id": ["x"]}).encode(), "a list (['x']); ids are strings or integers"),
    (json.dumps({**GOOD, "id": 10.5}).encode(), "id field 'id' is a float (10.5); ids are strings or integers"),
    (json.dumps({**GOOD, "id": "   "}).encode(), "id field 'id' is blank"),
    (json.dumps({**GOOD, "id": ""}).encode(), "id field 'id' is blank"),
    (json.dumps({**GOOD, "title": ""}).encode(), "'title' is missing or empty"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "image"}).encode(), "'image' is missing"),
    (json.dumps({**GOOD, "title": 42}).encode(), "'title' must be a string"),
    (json.dumps({**GOOD, "title": "x" * 5000}).encode(), "'title'"),
    (b'{"id": "a", "title": "caf\xe9", "image": "a.jpg"}', "invalid UTF-8"),
    (b'{"id": "a", "title": "t", "image": "a.jpg", "price": NaN}', "NaN is not a number JSON allows"),
    (b'{"id": "a", "title": "t", "image": "a.jpg", "price": -Infinity}', "-Infinity is not a number"),
    (json.dumps({**GOOD, "id": "\u6f22" * 400}).encode(), "1200 bytes in UTF-8"),
    (json.dumps({**GOOD, "ean": 2**64}).encode(), "field 'ean' holds an integer beyond 64 bits"),
    (json.dumps({**GOOD, "meta": {"codes": [1, -(2**63) - 1]}}).encode(), "field 'meta.codes[1]' holds an integer"),
    (b'{"id": "a", "title": "t", "image": "a.jpg", "price": 1e400}', "1e400 is beyond the largest 64-bit float"),
    (json.dumps({**GOOD, "_smar_hash": "x"}).encode(), "field '_smar_hash' is reserved"),
    (b'{"id": "a", "title": "t", "image": "a.jpg", "note": "bad \\ud800"}', "field 'note' holds a lone surrogate"),
    (b'{"id": "\\udc00", "title": "t", "image": "a.jpg"}', "field 'id' holds a lone surrogate"),
    (b'{"id": "a", "title": "t", "image": "a.jpg", "k\\ud800": 1}', "a field name holds a lone surrogate"),
    (b'{"id": "a", "title": "t", "image": "a.jpg", "m": ' + b"[" * 5000 + b"]" * 5000 + b"}", "too deep to read"),
    (b'{"id": "a", "title": "t", "image": "a.jpg", "m": ' + b"[" * 70 + b"]" * 70 + b"}",
     "field 'm[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"),
    (json.dumps({**GOOD, "notes": "x" * 70_000}).encode(), "the row is 70,073 bytes as JSON, over the 64,512-byte "
                                                          "payload every store keeps; shorten it (its largest field, "
                                                          "'notes', is 70,002 bytes)"),
])
def test_bad_rows_are_rejected_with_line_and_reason(tmp_path: Path, line: bytes, reason: str) -> None:
    path = lines_to_catalog(tmp_path, [json.dumps(GOOD).encode(), line, json.dumps({**GOOD, "id": "a2"}).encode()])
    records = list(read_catalog(path))
    assert [type(r) for r in records] == [Product, Rejection, Product]
    rejection = records[1]
    assert rejection.line == 2 and reason in rejection.reason


def test_a_line_with_bad_bytes_is_named_by_its_id_when_the_id_reads(tmp_path: Path) -> None:
    lines = [b'{"id": "a", "title": "caf\xe9", "image": "a.jpg"}', b'{"id": "b\xe9", "title": "t", "image": "a.jpg"}',
             b'{"id": "c", "title": "caf\xe9']
    assert [(r.id, r.reason) for r in read_catalog(lines_to_catalog(tmp_path, lines))] == [
        ("a", "invalid UTF-8 at byte 25"), (None, "invalid UTF-8 at byte 9"), (None, "invalid UTF-8 at byte 25")]


def test_a_row_with_nan_or_infinity_is_named_by_its_id(tmp_path: Path) -> None:
    lines = [b'{"id": "a", "title": "t", "image": "a.jpg", "price": NaN}', b'{"id": 7, "price": Infinity}',
             b'[NaN]', b'{"sku": "c", "price": 1e400}', b'{"id": "deep", "p": NaN, "m": ' + b"[" * 5000 + b"]" * 5000
             + b"}", b'{"id": "\\udc00", "p": NaN}', b'{"id": "\\udc00", "_smar_x": 1}']
    assert [(r.line, r.id) for r in read_catalog(lines_to_catalog(tmp_path, lines))] == [
        (1, "a"), (2, "7"), (3, None), (4, None), (5, None), (6, None), (7, None)]  # an id not UTF-8 names no row


def test_json_errors_say_where_once(tmp_path: Path) -> None:
    (rejection,) = read_catalog(lines_to_catalog(tmp_path, [b'{"id": "a", "title": "t']))
    assert rejection.reason == "not valid JSON (Unterminated string starting at column 22)"
    (rejection,) = read_catalog(lines_to_catalog(tmp_path, [b'{"id": "a" "title": "t"}']))
    assert rejection.reason == "not valid JSON (Expecting ',' delimiter at column 12)"


def test_a_compressed_catalog_is_one_clear_error(tmp_path: Path) -> None:
    import bz2
    import gzip

    text = (json.dumps(GOOD) + "\n").encode()
    for kind, data, reader in [("gzip", gzip.compress(text), "zcat"), ("bzip2", bz2.compress(text), "bzcat")]:
        path = tmp_path / f"catalog.jsonl.{kind}"
        path.write_bytes(data)
        with pytest.raises(CatalogError, match=f"is {kind}-compressed; .* pipe it in: {reader} .* smar-sdk index -"):
            list(read_catalog(path))


def test_a_utf8_bom_is_read_and_utf16_is_refused_once(tmp_path: Path) -> None:
    text = json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "id": "a2"}) + "\n"
    path = tmp_path / "catalog.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + text.encode())
    assert [r.id for r in read_catalog(path) if isinstance(r, Product)] == ["a1", "a2"]
    path.write_text(text, encoding="utf-16")
    with pytest.raises(CatalogError, match="is UTF-16 text; .* re-save it as UTF-8"):
        list(read_catalog(path))


def test_payload_keeps_every_field_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = lines_to_catalog(tmp_path, [b"", json.dumps({**GOOD, "id": 7, "nested": {"a": [1]}}).encode(), b"  "])
    (product,) = list(read_catalog(path))
    assert product.id == "7" and product.line == 2 and product.payload["nested"] == {"a": [1]}


def test_field_mapping_and_only(tmp_path: Path) -> None:
    rows = [{"sku": "s1", "name": "red", "brand": "Acme", "picture": "p.jpg", "split": "train"},
            {"sku": "s2", "name": "blue", "brand": "Zed", "picture": "q.jpg", "split": "test"}]
    path = lines_to_catalog(tmp_path, [json.dumps(r).encode() for r in rows])
    mapping = FieldMapping(id_field="sku", text_fields=["brand", "name"], image_field="picture")
    (product,) = list(read_catalog(path, mapping, only={"split": "test"}))
    assert (product.id, product.text, product.image) == ("s2", "Zed blue", "q.jpg")


@pytest.mark.parametrize(("only", "kept"), [
    ({"price": "10"}, ["a"]), ({"price": "10.0"}, ["a"]), ({"price": "12.5"}, ["b"]), ({"year": "2011"}, ["a"]),
    ({"in_stock": "true"}, ["a"]), ({"in_stock": "false"}, ["b"]), ({"in_stock": "True"}, []),
    ({"colour": "None"}, []), ({"code": "07"}, ["a", "b"]), ({"code": "7"}, ["a"]),
    ({"sizes": "M"}, ["a", "b"]), ({"sizes": "40"}, ["b"]), ({"sizes": "true"}, []),
    ({"price": 10}, ["a"]), ({"price": 12.5}, ["b"]), ({"year": 2011}, ["a"]), ({"in_stock": True}, ["a"]),
    ({"in_stock": False}, ["b"]), ({"code": 7}, ["a"]),  # from code: typed values, read as their text
    ({"lot": "1e3"}, ["a"]), ({"lot": "1_000"}, []), ({"lot": "١٢٣"}, []),  # numbers in ASCII digits only
    ({"in_stock": "1"}, []), ({"bit": "true"}, []), ({"bit": "1"}, ["a"]),  # a boolean is not a number
])
def test_only_reads_values_like_filters(tmp_path: Path, only: dict, kept: list[str]) -> None:
    rows = [{"id": "a", "title": "t", "image": "a.jpg", "price": 10.0, "year": 2011, "in_stock": True, "code": 7,
             "sizes": ["S", "M"], "lot": 1000, "bit": 1},
            {"id": "b", "title": "t", "image": "b.jpg", "price": 12.5, "year": "n/a", "in_stock": False,
             "colour": None, "code": "07", "sizes": ["M", 40.0, None], "lot": 123, "bit": 0}]
    path = lines_to_catalog(tmp_path, [json.dumps(r).encode() for r in rows])
    assert [p.id for p in read_catalog(path, only=only)] == kept


def test_only_skips_broken_rows_outside_the_subset(tmp_path: Path) -> None:
    """A sharded run (--only split=test) does not reject, and so count again, the broken rows of other shards."""
    rows = [{**GOOD, "id": "t1", "split": "train", "title": ""}, {**GOOD, "id": "t2", "split": "train", "n": 2**70},
            {**GOOD, "id": "s1", "split": "test"}, {**GOOD, "id": "s2", "split": "test", "title": ""}]
    lines = [json.dumps(r).encode() for r in rows] + [b"not json", b"[1, 2]"]
    records = list(read_catalog(lines_to_catalog(tmp_path, lines), only={"split": "test"}))
    assert [(r.line, type(r).__name__) for r in records] == [(3, "Product"), (4, "Rejection"), (5, "Rejection"),
                                                              (6, "Rejection")]  # not JSON objects: no split


@pytest.mark.parametrize("only", [{"split": ["test", "train"]}, {"year": None}, {"x": {"a": 1}}, "split=test"])
def test_only_of_another_type_is_a_clear_error(tmp_path: Path, only) -> None:
    path = lines_to_catalog(tmp_path, [json.dumps(GOOD).encode()])
    with pytest.raises(TypeError, match="only"):
        list(read_catalog(path, only=only))


def test_missing_catalog_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot open catalog .*nope.jsonl"):
        list(read_catalog(tmp_path / "nope.jsonl"))

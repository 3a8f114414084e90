"""Filter specs from code: anything a store could not compare is a FilterError naming the field, before any search."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from smar_sdk import FilterError, SMARIndexer, SMARModel, SMARRetriever
from smar_sdk.filters import Equals, OneOf, Range, matches_conditions, parse_cli_filters, parse_filter


@pytest.mark.parametrize(("spec", "message"), [
    ({"year": 10**20}, "'year': 100000000000000000000 is outside the 64-bit integers"),
    ({"gender": ["Men", None]}, "'gender': unsupported value None"),
    ({"year": {"gte": "abc"}}, "'year': range bounds are numbers"),
    ({"year": {"gt": True}}, "'year': range bounds are numbers"),
    ({"year": {"between": 1}}, "'year': range keys are"),
    ({"price": float("nan")}, "'price': nan is not a value"),
    ({"": "x"}, "non-blank payload field name, got ''"),
    ({"size.eu": "42"}, "'size.eu': filters match top-level payload fields"),
    ({'size "eu"': "42"}, "'size \"eu\"': filters match top-level payload fields"),
    ({"tags": []}, "an empty list matches nothing"),
    ({"meta": object()}, "'meta': unsupported value"),
    ({"back\\slash": "y"}, "takes no '\\\\' in a name"),  # Qdrant's JSON-path parser refuses it
    ({"gen\udcffder": "x"}, "'gen\\\\udcffder' holds a lone surrogate escape"),  # a byte the shell could not decode
    ({"gender": ["Men", "W\udcff"]}, "'gender': the value 'W\\\\udcff' holds a lone surrogate escape"),
])
def test_values_no_store_can_compare_are_refused_by_name(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(spec)


def test_supported_values_become_typed_conditions() -> None:
    assert parse_filter({"gender": "Men", "year": {"gte": 2010, "lt": 2012.5}, "size": [1, "M", 2.5]}) == [
        Equals(field="gender", value="Men"), Range(field="year", gte=2010, lt=2012.5),
        OneOf(field="size", values=(1, "M", 2.5))]


def test_command_line_values_are_numbers_only_in_plain_ascii_notation() -> None:
    assert parse_cli_filters(["year=2011", "price=-1.5,1e3, .5", "code=1_000", "lot=١٢٣", "size=inf"]) == {
        "year": ["2011", 2011], "price": ["-1.5", -1.5, "1e3", 1000.0, ".5", 0.5], "code": "1_000", "lot": "١٢٣",
        "size": "inf"}


def test_numpy_values_filter_as_the_python_ones_they_hold() -> None:
    import numpy as np

    assert parse_filter({"year": np.int64(2011), "in_stock": np.True_, "price": {"lt": np.float32(9.5)},
                         "size": [np.int32(38), np.str_("M")]}) == [
        Equals(field="year", value=2011), Equals(field="in_stock", value=True), Range(field="price", lt=9.5),
        OneOf(field="size", values=(38, "M"))]
    assert type(parse_filter({"year": np.int64(2011)})[0].value) is int  # not a numpy integer a connector must know


def test_command_line_codes_beyond_64_bits_are_text_only() -> None:  # a GTIN is stored as a string
    assert parse_cli_filters(["gtin=12345678901234567890120", "ean=9223372036854775807"]) == {
        "gtin": "12345678901234567890120", "ean": ["9223372036854775807", 2**63 - 1]}
    parse_filter(parse_cli_filters(["gtin=12345678901234567890120,-9223372036854775809"]))  # no FilterError


def test_command_line_values_in_double_quotes_are_json_strings_with_their_commas() -> None:
    assert parse_cli_filters(['category="Bags, Belts & Wallets"', 'type=Tops, "Tees, Polos" ,Shirts',
                              'year="2011"', 'size=12" pizza', 'quote="say \\"hi\\""']) == {
        "category": "Bags, Belts & Wallets", "type": ["Tops", "Tees, Polos", "Shirts"], "year": "2011",
        "size": '12" pizza', "quote": 'say "hi"'}
    with pytest.raises(FilterError, match=r"'f': 'a\\\\qb' is no JSON string \(Invalid \\escape\)"):
        parse_cli_filters(['f="a\\qb"'])


def test_command_line_ranges() -> None:
    assert parse_cli_filters(["price>=50", " price < 99.5", "year=2011..2013", "size=..42", "lot=7..", "a>-1"]) == {
        "price": {"gte": 50, "lt": 99.5}, "year": {"gte": 2011, "lte": 2013}, "size": {"lte": 42}, "lot": {"gte": 7},
        "a": {"gt": -1}}
    assert parse_cli_filters(["code=A..B", "dots=..", "formula=x<y"]) == {  # not numbers: text as written
        "code": "A..B", "dots": "..", "formula": "x<y"}
    for pairs, message in [(["price>=cheap"], "'price': a range bound is a number, got 'cheap'"),
                           (["price>=5", "price=1..9"], "'price' is given twice"),
                           (["price>=5", "price>=6"], "'price' is given twice"),  # one bound given twice
                           (["price=5", "price<9"], "'price' is given twice"),
                           (["<5"], "must look like field=value .*field>=number"),
                           (["price=100..50"], r"'price': the range 100..50 is empty .*: write price=50..100")]:
        with pytest.raises(FilterError, match=message):
            parse_cli_filters(pairs)


def test_command_line_true_and_false_are_also_json_booleans() -> None:
    assert parse_cli_filters(["in_stock=true", "sale=false, true", "note=True"]) == {
        "in_stock": ["true", True], "sale": ["false", False, "true", True], "note": "True"}


@pytest.mark.parametrize(("build", "message"), [
    (lambda: OneOf(field="f", values=()), "'f': an empty list matches nothing"),
    (lambda: Range(field="f"), "'f': a range needs a bound"),
])
def test_conditions_built_in_code_refuse_what_matches_nothing(build, message: str) -> None:
    with pytest.raises(FilterError, match=message):  # Qdrant would read an empty OR as "everything"
        build()


@pytest.mark.parametrize(("payload", "spec", "matched"), [
    ({"f": True}, {"f": True}, True), ({"f": True}, {"f": 1}, False), ({"f": 1.0}, {"f": True}, False),
    ({"f": 0}, {"f": [False, "x"]}, False), ({"f": [1.0, "x"]}, {"f": 1}, True), ({"f": "true"}, {"f": True}, False),
    ({"f": [True, "x"]}, {"f": 1}, False), ({"f": [True, "x"]}, {"f": True}, True), ({"f": 30}, {"f": 30.0}, True),
    ({"f": True}, {"f": {"gte": 1}}, False), ({"f": [5]}, {"f": {"gte": 1}}, False),
    ({"f": "5"}, {"f": {"gte": 1}}, False), ({"f": 5}, {"f": {"gte": 1}}, True),
])
def test_reference_semantics_compare_json_values_and_ranges_skip_lists(payload: dict, spec: dict,
                                                                        matched: bool) -> None:
    assert matches_conditions(payload, parse_filter(spec)) is matched


def test_the_retriever_raises_filter_errors_on_the_embedded_store(tiny_model: SMARModel, catalog: Path,
                                                                  tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    with SMARIndexer(tiny_model, uri=uri) as indexer:
        indexer.index(catalog, progress=False)
    with SMARRetriever(tiny_model, uri=uri) as retriever:
        with pytest.raises(FilterError, match="'year'"):
            retriever.search("red shirt", filter={"year": 10**20})
        assert retriever.search("red shirt", k=3, filter={"year": 2**63 - 1}) == []


def test_an_empty_filtered_search_in_python_logs_why(tiny_model: SMARModel, catalog: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    catalog.write_text("".join(json.dumps({**row, "year": str(row["year"])}) + "\n" for row in rows))  # as text
    uri = str(tmp_path / "store")
    with SMARIndexer(tiny_model, uri=uri) as indexer:
        indexer.index(catalog, progress=False)
    with SMARRetriever(tiny_model, uri=uri) as retriever, caplog.at_level("WARNING", logger="smar_sdk.retriever"):
        for spec, note in [({"gendr": "Men"}, "no stored product sampled has the field 'gendr' .*did you mean "
                                              "'gender'"),
                           ({"year": 2012}, "'year' holds '2012' as text, and filters are typed: filter on the text "
                                            "'2012'"),
                           ({"gender": "men"}, "'gender' holds 'Men', and values match exactly")]:
            caplog.clear()
            assert retriever.search("red shirt", k=3, filter=spec) == []
            assert re.search(f"note: the filter found nothing: {note}", caplog.text), caplog.text
        caplog.clear()
        assert retriever.search("red shirt", k=3, filter={"year": "2012"}) and not caplog.text  # found: no note
        assert retriever.search("red shirt", k=3, filter={"gender": "Nobody"}) == [] and not caplog.text


def test_a_text_filter_on_a_stored_number_is_explained() -> None:
    from smar_sdk.filters import empty_filter_hint

    payloads = [{"year": 2012, "gender": "Men"}, {"year": 2013, "gender": "Women"}]
    assert empty_filter_hint({"year": "2012"}, payloads) == (
        "'year' holds 2012 as a number, and filters are typed: filter on the number 2012 (the CLI's --filter tries "
        "both)")  # a web query string's "2012", as a service passes it on
    assert empty_filter_hint({"year": ["2012", 2012]}, payloads) is None  # both asked: nothing to explain
    assert empty_filter_hint({"year": "1999"}, payloads) is None  # a value no product has is no mistake


def test_list_and_boolean_fields_are_explained_too() -> None:
    from smar_sdk.filters import empty_filter_hint

    payloads = [{"tags": ["sale", "new"], "in_stock": True}, {"tags": [], "in_stock": False}, {"tags": ["summer"]}]
    assert empty_filter_hint({"tags": "Sale"}, payloads) == (
        "'tags' holds 'sale', and values match exactly, case included")  # an element of a list
    assert empty_filter_hint({"in_stock": ["1", 1]}, payloads) == (
        "'in_stock' holds true or false, and filters are typed: filter on true or false")
    assert empty_filter_hint({"in_stock": "TRUE"}, payloads) == (
        "'in_stock' holds 'true', and values match exactly, case included")  # the closer hint first
    assert empty_filter_hint({"tags": "winter"}, payloads) is None and empty_filter_hint({"in_stock": True}, []) is None
    prices = [{"price": "59.99"}, {"price": "12"}]
    assert empty_filter_hint({"price": {"gte": 50}}, prices) == (
        "'price' holds numbers as text ('59.99'), and a range compares numbers only: store them as numbers in the "
        "catalog")
    assert empty_filter_hint({"price": {"gte": 500}}, [{"price": 59.99}]) is None  # numbers: nothing to explain
    assert empty_filter_hint({"flag": {"gte": 1}}, [{"flag": "true"}]) is None  # text that is no number

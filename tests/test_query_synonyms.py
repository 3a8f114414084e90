"""Shop synonyms at search time: the rewrite rules, and the retriever, CLI and demo searching the rewritten query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from smar_sdk import CatalogError, QuerySynonyms, SMARIndexer, SMARModel, SMARRetriever, open_store
from smar_sdk.cli import main
from smar_sdk.demo.search import DemoSearch

SHOP = [["sunglasses", "sunnies", "shades"], ["casual shoes", "loafers", "kicks"], ["shirt", "button down"],
        ["spectacles", "glasses"], ["socks", "inner wear"], ["t-shirts", "tees", "men's tops"],
        ["c++ mugs", "code mugs"]]


@pytest.mark.parametrize(("query", "searched"), [
    ("ladies sunnies", "ladies sunglasses"),
    ("Men's SHADES", "Men's sunglasses"),  # any case; the rest of the query is kept as typed
    ("brown loafers or kicks", "brown casual shoes or casual shoes"),
    ("blue   button  down", "blue   shirt"),  # a phrase matches across any run of spaces
    ("reading glasses", "reading spectacles"),
    ("sunglasses", "sunglasses"),  # the catalog's word stays
    ("kickstand sunniesx re-shades shades-case shades’s", "kickstand sunniesx re-shades shades-case shades’s"),
    ("", ""),
    ("İnner wear", "socks"),  # a letter whose lower case is two characters still finds its group
])
def test_rewrite_replaces_whole_synonyms_by_the_groups_first_phrase(query: str, searched: str) -> None:
    assert QuerySynonyms(SHOP).rewrite(query) == searched


def test_rewrite_is_one_pass_and_prefers_the_longest_phrase() -> None:
    synonyms = QuerySynonyms([["casual shoes", "shoes"], ["tshirts", "tee shirts", "tee"]])
    assert synonyms.rewrite("shoes") == "casual shoes"  # not rewritten again into "casual casual shoes"
    assert synonyms.rewrite("Casual Shoes") == "Casual Shoes"  # the catalog's phrase holding a synonym stays whole
    assert synonyms.rewrite("white tee shirts") == "white tshirts"  # not "white tshirts shirts"
    assert len(synonyms) == 3


@pytest.mark.parametrize(("query", "searched"), [
    ("white tees", "white t-shirts"), ("Men's Tops", "t-shirts"), ("cheap code mugs", "cheap c++ mugs")])
def test_phrases_with_punctuation_match_as_written(query: str, searched: str) -> None:
    assert QuerySynonyms(SHOP).rewrite(query) == searched


@pytest.mark.parametrize(("groups", "problem"), [
    ([["sunglasses"]], "group 1 needs the catalog's phrase and one or more other phrases"),
    ([["heels", "Heels "]], "group 1 needs the catalog's phrase and one or more other phrases"),  # the same phrase
    (["heels, stilettos"], "group 1 is the string 'heels, stilettos': give a list of phrases"),
    ([["sunglasses", "shades"], ["blinds", "shades"]],
     r"'shades' is a synonym of both 'sunglasses' \(group 1\) and 'blinds' \(group 2\)"),
    ([["heels", "stilettos"], ["stilettos", "spikes"]],
     r"'stilettos' is the catalog's phrase of group 2 and a synonym of 'heels' \(group 1\): merge"),
    ([['"heels"', '"stilettos"']], "group 1: the phrase '\"heels\"' is quoted or bracketed"),
    ([["heels", "(stilettos)"]], "group 1: the phrase '\\(stilettos\\)' is quoted or bracketed"),
    ([["heels", "‘stilettos’"]], "group 1: the phrase '‘stilettos’' is quoted or bracketed"),
])
def test_groups_that_cannot_be_applied_are_refused(groups: list[list[str]], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        QuerySynonyms(groups)


def test_a_bad_synonyms_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.txt"
    path.write_text("# shop words\nheels, stilettos\n\nstilettos, spikes\n")
    with pytest.raises(CatalogError, match=f"synonyms file {path}: 'stilettos' is the catalog's phrase of line 4 "
                                           r"and a synonym of 'heels' \(line 2\)"):
        QuerySynonyms.from_file(path)
    path.write_text("# nothing but a comment\n")
    with pytest.raises(CatalogError, match="has no group of phrases"):
        QuerySynonyms.from_file(path)
    with pytest.raises(CatalogError, match="cannot read synonyms file .*missing.txt: No such file or directory$"):
        QuerySynonyms.from_file(tmp_path / "missing.txt")


@pytest.mark.parametrize("text", ["# shop words\ncasual shoes, kicks\n", "casual shoes, kicks\n"])
def test_a_byte_order_mark_is_not_part_of_the_first_phrase(tmp_path: Path, text: str) -> None:
    path = tmp_path / "notepad.txt"
    path.write_bytes(text.encode("utf-8-sig"))  # what Notepad saves
    assert QuerySynonyms.from_file(path).rewrite("black kicks for men") == "black casual shoes for men"


def test_a_mark_at_one_end_only_is_part_of_the_phrase() -> None:
    synonyms = QuerySynonyms([["tv 55 inch", 'tv 55"'], ["t-shirt", "tee (unisex)"]])
    assert synonyms.rewrite('samsung TV 55"') == "samsung tv 55 inch"
    assert synonyms.rewrite("black tee (unisex)") == "black t-shirt"


def test_phrases_with_inner_apostrophes_are_not_quoted() -> None:
    synonyms = QuerySynonyms([["sneakers", "'90s trainers", "men's kicks"]])
    assert synonyms.rewrite("white '90s trainers") == "white sneakers"
    assert synonyms.rewrite("men's kicks") == "sneakers"


@pytest.fixture()
def store_uri(tiny_model: SMARModel, catalog: Path, tmp_path: Path) -> str:
    uri = str(tmp_path / "store")
    with SMARIndexer(tiny_model, uri=uri) as indexer:
        assert indexer.index(catalog, progress=False).indexed == 30
    return uri


def scored(hits) -> list[tuple[str, float]]:
    return [(hit.id, round(hit.score, 5)) for hit in hits]


def test_retriever_searches_the_rewritten_query(tiny_model: SMARModel, store_uri: str) -> None:
    synonyms = QuerySynonyms([["red shirt", "crimson button down"]])
    with (open_store("qdrant", uri=store_uri) as store, SMARRetriever(tiny_model, store, synonyms=synonyms) as shop,
          SMARRetriever(tiny_model, store) as plain):
        expected = scored(plain.search("red shirt", k=30))
        assert scored(plain.search("crimson button down", k=30)) != expected  # the model alone reads it otherwise
        assert scored(shop.search("crimson button down", k=30)) == expected
        assert [scored(h) for h in shop.search_many(["red shirt", "Crimson Button Down"], k=30)] == [expected] * 2
    with pytest.raises(TypeError, match="synonyms must be a QuerySynonyms"):
        SMARRetriever(tiny_model, uri=store_uri, synonyms=SHOP)


def test_cli_search_and_eval_take_a_synonyms_file(tiny_model_dir: Path, store_uri: str, catalog: Path,
                                                  tmp_path: Path) -> None:
    shop = tmp_path / "shop.txt"
    shop.write_text("# the catalog's words first\nred shirt, crimson button down\n")
    runner = CliRunner()

    def hits(*args: str) -> list[tuple[str, float]]:
        result = runner.invoke(main, ["search", *args, "-k", "30", "--json", "--model", str(tiny_model_dir),
                                      "--uri", store_uri], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return [(h["id"], round(h["score"], 5)) for h in json.loads(result.stdout)["hits"]]

    assert hits("crimson button down", "--synonyms", str(shop)) == hits("red shirt") != hits("crimson button down")
    shown = runner.invoke(main, ["search", "crimson button down", "--synonyms", str(shop), "--model",
                                 str(tiny_model_dir), "--uri", store_uri])
    assert shown.stderr == "note: --synonyms: searched for 'red shirt'\n"  # what was searched is said
    as_json = runner.invoke(main, ["search", "crimson button down", "--synonyms", str(shop), "--json", "--model",
                                   str(tiny_model_dir), "--uri", store_uri])
    assert json.loads(as_json.stdout)["searched"] == "red shirt"
    shop.write_text("red shirt\n")
    bad = runner.invoke(main, ["search", "x", "--synonyms", str(shop), "--uri", store_uri])
    assert bad.exit_code == 1 and f"synonyms file {shop}, line 1: a group needs two or more" in bad.output
    missing = runner.invoke(main, ["search", "x", "--synonyms", str(tmp_path / "none.txt"), "--model",
                                   str(tmp_path / "no-model")])  # the file is read before the model loads
    assert missing.exit_code == 1 and "cannot read synonyms file" in missing.output
    assert "Traceback" not in bad.output + missing.output

    queries = tmp_path / "queries.jsonl"
    red = [hits("red shirt")[0][0]]  # relevant: the product the catalog's words find first
    queries.write_text(json.dumps({"query": "crimson button down", "relevant": red}) + "\n")
    shop.write_text("red shirt, crimson button down\n")

    def ndcg(*args: str) -> float:
        result = runner.invoke(main, ["eval", "--catalog", str(catalog), "--queries", str(queries), "-q", "--json",
                                      "--model", str(tiny_model_dir), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["metrics"]["ndcg@10"]

    without = ndcg()
    queries.write_text(json.dumps({"query": "red shirt", "relevant": red}) + "\n")
    plain = ndcg()
    queries.write_text(json.dumps({"query": "crimson button down", "relevant": red}) + "\n")
    assert ndcg("--synonyms", str(shop)) == pytest.approx(plain) == 1.0 and without < 1.0


def test_demo_searches_the_rewritten_query_and_says_so(tiny_model: SMARModel, store_uri: str) -> None:
    synonyms = QuerySynonyms([["red shirt", "crimson button down"]])
    with open_store("qdrant", uri=store_uri) as store:
        plain = DemoSearch(tiny_model, store).search("red shirt", k=10)
        shop = DemoSearch(tiny_model, store, synonyms=synonyms).search("crimson button down", k=10)
        unchanged = DemoSearch(tiny_model, store, synonyms=synonyms).search("red shirt", k=10)
    assert (shop.query, shop.searched_as) == ("crimson button down", "red shirt")
    assert [(h.id, h.score) for h in shop.hits] == [(h.id, h.score) for h in plain.hits]
    assert unchanged.searched_as == unchanged.query == "red shirt"

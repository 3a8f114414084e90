"""Query rewordings: meaning-preserving, varied, deterministic, and learned from in training."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from smar_sdk import CatalogError
from smar_sdk.training import TrainConfig, train
from smar_sdk.wording import (
    COLOUR_NAMES,
    COLOUR_SYNONYMS,
    FASHION_SYNONYMS,
    QueryRewriter,
    _singular,
    colours_named,
    names_colour,
    read_synonyms,
)

MALE_WORDS = {"men", "men's", "mens", "man", "male", "gents", "him", "guys"}
# The colour labels of the Myntra catalog (train split), lower-cased: catalogs do label these apart.
CATALOG_COLOURS = (
    "beige", "black", "blue", "bronze", "brown", "burgundy", "charcoal", "coffee brown", "copper", "cream",
    "fluorescent green", "gold", "green", "grey", "grey melange", "khaki", "lavender", "magenta", "maroon", "mauve",
    "metallic", "multi", "mustard", "navy blue", "nude", "off white", "olive", "orange", "peach", "pink", "purple",
    "red", "rust", "sea green", "silver", "skin", "steel", "tan", "taupe", "teal", "turquoise blue", "white", "yellow",
)


def test_variants_are_distinct_rewordings_and_deterministic() -> None:
    variants = QueryRewriter(seed=1).variants("Women's  Blue Skirts", 8)
    assert len(variants) == 8 == len(set(variants))
    assert "women's blue skirts" not in variants
    assert variants == QueryRewriter(seed=1).variants("women's blue skirts", 8)
    assert variants != QueryRewriter(seed=2).variants("women's blue skirts", 8)
    assert QueryRewriter(seed=1).variants("   ", 8) == []


def test_rewordings_keep_the_intent() -> None:
    rewriter = QueryRewriter(seed=0)
    variants = rewriter.variants("men's navy blue tshirts", 40)
    assert all("navy" in v or "dark blue" in v for v in variants)  # the colour (or its synonym) survives
    assert all(MALE_WORDS & set(v.split()) for v in variants)  # and so does the gender
    assert any(v.split()[0] in ("navy", "dark") or "for" in v for v in variants)  # word order moves
    assert {"tees", "t shirts", "tee", "t-shirts"} & {w for v in variants for w in (v.split()[-1], v[-8:].strip())}
    women = rewriter.variants("blue skirts for women", 40)
    assert not any(MALE_WORDS & set(v.split()) for v in women)
    assert any("ladies" in v or "her" in v for v in women)


def test_own_lexicon_replaces_the_fashion_one(tmp_path: Path) -> None:
    lexicon = tmp_path / "synonyms.txt"
    lexicon.write_text("# furniture\nsofa, couch, settee\n\narmchair,  easy chair\n")
    groups = read_synonyms(lexicon)
    assert groups == [["sofa", "couch", "settee"], ["armchair", "easy chair"]]
    variants = QueryRewriter(seed=0, synonyms=groups, gender_forms={}).variants("grey sofa", 20)
    assert any("couch" in v for v in variants) and any("settee" in v for v in variants)
    assert not any("couch" in v for v in QueryRewriter(seed=0, synonyms=[]).variants("grey sofa", 20))
    lexicon.write_text("sofa, couch\nlonely\n")
    with pytest.raises(CatalogError, match="line 2: a group needs two or more"):
        read_synonyms(lexicon)
    with pytest.raises(CatalogError, match="cannot read synonyms file"):
        read_synonyms(tmp_path / "missing.txt")
    lexicon.write_text('sofa, couch\ntv 55", television\n"tee", t-shirt\n')  # training would learn the quotes
    with pytest.raises(CatalogError, match="""line 3: the phrase '"tee"' is quoted or bracketed"""):
        read_synonyms(lexicon)


def test_training_on_rewordings_teaches_an_unseen_word(tiny_config, catalog: Path, tmp_path: Path) -> None:
    """Pairs only say "<colour> bag"; a lexicon maps bag to tee. With rewordings, "<colour> tee" finds the bag."""
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    pairs = tmp_path / "bag-pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": f"{r['colour']} {r['article_type']}", "item_id": r["id"]}) + "\n"
                             for r in rows))
    bags = [r for r in rows if r["article_type"] == "bag"]

    def bags_found(variants: int) -> int:
        config = TrainConfig(epochs=150, batch_size=30, learning_rate=5e-3, seed=1, query_variants=variants,
                             synonyms=[["bag", "tee"]])
        model, report = train(catalog, pairs, None, tiny_config, config, cache_dir=None, progress=False)
        assert (report.query_wordings == 30) == (variants == 0)  # 30 queries, plus their rewordings
        items = model.encode_items(rows, base_dir=catalog.parent)
        top = np.argmax(model.encode_queries([f"{b['colour']} tee" for b in bags]) @ items.T, axis=1)
        return sum(rows[t]["id"] == b["id"] for t, b in zip(top, bags, strict=True))

    with_rewordings, without = bags_found(4), bags_found(0)
    assert with_rewordings == len(bags) and without <= len(bags) // 2


def test_hyphenated_words_and_punctuation_are_left_whole() -> None:
    variants = QueryRewriter(seed=0).variants("spider-man multi-colour tshirts", 30)
    assert all("spider-man" in v and "multi-colour" in v for v in variants)  # not a gender, not a colour phrase
    assert not any(MALE_WORDS & set(v.split()) for v in variants)
    bare = QueryRewriter(seed=0, synonyms=[["sofa", "couch"]], gender_forms={})
    assert any("couch" in v for v in bare.variants("grey sofa! (t - shirt)", 10))  # no gender words: no crash


def test_synonym_groups_never_join_two_catalog_colours() -> None:
    for group in FASHION_SYNONYMS:
        labels = set(group) & set(CATALOG_COLOURS)
        assert len(labels) <= 1, group  # "olive" may not become "khaki", nor "maroon" "burgundy"
        assert not labels or group in COLOUR_SYNONYMS, group  # an article or usage group names no colour
    assert set(CATALOG_COLOURS) <= set(COLOUR_NAMES)  # so typos spare every catalog colour


@pytest.mark.parametrize(("plural", "singular"), [
    ("watches", "watch"), ("wristwatches", "wristwatch"), ("dresses", "dress"), ("boxes", "box"),
    ("brushes", "brush"), ("accessories", "accessory"), ("hoodies", "hoodie"), ("ties", "tie"),
    ("tshirts", "tshirt"), ("t-shirts", "t-shirt"), ("shoes", "shoe"), ("sizes", "size"), ("blouses", "blouse"),
    ("kurtas", "kurta"), ("kurtis", "kurti"), ("sarees", "saree"), ("scarves", "scarf"), ("bras", "bra"),
    # plural-only, or the singular means something else: unchanged
    ("jeans", "jeans"), ("shorts", "shorts"), ("trousers", "trousers"), ("pants", "pants"),
    ("track-pants", "track-pants"), ("briefs", "briefs"), ("boxers", "boxers"), ("trunks", "trunks"),
    ("glasses", "glasses"), ("sunglasses", "sunglasses"), ("shades", "shades"), ("sunnies", "sunnies"),
    ("leggings", "leggings"), ("tights", "tights"), ("pyjamas", "pyjamas"), ("capris", "capris"), ("flats", "flats"),
    ("heels", "heels"),
    # not plurals: unchanged
    ("dress", "dress"), ("glass", "glass"), ("plus", "plus"), ("canvas", "canvas"), ("tennis", "tennis"),
    ("women's", "women's"), ("tee", "tee"),
])
def test_singular_of_fashion_plurals(plural: str, singular: str) -> None:
    assert _singular(plural) == singular


def test_typos_spare_colour_gender_and_short_words() -> None:
    rewriter = QueryRewriter(seed=3)
    queries = {"women black skirts": ("black",), "olive green kurtas for men": ("olive", "olive green"),
               "boys and girls maroon sweaters": ("maroon",), "khaki trousers": ("khaki",),
               "cream dresses for girls": ("cream",), "steel watches": ("steel",), "tan casual shoes": ("tan",)}
    def swaps(words: set[str]) -> set[str]:
        return {w[:i] + w[i + 1] + w[i] + w[i + 2:] for w in words for i in range(len(w) - 1)} - words

    protected = swaps({"black", "olive", "green", "girls", "maroon", "khaki", "cream", "steel", "tan", "women", "men"})
    others = swaps({"skirts", "kurtas", "trousers", "dresses", "sweaters", "watches", "casual"})
    typos = 0
    for query, colours in queries.items():
        for _ in range(400):
            text = rewriter.reword(query)
            assert any(re.search(rf"(?<![\w-]){c}(?![\w-])", text) for c in colours), text  # only its own group
            assert not protected & set(text.split()), text
            typos += bool(others & set(text.split()))
    assert typos  # typos still happen, on the other words
    bare = QueryRewriter(seed=0, synonyms=[], gender_forms={}, prefixes=("",), suffixes=("",))
    words = {w for _ in range(2000) for w in bare.reword("bags caps socks").split()}
    assert words - {"bags", "caps", "socks", "bag", "cap", "sock"} == {"scoks", "sokcs"}  # typos on 5+ letters only


@pytest.mark.parametrize(("title", "names"), [
    ("Nike Men Navy Blue T-shirt", True), ("Puma Women Off-White Sneakers", True), ("Titan Men GOLD Watch", True),
    ("Lee Men Check Shirt", False), ("Roadster Women Rosewood Kurta", False), ("Goldstar Men Sandals", False),
    ("", False),
])
def test_names_colour_reads_whole_colour_words(title: str, names: bool) -> None:
    assert names_colour(title) is names


@pytest.mark.parametrize(("title", "colours"), [
    ("Nike Men Navy Blue and White T-shirt", ["navy blue", "white"]), ("Puma Women Off-White Sneakers", ["off-white"]),
    ("Lee Men Check Shirt", []), ("Goldstar Men Sandals", []), ("Titan Men GOLD Watch", ["gold"]),
])
def test_colours_named_lists_each_colour_phrase_once_longest_first(title: str, colours: list[str]) -> None:
    assert colours_named(title) == colours

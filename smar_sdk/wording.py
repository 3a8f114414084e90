"""Reworded shopper queries for training: the same intent typed the many ways shoppers type it.

Training pairs are often generated from product attributes ("women's blue skirts"), while shoppers
write "skirt blue ladies", "navy tee", "looking for sun glasses". ``QueryRewriter`` turns one query
into reworded variants (synonyms, gender forms, word order, fillers, singulars, split or glued
compounds and small typos) so that the query tower learns the intent rather than the template.
The default lexicon is general English fashion vocabulary; pass your own for other domains.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import CatalogError

# Each group lists ways of saying the same thing; any member may be replaced by any other.
FASHION_SYNONYMS: tuple[tuple[str, ...], ...] = (
    # colours
    ("navy blue", "navy", "dark blue"), ("grey", "gray"), ("off white", "cream", "ivory"),
    ("maroon", "burgundy", "wine", "dark red"), ("multi", "multicolour", "multicolor", "multi colour"),
    ("gold", "golden"), ("silver", "silvery"), ("charcoal", "dark grey"), ("coffee brown", "dark brown"),
    ("tan", "light brown", "camel"), ("beige", "sand", "nude"), ("khaki", "olive"),
    ("turquoise blue", "turquoise", "aqua"), ("teal", "blue green"), ("mustard", "dark yellow"),
    ("peach", "light orange"), ("lavender", "light purple", "lilac"), ("magenta", "dark pink", "fuchsia"),
    ("fluorescent green", "neon green"), ("sea green", "light green"), ("rust", "brick"),
    ("colour", "color", "coloured", "shade"),
    # articles
    ("tshirts", "t-shirts", "t shirts", "tees", "tee shirts", "tshirt", "t-shirt", "t shirt", "tee"),
    ("jeans", "denims", "denim jeans"), ("track pants", "trackpants", "joggers"), ("trousers", "pants", "slacks"),
    ("casual shoes", "sneakers", "everyday shoes"), ("sports shoes", "running shoes", "trainers", "sport shoes"),
    ("formal shoes", "office shoes", "dress shoes", "oxfords"), ("flip flops", "flipflops", "slippers", "chappals"),
    ("heels", "high heels", "pumps"), ("flats", "flat shoes", "ballerinas"),
    ("sunglasses", "sun glasses", "shades"), ("watches", "wrist watches", "wristwatches"),
    ("handbags", "hand bags", "purses"), ("clutches", "clutch bags", "evening bags"),
    ("backpacks", "back packs", "rucksacks", "school bags"), ("wallets", "billfolds"),
    ("briefs", "underwear", "undies"), ("dresses", "frocks"), ("sweaters", "jumpers", "pullovers"),
    ("sweatshirts", "sweat shirts", "hoodies"), ("jackets", "coats"), ("caps", "hats"),
    ("deodorant", "deo", "deodorants"), ("perfume", "fragrance", "scent"), ("earrings", "ear rings"),
    ("innerwear vests", "vests", "undershirts"), ("mufflers", "scarves", "scarfs"),
    ("jewellery", "jewelry"), ("kurtas", "kurta"), ("kurtis", "kurti"), ("tops", "top"),
    # usage
    ("casual", "everyday", "daily wear"), ("formal", "office", "work"), ("ethnic", "traditional"),
    ("sports", "gym", "athletic"), ("party", "evening"),
)

# Ways of naming who a product is for; "{}" marks where the rest of the query goes.
GENDER_FORMS: Mapping[str, tuple[str, ...]] = {
    "women": ("{} for women", "women's {}", "womens {}", "{} women", "ladies {}", "{} for ladies",
              "{} for her", "female {}", "{} woman"),
    "men": ("{} for men", "men's {}", "mens {}", "{} men", "gents {}", "{} for him", "male {}", "{} man",
            "{} for guys"),
    "girls": ("{} for girls", "girls {}", "girl's {}", "{} girl"),
    "boys": ("{} for boys", "boys {}", "boy's {}", "{} boy"),
    "unisex": ("unisex {}", "{} unisex", "{} for everyone"),
}
_GENDER_WORDS = {
    "women": ("women's", "womens", "women", "woman", "ladies", "female"),
    "men": ("men's", "mens", "men", "man", "gents", "male"),
    "girls": ("girl's", "girls", "girl"), "boys": ("boy's", "boys", "boy"), "unisex": ("unisex",),
}
_WORD = r"(?<![\w'-])({})(?![\w'-])"  # a regex alternation matched as whole words (hyphens join words)
PREFIXES = ("looking for", "looking for a", "show me", "i want", "i need", "need", "buy", "shop", "search",
            "find me", "best", "latest", "new", "cheap", "stylish", "good")
SUFFIXES = ("online", "sale", "on sale", "under 1000", "collection", "please", "for daily use", "new arrivals")


class QueryRewriter:
    """Random rewordings of a shopper query; deterministic for a given seed."""

    def __init__(self, seed: int = 0, synonyms: Sequence[Sequence[str]] = FASHION_SYNONYMS,
                 gender_forms: Mapping[str, Sequence[str]] = GENDER_FORMS,
                 prefixes: Sequence[str] = PREFIXES, suffixes: Sequence[str] = SUFFIXES) -> None:
        self.random = random.Random(seed)
        self.alternatives: dict[str, list[str]] = {}
        for group in synonyms:
            for phrase in group:
                self.alternatives.setdefault(phrase, []).extend(p for p in group if p != phrase)
        self.gender_forms, self.prefixes, self.suffixes = gender_forms, prefixes, suffixes
        phrases = sorted(self.alternatives, key=len, reverse=True)  # longest first: "navy blue" before "blue"
        # whole words only: "x-men" and "spider-man" name no gender, "multi-colour" holds no "colour"
        self.phrase_pattern = re.compile(_WORD.format("|".join(map(re.escape, phrases)))) if phrases else None
        gender_words = sorted(((w, g) for g, ws in _GENDER_WORDS.items() if g in gender_forms for w in ws),
                              key=lambda x: len(x[0]), reverse=True)
        self.gender_of = dict(gender_words)
        gender_alternation = "|".join(re.escape(w) for w, _ in gender_words)
        self.gender_pattern = re.compile(r"(?:\bfor\s+)?" + _WORD.format(gender_alternation)) if gender_words else None

    def variants(self, query: str, count: int, attempts: int = 6) -> list[str]:
        """Up to ``count`` distinct rewordings of ``query`` (never the query itself)."""
        original = " ".join(query.lower().split())
        if not original:
            return []  # fillers alone are not a query
        found: list[str] = []
        for _ in range(count * attempts):
            if len(found) == count:
                break
            candidate = self.reword(original)
            if candidate != original and candidate not in found:
                found.append(candidate)
        return found

    def reword(self, query: str) -> str:
        """One random rewording: every step is applied with its own probability."""
        rng = self.random
        core, gender = self._split_gender(query)
        units = self._units(core)
        units = [rng.choice(self.alternatives[u]) if u in self.alternatives and rng.random() < 0.5 else u
                 for u in units]
        if len(units) > 1 and rng.random() < 0.3:
            units = units[-1:] + units[:-1]  # "navy blue skirts" -> "skirts navy blue"
        words = " ".join(units).split()
        if words and rng.random() < 0.3:
            words[-1] = _singular(words[-1])
        if words and rng.random() < 0.1:
            index = rng.randrange(len(words))
            words[index] = _typo(words[index], rng)
        text = " ".join(words)
        if gender is not None:
            text = rng.choice(self.gender_forms[gender]).format(text)
        if rng.random() < 0.25:
            text = f"{rng.choice(self.prefixes)} {text}"
        if rng.random() < 0.15:
            text = f"{text} {rng.choice(self.suffixes)}"
        return " ".join(text.split())

    def _units(self, text: str) -> list[str]:
        """Words, keeping lexicon phrases ("navy blue", "track pants") whole."""
        if self.phrase_pattern is None:
            return text.split()
        return [m.group(0) for m in re.finditer(self.phrase_pattern.pattern + r"|\S+", text)]

    def _split_gender(self, query: str) -> tuple[str, str | None]:
        """The query without its first gender phrase, and that gender (``None`` if it names none)."""
        match = self.gender_pattern.search(query) if self.gender_pattern is not None else None
        if match is None:
            return query, None
        return (query[: match.start()] + " " + query[match.end() :]).strip(), self.gender_of[match.group(1)]


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _typo(word: str, rng: random.Random) -> str:
    """Swap two neighbouring letters of a word of five letters or more (shoppers mistype)."""
    if len(word) < 5 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def read_synonyms(path: str | Path) -> list[list[str]]:
    """A lexicon file: one group of interchangeable phrases per line, comma-separated; ``#`` starts a comment."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read synonyms file {path}: {exc}") from exc
    groups = []
    for number, line in enumerate(lines, start=1):
        phrases = [" ".join(p.lower().split()) for p in line.split("#", 1)[0].split(",")]
        phrases = [p for p in phrases if p]
        if len(phrases) == 1:
            raise CatalogError(f"synonyms file {path}, line {number}: a group needs two or more comma-separated "
                               f"phrases, got {phrases[0]!r}")
        if phrases:
            groups.append(phrases)
    if not groups:
        raise CatalogError(f"synonyms file {path} has no group of phrases (one comma-separated group per line)")
    return groups

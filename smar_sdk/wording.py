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

# Colour names (every colour label of the Myntra catalog among them): typos never touch their words.
COLOUR_NAMES: tuple[str, ...] = (
    "black", "white", "off white", "cream", "ivory", "grey", "gray", "grey melange", "charcoal", "silver", "steel",
    "metallic", "gold", "golden", "bronze", "copper", "blue", "navy blue", "navy", "turquoise blue", "turquoise",
    "teal", "aqua", "cyan", "indigo", "green", "sea green", "olive", "khaki", "lime", "mint", "fluorescent green",
    "neon", "yellow", "mustard", "orange", "peach", "coral", "rust", "red", "maroon", "burgundy", "wine", "pink",
    "magenta", "fuchsia", "rose", "purple", "violet", "lavender", "lilac", "mauve", "brown", "coffee brown", "tan",
    "camel", "beige", "sand", "nude", "skin", "taupe", "multi", "multicolour", "multicolor",
)
# Each group lists ways of saying the same thing; any member may be replaced by any other. A colour group holds
# one colour a catalog may label apart (olive, khaki, maroon and burgundy are four) and only its true synonyms.
COLOUR_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("navy blue", "navy", "dark blue"), ("grey", "gray"), ("grey melange", "grey marl", "heather grey"),
    ("off white", "off-white", "offwhite"), ("burgundy", "wine"), ("gold", "golden"), ("silver", "silvery"),
    ("multi", "multicolour", "multicolor", "multi colour"), ("charcoal", "charcoal grey", "charcoal gray", "dark grey"),
    ("coffee brown", "coffee-brown"), ("tan", "tan brown"), ("beige", "sand"), ("olive", "olive green"),
    ("turquoise blue", "turquoise"), ("teal", "teal blue"), ("mustard", "mustard yellow"), ("magenta", "fuchsia"),
    ("fluorescent green", "neon green"), ("sea green", "sea-green"),
)
FASHION_SYNONYMS: tuple[tuple[str, ...], ...] = COLOUR_SYNONYMS + (
    ("colour", "color", "coloured", "shade"),  # the word, not a colour
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
# Words typos leave alone: colours and genders are what a query must keep exactly ("steel" is not "stele").
_EXACT_WORDS = frozenset(w for phrase in (*COLOUR_NAMES, *(p for g in COLOUR_SYNONYMS for p in g),
                                          *(w for ws in _GENDER_WORDS.values() for w in ws))
                         for w in re.split(r"[\s-]+", phrase))
# Plurals kept as they are: plural-only words, and words whose singular means something else ("shorts", "heels").
_KEEP_PLURALS = frozenset({
    "jeans", "shorts", "trousers", "pants", "trackpants", "sweatpants", "slacks", "chinos", "khakis", "cargos",
    "joggers", "leggings", "jeggings", "tights", "capris", "pyjamas", "pajamas", "dungarees", "overalls", "bottoms",
    "lowers", "briefs", "boxers", "trunks", "knickers", "undies", "clothes", "glasses", "sunglasses", "eyeglasses",
    "spectacles", "goggles", "shades", "sunnies", "flats", "heels", "pumps", "trainers", "ballerinas", "series",
    "tennis", "canvas", "this",
})
_IE_NOUNS = frozenset({"hoodie", "beanie", "bootie", "onesie", "nightie", "necktie", "bowtie", "kurtie"})
_IRREGULAR_SINGULARS = {"scarves": "scarf", "knives": "knife", "lenses": "lens"}
_WORD = r"(?<![\w'-])({})(?![\w'-])"  # a regex alternation matched as whole words (hyphens join words)
_COLOUR_PATTERN = re.compile(_WORD.format("|".join(map(re.escape, sorted(
    {*COLOUR_NAMES, *(p for g in COLOUR_SYNONYMS for p in g)}, key=len, reverse=True)))))
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
        typeable = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha() and w not in _EXACT_WORDS]
        if typeable and rng.random() < 0.1:
            index = rng.choice(typeable)
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


def names_colour(text: str) -> bool:
    """Whether ``text`` names a colour of the lexicon, as whole words in any case ("Navy Blue Shirts": yes)."""
    return _COLOUR_PATTERN.search(text.lower()) is not None


def colours_named(text: str) -> list[str]:
    """The lexicon's colours ``text`` names, longest phrase first where they overlap, in order, lower case
    ("Navy Blue and white Shirt": ``["navy blue", "white"]``)."""
    return [match.group(1) for match in _COLOUR_PATTERN.finditer(text.lower())]


def _singular(word: str) -> str:
    """The singular of an English plural ("watches", "t-shirts"); other words and plural-only ones stay as they are."""
    head, dash, tail = word.rpartition("-")  # "t-shirts": the last part is the noun
    if len(tail) < 4 or not tail.isalpha() or not tail.endswith("s") or tail.endswith(("ss", "us")) \
            or tail in _KEEP_PLURALS:
        return word
    if tail in _IRREGULAR_SINGULARS:
        singular = _IRREGULAR_SINGULARS[tail]
    elif tail.endswith(("ches", "shes", "sses", "xes")):
        singular = tail[:-2]  # watches, brushes, dresses, boxes
    elif tail.endswith("ies") and len(tail) > 4 and tail[:-1] not in _IE_NOUNS:
        singular = tail[:-3] + "y"  # accessories; but hoodies, ties
    else:
        singular = tail[:-1]
    return head + dash + singular


def _typo(word: str, rng: random.Random) -> str:
    """Swap two neighbouring letters inside a word of five letters or more (shoppers mistype); the ends stay."""
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


_PAIRS = {'"': '"', "“": "”", "'": "'", "‘": "’", "«": "»", "(": ")", "[": "]", "{": "}", "<": ">"}
WRAPPED_HINT = ("is quoted or bracketed, so it would match (or, in training, teach) only a query typed with the same "
                "marks; write each phrase bare: heels, stilettos")


def wrapped_phrase(phrases: Sequence[str]) -> str | None:
    """The first phrase wrapped in a pair of quotes or brackets (``"heels"``, ``(heels)``): it would match, or be
    trained as, only a query typed with the same marks. A mark at one end only (``tv 55"``, ``tee (unisex)``) is
    part of the phrase."""
    return next((p for p in phrases if len(p) > 1 and _PAIRS.get(p[0]) == p[-1]), None)


def read_synonyms(path: str | Path) -> list[list[str]]:
    """A lexicon file: one group of interchangeable phrases per line, comma-separated; ``#`` starts a comment."""
    return [phrases for _, phrases in read_synonym_lines(path)]


def read_synonym_lines(path: str | Path) -> list[tuple[int, list[str]]]:
    """``read_synonyms`` with each group's line number."""
    try:
        # a byte-order mark (Notepad) is dropped; only "\n" ends a line, like the catalog's
        lines = Path(path).read_text(encoding="utf-8-sig").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CatalogError(f"cannot read synonyms file {path}: {reason}") from exc
    groups = []
    for number, line in enumerate(lines, start=1):
        phrases = [" ".join(p.lower().split()) for p in line.split("#", 1)[0].split(",")]
        phrases = [p for p in phrases if p]
        if len(phrases) == 1:
            raise CatalogError(f"synonyms file {path}, line {number}: a group needs two or more comma-separated "
                               f"phrases, got {phrases[0]!r}")
        if wrapped := wrapped_phrase(phrases):
            raise CatalogError(f"synonyms file {path}, line {number}: the phrase {wrapped!r} {WRAPPED_HINT}")
        if phrases:
            groups.append((number, phrases))
    if not groups:
        raise CatalogError(f"synonyms file {path} has no group of phrases (one comma-separated group per line)")
    return groups

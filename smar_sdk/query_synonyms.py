"""Shop synonyms applied to queries at search time: shoppers' words rewritten to the catalog's before encoding.

A trained query tower knows the wordings it was trained on. A word it never saw ("sunnies", "stilettos") can land
far from the products it means. A shop that knows its shoppers' words can say so without retraining: each group of
a synonyms file names the catalog's word first and the shoppers' words after it, and every later phrase found in a
query (whole words, any case) is replaced by the first one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from .errors import CatalogError
from .wording import WRAPPED_HINT, read_synonym_lines, wrapped_phrase

_WORD_EDGE = r"\w'’‘-"  # a phrase is matched only where none of these touches it (hyphens and apostrophes join words)


class QuerySynonyms:
    """Rewrites queries with synonym groups: every phrase of a group after the first becomes the first.

    >>> QuerySynonyms([["sunglasses", "sunnies", "shades"]]).rewrite("Ladies SUNNIES")
    'Ladies sunglasses'
    """

    def __init__(self, groups: Sequence[Sequence[str]], origins: Sequence[str] | None = None) -> None:
        """``groups``: each a list of phrases, the catalog's first; ``origins`` names each group in errors
        (``from_file`` passes "line N"; default "group N")."""
        labels = list(origins) if origins is not None else [f"group {n}" for n in range(1, len(groups) + 1)]
        synonym_of: dict[str, tuple[str, str]] = {}  # synonym -> (its group's first phrase, that group's label)
        firsts: dict[str, str] = {}
        for group, label in zip(groups, labels, strict=True):
            if isinstance(group, str):
                raise ValueError(f"{label} is the string {group!r}: give a list of phrases, such as "
                                 "['heels', 'stilettos']")
            phrases = list(dict.fromkeys(p for p in (" ".join(str(x).lower().split()) for x in group) if p))
            if len(phrases) < 2:
                raise ValueError(f"{label} needs the catalog's phrase and one or more other phrases for it, "
                                 f"got {list(group)!r}")
            if wrapped := wrapped_phrase(phrases):
                raise ValueError(f"{label}: the phrase {wrapped!r} {WRAPPED_HINT}")
            first, synonyms = phrases[0], phrases[1:]
            for phrase in synonyms:
                if phrase in synonym_of and synonym_of[phrase][0] != first:
                    raise ValueError(f"{phrase!r} is a synonym of both {synonym_of[phrase][0]!r} "
                                     f"({synonym_of[phrase][1]}) and {first!r} ({label}): keep it in one group")
                synonym_of[phrase] = (first, label)
            firsts.setdefault(first, label)
        if chained := sorted(set(firsts) & set(synonym_of)):
            phrase = chained[0]
            raise ValueError(f"{phrase!r} is the catalog's phrase of {firsts[phrase]} and a synonym of "
                             f"{synonym_of[phrase][0]!r} ({synonym_of[phrase][1]}): merge the two groups")
        # Each group's first phrase is matched too, so that "casual shoes" stays whole where "shoes" is a synonym.
        every = {**{phrase: None for phrase in firsts}, **{phrase: first for phrase, (first, _) in synonym_of.items()}}
        phrases = sorted(every, key=len, reverse=True)  # the longest phrase wins where several start
        # what the phrase of each named alternative becomes; None: a group's first, kept as typed
        self._replacement: list[str | None] = [every[phrase] for phrase in phrases]
        self._count = len(synonym_of)
        spaced = r"\s+"  # a phrase's words match across any run of spaces
        alternatives = "|".join(f"(?P<p{i}>{spaced.join(map(re.escape, phrase.split()))})"
                                for i, phrase in enumerate(phrases))
        self._pattern = (re.compile(rf"(?<![{_WORD_EDGE}])(?:{alternatives})(?![{_WORD_EDGE}])", re.IGNORECASE)
                         if alternatives else None)

    @classmethod
    def from_file(cls, path: str | Path) -> QuerySynonyms:
        """Groups from a synonyms file (``smar_sdk.wording.read_synonyms``: one comma-separated group per line,
        the catalog's phrase first); a conflict names its lines."""
        lines = read_synonym_lines(path)
        try:
            return cls([phrases for _, phrases in lines], [f"line {number}" for number, _ in lines])
        except ValueError as exc:
            raise CatalogError(f"synonyms file {path}: {exc}") from exc

    def rewrite(self, query: str) -> str:
        """``query`` with each synonym replaced by its group's first phrase, in one pass (a replacement is never
        rewritten again); the rest of the query, the catalog's own phrases included, is kept as typed."""
        if self._pattern is None:
            return query

        def replace(match: re.Match[str]) -> str:
            replacement = self._replacement[int(match.lastgroup[1:])]
            return match.group(0) if replacement is None else replacement

        return self._pattern.sub(replace, query)

    def __repr__(self) -> str:
        return f"<QuerySynonyms of {self._count} phrase{'' if self._count == 1 else 's'}>"

    def __len__(self) -> int:
        """How many synonyms (phrases that are rewritten)."""
        return self._count

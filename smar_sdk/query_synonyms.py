"""Shop synonyms applied to queries at search time: shoppers' words rewritten to the catalog's before encoding.

A trained query tower knows the wordings it was trained on. A word it never saw ("sunnies", "stilettos") is read
by its sub-words and can land far from the products it means. A shop that knows its shoppers' words can say so
without retraining: each group of a synonyms file names the catalog's word first and the shoppers' words after
it, and every later phrase found in a query (whole words, any case) is replaced by the first one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from .errors import CatalogError
from .wording import read_synonyms


class QuerySynonyms:
    """Rewrites queries with synonym groups: every phrase of a group after the first becomes the first.

    >>> QuerySynonyms([["sunglasses", "sunnies", "shades"]]).rewrite("Ladies SUNNIES")
    'Ladies sunglasses'
    """

    def __init__(self, groups: Sequence[Sequence[str]]) -> None:
        self.canonical: dict[str, str] = {}
        for group in groups:
            phrases = [" ".join(str(p).lower().split()) for p in group]
            phrases = [p for p in phrases if p]
            if len(phrases) < 2:
                raise ValueError(f"a synonym group needs a catalog phrase and one or more synonyms, "
                                 f"got {list(group)!r}")
            for phrase in phrases[1:]:
                earlier = self.canonical.get(phrase, phrases[0])
                if earlier != phrases[0]:
                    raise ValueError(f"{phrase!r} is a synonym of both {earlier!r} and {phrases[0]!r}: "
                                     "keep it in one group")
                if phrase != phrases[0]:
                    self.canonical[phrase] = phrases[0]
        if chained := sorted(set(self.canonical.values()) & set(self.canonical)):
            raise ValueError(f"{chained[0]!r} is a group's first phrase and another group's synonym "
                             f"(of {self.canonical[chained[0]]!r}): merge the two groups")
        alternation = "|".join(r"\s+".join(map(re.escape, p.split())) for p in sorted(self.canonical, key=len,
                                                                                        reverse=True))
        # whole words: not inside a word, and not glued to one by a hyphen or an apostrophe
        self._pattern = re.compile(rf"(?<![\w'-])({alternation})(?![\w'-])", re.IGNORECASE) if alternation else None

    @classmethod
    def from_file(cls, path: str | Path) -> QuerySynonyms:
        """Groups from a synonyms file (``smar_sdk.wording.read_synonyms``: one comma-separated group per line,
        the catalog's phrase first)."""
        try:
            return cls(read_synonyms(path))
        except ValueError as exc:
            raise CatalogError(f"synonyms file {path}: {exc}") from exc

    def rewrite(self, query: str) -> str:
        """``query`` with each synonym replaced by its group's first phrase, in one pass (a replacement is never
        rewritten again); the rest of the query is kept as typed."""
        if self._pattern is None:
            return query
        return self._pattern.sub(lambda match: self.canonical[" ".join(match.group(1).lower().split())], query)

    def __len__(self) -> int:
        return len(self.canonical)

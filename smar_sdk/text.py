"""Checks on text from users: catalog rows, queries and filters must be UTF-8 to reach a tokenizer or a store."""

from __future__ import annotations

NOT_UTF8 = "a lone surrogate escape (such as \\ud800, or a byte a shell could not decode), which is not UTF-8 text"


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (Python strings may hold lone surrogates, which do not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

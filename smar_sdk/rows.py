"""Rows held in memory (dicts, a DataFrame's records) written as a JSON Lines catalog, so they index like a file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from .errors import CatalogError
from .store import json_value
from .text import is_utf8


def write_rows(rows: Iterable[Mapping[str, Any]], handle: TextIO) -> int:
    """Write each row as one JSON line; return how many. A row that is not a mapping, or holds a value JSON cannot
    express (a ``datetime``, a set), stops here, before anything is indexed, naming the row by its position
    (counting from 1, as rejections do) so it can be fixed. ``NaN`` is written as it is: the catalog rejects that
    row under its id, as it would in a file."""
    if isinstance(rows, Mapping | str | bytes):
        raise TypeError(f"rows must be an iterable of rows (dicts), got one {type(rows).__name__}")
    count = 0
    for count, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise CatalogError(f"rows: row {count} is a {type(row).__name__}, not a mapping of field names to "
                               "values: pass dicts (for a DataFrame, df.to_dict('records'))")
        try:
            line = json.dumps(dict(row), ensure_ascii=False, default=json_value)
            if not is_utf8(line):  # a lone surrogate: escaped, so the catalog names its field
                line = json.dumps(dict(row), default=json_value)
        except (TypeError, ValueError) as exc:
            raise CatalogError(f"rows: row {count} cannot be written as JSON ({exc}): convert that value to a "
                               "string, number, boolean, null, list or object") from exc
        handle.write(line + "\n")
    return count


def rows_catalog(rows: Iterable[Mapping[str, Any]], folder: Path) -> Path:
    """``rows`` written to ``folder/rows`` (JSON Lines; the name the progress bar shows), the catalog an in-memory
    index run reads."""
    path = folder / "rows"
    with path.open("w", encoding="utf-8") as handle:
        write_rows(rows, handle)
    return path

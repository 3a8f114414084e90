"""Stream a JSON Lines catalog into validated product records, rejecting broken rows with their reason."""

from __future__ import annotations

import codecs
import io
import json
import math
import numbers
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import CatalogError
from .filters import INT64, cli_values, filter_text, same_value
from .text import is_utf8

MAX_TEXT_CHARS = 4000
MAX_ID_BYTES = 1024  # the tightest id limit of the built-in stores (Milvus' VarChar key), so a catalog fits all
MAX_PAYLOAD_BYTES = 64 * 1024 - 1024  # Milvus' JSON field limit, less room for the SDK's bookkeeping keys
MAX_NESTING = 64  # lists and objects within each other: far beyond a catalog's needs, well within a JSON parser's


class NonFiniteNumber(ValueError):
    """``NaN`` / ``Infinity`` in a row: Python's json reads them, but they are not JSON and no store takes them."""


def _reject_constant(name: str) -> Any:
    raise NonFiniteNumber(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NonFiniteNumber(f"{text} is beyond the largest 64-bit float")
    return value


RESERVED_PREFIX = "_smar"  # payload keys the SDK keeps its bookkeeping under (store.ID_PAYLOAD_KEY, ...)


def _unstorable(value: Any, path: str, depth: int = 0) -> str | None:
    """Why ``value`` (at ``path``) cannot be stored as it is, if it cannot: an integer stores would round to a float
    (beyond 64 bits), text that is not UTF-8 (a lone surrogate escape such as ``\\ud800``), or lists and objects
    nested more than ``MAX_NESTING`` deep."""
    if depth > MAX_NESTING:
        return f"field {path!r} is nested more than {MAX_NESTING} lists or objects deep; flatten it"
    if isinstance(value, int) and not isinstance(value, bool) and value not in INT64:
        return (f"field {path!r} holds an integer beyond 64 bits, which stores keep only as a rounded float; "
                "write it as a string")
    if isinstance(value, str) and not is_utf8(value):
        return f"field {path!r} holds a lone surrogate escape (such as \\ud800), which is not UTF-8 text"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if not is_utf8(str(key)):
            where = f" in {path!r}" if path != "row" else ""
            return f"a field name{where} holds a lone surrogate escape, which is not UTF-8 text"
        if found := _unstorable(item, f"{path}[{key!r}]" if isinstance(key, int) else f"{path}.{key}", depth + 1):
            return found
    return None


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _oversized(row: dict[str, Any]) -> str | None:
    """Why a row is too large for every store to keep as its payload (Milvus keeps at most 64 KiB of JSON), if it is."""
    size = _json_bytes(row)
    if size <= MAX_PAYLOAD_BYTES:
        return None
    largest = max(row, key=lambda name: _json_bytes(row[name]))
    return (f"the row is {size:,} bytes as JSON, over the {MAX_PAYLOAD_BYTES:,}-byte payload every store keeps; "
            f"shorten it (its largest field, {largest!r}, is {_json_bytes(row[largest]):,} bytes)")


def item_id_text(value: Any) -> str | None:
    """An item id as the SDK keeps it: a string, or an integer as its digits; None for anything else (a boolean,
    a number with a fraction, null, a list or an object)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


class FieldMapping(BaseModel):
    """Which catalog fields hold the id, the item text and the image (``--id-field`` and friends)."""

    model_config = ConfigDict(extra="forbid")

    id_field: str = "id"
    text_fields: list[str] = Field(default_factory=lambda: ["title"], min_length=1)
    image_field: str = "image"


def joined_text(row: dict[str, Any], fields: Sequence[str]) -> str:
    """A row's item text: its ``fields``, each stripped, joined with spaces (missing or empty ones skipped)."""
    return " ".join(row[name].strip() for name in fields if row.get(name))


class Product(BaseModel):
    """One valid catalog row: its id, item text, image reference and every field as payload."""

    model_config = ConfigDict(extra="forbid")

    line: int
    id: str = Field(min_length=1, max_length=512)
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    image: str = Field(min_length=1, max_length=4096)
    payload: dict[str, Any]

    @field_validator("id", "text", "image")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("id")
    @classmethod
    def _id_fits_every_store(cls, value: str) -> str:
        size = len(value.encode("utf-8"))
        if size > MAX_ID_BYTES:
            raise ValueError(f"is {size} bytes in UTF-8; ids must be at most {MAX_ID_BYTES} bytes")
        return value


class Rejection(BaseModel):
    """A row that could not be used: where it is, why, and the original line to fix and re-feed."""

    line: int
    id: str | None = None
    reason: str
    raw: str

    @field_validator("id")
    @classmethod
    def _utf8_or_none(cls, value: str | None) -> str | None:
        return value if value is None or is_utf8(value) else None  # an id that cannot be written names no row


def _lenient_id(raw: str, mapping: FieldMapping) -> str | None:
    """The id of a line read as Python's json reads it (NaN and Infinity allowed), to name a rejected row; None when
    even that cannot read it."""
    try:
        row = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return item_id_text(row.get(mapping.id_field)) if isinstance(row, dict) else None


def parse_row(raw: str, line: int, mapping: FieldMapping,
              only: dict[str, str] | None = None) -> Product | Rejection | None:
    """Validate one catalog line; never raises for bad content. None for a JSON object that ``only`` skips (it is
    not validated: a broken row outside the subset is not this run's rejection)."""
    try:
        row = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        at = "" if exc.msg.endswith(" at") else " at"  # "Unterminated string starting at" says it
        return Rejection(line=line, reason=f"not valid JSON ({exc.msg}{at} column {exc.colno})", raw=raw)
    except RecursionError:
        return Rejection(line=line, reason=f"nested more than {MAX_NESTING} lists or objects deep (too deep to read); "
                                           "flatten it", raw=raw)
    except NonFiniteNumber as exc:
        return Rejection(line=line, id=_lenient_id(raw, mapping), raw=raw,
                         reason=f"not valid JSON ({exc}; write null or a finite number)")
    if not isinstance(row, dict):
        return Rejection(line=line, reason=f"a row must be a JSON object, got {type(row).__name__}", raw=raw)
    if only and not matches(row, only):
        return None
    raw_id = row.get(mapping.id_field)
    item_id = item_id_text(raw_id)
    if item_id is None:
        what = ("missing" if raw_id is None
                else f"a {type(raw_id).__name__} ({raw_id!r:.40}); ids are strings or integers")
        return Rejection(line=line, reason=f"id field {mapping.id_field!r} is {what}", raw=raw)
    if not item_id.strip():
        return Rejection(line=line, reason=f"id field {mapping.id_field!r} is blank", raw=raw)
    if reserved := sorted(k for k in row if k.startswith(RESERVED_PREFIX)):
        return Rejection(line=line, id=item_id,
                         reason=f"field {reserved[0]!r} is reserved: the SDK keeps its bookkeeping under "
                                f"'{RESERVED_PREFIX}*' keys; rename the field", raw=raw)
    if problem := _unstorable(row, "row"):
        return Rejection(line=line, id=item_id, reason=problem.replace("'row.", "'", 1), raw=raw)
    if too_big := _oversized(row):
        return Rejection(line=line, id=item_id, reason=too_big, raw=raw)
    for name in [*mapping.text_fields, mapping.image_field]:
        value = row.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return Rejection(line=line, id=item_id, reason=f"field {name!r} is missing or empty", raw=raw)
        if not isinstance(value, str):
            return Rejection(line=line, id=item_id,
                             reason=f"field {name!r} must be a string, got {type(value).__name__}", raw=raw)
    text = joined_text(row, mapping.text_fields)
    try:
        return Product(line=line, id=item_id, text=text, image=row[mapping.image_field], payload=row)
    except ValueError as exc:
        first = exc.errors()[0] if hasattr(exc, "errors") else {"loc": ("row",), "msg": str(exc)}
        field = {"text": "+".join(mapping.text_fields), "image": mapping.image_field,
                 "id": mapping.id_field}.get(str(first["loc"][0]), str(first["loc"][0]))
        return Rejection(line=line, id=item_id, reason=f"field {field!r}: {first['msg']}", raw=raw)


def matches(row: dict[str, Any], only: dict[str, str]) -> bool:
    """True when every ``field=value`` of ``only`` holds for the row, the value read like a ``--filter`` value: a
    string equals itself, a number its numeric value (``price=10`` keeps 10.0), ``true`` or ``false`` the boolean
    (or that text), a list any of its elements; a missing field or ``null`` never matches."""

    def holds(value: Any, text: str) -> bool:
        if isinstance(value, list):
            return any(holds(element, text) for element in value)
        return any(same_value(value, wanted) for wanted in cli_values(text))

    return all(holds(row.get(k), v) for k, v in only.items())


def _json_objects(path: Path) -> Iterator[dict[str, Any]]:
    """The lines of a catalog file that are JSON objects, read leniently and fast (for checks before a run; a line
    that is not JSON, not UTF-8 or too deep is skipped: its own rejection says so)."""
    with path.open("rb") as handle:
        for raw in handle:
            try:
                row = json.loads(raw.removeprefix(codecs.BOM_UTF8))
            except (ValueError, RecursionError):
                continue
            if isinstance(row, dict):
                yield row


def only_miss(path: Path, only: dict[str, str]) -> str | None:
    """Why ``only`` matched no row of a catalog file, when reading it tells: a field no row has, or a value that
    differs from the rows' only in case. None when neither (or for a pipe, which can be read only once)."""
    if not path.is_file():
        return None
    names: set[str] = set()
    seen: dict[str, set[str]] = {field: set() for field in only}
    for row in _json_objects(path):
        names.update(row)
        for field, found in seen.items():
            if len(found) < 1000 and isinstance(row.get(field), str | int | float | bool):
                found.add(filter_text(row[field]))
    for field, wanted in only.items():
        if field not in names:
            return f"no row has the field {field!r}; its rows have {', '.join(map(repr, sorted(names)[:20]))}"
        if close := sorted(v for v in seen[field] if v.casefold() == wanted.casefold() and v != wanted):
            return f"the field {field!r} holds {close[0]!r}, not {wanted!r} (values match case and all)"
    return None


def only_as_text(only: dict[str, Any] | None) -> dict[str, str] | None:
    """``only`` with each value as its command-line text (``{"year": 2011, "in_stock": True}`` ->
    ``{"year": "2011", "in_stock": "true"}``, which ``matches`` reads back as the number and the boolean); a value that
    is not a string, number or boolean is a ``TypeError`` naming the field."""
    if only is None:
        return None
    if not isinstance(only, dict):
        raise TypeError(f"only must be a dict of field -> value, such as {{'split': 'test'}}; got {only!r}")
    texts: dict[str, str] = {}
    for field, value in only.items():
        if isinstance(value, str | numbers.Real):  # booleans and numpy numbers too
            texts[field] = filter_text(value)
        else:
            raise TypeError(f"only[{field!r}] must be a string, number or boolean, got {value!r}; to keep rows with "
                            "any of several values, filter the search instead (filter={field: [a, b]})")
    return texts


COMPRESSED = {b"\x1f\x8b": ("gzip", "zcat"), b"BZh": ("bzip2", "bzcat"), b"\xfd7zXZ\x00": ("xz", "xzcat"),
              b"\x28\xb5\x2f\xfd": ("zstd", "zstdcat"), b"PK\x03\x04": ("zip", "unzip -p")}  # magic: kind, reader


def refuse_non_utf8_file(handle: io.BufferedReader, path: Path) -> None:
    """Stop at a UTF-16 byte-order mark or a compressed file's magic bytes (peeked, as a pipe cannot seek back):
    catalogs are UTF-8 text, and each line of such a file would otherwise be rejected as not UTF-8."""
    start = handle.peek(6)[:6]
    if start[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        raise CatalogError(f"catalog {path} is UTF-16 text; catalogs are UTF-8 JSON Lines: re-save it as UTF-8")
    if found := next((kind for magic, kind in COMPRESSED.items() if start.startswith(magic)), None):
        raise CatalogError(f"catalog {path} is {found[0]}-compressed; catalogs are UTF-8 JSON Lines: decompress it "
                           f"first, or pipe it in: {found[1]} {path} | smar-sdk index -")


REJECTS_FIELDS = {"line", "id", "reason", "row"}  # what ``--rejects FILE`` writes per rejected row
MAPPING_OPTIONS = {"id_field": "--id-field", "text_fields": "--text-fields", "image_field": "--image-field"}


def check_mapping(path: str | Path, mapping: FieldMapping, extra_image_fields: list[str] | None = None) -> None:
    """Stop before any work when no row of a catalog file has a field the mapping (or ``extra_image_fields``, the
    training option) names: a mistyped ``--image-field`` would otherwise reject every row, one by one. Reading stops
    once every named field was seen: at the first row when they are right. A pipe, or a file without a JSON object,
    is left to :func:`read_catalog`."""
    path = Path(path)
    if not path.is_file():
        return
    missing: dict[str, tuple[str, str]] = {}  # field -> the option and the setting that name it
    for setting, option in MAPPING_OPTIONS.items():
        value = getattr(mapping, setting)
        fields = value if isinstance(value, list) else [value]
        missing.update(dict.fromkeys(fields, (option, f"FieldMapping.{setting}")))
    for field in extra_image_fields or []:
        missing.setdefault(field, ("--image-field-extra", "TrainConfig.image_fields"))
    names: set[str] = set()
    rows = 0
    for row in _json_objects(path):
        rows += 1
        if rows <= 100:  # the field names to suggest
            names.update(row)
        missing = {field: setting for field, setting in missing.items() if field not in row}
        if not missing:
            return
    if rows and missing and names >= REJECTS_FIELDS:
        raise CatalogError(f"catalog {path} is a rejects file (its rows are {', '.join(sorted(REJECTS_FIELDS))}): "
                           f"take the original rows out of it (jq -r .row {path} > fixed.jsonl), fix them, and index "
                           "them with --images-dir set to the first catalog's folder, where their relative image paths "
                           "start (they start from the folder of the file indexed), or write fixed.jsonl into that "
                           "folder")
    if rows and missing:
        field, (option, setting) = next(iter(missing.items()))
        raise CatalogError(f"catalog {path}: none of its {rows} rows has the field {field!r} ({option}, "
                           f"{setting}); its rows have {', '.join(map(repr, sorted(names)[:20]))}: name "
                           f"one of them with {option}")


def read_catalog(path: str | Path, mapping: FieldMapping | None = None,
                 only: dict[str, Any] | None = None) -> Iterator[Product | Rejection]:
    """Yield a ``Product`` or a ``Rejection`` for every non-blank line, streaming (constant memory).

    ``only`` keeps just the rows whose fields equal the given values (``split=test``); others are skipped, broken
    ones too (only a line that is not a JSON object cannot be matched, and is rejected).
    """
    mapping = mapping or FieldMapping()
    only = only_as_text(only)
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CatalogError(f"cannot open catalog {path}: {exc.strerror}; check the path") from exc
    with handle:
        refuse_non_utf8_file(handle, path)
        for line_no, raw_bytes in enumerate(handle, start=1):
            if line_no == 1:
                raw_bytes = raw_bytes.removeprefix(codecs.BOM_UTF8)  # spreadsheet and Notepad exports start with one
            try:
                raw = raw_bytes.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                text = raw_bytes.decode("utf-8", errors="replace").rstrip("\r\n")
                readable = parse_row(text, line_no, mapping)  # the id, when the bad bytes are elsewhere
                item_id = readable.id if readable is not None and "\ufffd" not in (readable.id or "\ufffd") else None
                yield Rejection(line=line_no, id=item_id, reason=f"invalid UTF-8 at byte {exc.start}", raw=text)
                continue
            if not raw.strip():
                continue
            record = parse_row(raw, line_no, mapping, only)
            if record is not None:
                yield record

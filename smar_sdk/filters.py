"""A small, database-neutral filter language that every connector translates.

``{"gender": "Women"}`` is equality, ``{"colour": ["Red", "Black"]}`` is membership and
``{"year": {"gte": 2012, "lt": 2016}}`` is a range; several fields are combined with AND.
"""

from __future__ import annotations

import difflib
import json
import math
import operator
import re
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from .errors import FilterError
from .text import NOT_UTF8, is_utf8

Scalar = str | int | float | bool
RANGE_KEYS = ("gt", "gte", "lt", "lte")
INT64 = range(-(2**63), 2**63)  # the integers every store keeps exactly (catalog rows and filter values)
# numbers as a shopper or a shell script writes them: ASCII digits, no "1_000" and no other scripts' digits, which
# Python's int() and float() would also read
WRITTEN_INTEGER = re.compile(r"[+-]?[0-9]+")
WRITTEN_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
JSON_BOOLEANS = {"true": True, "false": False}
# a --filter value token: a JSON string in double quotes (which may hold commas), or plain text up to the next comma
CLI_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^,]*?))\s*(,|$)')
CLI_FILTER = re.compile(r"([^=<>]+)(>=|<=|>|<|=)(.*)", re.DOTALL)  # a --filter: field, how it compares, the value
RANGE_SIGNS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
EXACT_FLOAT_INTEGERS = 2 ** 53  # below it a float tells every integer from the next (stores compare numbers as floats)


class Equals(BaseModel):
    model_config = ConfigDict(frozen=True)
    field: str
    value: Scalar


class OneOf(BaseModel):
    model_config = ConfigDict(frozen=True)
    field: str
    values: tuple[Scalar, ...]

    @model_validator(mode="after")
    def _some_values(self) -> OneOf:
        if not self.values:  # a store would match nothing, or (Qdrant's empty "should") everything
            raise FilterError(f"filter on {self.field!r}: an empty list matches nothing")
        return self


class Range(BaseModel):
    model_config = ConfigDict(frozen=True)
    field: str
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    @model_validator(mode="after")
    def _some_bounds(self) -> Range:
        if (self.gt, self.gte, self.lt, self.lte) == (None,) * 4:
            raise FilterError(f"filter on {self.field!r}: a range needs a bound, one of {RANGE_KEYS}")
        return self

    def admits(self, number: float) -> bool:
        """Whether ``number`` lies within every bound given."""
        checks = [(self.gt, operator.gt), (self.gte, operator.ge), (self.lt, operator.lt), (self.lte, operator.le)]
        return all(compare(number, bound) for bound, compare in checks if bound is not None)


Condition = Equals | OneOf | Range


def parse_filter(spec: dict[str, Any] | None) -> list[Condition]:
    """Turn the dict form into typed conditions, with a clear error for anything else."""
    if not spec:
        return []
    if not isinstance(spec, dict):
        raise FilterError(f"a filter is a dict of field -> value, list or range, got {type(spec).__name__}")
    conditions: list[Condition] = []
    for field, value in spec.items():
        if not isinstance(field, str) or not field.strip():
            raise FilterError(f"a filter field is a non-blank payload field name, got {field!r}")
        if any(char in field for char in '.[]"\\'):
            raise FilterError(f"filter field {field!r}: filters match top-level payload fields, and Qdrant reads "
                              "'.', '[]' and '\"' as path syntax (nested values, quoted names) and takes no '\\' in "
                              "a name; rename the field in the catalog")
        if not is_utf8(field):
            raise FilterError(f"filter field {field!r} holds {NOT_UTF8}")
        if isinstance(value, dict):
            unknown = set(value) - set(RANGE_KEYS)
            if unknown or not value:
                raise FilterError(f"filter on {field!r}: range keys are {RANGE_KEYS}, got {sorted(value, key=str)}")
            bounds = {key: _checked(field, bound) for key, bound in value.items()}
            if any(isinstance(b, str | bool) for b in bounds.values()):
                raise FilterError(f"filter on {field!r}: range bounds are numbers, got {value!r}")
            conditions.append(Range(field=field, **bounds))
        elif isinstance(value, list | tuple | set):
            conditions.append(OneOf(field=field, values=tuple(_checked(field, v) for v in value)))
        else:
            conditions.append(Equals(field=field, value=_checked(field, value)))
    return conditions


def _checked(field: str, value: Any) -> Scalar:
    """A filter value every store can compare: a UTF-8 string, a boolean, a 64-bit integer or a finite float (numpy
    numbers and booleans as the Python ones they hold)."""
    if isinstance(value, np.generic):  # np.int64(2011), np.True_: a pandas column's values
        value = value.item()
    if isinstance(value, str) and not is_utf8(value):
        raise FilterError(f"filter on {field!r}: the value {value!r} holds {NOT_UTF8}")
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"filter on {field!r}: {value!r} is not a value a payload can hold")
    if isinstance(value, int) and not isinstance(value, bool) and value not in INT64:
        raise FilterError(f"filter on {field!r}: {value} is outside the 64-bit integers stores keep")
    if not isinstance(value, Scalar):
        raise FilterError(f"filter on {field!r}: unsupported value {value!r} (use a string, number or boolean)")
    return value


def cli_values(text: str) -> list[Scalar]:
    """The payload values a command-line token can mean: the string itself and, when it reads as one, the number or
    the JSON boolean (``"2011"`` -> ``["2011", 2011]``, ``"true"`` -> ``["true", True]``), since the shell has no
    types."""
    written = text.strip()
    if written in JSON_BOOLEANS:
        return [text, JSON_BOOLEANS[written]]
    if WRITTEN_INTEGER.fullmatch(written):  # a longer code (a GTIN) can only be stored as text
        return [text, int(written)] if int(written) in INT64 else [text]
    if WRITTEN_FLOAT.fullmatch(written) and math.isfinite(number := float(written)):
        return [text, number]
    return [text]


def parse_cli_filters(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``("gender=Women", "colour=Red,Black", "year=2011", "price>=50", "price<100")`` ->
    ``{"gender": "Women", "colour": ["Red", "Black"], "year": ["2011", 2011], "price": {"gte": 50, "lt": 100}}``: a
    value that reads as a number also matches payloads that store it as one; ``field=A..B`` is the range from A to B,
    both included (either end may be left out). Spaces around the field and each value are dropped."""
    spec: dict[str, Any] = {}
    for pair in pairs:
        match = CLI_FILTER.fullmatch(pair)
        if match is None or not match.group(1).strip():
            raise FilterError(f"filter {pair!r} must look like field=value (or field=a,b for several values, "
                              "field>=number, field<number, field=low..high for a range)")
        field, sign, value = match.group(1).strip(), match.group(2), match.group(3)
        bounds = _cli_range(field, sign, value)
        if bounds is not None and isinstance(spec.get(field, {}), dict) and not set(bounds) & set(spec.get(field, {})):
            spec[field] = {**spec.get(field, {}), **bounds}  # price>=50 price<100: one range
        elif field in spec:
            raise FilterError(f"filter field {field!r} is given twice: give it once, with any of several values as "
                              f"{field}=a,b (or bounds of one range: {field}>=low {field}<high)")
        else:
            spec[field] = _equality_or_membership(_cli_token_values(field, value))
    return spec


def _cli_range(field: str, sign: str, value: str) -> dict[str, float | int] | None:
    """The range bounds a ``--filter`` asks for (``>= 50`` or ``= 50..100``), or None for an equality."""
    if sign != "=":
        if (bound := written_number(value)) is None:
            raise FilterError(f"filter on {field!r}: a range bound is a number, got {value.strip()!r}")
        return {RANGE_SIGNS[sign]: bound}
    low, dots, high = (part.strip() for part in value.partition(".."))
    ends = {key: written_number(text) for key, text in (("gte", low), ("lte", high)) if text}
    if not dots or not ends or None in ends.values():
        return None  # text such as "A..B" or "..": an equality
    bounds = {key: number for key, number in ends.items() if number is not None}  # all of them, typed as numbers
    if bounds.get("gte", -math.inf) > bounds.get("lte", math.inf):
        raise FilterError(f"filter on {field!r}: the range {value.strip()} is empty (its low end is above its "
                          f"high end): write {field}={high}..{low}")
    return bounds


def written_number(text: str) -> float | int | None:
    """The number a command-line token writes (:func:`cli_values`), or None when it writes text or a boolean."""
    values = cli_values(text)
    return values[1] if len(values) == 2 and is_number(values[1]) else None


def _cli_token_values(field: str, value: str) -> list[Scalar]:
    """The payload values of a ``--filter`` value's comma-separated tokens, spaces around each dropped ("Men, Women" =
    "Men,Women"): a token in double quotes is a JSON string (commas kept, only text matched), any other is read by
    :func:`cli_values`."""
    values: list[Scalar] = []
    for match in CLI_TOKEN.finditer(value):
        quoted, plain, end = match.groups()
        if quoted is None:
            values.extend(cli_values(plain))
        else:
            try:
                values.append(json.loads(f'"{quoted}"'))
            except json.JSONDecodeError as exc:
                raise FilterError(f"filter on {field!r}: {quoted!r} is no JSON string ({exc.msg}); inside double "
                                  'quotes write \\" for a quote and \\\\ for a backslash') from exc
        if not end:
            break
    return values


def filter_text(value: Scalar) -> str:
    """A payload value as the command-line text that :func:`cli_values` reads back as it: a boolean as ``true`` /
    ``false``, anything else as ``str`` writes it."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def typed_filter_value(tokens: list[str]) -> Any:
    """The filter value of untyped text tokens (command line, query string): each token as a string and, when it
    reads as one, as a number or a boolean; a single string stays an equality, anything more is membership."""
    return _equality_or_membership([typed for token in tokens for typed in cli_values(token)])


def _equality_or_membership(values: list[Scalar]) -> Any:
    """A single value stays an equality; anything more is membership."""
    return values[0] if len(values) == 1 else values


def matches_conditions(payload: dict[str, Any], conditions: list[Condition]) -> bool:
    """Reference semantics, used by tests and by connectors that filter in Python. Values compare as JSON values
    (``same_value``). A field holding a list matches an equality or a list of values when any of its elements does
    (``{"tags": "red"}`` keeps ``["red", "blue"]``); a range matches one number, not a list and not a boolean."""
    for cond in conditions:
        value = payload.get(cond.field)
        elements = value if isinstance(value, list) else [value]
        if isinstance(cond, Equals | OneOf):
            wanted = (cond.value,) if isinstance(cond, Equals) else cond.values
            if not any(same_value(element, w) for element in elements for w in wanted):
                return False
        if isinstance(cond, Range) and not (is_number(value) and cond.admits(value)):
            return False
    return True


def same_value(stored: Any, wanted: Scalar) -> bool:
    """Equal as JSON values, as Qdrant and Milvus servers compare them: ``30`` equals ``30.0``, but a boolean equals
    only a boolean (``True`` is not ``1``, unlike in Python)."""
    return stored == wanted and isinstance(stored, bool) == isinstance(wanted, bool)


def is_number(value: Any) -> bool:
    """An int or a float, not a boolean."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def field_guess(field: str, fields: set[str]) -> str:
    """The field of ``fields`` a missing ``field`` likely means ("did you mean 'gender'?": the same name in another
    case, else the closest), or the fields there are."""
    close = [f for f in fields if f.lower() == field.lower()] or difflib.get_close_matches(field, fields, 1)
    return f"did you mean {close[0]!r}?" if close else f"they have {', '.join(map(repr, sorted(fields)))}"


def empty_filter_hint(spec: dict[str, Any], payloads: list[dict[str, Any]]) -> str | None:
    """Why a filtered search may have found nothing, judged from catalog ``payloads`` sampled from the collection (the
    SDK's own keys dropped): a field no sampled product has, a number asked where they hold its text or text asked
    where they hold the number, a text value that matches a stored one (or a stored boolean's ``true`` / ``false``)
    only when case is ignored, or anything but a boolean asked of a field of booleans. A list field is judged by its
    elements, as filters match them."""
    fields = {key for payload in payloads for key in payload}
    if not fields:
        return None
    for field, wanted in spec.items():
        if field not in fields:
            return f"no stored product sampled has the field {field!r} (field names match exactly); " \
                   + field_guess(field, fields)
        elements = [e for p in payloads for e in (p[field] if isinstance(p.get(field), list) else [p.get(field)])]
        if isinstance(wanted, dict):  # a range: it compares numbers only
            if (texts := [e for e in elements if isinstance(e, str)]) and not any(map(is_number, elements)) and \
                    written_number(texts[0]) is not None:
                return (f"{field!r} holds numbers as text ({texts[0]!r}), and a range compares numbers only: "
                        "store them as numbers in the catalog")
            continue
        values = wanted if isinstance(wanted, list) else [wanted]
        texts = [v for v in values if isinstance(v, str)]
        stored = {filter_text(e) for e in elements if isinstance(e, str | bool)}  # a list field: each element
        if any(text in stored for text in texts):
            continue
        stored_text = {e for e in elements if isinstance(e, str)}
        if as_text := [str(v) for v in values if is_number(v) and not texts and str(v) in stored_text]:
            return (f"{field!r} holds {as_text[0]!r} as text, and filters are typed: filter on the text "
                    f"{as_text[0]!r} (the CLI's --filter tries both)")
        stored_numbers = {filter_text(e) for e in elements if is_number(e)}
        if as_number := [text for text in texts if text in stored_numbers and not any(map(is_number, values))]:
            return (f"{field!r} holds {as_number[0]} as a number, and filters are typed: filter on the number "
                    f"{as_number[0]} (the CLI's --filter tries both)")
        by_case = {value.lower(): value for value in stored}
        if found := [by_case[text.lower()] for text in texts if text.lower() in by_case]:
            return f"{field!r} holds {found[0]!r}, and values match exactly, case included"
        known = [e for e in elements if e is not None]
        if known and all(isinstance(e, bool) for e in known) and not any(isinstance(v, bool) for v in values):
            return f"{field!r} holds true or false, and filters are typed: filter on true or false"
    return None

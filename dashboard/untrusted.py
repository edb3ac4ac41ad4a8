"""Untrusted input made safe before anything else sees it: JSON with a depth limit and bounded integers,
and text a database can store (no NUL, no lone UTF-16 surrogate).

The ground floor (no app imports), so the API's JSON provider, the Dash callback guard and the readings'
validation share one definition.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

import numpy as np

MAX_JSON_DEPTH = (
    128  # API bodies take 4 levels, Dash callbacks a few more; Python's parser recurses per level
)
# Every integer column is a signed 64-bit integer (SQLite INTEGER, PostgreSQL BIGINT at most): a larger id
# or count cannot name anything, and SQLite raises OverflowError on it
ID_MAX = 2**63 - 1
_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class UnsafeJSON(ValueError):
    """A body that is not JSON this app can take; the message says why and what to send instead."""


def json_failure(exc: BaseException) -> str:
    """Why a body failed to parse: the UnsafeJSON behind Flask's bare BadRequest, if any."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, UnsafeJSON):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return "the body is not valid JSON"


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored (a NUL, which PostgreSQL refuses, or a lone UTF-16 surrogate, which
    no database encoding takes), or None."""
    found = _UNSAFE_TEXT.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000); remove it"
    return "contains a lone UTF-16 surrogate (e.g. \\udc80), which is not text; send valid UTF-8"


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def _bounded_int(literal: str) -> int:
    value = int(literal)
    if not -ID_MAX - 1 <= value <= ID_MAX:
        raise UnsafeJSON(f"the integer {literal[:24]}... is out of range: integers are at most {ID_MAX}")
    return value


def _check_strings(value: Any) -> None:
    """UnsafeJSON naming the first key or string with a NUL or a lone surrogate (iterative: no recursion)."""
    stack: list[tuple[str, Any]] = [("body", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise UnsafeJSON(f"{where} {problem}")
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = text_problem(key)
                if problem:
                    raise UnsafeJSON(f"a key in {where} {problem}")
                stack.append((f"{where}.{key}"[:200], child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]"[:200], child) for i, child in enumerate(item))


def loads(data: str | bytes | bytearray) -> Any:
    """json.loads for untrusted bodies: at most MAX_JSON_DEPTH levels, integers within 64 bits, strings
    without NUL or lone surrogates. Raises UnsafeJSON (a ValueError) saying what is wrong."""
    if isinstance(data, bytes | bytearray):
        encoding = json.detect_encoding(data)  # JSON may come as UTF-8, -16 or -32 (RFC 8259 asks UTF-8)
        try:
            text = bytes(data).decode(encoding)  # strict: a lone surrogate does not decode either
        except UnicodeDecodeError as exc:
            raise UnsafeJSON(
                f"the body is not valid {encoding.upper()} (byte {exc.start}); send UTF-8 JSON"
            ) from None
    else:
        text = data
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth(text) > MAX_JSON_DEPTH:
        raise UnsafeJSON(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        value = json.loads(text, parse_int=_bounded_int)
    except RecursionError:  # not reached below MAX_JSON_DEPTH; kept as a last line
        raise UnsafeJSON(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except UnsafeJSON:
        raise
    except ValueError as exc:
        raise UnsafeJSON(f"the body is not valid JSON: {exc}") from None
    if "\\u" in text or _UNSAFE_TEXT.search(text):
        _check_strings(value)
    return value


EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


def check_email(value: str) -> str:
    """One address, local@domain.tld (no display name, no spaces); stored as given, trimmed."""
    value = personal_text(value)
    if not EMAIL_SHAPE.fullmatch(value) or len(value) > 254:
        raise ValueError("must be one e-mail address like name@example.org (at most 254 characters)")
    return value


def personal_text(value: str) -> str:
    """A name or address as stored (trimmed): printable text, no control characters or lone surrogates."""
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise ValueError("may not hold control characters or unpaired surrogates")
    return value.strip()

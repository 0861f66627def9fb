"""JSON from users (REST bodies, uploaded files, form fields), refused with a message when it cannot be kept.

Python's `json` accepts what the studio cannot store or compute with: `NaN` and
`Infinity` (not JSON, and refused by PostgreSQL), integers of thousands of
digits (a ValueError past Python's 4,300-digit limit, and slow arithmetic below
it), floats that overflow to infinity, and nesting deep enough to raise
RecursionError. `loads` refuses each of them with a JsonProblem, a
JSONDecodeError, so every caller that already handles bad JSON handles these
too, with a message that names the problem and its position.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 100
MAX_NUMBER_DIGITS = 100


class JsonProblem(json.JSONDecodeError):
    """Valid-looking JSON the studio refuses; `msg` says why, `pos` (with lineno/colno) where."""


def _position(doc: str, token: str) -> int:
    found = doc.find(token)
    return max(found, 0)


def loads(doc: str | bytes) -> Any:
    """json.loads that refuses NaN/Infinity, numbers over MAX_NUMBER_DIGITS digits and nesting past MAX_DEPTH."""
    if isinstance(doc, (bytes, bytearray)):
        doc = doc.decode("utf-8-sig")

    def refuse_constant(name: str) -> Any:
        raise JsonProblem(f"{name} is not a JSON number; send null or a string instead", doc, _position(doc, name))

    def check_digits(text: str) -> None:
        digits = sum(ch.isdigit() for ch in text)
        if digits > MAX_NUMBER_DIGITS:
            raise JsonProblem(
                f"a number with {digits:,} digits; at most {MAX_NUMBER_DIGITS} are accepted (send it as a string)",
                doc,
                _position(doc, text[:50]),
            )

    def parse_int(text: str) -> int:
        check_digits(text)
        return int(text)

    def parse_float(text: str) -> float:
        check_digits(text)
        value = float(text)
        if not math.isfinite(value):
            raise JsonProblem(
                f"the number {text[:30]} is too large to store (send it as a string)", doc, _position(doc, text[:50])
            )
        return value

    try:
        value = json.loads(doc, parse_constant=refuse_constant, parse_int=parse_int, parse_float=parse_float)
    except RecursionError:
        raise JsonProblem(f"nested deeper than {MAX_DEPTH} levels", doc, 0) from None
    check_depth(value, doc)
    return value


def check_depth(value: Any, doc: str = "") -> None:
    """Refuse a value nested deeper than MAX_DEPTH (iteratively: deep values must not recurse here either)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise JsonProblem(f"nested deeper than {MAX_DEPTH} levels", doc, 0)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))

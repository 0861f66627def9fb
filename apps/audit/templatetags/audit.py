"""Audit values as a person reads them: one `field: value` line each, not a Python dict."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()

LONGEST = 240


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= LONGEST else text[: LONGEST - 1] + "…"


@register.filter
def audit_fields(value: Any, other: Any = None) -> list[dict[str, Any]]:
    """[{name, text, changed}] for a before/after value; `other` (the after of a before, or the reverse) marks
    the fields that differ between the two."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [{"name": "", "text": _text(value), "changed": value != other}]
    other = other if isinstance(other, dict) else {}
    return [
        {"name": str(name).replace("_", " "), "text": _text(item), "changed": other.get(name, None) != item}
        for name, item in value.items()
    ]

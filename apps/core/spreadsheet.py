"""CSV downloads that a spreadsheet opens safely: streamed, and with no cell run as a formula."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
# A plain number ("-0.25", "+3", "1e-5") is no formula: a spreadsheet reads it as the number it is.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def raw_cell(value: Any) -> str:
    """A CSV cell as it is, for pandas and scripts: objects and lists as JSON, nothing prefixed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal | str):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def safe_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP: prefix text with a quote); numbers stay."""
    text = raw_cell(value)
    if text.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_download(rows: Iterable[Iterable[Any]], filename: str, *, raw: bool = False) -> StreamingHttpResponse:
    """Stream rows as a CSV attachment; every cell goes through safe_cell (raw_cell with raw=True)."""
    writer = csv.writer(_Echo())
    cell = raw_cell if raw else safe_cell
    response = StreamingHttpResponse(
        (writer.writerow([cell(value) for value in row]) for row in rows), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

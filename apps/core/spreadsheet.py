"""CSV downloads that a spreadsheet opens safely: streamed, and with no cell run as a formula."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP: prefix text with a quote)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_download(rows: Iterable[Iterable[Any]], filename: str) -> StreamingHttpResponse:
    """Stream rows as a CSV attachment; every cell goes through safe_cell."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow([safe_cell(value) for value in row]) for row in rows), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

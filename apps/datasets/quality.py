"""The data quality report of a version, the personal-data scan and its redaction. Pure functions over records."""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,5}){1,4}(?![\w-])|\+\d{8,15}\b"
)
ISO_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$")
PLACEHOLDERS = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD]", "iban": "[IBAN]"}
PII_KINDS = ("email", "phone", "card", "iban")
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2 == 1:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97 == 1


def find_pii(text: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) of every e-mail, phone number, card number (Luhn) and IBAN (mod 97) in `text`."""
    if len(text) < 6:
        return []
    found: list[tuple[str, int, int]] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    has_digit = any(ch.isdigit() for ch in text)
    if "@" in text:
        for match in EMAIL.finditer(text):
            found.append(("email", match.start(), match.end()))
            taken.append(match.span())
    if has_digit:
        for match in IBAN.finditer(text):
            if free(*match.span()) and iban_ok(match.group()):
                found.append(("iban", match.start(), match.end()))
                taken.append(match.span())
        for match in CARD.finditer(text):
            digits = re.sub(r"\D", "", match.group())
            if 13 <= len(digits) <= 19 and free(*match.span()) and luhn_ok(digits):
                found.append(("card", match.start(), match.end()))
                taken.append(match.span())
        for match in PHONE.finditer(text):
            value = match.group()
            digits = re.sub(r"\D", "", value)
            if 7 <= len(digits) <= 15 and free(*match.span()) and not ISO_DATE.match(value):
                found.append(("phone", match.start(), match.end()))
                taken.append(match.span())
    return sorted(found, key=lambda f: f[1])


def redact_text(text: str) -> tuple[str, Counter]:
    counts: Counter = Counter()
    pieces, cursor = [], 0
    for kind, start, end in find_pii(text):
        pieces.append(text[cursor:start])
        pieces.append(PLACEHOLDERS[kind])
        counts[kind] += 1
        cursor = end
    if not counts:
        return text, counts
    pieces.append(text[cursor:])
    return "".join(pieces), counts


def _redact_value(value: Any, counts: Counter) -> Any:
    if isinstance(value, str):
        redacted, found = redact_text(value)
        counts.update(found)
        return redacted
    if isinstance(value, list):
        return [_redact_value(v, counts) for v in value]
    if isinstance(value, dict):
        return {k: _redact_value(v, counts) for k, v in value.items()}
    return value


def redact_record(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    counts: Counter = Counter()
    redacted = {
        "input": _redact_value(record["input"], counts),
        "expected": _redact_value(record.get("expected"), counts),
        "metadata": _redact_value(record.get("metadata") or {}, counts),
    }
    return redacted, dict(counts)


def mask(text: str) -> str:
    if len(text) <= 4:
        return "•" * len(text)
    return text[:2] + "•" * (len(text) - 4) + text[-2:]


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def _is_empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or (isinstance(value, str) and not value.strip())


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    return len(json.dumps(value, ensure_ascii=False))


def normalize_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCTUATION.sub(" ", text)).strip()


@dataclass
class ColumnStats:
    name: str
    where: str  # input, expected, metadata
    missing: int = 0
    empty: int = 0
    filled: int = 0

    @property
    def key(self) -> str:
        return self.where if self.where == "expected" else f"{self.where}:{self.name}"


@dataclass
class QualityReport:
    row_count: int = 0
    columns: list[ColumnStats] = field(default_factory=list)
    unique_items: int = 0
    exact_duplicate_rows: int = 0
    exact_groups: list[list[int]] = field(default_factory=list)
    near_duplicate_rows: int = 0
    near_groups: list[list[int]] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    length_summary: dict[str, float] = field(default_factory=dict)
    category_column: str = ""
    categories: list[tuple[str, int]] = field(default_factory=list)
    pii_counts: dict[str, int] = field(default_factory=dict)
    pii_by_column: dict[str, dict[str, int]] = field(default_factory=dict)
    pii_rows: int = 0
    pii_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pii_total(self) -> int:
        return sum(self.pii_counts.values())


def category_choices(input_columns: list[str], metadata_columns: list[str], has_expected: bool) -> list[str]:
    return (
        (["expected"] if has_expected else [])
        + [f"metadata:{c}" for c in metadata_columns]
        + [f"input:{c}" for c in input_columns]
    )


def _category_value(record: dict[str, Any], key: str) -> Any:
    if key == "expected":
        return record.get("expected")
    where, _, name = key.partition(":")
    return (record.get(where) or {}).get(name)


def build_report(
    records: Iterable[dict[str, Any]],
    *,
    input_columns: list[str],
    metadata_columns: list[str],
    has_expected: bool,
    category_column: str = "",
    max_groups: int = 20,
) -> QualityReport:
    """One pass over the rows. Near duplicates: the same inputs after case, punctuation and spacing are normalized."""
    report = QualityReport()
    columns = [ColumnStats(name, "input") for name in input_columns]
    expected_stats = ColumnStats("expected output", "expected")
    metadata_stats = [ColumnStats(name, "metadata") for name in metadata_columns]
    by_item: dict[int, list[int]] = defaultdict(list)
    by_normal: dict[str, list[int]] = defaultdict(list)
    normal_items: dict[str, set[int]] = defaultdict(set)
    categories: Counter = Counter()
    pii_counts: Counter = Counter()
    pii_by_column: dict[str, Counter] = defaultdict(Counter)
    lengths: list[int] = []
    for row, record in enumerate(records, start=1):
        inputs, metadata, expected = record["input"], record.get("metadata") or {}, record.get("expected")
        length = 0
        for stats in columns:
            if stats.name not in inputs:
                stats.missing += 1
            else:
                value = inputs[stats.name]
                if _is_empty(value):
                    stats.empty += 1
                length += _size(value)
        for stats in metadata_stats:
            if stats.name not in metadata:
                stats.missing += 1
            elif _is_empty(metadata[stats.name]):
                stats.empty += 1
        if expected is None:
            expected_stats.missing += 1
        elif _is_empty(expected):
            expected_stats.empty += 1
        lengths.append(length)
        item_id = record.get("item_id")
        if item_id is None:
            item_id = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
        by_item[item_id].append(row)
        normal = normalize_text(
            " ".join(
                f"{k} {v if isinstance(v, str) else json.dumps(v, sort_keys=True)}" for k, v in sorted(inputs.items())
            )
        )
        key = hashlib.blake2b(normal.encode(), digest_size=12).digest()
        by_normal[key].append(row)
        normal_items[key].add(item_id)
        if category_column:
            value = _category_value(record, category_column)
            categories["(missing)" if value is None else value if isinstance(value, str) else json.dumps(value)] += 1
        row_found = False
        for where, mapping in (("input", inputs), ("metadata", metadata), ("expected", {"": expected})):
            for name, value in mapping.items():
                for text in _strings(value):
                    for kind, start, end in find_pii(text):
                        column = where if where == "expected" else f"{where}:{name}"
                        pii_counts[kind] += 1
                        pii_by_column[column][kind] += 1
                        row_found = True
                        if len(report.pii_examples) < 20:
                            report.pii_examples.append(
                                {"row": row, "column": column, "kind": kind, "masked": mask(text[start:end])}
                            )
        report.pii_rows += row_found
    report.row_count = len(lengths)
    show_expected = has_expected or expected_stats.missing < report.row_count
    report.columns = [*columns, *([expected_stats] if show_expected else [])]
    report.columns += metadata_stats
    for stats in report.columns:
        stats.filled = report.row_count - stats.missing - stats.empty
    report.unique_items = len(by_item)
    exact = [rows for rows in by_item.values() if len(rows) > 1]
    report.exact_duplicate_rows = sum(len(rows) - 1 for rows in exact)
    report.exact_groups = sorted(exact, key=lambda rows: rows[0])[:max_groups]
    near = [rows for key, rows in by_normal.items() if len(rows) > 1 and len(normal_items[key]) > 1]
    report.near_duplicate_rows = sum(len(rows) - 1 for rows in near)
    report.near_groups = sorted(near, key=lambda rows: rows[0])[:max_groups]
    report.lengths = lengths
    if lengths:
        ordered = sorted(lengths)
        report.length_summary = {
            "min": ordered[0],
            "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
            "max": ordered[-1],
        }
    report.category_column = category_column
    report.categories = categories.most_common(30)
    other = sum(categories.values()) - sum(n for _, n in report.categories)
    if other:
        report.categories.append(("(other)", other))
    report.pii_counts = {kind: pii_counts[kind] for kind in PII_KINDS if pii_counts[kind]}
    report.pii_by_column = {column: dict(counts) for column, counts in sorted(pii_by_column.items())}
    return report


def length_figure_html(lengths: list[int]) -> str:
    """A histogram of input lengths, binned server-side so the page stays small for 100k rows."""
    import numpy as np
    import plotly.graph_objects as go

    counts, edges = np.histogram(np.asarray(lengths), bins=min(40, max(1, len(set(lengths)))))
    figure = go.Figure(
        go.Bar(
            x=((edges[:-1] + edges[1:]) / 2).round(1).tolist(),
            y=counts.tolist(),
            width=float(edges[1] - edges[0]) if len(edges) > 1 else None,
            marker_color="#0d6efd",
            hovertemplate="%{x} characters: %{y} rows<extra></extra>",
        )
    )
    figure.update_layout(
        template="plotly_white",
        bargap=0.02,
        xaxis_title="characters of input",
        yaxis_title="rows",
        margin={"l": 50, "r": 10, "t": 10, "b": 40},
        height=300,
    )
    return _figure_div(figure, "length-chart")


def category_figure_html(categories: list[tuple[str, int]]) -> str:
    import plotly.graph_objects as go

    labels = [str(label)[:40] for label, _ in categories]
    figure = go.Figure(go.Bar(x=labels, y=[n for _, n in categories], marker_color="#6f42c1"))
    figure.update_layout(
        template="plotly_white", yaxis_title="rows", margin={"l": 50, "r": 10, "t": 10, "b": 80}, height=300
    )
    return _figure_div(figure, "category-chart")


def _figure_div(figure, div_id: str) -> str:
    """A div holding the figure as JSON for static/js/charts.js (no inline script under the CSP)."""
    from django.utils.html import format_html

    return format_html('<div id="{}" data-figure="{}"></div>', div_id, figure.to_json())

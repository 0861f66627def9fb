"""Reads of traces: the filtered, cursor-paginated list (page and API), one trace with its spans and scores."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection
from django.db.models import Count, Q, Sum
from django.utils import timezone

from apps.core.times import as_utc
from apps.traces.models import Score, Span, Trace

MAX_PER_PAGE = 200


class FilterProblem(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass
class TraceFilters:
    prompt: str = ""
    version: int | None = None
    label: str = ""
    model: str = ""
    status: str = ""
    since: datetime | None = None
    until: datetime | None = None
    min_latency_ms: float | None = None
    max_latency_ms: float | None = None
    min_cost: Decimal | None = None
    max_cost: Decimal | None = None
    feedback: str = ""  # any | none | positive | negative
    user_id: str = ""
    session_id: str = ""
    q: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_query(self) -> dict[str, str]:
        """The filters as query parameters (for links that keep them)."""
        out = {}
        for name in ("prompt", "version", "label", "model", "status", "since", "until", "min_latency_ms",
                     "max_latency_ms", "min_cost", "max_cost", "feedback", "user_id", "session_id", "q"):  # fmt: skip
            value = getattr(self, name)
            if value not in (None, ""):
                out[name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return out


def _time(value: str, name: str) -> datetime:
    value = value.strip()
    relative = {"h": 3600, "d": 86400, "m": 60}
    if value[:-1].isdigit() and value[-1:] in relative:  # 24h, 7d, 30m: that long ago
        try:
            return timezone.now() - timedelta(seconds=int(value[:-1]) * relative[value[-1]])
        except OverflowError:
            raise FilterProblem(name, f"{name} reaches back before the year 1: {value[:40]!r}.") from None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FilterProblem(name, f"{name} must be an ISO 8601 time or an age such as 24h or 7d, not {value[:40]!r}.")
    try:
        return as_utc(moment)
    except OverflowError:
        raise FilterProblem(name, f"{name} reaches back before the year 1: {value[:40]!r}.") from None


def _number(value: str, name: str, kind=float):
    try:
        number = kind(value)
    except (ValueError, InvalidOperation):
        raise FilterProblem(name, f"{name} must be a number, not {value[:40]!r}.") from None
    if number < 0 or number != number or number > 10**12:
        raise FilterProblem(name, f"{name} must be a number from 0 to 10^12.")
    return number


def filters_from(params: Any, *, refuse_empty: bool = False) -> TraceFilters:
    """TraceFilters from query parameters; FilterProblem names the first bad one.

    The page's form sends every field, empty ones too; the API (refuse_empty) holds to its schema, where an
    empty number or time is not a value.
    """

    def get(name: str) -> str:
        value = params.get(name)
        return value.strip()[:200] if isinstance(value, str) else ""

    for name in ("version", "since", "until", "min_latency_ms", "max_latency_ms", "min_cost", "max_cost"):
        if refuse_empty and name in params and not get(name):
            raise FilterProblem(name, f"{name} is empty: give a value or leave it out.")
    f = TraceFilters(prompt=get("prompt"), label=get("label"), model=get("model"), user_id=get("user_id"),
                     session_id=get("session_id"), q=get("q"))  # fmt: skip
    if get("version"):
        if not get("version").isdigit() or not 1 <= int(get("version")) < 2**31:
            raise FilterProblem("version", f"version must be a positive whole number, not {get('version')!r}.")
        f.version = int(get("version"))
    status = get("status")
    if status and status not in ("ok", "error"):
        raise FilterProblem("status", "status must be ok or error.")
    f.status = status
    feedback = get("feedback")
    if feedback and feedback not in ("any", "none", "positive", "negative"):
        raise FilterProblem("feedback", "feedback must be any, none, positive or negative.")
    f.feedback = feedback
    if get("since"):
        f.since = _time(get("since"), "since")
    if get("until"):
        f.until = _time(get("until"), "until")
    for name in ("min_latency_ms", "max_latency_ms"):
        if get(name):
            setattr(f, name, _number(get(name), name))
    for name in ("min_cost", "max_cost"):
        if get(name):
            setattr(f, name, _number(get(name), name, Decimal))
    return f


def encode_cursor(row: dict[str, Any]) -> str:
    raw = f"{row['start_time'].isoformat()}|{row['id']}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, pk = raw.split("|")
        return as_utc(datetime.fromisoformat(moment)), int(pk)
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise FilterProblem("cursor", "cursor is not one this API gave out; start again without it.") from None


LIST_FIELDS = (
    "id", "trace_id", "name", "start_time", "duration_ms", "status", "span_count", "generation_count",
    "input_tokens", "output_tokens", "cost", "model", "prompt_name", "prompt_version_number", "prompt_label",
    "prompt_version_id", "user_id", "session_id", "feedback_count", "feedback_mean", "flags", "input_text",
    "output_text",
)  # fmt: skip


def _where(project_id: int, f: TraceFilters) -> tuple[list[str], list[Any]]:
    """The list's WHERE clauses and parameters, written out: the page is the hottest read of the app."""
    ops = connection.ops
    clauses, params = ["project_id = %s"], [project_id]
    for column, value in (("prompt_name", f.prompt), ("prompt_label", f.label), ("model", f.model),
                          ("status", f.status), ("user_id", f.user_id), ("session_id", f.session_id)):  # fmt: skip
        if value:
            clauses.append(f"{column} = %s")
            params.append(value)
    for clause, value in (("prompt_version_number = %s", f.version), ("duration_ms >= %s", f.min_latency_ms),
                          ("duration_ms <= %s", f.max_latency_ms)):  # fmt: skip
        if value is not None:
            clauses.append(clause)
            params.append(value)
    for clause, value in (("cost >= %s", f.min_cost), ("cost <= %s", f.max_cost)):
        if value is not None:
            clauses.append(clause)
            params.append(ops.adapt_decimalfield_value(value, 16, 8))
    for clause, value in (("start_time >= %s", f.since), ("start_time < %s", f.until)):
        if value is not None:
            clauses.append(clause)
            params.append(ops.adapt_datetimefield_value(value))
    feedback = {"any": "feedback_count > 0", "none": "feedback_count = 0", "positive": "feedback_mean >= 0.5",
                "negative": "feedback_mean < 0.5"}  # fmt: skip
    if f.feedback:
        clauses.append(feedback[f.feedback])
    if f.q:
        if connection.vendor == "postgresql":
            clauses.append(
                "to_tsvector('simple'::regconfig, input_text || ' ' || output_text) "
                "@@ plainto_tsquery('simple'::regconfig, %s)"
            )
            params.append(f.q)
        else:
            pattern = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append("(input_text LIKE %s ESCAPE '\\' OR output_text LIKE %s ESCAPE '\\')")
            params += [pattern, pattern]
    return clauses, params


def _list_row(raw: tuple) -> dict[str, Any]:
    """A list row as a dict with SQLite's text times, float costs and JSON text turned into Python values
    (about 3.5 us a row: on SQLite the page's 51 conversions are as long as its indexed read)."""
    row = dict(zip(LIST_FIELDS, raw, strict=True))
    start = row["start_time"]
    if start.__class__ is str:
        start = datetime.fromisoformat(start)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    row["start_time"] = start
    cost = row["cost"]
    if cost is not None and cost.__class__ is not Decimal:
        row["cost"] = Decimal(repr(cost)) if cost.__class__ is float else Decimal(cost)
    flags = row["flags"]
    if flags.__class__ is str:
        row["flags"] = [] if flags == "[]" else json.loads(flags)
    return row


def trace_page(
    *, project_id: int, filters: TraceFilters, cursor: str = "", per_page: int = 50
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of traces as dicts of LIST_FIELDS, newest first, and the next page's cursor (None at the end).

    The SQL is written out rather than built by the ORM: building the query and
    50 model instances cost many times the indexed read itself (bench/ingest.py
    measures the page against the bare query).
    """
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    clauses, params = _where(project_id, filters)
    if cursor:
        moment, pk = decode_cursor(cursor)
        clauses.append("(start_time < %s OR (start_time = %s AND id < %s))")
        moment = connection.ops.adapt_datetimefield_value(moment)
        params += [moment, moment, pk]
    sql = (
        f"SELECT {', '.join(LIST_FIELDS)} FROM traces_trace WHERE {' AND '.join(clauses)} "  # noqa: S608
        f"ORDER BY start_time DESC, id DESC LIMIT {per_page + 1}"
    )
    with connection.cursor() as db:
        db.execute(sql, params)
        rows = [_list_row(raw) for raw in db.fetchall()]
    next_cursor = encode_cursor(rows[per_page - 1]) if len(rows) > per_page else None
    return rows[:per_page], next_cursor


def trace_get(*, project_id: int, trace_id: str) -> Trace | None:
    return Trace.objects.filter(project_id=project_id, trace_id=trace_id[:64]).first()


def trace_spans(*, trace: Trace) -> list[Span]:
    return list(Span.objects.filter(project_id=trace.project_id, trace_id=trace.trace_id).order_by("start_time", "id"))


def trace_scores(*, trace: Trace) -> list[Score]:
    return list(Score.objects.filter(project_id=trace.project_id, trace_id=trace.trace_id).order_by("created_at"))


def span_tree(spans: list[Span]) -> list[tuple[Span, int]]:
    """Spans in tree order with their depth (children after their parent, by start time)."""
    by_parent: dict[str, list[Span]] = {}
    ids = {s.span_id for s in spans}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in ids else ""
        by_parent.setdefault(parent, []).append(span)
    ordered: list[tuple[Span, int]] = []
    stack = [(s, 0) for s in reversed(by_parent.get("", []))]
    seen: set[str] = set()
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        ordered.append((span, depth))
        stack.extend((child, depth + 1) for child in reversed(by_parent.get(span.span_id, [])))
    ordered.extend((s, 0) for s in spans if s.span_id not in seen)  # cycles: shown flat rather than lost
    return ordered


def filter_choices(*, project_id: int) -> dict[str, list]:
    """The prompts, labels and models seen in the last 30 days, for the page's selects."""
    since = timezone.now() - timedelta(days=30)
    recent = Trace.objects.filter(project_id=project_id, start_time__gte=since)
    return {
        "prompts": sorted(p for p in recent.values_list("prompt_name", flat=True).distinct() if p),
        "labels": sorted(p for p in recent.values_list("prompt_label", flat=True).distinct() if p),
        "models": sorted(p for p in recent.values_list("model", flat=True).distinct() if p),
    }


def volume_by_version(*, prompt_id: int, days: int = 7) -> list[dict[str, Any]]:
    """Generations per version of a prompt over the last `days` days, with errors, tokens and cost."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        Span.objects.filter(prompt_version__prompt_id=prompt_id, start_time__gte=since, kind="generation")
        .values("prompt_version__number")
        .annotate(
            calls=Count("id"),
            errors=Count("id", filter=Q(status="error")),
            tokens=Sum("output_tokens"),
            cost=Sum("cost"),
        )
        .order_by("-prompt_version__number")
    )
    return [
        {
            "version": r["prompt_version__number"],
            "calls": r["calls"],
            "errors": r["errors"],
            "tokens": r["tokens"] or 0,
            "cost": r["cost"],
        }
        for r in rows
    ]

"""The records a batch holds between the request and the ingest task, and the native JSON batch's parser.

A request is turned into these records, redacted, and stored as one JSON
document (IngestBatch.payload); the task reads them back and writes rows.
Times are microseconds since the epoch, UTC.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from apps.traces.redaction import Redactor

ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
MAX_TEXT_CHARS = 20_000  # of the searchable text kept per span
MAX_SPANS_PER_BATCH = 10_000


class IngestProblem(Exception):
    """Input the studio refuses; `code` is stable, the message names the field."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def text_of(value: Any, limit: int = MAX_TEXT_CHARS) -> str:
    """The readable text of messages or a value: contents joined by newlines."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:limit]
    parts: list[str] = []

    def walk(node: Any) -> None:
        if sum(len(p) for p in parts) > limit:
            return
        if isinstance(node, str):
            parts.append(node)
        elif isinstance(node, dict):
            if "content" in node or "text" in node or "parts" in node:
                for key in ("content", "text", "parts"):
                    if key in node:
                        walk(node[key])
            else:
                for key, item in node.items():
                    if key not in ("role", "type", "finish_reason", "name", "id"):
                        walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            parts.append(str(node))

    walk(value)
    return "\n".join(parts)[:limit]


@dataclass
class SpanRecord:
    trace_id: str
    span_id: str
    parent_span_id: str = ""
    name: str = ""
    kind: str = "span"
    start_us: int = 0
    end_us: int = 0
    error: bool = False
    status_message: str = ""
    provider: str = ""
    model: str = ""
    operation: str = ""
    input: Any = None
    output: Any = None
    input_text: str = ""
    output_text: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: Any = None
    prompt_name: str = ""
    prompt_version: int | None = None
    prompt_label: str = ""
    user_id: str = ""
    session_id: str = ""
    environment: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    def redacted(self, redactor: Redactor) -> SpanRecord:
        self.input = redactor.value(self.input)
        self.output = redactor.value(self.output)
        self.input_text = redactor.text(self.input_text)
        self.output_text = redactor.text(self.output_text)
        self.variables = redactor.value(self.variables)
        self.attributes = redactor.value(self.attributes)
        self.status_message = redactor.text(self.status_message)
        return self


@dataclass
class TraceRecord:
    trace_id: str
    name: str = ""
    start_us: int | None = None
    user_id: str = ""
    session_id: str = ""
    environment: str = ""
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    input_text: str = ""
    output_text: str = ""

    def redacted(self, redactor: Redactor) -> TraceRecord:
        self.metadata = redactor.value(self.metadata)
        self.input_text = redactor.text(self.input_text)
        self.output_text = redactor.text(self.output_text)
        return self


@dataclass
class ScoreRecord:
    score_id: str
    trace_id: str
    name: str
    data_type: str
    value: float | None = None
    string_value: str = ""
    span_id: str = ""
    comment: str = ""
    end_user_id: str = ""
    source: str = "api"
    created_us: int = 0

    def redacted(self, redactor: Redactor) -> ScoreRecord:
        self.comment = redactor.text(self.comment)
        return self


_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


class JsonText(str):
    """A value already encoded as JSON: the batch's payload keeps a span's JSON columns encoded once, at accept."""

    __slots__ = ()


# One encoder, built once (json.dumps with options builds a new one per call).
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
_EMPTY = {list: JsonText("[]"), dict: JsonText("{}")}


def json_text(value: Any) -> JsonText | None:
    """`value` as the JSON text a JSON column stores (None stays SQL NULL); no NUL character."""
    if value is None or value.__class__ is JsonText:
        return value
    if not value and value.__class__ in _EMPTY:
        return _EMPTY[value.__class__]
    text = _encode(value)
    if "\\u0000" in text:
        text = _NUL_ESCAPE.sub(r"\1", text)
    return JsonText(text)


SPAN_FIELDS = tuple(f.name for f in fields(SpanRecord))
SPAN_JSON_FIELDS = ("input", "output", "variables", "attributes")
_SPAN_JSON_AT = tuple(SPAN_FIELDS.index(name) for name in SPAN_JSON_FIELDS)
PAYLOAD_VERSION = 2


def payload_dumps(spans: list[SpanRecord], traces: list[TraceRecord], scores: list[ScoreRecord]) -> str:
    """The records as JSON that every database stores: no NUL character, no lone surrogate (replaced by '?').

    A span is a list of its fields in SPAN_FIELDS order, its JSON columns already encoded (strings holding
    JSON), so the task writes them as they are instead of decoding and encoding them again.
    """
    span_rows = []
    for s in spans:
        row = list(vars(s).values())
        for i in _SPAN_JSON_AT:
            row[i] = json_text(row[i])
        span_rows.append(row)
    # vars(), not dataclasses.asdict(): the values are already plain JSON values, and asdict deep-copies them.
    document = {
        "v": PAYLOAD_VERSION,
        "spans": span_rows,
        "traces": [vars(t) for t in traces],
        "scores": [vars(s) for s in scores],
    }
    text = _encode(document)
    if "\\u0000" in text:
        text = _NUL_ESCAPE.sub(r"\1", text)
    return text.encode("utf-8", "replace").decode("utf-8")


def payload_loads(payload: str) -> tuple[list[SpanRecord], list[TraceRecord], list[ScoreRecord]]:
    document = json.loads(payload)
    if document.get("v") == PAYLOAD_VERSION:
        spans = []
        for row in document["spans"]:
            for i in _SPAN_JSON_AT:
                if row[i] is not None:
                    row[i] = JsonText(row[i])
            spans.append(SpanRecord(*row))
    else:  # a batch accepted before the payload kept spans as lists (version 1: one object per span)
        spans = [SpanRecord(**s) for s in document.get("spans", [])]
    return (
        spans,
        [TraceRecord(**t) for t in document.get("traces", [])],
        [ScoreRecord(**s) for s in document.get("scores", [])],
    )


# --- the native JSON batch (POST /api/v1/traces) ---------------------------------------------------


def now_us() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)


def _id(value: Any, where: str, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise IngestProblem("missing_id", f"{where} is missing.")
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool) or not ID_PATTERN.match(str(value)):
        raise IngestProblem(
            "invalid_id", f"{where} must be 1 to 64 letters, digits or '.', '_', ':', '-' (got {str(value)[:80]!r})."
        )
    return str(value)


def time_us(value: Any, where: str) -> int:
    """An ISO 8601 time or seconds since the epoch, as microseconds."""
    if isinstance(value, bool):
        raise IngestProblem("invalid_time", f"{where} must be an ISO 8601 time or seconds since the epoch.")
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 <= value < 32503680000:
            raise IngestProblem("invalid_time", f"{where} is out of range.")
        return int(value * 1_000_000)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise IngestProblem("invalid_time", f"{where}: {value[:40]!r} is not an ISO 8601 time.") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1_000_000)
    raise IngestProblem("invalid_time", f"{where} must be an ISO 8601 time or seconds since the epoch.")


def _str(value: Any, where: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise IngestProblem("invalid_field", f"{where} must be a string.")
    return value[:limit]


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise IngestProblem("invalid_field", f"{where} must be a whole number of tokens, at least 0.")
    return value


def cost_value(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise IngestProblem("invalid_field", f"{where} must be a number.")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise IngestProblem("invalid_field", f"{where} must be a number.") from None
    if not number.is_finite() or not 0 <= number < 10**8:
        raise IngestProblem("invalid_field", f"{where} must be a number from 0 to 100,000,000.")
    return str(number.quantize(Decimal("0.00000001")))


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise IngestProblem("invalid_field", f"{where} must be an object.")
    return value


def native_span(item: Any, where: str, default_kind: str) -> SpanRecord:
    if not isinstance(item, dict):
        raise IngestProblem("invalid_field", f"{where} must be an object.")
    kind = item.get("type", default_kind)
    if kind not in ("span", "generation"):
        raise IngestProblem("invalid_field", f"{where}.type must be 'span' or 'generation'.")
    start = time_us(item.get("start_time"), f"{where}.start_time") if "start_time" in item else now_us()
    end = time_us(item["end_time"], f"{where}.end_time") if item.get("end_time") is not None else start
    if end < start:
        raise IngestProblem("invalid_time", f"{where}.end_time is before its start_time.")
    status = item.get("status", "ok")
    if status not in ("ok", "error"):
        raise IngestProblem("invalid_field", f"{where}.status must be 'ok' or 'error'.")
    usage = _object(item.get("usage"), f"{where}.usage")
    prompt = _object(item.get("prompt"), f"{where}.prompt")
    version = prompt.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise IngestProblem("invalid_field", f"{where}.prompt.version must be a positive whole number.")
    variables = _object(item.get("variables"), f"{where}.variables")
    return SpanRecord(
        trace_id=_id(item.get("trace_id"), f"{where}.trace_id"),
        span_id=_id(item.get("id"), f"{where}.id"),
        parent_span_id=_id(item.get("parent_id"), f"{where}.parent_id", required=False),
        name=_str(item.get("name"), f"{where}.name", 200),
        kind=kind,
        start_us=start,
        end_us=end,
        error=status == "error",
        status_message=_str(item.get("status_message"), f"{where}.status_message", 500),
        provider=_str(item.get("provider"), f"{where}.provider", 100),
        model=_str(item.get("model"), f"{where}.model", 200),
        operation=_str(item.get("operation"), f"{where}.operation", 50),
        input=item.get("input"),
        output=item.get("output"),
        input_text=text_of(item.get("input")),
        output_text=text_of(item.get("output")),
        variables=variables,
        input_tokens=_count(usage.get("input_tokens"), f"{where}.usage.input_tokens"),
        output_tokens=_count(usage.get("output_tokens"), f"{where}.usage.output_tokens"),
        cost=cost_value(item.get("cost"), f"{where}.cost"),
        prompt_name=_str(prompt.get("name"), f"{where}.prompt.name", 100),
        prompt_version=version,
        prompt_label=_str(prompt.get("label"), f"{where}.prompt.label", 50),
        attributes=_object(item.get("metadata"), f"{where}.metadata"),
    )


def native_trace(item: Any, where: str) -> TraceRecord:
    if not isinstance(item, dict):
        raise IngestProblem("invalid_field", f"{where} must be an object.")
    tags = item.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise IngestProblem("invalid_field", f"{where}.tags must be a list of strings.")
    return TraceRecord(
        trace_id=_id(item.get("id"), f"{where}.id"),
        name=_str(item.get("name"), f"{where}.name", 200),
        start_us=time_us(item["timestamp"], f"{where}.timestamp") if item.get("timestamp") is not None else None,
        user_id=_str(item.get("user_id"), f"{where}.user_id", 200),
        session_id=_str(item.get("session_id"), f"{where}.session_id", 200),
        environment=_str(item.get("environment"), f"{where}.environment", 50),
        tags=[t[:50] for t in tags[:20]],
        metadata=_object(item.get("metadata"), f"{where}.metadata"),
        input_text=text_of(item.get("input")),
        output_text=text_of(item.get("output")),
    )


def native_score(item: Any, where: str, *, source: str = "api") -> ScoreRecord:
    if not isinstance(item, dict):
        raise IngestProblem("invalid_field", f"{where} must be an object.")
    name = _str(item.get("name"), f"{where}.name", 100).strip()
    if not name:
        raise IngestProblem("missing_field", f"{where}.name is missing: name the score, e.g. 'thumbs' or 'rating'.")
    value = item.get("value")
    data_type = item.get("data_type")
    if data_type is None:
        data_type = "boolean" if isinstance(value, bool) else "categorical" if isinstance(value, str) else "numeric"
    number, category = None, ""
    if data_type == "boolean":
        if not isinstance(value, bool) and value not in (0, 1):
            raise IngestProblem("invalid_value", f"{where}.value must be true or false for a boolean score.")
        number = 1.0 if value else 0.0
    elif data_type == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise IngestProblem("invalid_value", f"{where}.value must be a finite number for a numeric score.")
        number = float(value)
    elif data_type == "categorical":
        if not isinstance(value, str) or not value.strip():
            raise IngestProblem("invalid_value", f"{where}.value must be a non-empty string for a categorical score.")
        category = value.strip()[:200]
    else:
        raise IngestProblem("invalid_field", f"{where}.data_type must be numeric, boolean or categorical.")
    trace_id = _id(item.get("trace_id"), f"{where}.trace_id")
    span_id = _id(item.get("span_id"), f"{where}.span_id", required=False)
    score_id = _id(item.get("id"), f"{where}.id", required=False)
    if not score_id:
        # Without a client id the score is keyed by what it says, so a retried request is still written once.
        import hashlib

        digest = hashlib.sha256(
            json.dumps(
                [trace_id, span_id, name, number, category, item.get("end_user_id"), item.get("comment")]
            ).encode()
        ).hexdigest()
        score_id = "h-" + digest[:40]
    return ScoreRecord(
        score_id=score_id,
        trace_id=trace_id,
        span_id=span_id,
        name=name,
        data_type=data_type,
        value=number,
        string_value=category,
        comment=_str(item.get("comment"), f"{where}.comment", 5000),
        end_user_id=_str(item.get("end_user_id"), f"{where}.end_user_id", 200),
        source=source,
        created_us=time_us(item["timestamp"], f"{where}.timestamp") if item.get("timestamp") is not None else now_us(),
    )


def refuse_unknown_keys(document: dict, allowed: tuple[str, ...], *, code: str) -> None:
    """IngestProblem naming the keys `document` has beyond `allowed`, quoted so a NUL never reaches the answer."""
    unknown = set(document) - set(allowed)
    if unknown:
        named = ", ".join(ascii(key)[:60] for key in sorted(unknown)[:5])
        raise IngestProblem(code, f"Unknown key(s) {named}: use {', '.join(allowed)}.")


def native_batch(document: Any) -> tuple[list[SpanRecord], list[TraceRecord], list[ScoreRecord]]:
    """The records of a native batch; IngestProblem naming the first bad field (nothing is kept then)."""
    if not isinstance(document, dict):
        raise IngestProblem("invalid_batch", 'Send a JSON object {"traces": [...], "spans": [...], "scores": [...]}.')
    refuse_unknown_keys(document, ("traces", "spans", "generations", "scores"), code="invalid_batch")
    lists = {}
    for key in ("traces", "spans", "generations", "scores"):
        value = document.get(key, [])
        if not isinstance(value, list):
            raise IngestProblem("invalid_batch", f"'{key}' must be a list.")
        lists[key] = value
    if len(lists["spans"]) + len(lists["generations"]) > MAX_SPANS_PER_BATCH:
        raise IngestProblem("batch_too_large", f"A batch holds at most {MAX_SPANS_PER_BATCH} spans; split it.", 413)
    traces = [native_trace(t, f"traces[{i}]") for i, t in enumerate(lists["traces"])]
    spans = [native_span(s, f"spans[{i}]", "span") for i, s in enumerate(lists["spans"])]
    spans += [native_span(s, f"generations[{i}]", "generation") for i, s in enumerate(lists["generations"])]
    scores = [native_score(s, f"scores[{i}]") for i, s in enumerate(lists["scores"])]
    if not traces and not spans and not scores:
        raise IngestProblem("empty_batch", "The batch is empty: send at least one trace, span or score.")
    return spans, traces, scores

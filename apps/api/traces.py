"""REST for production traces: OTLP/HTTP and native ingest, feedback, and reads.

Ingest answers as soon as the batch is stored (one write); a worker on the
`ingest` queue expands it into rows a moment later. Sending needs a key with
the `ingest` (or `write`) scope; reading needs any key of the project.
"""

from __future__ import annotations

import json
import zlib
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api import serializers as s
from apps.api.errors import ApiError
from apps.traces import ingest, otlp, selectors
from apps.traces.models import Score, Span, Trace
from apps.traces.records import IngestProblem, native_batch, native_score, refuse_unknown_keys

PROTOBUF = "application/x-protobuf"
ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Bad input; `detail` names the problem."),
    401: OpenApiResponse(s.ErrorSerializer, description="Missing, invalid or revoked key."),
}
INGEST_ERRORS = {
    **ERRORS,
    403: OpenApiResponse(s.ErrorSerializer, description="The key has neither the ingest nor the write scope."),
    413: OpenApiResponse(s.ErrorSerializer, description="The body is larger than INGEST_MAX_BODY_MB."),
    415: OpenApiResponse(s.ErrorSerializer, description="A content type or encoding the endpoint does not take."),
    429: OpenApiResponse(s.ErrorSerializer, description="The ingest backlog is full; retry after Retry-After."),
}


class RawBody(BaseParser):
    """Any content type: the views read and check the body themselves (size, gzip, type)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):  # pragma: no cover - never asked to parse
        return None


def _check_ingest(request: Request) -> None:
    if not request.auth.can_ingest:
        raise ApiError(
            403, "ingest_scope_required", "Sending traces needs a key with the ingest (or write) scope; this one reads."
        )
    wait = ingest.backlog_retry_after()
    if wait is not None:
        exc = ApiError(
            429, "ingest_backlog_full", f"The studio has too many batches waiting to be written; retry in {wait} s."
        )
        exc.wait = wait - 0.5  # Retry-After: exactly `wait` seconds
        raise exc


def _body(request: Request) -> bytes:
    """The request body, un-gzipped, at most INGEST_MAX_BODY_MB (checked before and while reading)."""
    limit = settings.INGEST_MAX_BODY_MB * 1024 * 1024
    too_big = ApiError(
        413, "body_too_large", f"The body is larger than {settings.INGEST_MAX_BODY_MB} MB; send smaller batches."
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_big
    raw = request._request.read(limit + 1)
    if len(raw) > limit:
        raise too_big
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate"):
        raise ApiError(415, "unsupported_encoding", f"Content-Encoding {encoding[:40]!r} is not supported; use gzip.")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, "invalid_gzip", f"The body is not valid {encoding}: {exc}.")
    if len(body) > limit or inflater.unconsumed_tail:
        raise too_big
    return body


def _media_type(request: Request) -> str:
    return request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()


def _json_body(request: Request) -> Any:
    if _media_type(request) != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    body = _body(request)

    def refuse_constant(name: str):
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(body, parse_constant=refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {str(exc)[:200]}.")


def _problem(exc: IngestProblem) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


@extend_schema(
    operation_id="otlp_traces_export",
    summary="OpenTelemetry OTLP/HTTP trace export (protobuf or JSON, gzip)",
    description=(
        "Point an OTLP/HTTP exporter's traces endpoint here (`.../api/v1/otel/v1/traces`) with the header "
        "`Authorization: Bearer <ingest key>`. Spans with GenAI, OpenLLMetry or OpenInference attributes become "
        "generations; `prompt_studio.prompt.name|version|label` link them to a prompt version. Spans with bad ids "
        "are counted in `partialSuccess.rejectedSpans`; the rest are accepted."
    ),
    request={PROTOBUF: OpenApiTypes.BINARY, "application/json": OpenApiTypes.OBJECT},
    responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="ExportTraceServiceResponse"), **INGEST_ERRORS},
)
@api_view(["POST"])
@parser_classes([RawBody])
def otlp_traces(request: Request) -> HttpResponse:
    _check_ingest(request)
    media_type = _media_type(request)
    if media_type not in (PROTOBUF, "application/json"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type {media_type[:60]!r} is not OTLP: use application/x-protobuf or application/json.",
        )
    try:
        export = otlp.decode(_body(request), content_type=media_type)
        spans, rejected = otlp.spans_of(export)
    except IngestProblem as exc:
        raise _problem(exc) from None
    if spans:
        ingest.batch_accept(project_id=request.auth.project_id, source="otlp", spans=spans)
    message = "; ".join(rejected[:5]) + (f"; and {len(rejected) - 5} more" if len(rejected) > 5 else "")
    if media_type == PROTOBUF:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTracePartialSuccess,
            ExportTraceServiceResponse,
        )

        answer = ExportTraceServiceResponse()
        if rejected:
            answer.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=len(rejected), error_message=message)
            )
        return HttpResponse(answer.SerializeToString(), content_type=PROTOBUF)
    document: dict[str, Any] = {}
    if rejected:
        document["partialSuccess"] = {"rejectedSpans": len(rejected), "errorMessage": message}
    return HttpResponse(json.dumps(document), content_type="application/json")


NATIVE_EXAMPLE = {
    "traces": [{"id": "4bf92f3577b34da6a3ce929d0e0e4736", "name": "support-chat", "user_id": "user-17"}],
    "generations": [
        {
            "id": "00f067aa0ba902b7",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "name": "answer",
            "start_time": "2026-12-05T10:00:00Z",
            "end_time": "2026-12-05T10:00:01.2Z",
            "model": "gpt-4o-mini",
            "input": [{"role": "user", "content": "Where is my order?"}],
            "output": "It ships tomorrow.",
            "usage": {"input_tokens": 12, "output_tokens": 6},
            "cost": 0.00002,
            "prompt": {"name": "support-reply", "version": 2, "label": "production"},
            "variables": {"question": "Where is my order?"},
        }
    ],
    "scores": [{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "name": "thumbs", "value": True}],
}
_AGE_OR_TIME = {
    "anyOf": [
        {"type": "string", "pattern": "^[0-9]{1,6}[mhd]$", "description": "An age: 30m, 24h, 7d."},
        {"type": "string", "format": "date-time"},
    ]
}
_AMOUNT = {"type": "number", "minimum": 0, "maximum": 10**12}
_ITEMS = {"type": "array", "items": {"type": "object"}}
# The envelope; each item's fields (ids, times, usage, prompt) are checked one by one and named in the 400.
NATIVE_BATCH_SCHEMA = {
    "type": "object",
    "properties": {"traces": _ITEMS, "spans": _ITEMS, "generations": _ITEMS, "scores": _ITEMS},
    "additionalProperties": False,
}
_OPTIONAL_TEXT = {"type": ["string", "null"]}
_OPTIONAL_ID = {"type": ["string", "integer", "null"]}
FEEDBACK_SCHEMA = {
    "type": "object",
    "properties": {
        "id": _OPTIONAL_ID,
        "trace_id": {"type": ["string", "integer"]},
        "span_id": _OPTIONAL_ID,
        "name": {"type": "string"},
        "value": {"type": ["number", "boolean", "string"]},
        "data_type": {"enum": ["numeric", "boolean", "categorical", None]},
        "comment": _OPTIONAL_TEXT,
        "end_user_id": _OPTIONAL_TEXT,
    },
    "required": ["trace_id", "name", "value"],
    "additionalProperties": False,
}
LIST_PARAMETERS = [
    OpenApiParameter("prompt", str, description="Prompt name."),
    OpenApiParameter("version", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, description="Version number."),
    OpenApiParameter("label", str, description="The label the app fetched (e.g. production)."),
    OpenApiParameter("model", str),
    OpenApiParameter("status", str, enum=["ok", "error"]),
    OpenApiParameter("since", _AGE_OR_TIME, description="ISO 8601 time, or an age such as 24h or 7d."),
    OpenApiParameter("until", _AGE_OR_TIME, description="ISO 8601 time, or an age."),
    OpenApiParameter("min_latency_ms", _AMOUNT),
    OpenApiParameter("max_latency_ms", _AMOUNT),
    OpenApiParameter("min_cost", _AMOUNT),
    OpenApiParameter("max_cost", _AMOUNT),
    OpenApiParameter("feedback", str, enum=["any", "none", "positive", "negative"]),
    OpenApiParameter("user_id", str),
    OpenApiParameter("session_id", str),
    OpenApiParameter("q", str, description="Search the input and output text."),
    OpenApiParameter("cursor", str, description="`next_cursor` of the previous page."),
    OpenApiParameter("per_page", {"type": "integer", "minimum": 1, "maximum": 200}, description="Default 50."),
]


@extend_schema(
    methods=["GET"],
    operation_id="traces_list",
    summary="Traces, newest first, filtered and cursor-paginated",
    parameters=LIST_PARAMETERS,
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@extend_schema(
    methods=["POST"],
    operation_id="traces_ingest",
    summary="Send a native batch of traces, spans/generations and scores (ingest or write scope)",
    description="All or nothing: a bad field is a 400 naming it. Ids come from the client, so a retry is harmless.",
    request={"application/json": NATIVE_BATCH_SCHEMA},
    examples=[OpenApiExample("A trace with one generation and feedback", value=NATIVE_EXAMPLE, request_only=True)],
    responses={202: OpenApiTypes.OBJECT, **INGEST_ERRORS},
)
@api_view(["GET", "POST"])
@parser_classes([RawBody])
def traces(request: Request) -> Response:
    project_id = request.auth.project_id
    if request.method == "POST":
        _check_ingest(request)
        try:
            spans, trace_records, scores = native_batch(_json_body(request))
        except IngestProblem as exc:
            raise _problem(exc) from None
        batch = ingest.batch_accept(
            project_id=project_id, source="native", spans=spans, traces=trace_records, scores=scores
        )
        return Response(
            {"batch": batch.pk, "spans": len(spans), "traces": len(trace_records), "scores": len(scores)}, status=202
        )
    try:
        filters = selectors.filters_from(request.query_params, refuse_empty=True)
        per_page = request.query_params.get("per_page", "50")
        if not per_page.isdigit() or not 1 <= int(per_page[:4]) <= 200:
            raise selectors.FilterProblem("per_page", "per_page must be a whole number from 1 to 200.")
        rows, next_cursor = selectors.trace_page(
            project_id=project_id,
            filters=filters,
            cursor=request.query_params.get("cursor", "")[:200],
            per_page=int(per_page[:4]),
        )
    except selectors.FilterProblem as exc:
        raise ApiError(400, "invalid_filter", exc.message, field=exc.field) from None
    return Response({"traces": [trace_dict(t) for t in rows], "next_cursor": next_cursor})


@extend_schema(
    operation_id="trace_get",
    summary="One trace with its spans, generations, scores and feedback",
    responses={200: OpenApiTypes.OBJECT, **ERRORS, 404: OpenApiResponse(s.ErrorSerializer)},
)
@api_view(["GET"])
def trace_detail(request: Request, trace_id: str) -> Response:
    trace = selectors.trace_get(project_id=request.auth.project_id, trace_id=trace_id)
    if trace is None:
        raise ApiError(
            404,
            "trace_not_found",
            f"No trace {trace_id[:64]!r} in this project (a batch accepted a moment ago may still be being written).",
        )
    document = trace_dict(trace)
    document["spans"] = [span_dict(span) for span in selectors.trace_spans(trace=trace)]
    document["scores"] = [score_dict(score) for score in selectors.trace_scores(trace=trace)]
    return Response(document)


@extend_schema(
    operation_id="feedback_create",
    summary="Feedback or a score on a trace or one of its generations (ingest or write scope)",
    description=(
        'value is a number, true/false, or a category string; data_type ("numeric", "boolean", "categorical") '
        "is inferred when left out. Give an `id` to make retries harmless."
    ),
    request={"application/json": FEEDBACK_SCHEMA},
    examples=[
        OpenApiExample(
            "Thumbs down with a comment",
            value={
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "name": "thumbs",
                "value": False,
                "comment": "Wrong order number",
                "end_user_id": "user-17",
            },  # fmt: skip
            request_only=True,
        )
    ],
    responses={202: OpenApiTypes.OBJECT, **INGEST_ERRORS},
)
@api_view(["POST"])
@parser_classes([RawBody])
def feedback(request: Request) -> Response:
    _check_ingest(request)
    body = _json_body(request)
    try:
        if isinstance(body, dict):
            refuse_unknown_keys(body, tuple(FEEDBACK_SCHEMA["properties"]), code="invalid_field")
        score = native_score(body, "body", source="feedback")
    except IngestProblem as exc:
        raise _problem(exc) from None
    ingest.batch_accept(project_id=request.auth.project_id, source="native", spans=[], scores=[score])
    return Response({"id": score.score_id, "trace_id": score.trace_id, "span_id": score.span_id}, status=202)


def trace_dict(trace: Trace | dict[str, Any]) -> dict[str, Any]:
    """A trace (a model, or a row of the list's selector) as the API shows it."""
    if isinstance(trace, dict):
        trace = SimpleNamespace(**trace)
    return {
        "trace_id": trace.trace_id,
        "name": trace.name,
        "start_time": trace.start_time,
        "duration_ms": round(trace.duration_ms, 3),
        "status": trace.status,
        "spans": trace.span_count,
        "generations": trace.generation_count,
        "input_tokens": trace.input_tokens,
        "output_tokens": trace.output_tokens,
        "cost": str(trace.cost) if trace.cost is not None else None,
        "model": trace.model,
        "prompt": {
            "name": trace.prompt_name,
            "version": trace.prompt_version_number,
            "label": trace.prompt_label,
            "linked": trace.prompt_version_id is not None,
        }
        if trace.prompt_name
        else None,
        "user_id": trace.user_id,
        "session_id": trace.session_id,
        "feedback": {"count": trace.feedback_count, "mean": trace.feedback_mean},
        "flags": trace.flags,
        "input": trace.input_text,
        "output": trace.output_text,
    }


def span_dict(span: Span) -> dict[str, Any]:
    return {
        "span_id": span.span_id,
        "parent_id": span.parent_span_id or None,
        "type": span.kind,
        "name": span.name,
        "start_time": span.start_time,
        "end_time": span.end_time,
        "duration_ms": round(span.duration_ms, 3),
        "status": span.status,
        "status_message": span.status_message,
        "provider": span.provider,
        "model": span.model,
        "input": span.input,
        "output": span.output,
        "variables": span.variables,
        "usage": {"input_tokens": span.input_tokens, "output_tokens": span.output_tokens},
        "cost": str(span.cost) if span.cost is not None else None,
        "prompt": {
            "name": span.prompt_name,
            "version": span.prompt_version_number,
            "label": span.prompt_label,
            "linked": span.prompt_version_id is not None,
        }
        if span.prompt_name
        else None,
        "attributes": span.attributes,
        "flags": span.flags,
    }


def score_dict(score: Score) -> dict[str, Any]:
    return {
        "id": score.score_id,
        "span_id": score.span_id or None,
        "name": score.name,
        "data_type": score.data_type,
        "value": score.string_value
        if score.data_type == "categorical"
        else bool(score.value)
        if score.data_type == "boolean"
        else score.value,
        "comment": score.comment,
        "end_user_id": score.end_user_id,
        "source": score.source,
        "created_at": score.created_at,
    }

"""OTLP/HTTP trace export requests (protobuf or JSON) -> the studio's span records.

Attribute names understood (README: Traces lists them):

- OpenTelemetry GenAI semantic conventions: `gen_ai.system` / `gen_ai.provider.name`,
  `gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.response.model`,
  `gen_ai.usage.input_tokens` / `output_tokens` (and the older `prompt_tokens` /
  `completion_tokens`), `gen_ai.input.messages`, `gen_ai.output.messages`,
  `gen_ai.system_instructions`, `gen_ai.conversation.id`, and the content events
  `gen_ai.content.prompt` / `gen_ai.content.completion`.
- OpenLLMetry / Traceloop: `gen_ai.prompt.N.role|content`, `gen_ai.completion.N.role|content`,
  `llm.request.type`, `llm.usage.total_tokens`, `traceloop.association.properties.*`.
- OpenInference (Phoenix): `openinference.span.kind`, `llm.model_name`, `llm.provider`,
  `llm.token_count.prompt|completion`, `llm.input_messages.N.message.role|content`,
  `llm.output_messages.N.message.role|content`, `input.value`, `output.value`,
  `llm.prompt_template.variables`, `session.id`, `user.id`.
- The studio's own: `prompt_studio.prompt.name`, `prompt_studio.prompt.version`,
  `prompt_studio.prompt.label`, `prompt_studio.prompt.variables` (JSON), `prompt_studio.cost`.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from apps.traces.records import IngestProblem, SpanRecord, text_of

GENERATION_OPERATIONS = {"chat", "text_completion", "generate_content", "completion", "embeddings", "llm"}
MAX_ATTRIBUTE_CHARS = 20_000
_INDEXED = re.compile(r"^(gen_ai\.(?:prompt|completion)|llm\.(?:input|output)_messages)\.(\d+)\.(?:message\.)?(\w+)$")


def decode(body: bytes, *, content_type: str):
    """The ExportTraceServiceRequest in `body`; IngestProblem when it does not decode."""
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    if content_type == "application/x-protobuf":
        try:
            request.ParseFromString(body)
        except (DecodeError, ValueError, RecursionError) as exc:
            raise IngestProblem("invalid_protobuf", f"The body is not an OTLP ExportTraceServiceRequest: {exc}.")
        return request
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IngestProblem("invalid_json", f"The body is not JSON: {exc}.")
    if not isinstance(document, dict):
        raise IngestProblem("invalid_json", 'The body must be a JSON object {"resourceSpans": [...]}.')
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise IngestProblem("invalid_otlp_json", f"The body is not OTLP JSON: {str(exc)[:300]}.")
    return request


def _hex_ids_to_base64(document: Any) -> None:
    """OTLP JSON writes trace and span ids in hex where protobuf's JSON mapping expects base64."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
                    if isinstance(value, str) and re.fullmatch(r"(?:[0-9a-fA-F]{2})*", value):
                        node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))


def any_value(value) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def attributes_of(pairs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in pairs:
        value = any_value(kv.value)
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_CHARS:
            value = value[:MAX_ATTRIBUTE_CHARS] + "…"
        out[kv.key[:200]] = value
    return out


def spans_of(request) -> tuple[list[SpanRecord], list[str]]:
    """Every span of the request as a record, and a message for each span refused (missing or bad ids)."""
    records: list[SpanRecord] = []
    rejected: list[str] = []
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
                if len(span.trace_id) != 16 or not any(span.trace_id):
                    rejected.append(f"span '{span.name[:100]}': traceId must be 16 bytes, not all zero")
                    continue
                if len(span.span_id) != 8 or not any(span.span_id):
                    rejected.append(f"span '{span.name[:100]}': spanId must be 8 bytes, not all zero")
                    continue
                if span.end_time_unix_nano and span.end_time_unix_nano < span.start_time_unix_nano:
                    rejected.append(f"span {span_id}: endTimeUnixNano is before startTimeUnixNano")
                    continue
                if not span.start_time_unix_nano:
                    rejected.append(f"span {span_id}: startTimeUnixNano is missing")
                    continue
                attributes = attributes_of(span.attributes)
                events = [(event.name, attributes_of(event.attributes)) for event in span.events]
                record = span_record(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=span.parent_span_id.hex() if any(span.parent_span_id) else "",
                    name=span.name,
                    start_us=span.start_time_unix_nano // 1000,
                    end_us=(span.end_time_unix_nano or span.start_time_unix_nano) // 1000,
                    error=span.status.code == 2,
                    status_message=span.status.message,
                    attributes=attributes,
                    events=events,
                    resource=resource,
                )
                records.append(record)
    return records, rejected


def _first(attributes: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = attributes.get(name)
        if value not in (None, ""):
            return value
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < 2**53 else None


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _indexed_messages(attributes: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Messages flattened as `prefix.N.role` / `prefix.N.content` (Traceloop, OpenInference)."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        match = _INDEXED.match(key)
        if match and match.group(1) == prefix and match.group(3) in ("role", "content"):
            found.setdefault(int(match.group(2)), {})[match.group(3)] = value
    return [found[i] for i in sorted(found)]


def span_record(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str,
    name: str,
    start_us: int,
    end_us: int,
    error: bool,
    status_message: str,
    attributes: dict[str, Any],
    events: list[tuple[str, dict[str, Any]]],
    resource: dict[str, Any],
) -> SpanRecord:
    a = attributes
    model = _first(a, "gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "llm.response.model")
    provider = _first(a, "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
    operation = _first(a, "gen_ai.operation.name", "llm.request.type") or ""
    span_kind = str(a.get("openinference.span.kind") or "").upper()
    input_tokens = _int(_first(a, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"))
    output_tokens = _int(
        _first(a, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion")
    )

    messages: Any = _json_or_text(_first(a, "gen_ai.input.messages"))
    if messages is None:
        messages = _indexed_messages(a, "gen_ai.prompt") or _indexed_messages(a, "llm.input_messages") or None
    if messages is None:
        messages = _json_or_text(_first(a, "input.value"))
    system = _first(a, "gen_ai.system_instructions")
    if system is not None and isinstance(messages, list):
        messages = [{"role": "system", "content": _json_or_text(system)}, *messages]
    output: Any = _json_or_text(_first(a, "gen_ai.output.messages"))
    if output is None:
        output = _indexed_messages(a, "gen_ai.completion") or _indexed_messages(a, "llm.output_messages") or None
    if output is None:
        output = _json_or_text(_first(a, "output.value"))
    for event_name, event_attributes in events:  # the older GenAI content events
        if event_name == "gen_ai.content.prompt" and messages is None:
            messages = _json_or_text(event_attributes.get("gen_ai.prompt"))
        elif event_name == "gen_ai.content.completion" and output is None:
            output = _json_or_text(event_attributes.get("gen_ai.completion"))

    is_generation = bool(
        model
        or input_tokens is not None
        or output_tokens is not None
        or str(operation).lower() in GENERATION_OPERATIONS
        or span_kind == "LLM"
    )
    variables = _json_or_text(_first(a, "prompt_studio.prompt.variables", "llm.prompt_template.variables"))
    version = _first(a, "prompt_studio.prompt.version", "traceloop.prompt.version", "llm.prompt_template.version")
    properties = "traceloop.association.properties."
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=name[:200],
        kind="generation" if is_generation else "span",
        start_us=start_us,
        end_us=end_us,
        error=error or bool(a.get("error.type")),
        status_message=(status_message or str(a.get("error.type") or ""))[:500],
        provider=str(provider or "")[:100],
        model=str(model or "")[:200],
        operation=str(operation)[:50],
        input=messages,
        output=output,
        input_text=text_of(messages),
        output_text=text_of(output),
        variables=variables if isinstance(variables, dict) else {},
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=_first(a, "prompt_studio.cost", "gen_ai.usage.cost", "llm.cost.total"),
        prompt_name=str(_first(a, "prompt_studio.prompt.name", "traceloop.prompt.key") or "")[:100],
        prompt_version=_int(version),
        prompt_label=str(_first(a, "prompt_studio.prompt.label") or "")[:50],
        user_id=str(_first(a, "user.id", "enduser.id", properties + "user_id") or "")[:200],
        session_id=str(_first(a, "session.id", "gen_ai.conversation.id", properties + "session_id") or "")[:200],
        environment=str(_first(resource, "deployment.environment.name", "deployment.environment") or "")[:50],
        attributes={k: v for k, v in a.items() if not _is_content(k)},
    )


def _is_content(key: str) -> bool:
    """Message contents are kept once, in input/output, not again among the attributes."""
    return (
        key in ("gen_ai.input.messages", "gen_ai.output.messages", "input.value", "output.value")
        or key.startswith(("gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages.", "llm.output_messages."))
        or key == "gen_ai.system_instructions"
    )

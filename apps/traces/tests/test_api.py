"""The REST endpoints: native batches, OTLP by hand (JSON, gzip, bad input), feedback, filters and cursors."""

from __future__ import annotations

import gzip
import json

import pytest

from apps.accounts.tests.factories import ProjectFactory
from apps.traces import ingest
from apps.traces.models import BatchStatus, IngestBatch, Span, Trace
from apps.traces.tests.factories import generation, new_id


def expand_all() -> None:
    for batch_id in IngestBatch.objects.filter(status=BatchStatus.PENDING).values_list("pk", flat=True):
        ingest.batch_expand(batch_id=batch_id)


@pytest.fixture
def ingest_key(make_key):
    return make_key("ingest")


def _post(client, key, path, body, content_type="application/json", **headers):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(path, data, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {key}", **headers)


def test_it_accepts_a_native_batch_and_reads_it_back(client, api, ingest_key, released):
    trace_id = new_id()
    staged = generation(trace_id, span_id="g1", prompt={"name": "greet", "label": "staging"})
    body = {"traces": [{"id": trace_id, "user_id": "u-9"}], "generations": [staged]}
    response = _post(client, ingest_key, "/api/v1/traces", body)
    assert response.status_code == 202, response.content
    assert response.json()["spans"] == 1
    expand_all()
    listed = api(ingest_key).get("/api/v1/traces?prompt=greet&version=2").json()
    assert [t["trace_id"] for t in listed["traces"]] == [trace_id]
    assert listed["traces"][0]["prompt"] == {"name": "greet", "version": 2, "label": "staging", "linked": True}
    detail = api(ingest_key).get(f"/api/v1/traces/{trace_id}").json()
    assert detail["user_id"] == "u-9" and detail["spans"][0]["usage"] == {"input_tokens": 12, "output_tokens": 5}


def test_a_read_key_cannot_send(client, make_key):
    response = _post(client, make_key("read"), "/api/v1/traces", {"generations": [generation(new_id())]})
    assert response.status_code == 403 and response.json()["code"] == "ingest_scope_required"


def test_it_answers_429_with_retry_after_when_the_backlog_is_full(client, ingest_key, settings):
    settings.INGEST_MAX_PENDING_BATCHES = 2
    settings.INGEST_BACKLOG_CHECK_MS = 0
    statuses = [_post(client, ingest_key, "/api/v1/traces", {"generations": [generation(new_id())]}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [202, 202, 429]
    assert statuses[2]["Retry-After"] == str(settings.INGEST_RETRY_AFTER_SECONDS)
    assert statuses[2].json()["code"] == "ingest_backlog_full"
    expand_all()
    assert _post(client, ingest_key, "/api/v1/traces", {"generations": [generation(new_id())]}).status_code == 202


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"generations": [{"trace_id": "t1", "name": "x"}]}, "missing_id", "generations[0].id is missing"),
        ({"generations": [{"id": "s1", "name": "x"}]}, "missing_id", "generations[0].trace_id is missing"),
        ({"spans": [{"id": "s 1", "trace_id": "t"}]}, "invalid_id", "spans[0].id must be"),
        ({"spans": [{"id": "s", "trace_id": "t", "start_time": "yesterday"}]}, "invalid_time", "not an ISO 8601"),
        ({"generations": [generation("t", usage={"input_tokens": -1})]}, "invalid_field", "input_tokens"),
        ({"scores": [{"trace_id": "t", "name": "r", "value": [1]}]}, "invalid_value", "finite number"),
        ({"spanz": []}, "invalid_batch", "Unknown key(s) 'spanz'"),
        ({"spanz\u0000": []}, "invalid_batch", "Unknown key(s) 'spanz\\x00'"),
        ({"generations": [generation("t")], "scores": {}}, "invalid_batch", "'scores' must be a list"),
        ({}, "empty_batch", "empty"),
        ([], "invalid_batch", "JSON object"),
    ],
)
def test_it_refuses_a_bad_native_batch_naming_the_field(client, ingest_key, body, code, words):
    response = _post(client, ingest_key, "/api/v1/traces", body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code and words in response.json()["detail"]
    assert not IngestBatch.objects.exists()


def _otlp_json(trace_hex: str, spans: list[dict]) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
                               "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}  # fmt: skip


def _attr(key, value):
    kind = "intValue" if isinstance(value, int) else "stringValue"
    return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}


def test_it_takes_otlp_json_gzipped_with_openinference_names_and_reports_rejected_spans(client, ingest_key, released):
    trace_hex = new_id()
    spans = [
        {"traceId": trace_hex, "spanId": "00f067aa0ba902b7", "name": "llm", "kind": 3,
         "startTimeUnixNano": "1764930000000000000", "endTimeUnixNano": "1764930001500000000",
         "attributes": [_attr("openinference.span.kind", "LLM"), _attr("llm.model_name", "llama-3"),
                        _attr("llm.token_count.prompt", 30), _attr("llm.token_count.completion", 7),
                        _attr("llm.input_messages.0.message.role", "user"),
                        _attr("llm.input_messages.0.message.content", "Hello Ada"),
                        _attr("llm.output_messages.0.message.content", "Hi!"),
                        _attr("prompt_studio.prompt.name", "greet"), _attr("prompt_studio.prompt.version", 1)]},
        {"traceId": trace_hex, "name": "no span id", "startTimeUnixNano": "1764930000000000000"},
    ]  # fmt: skip
    body = gzip.compress(json.dumps(_otlp_json(trace_hex, spans)).encode())
    response = _post(client, ingest_key, "/api/v1/otel/v1/traces", body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200, response.content
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == 1 and "spanId must be 8 bytes" in partial["errorMessage"]
    expand_all()
    span = Span.objects.get()
    assert (span.kind, span.model, span.input_tokens, span.output_tokens) == ("generation", "llama-3", 30, 7)
    assert span.input == [{"role": "user", "content": "Hello Ada"}] and span.output_text == "Hi!"
    assert span.prompt_version.number == 1 and Trace.objects.get().duration_ms == 1500


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf", 400, "invalid_protobuf"),
        (b"<xml/>", "text/xml", 415, "unsupported_media_type"),
        (b"{not json", "application/json", 400, "invalid_json"),
        (b'{"resourceSpans": 5}', "application/json", 400, "invalid_otlp_json"),
    ],
)
def test_it_refuses_bad_otlp_with_a_clear_error(client, ingest_key, body, content_type, status, code):
    response = _post(client, ingest_key, "/api/v1/otel/v1/traces", body, content_type=content_type)
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_it_refuses_an_oversized_body_and_a_gzip_bomb(client, ingest_key, settings):
    settings.INGEST_MAX_BODY_MB = 1
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    response = _post(client, ingest_key, "/api/v1/otel/v1/traces", big)
    assert (response.status_code, response.json()["code"]) == (413, "body_too_large")
    bomb = gzip.compress(big)
    response = _post(client, ingest_key, "/api/v1/otel/v1/traces", bomb, HTTP_CONTENT_ENCODING="gzip")
    assert (response.status_code, response.json()["code"]) == (413, "body_too_large")
    response = _post(client, ingest_key, "/api/v1/otel/v1/traces", b"{}", HTTP_CONTENT_ENCODING="br")
    assert (response.status_code, response.json()["code"]) == (415, "unsupported_encoding")


def test_another_projects_key_neither_links_nor_reads(client, api, make_key, ingest_key, released):
    other = ProjectFactory(slug="other")
    other_key = make_key("ingest", of_project=other)
    trace_id = new_id()
    named = generation(trace_id, prompt={"name": "greet", "version": 1})
    _post(client, other_key, "/api/v1/traces", {"generations": [named]})
    expand_all()
    trace = Trace.objects.get()
    assert trace.project_id == other.pk and trace.prompt_version_id is None and trace.flags == ["unknown_prompt"]
    assert api(ingest_key).get(f"/api/v1/traces/{trace_id}").status_code == 404
    assert api(ingest_key).get("/api/v1/traces").json()["traces"] == []


def test_feedback_lands_beside_the_generation(client, api, ingest_key):
    trace_id = new_id()
    _post(client, ingest_key, "/api/v1/traces", {"generations": [generation(trace_id, span_id="g1")]})
    for value in (False, "wrong-tone", 2.5):
        feedback = {"trace_id": trace_id, "span_id": "g1", "name": "user", "value": value, "comment": "meh",
                    "end_user_id": "u-1"}  # fmt: skip
        assert _post(client, ingest_key, "/api/v1/feedback", feedback).status_code == 202
    assert _post(client, ingest_key, "/api/v1/feedback", feedback).status_code == 202  # a retry: written once
    response = _post(client, ingest_key, "/api/v1/feedback", {"trace_id": trace_id, "value": 1})
    assert response.status_code == 400 and "body.name is missing" in response.json()["detail"]
    unknown = _post(client, ingest_key, "/api/v1/feedback", {**feedback, "rating": 3})
    assert unknown.status_code == 400 and "Unknown key(s) 'rating'" in unknown.json()["detail"]
    expand_all()
    detail = api(ingest_key).get(f"/api/v1/traces/{trace_id}").json()
    assert [(s["data_type"], s["value"]) for s in detail["scores"]] == [
        ("boolean", False), ("categorical", "wrong-tone"), ("numeric", 2.5)
    ]  # fmt: skip
    assert detail["feedback"]["count"] == 2


def test_it_filters_and_pages_with_a_cursor(client, api, ingest_key):
    from datetime import UTC, datetime, timedelta

    base = datetime.now(UTC) - timedelta(hours=1)
    ids = [new_id() for _ in range(5)]
    gens = [generation(t, start=base + timedelta(minutes=i), model="m-a" if i % 2 else "m-b",
                       output=f"answer number {i}", status="error" if i == 4 else "ok")
            for i, t in enumerate(ids)]  # fmt: skip
    _post(client, ingest_key, "/api/v1/traces", {"generations": gens})
    expand_all()
    first = api(ingest_key).get("/api/v1/traces?per_page=2").json()
    assert [t["trace_id"] for t in first["traces"]] == [ids[4], ids[3]]
    second = api(ingest_key).get(f"/api/v1/traces?per_page=2&cursor={first['next_cursor']}").json()
    third = api(ingest_key).get(f"/api/v1/traces?per_page=2&cursor={second['next_cursor']}").json()
    assert [t["trace_id"] for t in second["traces"] + third["traces"]] == [ids[2], ids[1], ids[0]]
    assert third["next_cursor"] is None
    assert len(api(ingest_key).get("/api/v1/traces?model=m-a").json()["traces"]) == 2
    assert [t["trace_id"] for t in api(ingest_key).get("/api/v1/traces?status=error").json()["traces"]] == [ids[4]]
    assert [t["trace_id"] for t in api(ingest_key).get("/api/v1/traces?q=number 3").json()["traces"]] == [ids[3]]
    assert len(api(ingest_key).get("/api/v1/traces?since=2h&min_latency_ms=500").json()["traces"]) == 5
    assert api(ingest_key).get("/api/v1/traces?q=100%25_off").json()["traces"] == []  # LIKE wildcards are text
    assert len(api(ingest_key).get("/api/v1/traces?min_cost=0.00001&max_cost=1").json()["traces"]) == 5
    assert api(ingest_key).get("/api/v1/traces?feedback=any").json()["traces"] == []
    for query in ("since=", "version=", "per_page=201", "per_page=0", "since=999999d"):
        refused = api(ingest_key).get(f"/api/v1/traces?{query}")
        assert refused.status_code == 400 and refused.json()["field"] == query.split("=")[0], query
    bad = api(ingest_key).get("/api/v1/traces?since=last-week")
    assert bad.status_code == 400 and bad.json()["field"] == "since"
    # An offset ISO 8601 allows and PostgreSQL does not (over 15:59) is turned into UTC, never sent as it is
    # (the database's refusal used to spoil the connection's transaction for the next query).
    far = api(ingest_key).get("/api/v1/traces?until=1052-07-28T10:10:19-20:24")
    assert far.status_code == 200 and far.json()["traces"] == []
    assert api(ingest_key).get("/api/v1/traces?until=0001-01-01T00:00:00%2B20:00").json()["field"] == "until"
    assert len(api(ingest_key).get("/api/v1/traces").json()["traces"]) == 5  # the connection still answers
    assert api(ingest_key).get("/api/v1/traces?cursor=zzz").json()["code"] == "invalid_filter"

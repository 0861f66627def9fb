"""Against a live studio (gunicorn) and real Celery workers: the OpenTelemetry SDK, the client, duplicates, a kill.

The OpenTelemetry SDK exports protobuf with its own OTLP/HTTP exporter. The
Python SDK has no JSON exporter, so the JSON test encodes the SDK's spans with
the SDK's own OTLP encoder and sends them in the OTLP JSON mapping (hex ids).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request

import pytest
from prompt_studio import Studio

from apps.accounts.services import api_key_create
from apps.accounts.tests.factories import ProjectFactory
from apps.api.tests.server import StudioServer
from apps.prompts import services
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.traces import ingest
from apps.traces.models import BatchStatus, IngestBatch, Score, Span, Trace
from apps.traces.tests.factories import generation, new_id


def _wait_for(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def seeded(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    project = ProjectFactory(slug="shop")
    prompt = PromptFactory(project=project, name="support-reply")
    v1 = make_version(prompt, "Answer {{ question }}")
    v2 = make_version(prompt, "Answer kindly: {{ question }}")
    services.label_move(prompt=prompt, label_name="production", version=v2, actor="test")
    _, key = api_key_create(project=project, name="shop", scope="ingest", actor="test")
    return {"project": project, "v1": v1, "v2": v2, "key": key}


@pytest.fixture
def live(seeded, start_worker):
    start_worker()
    server = StudioServer().start()
    yield server
    server.stop()


def _provider(exporter):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "shop", "deployment.environment": "prod"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _text(content: str) -> dict:
    return {"type": "text", "content": content}


def _chat(provider, prompt) -> str:
    from prompt_studio.otel import set_prompt_attributes

    tracer = provider.get_tracer("shop")
    with tracer.start_as_current_span("handle-ticket") as root:
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            set_prompt_attributes(prompt, variables={"question": "Where is my order?"})
            span.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 21, "gen_ai.usage.output_tokens": 9,
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [_text("Where is my order?")]}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [_text("Tomorrow.")]}]),
            })  # fmt: skip
        return format(root.get_span_context().trace_id, "032x")


class JsonOtlpExporter:
    """The SDK's spans, encoded by the SDK's OTLP encoder, posted in the OTLP JSON mapping (hex ids)."""

    def __init__(self, endpoint: str, key: str):
        self.endpoint, self.key, self.answers = endpoint, key, []

    def export(self, spans):
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
        from opentelemetry.sdk.trace.export import SpanExportResult

        document = MessageToDict(encode_spans(spans))
        for resource in document["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    for field in ("traceId", "spanId", "parentSpanId"):
                        if field in span:
                            span[field] = base64.b64decode(span[field]).hex()
        request = urllib.request.Request(self.endpoint, data=json.dumps(document).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {self.key}"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            self.answers.append((response.status, json.loads(response.read())))
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=None):
        return True


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_the_opentelemetry_sdk_exports_spans_that_land_linked_to_their_version(live, seeded, encoding):
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    endpoint = f"{live.url}/api/v1/otel/v1/traces"
    if encoding == "protobuf":
        exporter = OTLPSpanExporter(endpoint=endpoint, headers={"Authorization": f"Bearer {seeded['key']}"},
                                    compression=Compression.Gzip)  # fmt: skip
    else:
        exporter = JsonOtlpExporter(endpoint, seeded["key"])
    provider = _provider(exporter)
    prompt = Studio(live.url, seeded["key"]).get_prompt("support-reply")  # production -> v2
    trace_id = _chat(provider, prompt)
    assert provider.force_flush(10_000)
    provider.shutdown()
    if encoding == "json":
        assert exporter.answers == [(200, {})]
    assert _wait_for(lambda: Trace.objects.filter(trace_id=trace_id, span_count=2).exists())
    generation_span = Span.objects.get(trace_id=trace_id, kind="generation")
    assert generation_span.prompt_version_id == seeded["v2"].pk and generation_span.prompt_label == "production"
    assert (generation_span.input_tokens, generation_span.output_tokens) == (21, 9)
    assert generation_span.output_text == "Tomorrow." and generation_span.variables == {
        "question": "Where is my order?"
    }
    trace = Trace.objects.get(trace_id=trace_id)
    assert trace.name == "handle-ticket" and trace.environment == "prod" and trace.prompt_version_number == 2


def test_the_client_traces_a_generation_and_feedback_in_the_background(live, seeded):
    studio = Studio(live.url, seeded["key"])
    prompt = studio.get_prompt("support-reply")

    @studio.trace("answer-ticket", user_id="u-17")
    def answer(question: str) -> str:
        from prompt_studio import current_trace

        trace = current_trace()
        generation_ = trace.generation(
            prompt=prompt, variables={"question": question}, input=prompt.render(question=question)
        )
        generation_.end(output="Tomorrow.", usage={"prompt_tokens": 11, "completion_tokens": 3}, model="local-qwen")
        answer.trace_id = trace.id
        return "Tomorrow."

    assert answer("Where is my order?") == "Tomorrow."
    studio.feedback(answer.trace_id, "thumbs", False, comment="too short", end_user_id="u-17")
    assert studio.flush(10)
    assert studio.tracer.stats["dropped"] == 0 and studio.tracer.stats["sent"] == 4  # trace, root, generation, score
    assert _wait_for(lambda: Trace.objects.filter(trace_id=answer.trace_id, feedback_count=1).exists())
    trace = Trace.objects.get(trace_id=answer.trace_id)
    assert (trace.user_id, trace.prompt_version_id, trace.prompt_label) == ("u-17", seeded["v2"].pk, "production")
    assert (trace.input_tokens, trace.output_tokens, trace.model, trace.feedback_mean) == (11, 3, "local-qwen", 0.0)
    assert trace.input_text == "Answer kindly: Where is my order?"


def test_the_client_never_blocks_or_raises_and_counts_drops(transactional_db):
    studio = Studio("http://127.0.0.1:9", "ps_nothing")  # nothing listens on port 9
    studio.configure_tracing(max_queue=5, max_retries=0, flush_interval=0.05, timeout=0.5)
    started = time.monotonic()
    for _ in range(50):
        with studio.trace("t") as trace:
            trace.generation().end(output="x")
    assert time.monotonic() - started < 1.0
    studio.flush(5)
    stats = studio.tracer.stats
    assert stats["sent"] == 0 and stats["dropped"] == 50 * 3  # trace, root span, generation: dropped, counted
    assert "did not take the batch" in studio.tracer.last_error


def test_a_batch_sent_twice_at_once_and_retried_is_written_once(live, seeded):
    trace_id = new_id()
    gens = [generation(trace_id, span_id=f"g{i}") for i in range(50)]
    scores = [{"id": "s-1", "trace_id": trace_id, "name": "thumbs", "value": True}]
    body = json.dumps({"generations": gens, "scores": scores}).encode()

    def send():
        request = urllib.request.Request(f"{live.url}/api/v1/traces", data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {seeded['key']}"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            assert response.status == 202

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    send()  # and a retry after both
    assert _wait_for(lambda: not IngestBatch.objects.filter(status=BatchStatus.PENDING).exists())
    assert IngestBatch.objects.filter(status=BatchStatus.DONE).count() == 3
    assert Span.objects.filter(trace_id=trace_id).count() == 50 and Score.objects.count() == 1
    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.span_count, trace.input_tokens, trace.feedback_count) == (50, 600, 1)


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(seeded, start_worker):
    batches, per_batch = 6, 2000
    traces = [new_id() for _ in range(batches * 10)]
    for b in range(batches):
        from apps.traces.records import native_batch

        gens = [generation(traces[b * 10 + i % 10], span_id=f"s{b}-{i}") for i in range(per_batch)]
        spans, _, _ = native_batch({"generations": gens})
        ingest.batch_accept(project_id=seeded["project"].pk, source="native", spans=spans)
    worker = start_worker()
    assert _wait_for(lambda: IngestBatch.objects.filter(status=BatchStatus.DONE).exists(), timeout=120)
    worker.kill()
    done_at_kill = IngestBatch.objects.filter(status=BatchStatus.DONE).count()
    assert done_at_kill < batches, "the worker finished everything before it was killed; make the batches larger"
    ingest.batches_requeue(older_than_seconds=0)  # what the beat sweep does for batches whose message was lost
    start_worker()
    assert _wait_for(lambda: IngestBatch.objects.filter(status=BatchStatus.DONE).count() == batches, timeout=180)
    assert Span.objects.count() == batches * per_batch
    assert sorted(Trace.objects.values_list("span_count", flat=True)) == [per_batch // 10] * len(traces)

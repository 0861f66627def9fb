from __future__ import annotations

from apps.traces import ingest
from apps.traces.models import BatchStatus, IngestBatch, Score, Span, Trace, TraceSettings
from apps.traces.records import native_batch
from apps.traces.tests.factories import generation, new_id


def _accept(project, document):
    spans, traces, scores = native_batch(document)
    return ingest.batch_accept(project_id=project.pk, source="native", spans=spans, traces=traces, scores=scores)


def test_it_expands_a_batch_into_linked_rows(project, released):
    trace_id = new_id()
    batch = _accept(
        project,
        {
            "traces": [{"id": trace_id, "name": "support", "user_id": "u-1", "tags": ["beta"]}],
            "spans": [{"id": "root", "trace_id": trace_id, "name": "handle", "start_time": 1_700_000_000}],
            "generations": [
                generation(trace_id, span_id="g1", parent_id="root", prompt={"name": "greet", "version": 2}),
                generation(trace_id, span_id="g2", parent_id="root", prompt={"name": "greet", "label": "production"}),
            ],
            "scores": [{"trace_id": trace_id, "name": "thumbs", "value": True}],
        },
    )
    assert ingest.batch_expand(batch_id=batch.pk) is True
    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.span_count, trace.generation_count, trace.name, trace.user_id) == (3, 2, "support", "u-1")
    assert trace.input_tokens == 24 and trace.prompt_name == "greet" and trace.prompt_version_number == 2
    assert trace.feedback_count == 1 and trace.feedback_mean == 1.0
    versions = dict(Span.objects.filter(kind="generation").values_list("span_id", "prompt_version__number"))
    assert versions == {"g1": 2, "g2": 1}  # the label resolved to the version it points at
    assert IngestBatch.objects.get(pk=batch.pk).status == BatchStatus.DONE
    assert ingest.batch_expand(batch_id=batch.pk) is False


def test_it_writes_a_retried_batch_once(project, released):
    trace_id = new_id()
    document = {"generations": [generation(trace_id, span_id="g1"), generation(trace_id, span_id="g2")],
                "scores": [{"id": "s1", "trace_id": trace_id, "name": "rating", "value": 4}]}  # fmt: skip
    first, second = _accept(project, document), _accept(project, document)
    ingest.batch_expand(batch_id=second.pk)
    ingest.batch_expand(batch_id=first.pk)
    assert Span.objects.count() == 2 and Score.objects.count() == 1
    assert Trace.objects.get().span_count == 2


def test_it_flags_an_unknown_prompt_and_keeps_the_span(project, released):
    trace_id = new_id()
    batch = _accept(project, {"generations": [generation(trace_id, prompt={"name": "nope", "version": 1})]})
    ingest.batch_expand(batch_id=batch.pk)
    span = Span.objects.get()
    assert span.prompt_version_id is None and span.flags == ["unknown_prompt"]
    assert Trace.objects.get().flags == ["unknown_prompt"]


def test_it_masks_secrets_always_and_pii_by_setting(project):
    TraceSettings.objects.create(project=project, pii_mode="mask")
    trace_id = new_id()
    text = "my key is sk-proj-abcdefghijklmnopqrstuvwxyz123456 and mail ada@example.com"
    batch = _accept(project, {"generations": [generation(trace_id, input=[{"role": "user", "content": text}])]})
    assert "sk-proj-abc" not in batch.payload and "ada@example.com" not in batch.payload
    ingest.batch_expand(batch_id=batch.pk)
    span = Span.objects.get()
    assert span.input[0]["content"] == "my key is [SECRET] and mail [EMAIL]"


def test_retention_deletes_old_rows_in_chunks(project):
    from datetime import UTC, datetime, timedelta

    TraceSettings.objects.create(project=project, retention_days=7)
    old = datetime.now(UTC) - timedelta(days=10)
    for _ in range(3):
        ingest.batch_expand(batch_id=_accept(project, {"generations": [generation(new_id(), start=old)]}).pk)
    ingest.batch_expand(batch_id=_accept(project, {"generations": [generation(new_id())]}).pk)
    deleted = ingest.retention_apply(chunk=2)
    assert deleted["spans"] == 3 and deleted["traces"] == 3
    assert Trace.objects.count() == 1 and Span.objects.count() == 1


def test_it_drops_texts_with_personal_data_when_the_project_says_so(project):
    TraceSettings.objects.create(project=project, pii_mode="drop")
    batch = _accept(project, {"generations": [generation(new_id(), output="Call me at +44 20 7946 0958")]})
    ingest.batch_expand(batch_id=batch.pk)
    assert Span.objects.get().output_text == "[DROPPED: personal data]"


def test_it_stores_nul_characters_and_lone_surrogates_harmlessly(project):
    batch = _accept(project, {"generations": [generation(new_id(), output="a\x00b\ud800c", metadata={"k\x00": "v"})]})
    assert ingest.batch_expand(batch_id=batch.pk) is True
    span = Span.objects.get()
    assert span.output_text == "ab?c" and span.attributes == {"k": "v"}


def test_the_sweep_re_sends_a_lost_batch_once_per_interval(project):
    batch = _accept(project, {"generations": [generation(new_id())]})
    assert ingest.batches_requeue(older_than_seconds=0) == 1
    assert ingest.batches_requeue(older_than_seconds=60) == 0  # just re-sent
    ingest.batch_expand(batch_id=batch.pk)
    assert ingest.batches_requeue(older_than_seconds=0) == 0

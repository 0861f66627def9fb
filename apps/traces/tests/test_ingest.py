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


def _summaries(project):
    columns = [c for c in ingest.TRACE_COLUMNS if c != "updated_at"]
    return {row[1]: row for row in Trace.objects.filter(project=project).order_by("trace_id").values_list(*columns)}


def test_a_summary_written_from_the_batch_equals_one_recomputed_from_the_stored_rows(project, released):
    from datetime import UTC, datetime, timedelta

    from django.db import transaction

    from apps.monitoring.models import HourlyRollup

    base = datetime.now(UTC) - timedelta(hours=1)
    split, dup, feedback_first, record_first, fresh = (new_id() for _ in range(5))
    # Feedback and a trace record arrive before any span of their trace.
    first = _accept(
        project,
        {
            "traces": [{"id": record_first, "name": "checkout", "user_id": "u-7", "tags": ["vip"]}],
            "scores": [{"id": "f1", "trace_id": feedback_first, "name": "thumbs", "value": False}],
        },
    )
    ingest.batch_expand(batch_id=first.pk)
    # A trace's generation before its root span (two batches); a batch repeating a span id.
    second = _accept(
        project,
        {
            "generations": [
                generation(split, span_id="g1", parent_id="root", start=base + timedelta(seconds=2), output="first"),
                generation(dup, span_id="g1", start=base, output="kept"),
                generation(dup, span_id="g1", start=base + timedelta(seconds=9), output="a repeat, dropped"),
                generation(feedback_first, span_id="g1", start=base, prompt={"name": "greet", "version": 2}),
                generation(record_first, span_id="g1", start=base, prompt={"name": "nope", "version": 1}),
                generation(
                    fresh, span_id="g2", start=base + timedelta(seconds=1), prompt={"name": "greet", "version": 1}
                ),
                generation(fresh, span_id="g1", start=base, prompt={"name": "greet", "label": "staging"}),
            ]
        },
    )
    ingest.batch_expand(batch_id=second.pk)
    third = _accept(
        project,
        {
            "spans": [
                {
                    "id": "root",
                    "trace_id": split,
                    "name": "handle",
                    "start_time": base.isoformat(),
                    "end_time": (base + timedelta(seconds=5)).isoformat(),
                }
            ],  # fmt: skip
            "generations": [generation(split, span_id="g2", parent_id="root", start=base + timedelta(seconds=3))],
        },
    )
    ingest.batch_expand(batch_id=third.pk)

    written = _summaries(project)
    with transaction.atomic():  # every summary again, each read back from the stored spans and scores
        ingest.traces_recompute(project_id=project.pk, trace_ids=sorted(written))
    assert _summaries(project) == written
    traces = {t.trace_id: t for t in Trace.objects.filter(project=project)}
    assert (traces[split].span_count, traces[split].name, traces[split].generation_count) == (3, "handle", 2)
    assert traces[split].duration_ms == 5000
    assert traces[dup].span_count == 1 and traces[dup].output_text == "kept"
    assert Span.objects.get(trace_id=dup).output_text == "kept"
    assert (traces[feedback_first].feedback_count, traces[feedback_first].feedback_mean) == (1, 0.0)
    assert traces[feedback_first].prompt_version_number == 2
    assert (traces[record_first].user_id, traces[record_first].tags) == ("u-7", ["vip"])
    assert traces[record_first].flags == ["unknown_prompt"]
    assert (traces[fresh].span_count, traces[fresh].prompt_version_number) == (2, 2)  # staging points at v2
    assert traces[fresh].start_time == base and traces[fresh].input_tokens == 24
    assert sum(HourlyRollup.objects.values_list("count", flat=True)) == Span.objects.filter(kind="generation").count()


def test_a_batch_accepted_before_the_payload_format_changed_still_expands(project, released):
    import json

    from django.utils import timezone

    trace_id = new_id()
    spans, _traces, _scores = native_batch(
        {"generations": [generation(trace_id, prompt={"name": "greet", "version": 1})]}
    )
    old_payload = json.dumps({"spans": [vars(s) for s in spans], "traces": [], "scores": []})
    now = timezone.now()
    batch = IngestBatch.objects.create(
        project=project, source="native", payload=old_payload, span_count=1, received_at=now, enqueued_at=now
    )
    assert ingest.batch_expand(batch_id=batch.pk) is True
    span = Span.objects.get()
    assert span.input == [{"role": "user", "content": "Where is my order 42?"}] and span.variables["question"]
    assert span.prompt_version.number == 1 and Trace.objects.get().span_count == 1


def test_the_payload_keeps_json_columns_encoded_once_and_they_read_back_as_sent(project):
    trace_id = new_id()
    metadata = {"nested": {"list": [1, 2.5, None, True], "text": "é ✓"}}
    batch = _accept(
        project, {"generations": [generation(trace_id, output={"answer": "ok", "n": 3}, metadata=metadata)]}
    )
    ingest.batch_expand(batch_id=batch.pk)
    span = Span.objects.get()
    assert span.output == {"answer": "ok", "n": 3} and span.attributes == metadata
    assert span.output_text == "ok\n3"


def test_a_write_told_no_key_clashes_still_writes_nothing_twice_when_one_does(project):
    from django.db import transaction

    trace_id = new_id()
    spans, _traces, _scores = native_batch({"generations": [generation(trace_id, span_id="g1")]})
    ingest.batch_expand(batch_id=_accept(project, {"generations": [generation(trace_id, span_id="g1")]}).pk)
    rows = ingest._prepare(project.pk, spans, None).rows
    with transaction.atomic():  # on PostgreSQL the straight COPY meets the stored key and falls back
        ingest.bulk_insert_ignore(Span._meta.db_table, ingest.SPAN_COLUMNS, rows, set(), conflict_free=True)
        assert Span.objects.count() == 1

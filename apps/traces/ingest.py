"""Accept fast, write in bulk.

`batch_accept` is the request's only write: the validated, redacted records as
one IngestBatch row, then a message to the `ingest` queue once it commits.
`batch_expand` (the Celery task's body) turns a batch into rows in one
transaction: COPY into a temporary table then INSERT ... ON CONFLICT DO NOTHING
on PostgreSQL, `executemany` with ON CONFLICT DO NOTHING on SQLite. The unique
keys on the client's (trace id, span id) and score id make a retried or
duplicated batch write nothing twice; a worker killed mid-batch rolls back and
the message (acks late) or the sweep runs the batch again.

A trace's summary row is recomputed from all of its spans after each batch
that touches it. On PostgreSQL, transaction-scoped advisory locks on the
touched traces (taken in sorted order) keep two batches of the same trace from
summing without each other's spans; SQLite writes one transaction at a time.
"""

from __future__ import annotations

import hashlib
import logging
import operator
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Substr
from django.utils import timezone

from apps.core.sql import select_in
from apps.traces import hooks
from apps.traces.models import BatchStatus, IngestBatch, Score, Span, Trace, TraceSettings
from apps.traces.records import ScoreRecord, SpanRecord, TraceRecord, json_text, payload_dumps, payload_loads
from apps.traces.redaction import Redactor

logger = logging.getLogger(__name__)

SPAN_COLUMNS = (
    "project_id", "trace_id", "span_id", "parent_span_id", "name", "kind", "start_time", "end_time", "duration_ms",
    "status", "status_message", "provider", "model", "operation", "input", "output", "input_text", "output_text",
    "variables", "input_tokens", "output_tokens", "cost", "prompt_name", "prompt_version_number", "prompt_label",
    "prompt_version_id", "attributes", "flags", "batch_id",
)  # fmt: skip
JSON_SPAN_COLUMNS = {"input", "output", "variables", "attributes", "flags"}
SCORE_COLUMNS = (
    "project_id", "score_id", "trace_id", "span_id", "name", "data_type", "value", "string_value", "comment",
    "end_user_id", "source", "created_at",
)  # fmt: skip
TRACE_COLUMNS = (
    "project_id", "trace_id", "name", "start_time", "end_time", "duration_ms", "status", "span_count",
    "generation_count", "input_tokens", "output_tokens", "cost", "model", "prompt_name", "prompt_version_number",
    "prompt_label", "prompt_version_id", "input_text", "output_text", "user_id", "session_id", "environment",
    "tags", "metadata", "flags", "feedback_count", "feedback_mean", "updated_at",
)  # fmt: skip
# Scores the studio computes itself (online evaluation) are shown on the trace but are not its feedback.
PROGRAM_SCORE_SOURCE = "online"
TRACE_TEXT_CHARS = 2_000  # of a trace's input and output kept on the trace row (lists and search)


# --- accept ---------------------------------------------------------------------------------------

_settings_cache: dict[int, tuple[float, str]] = {}
_backlog_cache: dict[str, float] = {"at": 0.0, "count": 0.0}
_cache_lock = threading.Lock()


def project_pii_mode(project_id: int) -> str:
    now = time.monotonic()
    cached = _settings_cache.get(project_id)
    if cached and now - cached[0] < 10:
        return cached[1]
    mode = TraceSettings.objects.filter(project_id=project_id).values_list("pii_mode", flat=True).first() or "off"
    with _cache_lock:
        _settings_cache[project_id] = (now, mode)
    return mode


def backlog_retry_after() -> int | None:
    """Seconds an app should wait when the batches waiting for a worker pass INGEST_MAX_PENDING_BATCHES."""
    limit = settings.INGEST_MAX_PENDING_BATCHES
    now = time.monotonic()
    if now - _backlog_cache["at"] > settings.INGEST_BACKLOG_CHECK_MS / 1000:
        count = IngestBatch.objects.filter(status=BatchStatus.PENDING).count()
        with _cache_lock:
            _backlog_cache.update(at=now, count=count)
    if _backlog_cache["count"] >= limit:
        return settings.INGEST_RETRY_AFTER_SECONDS
    return None


def batch_accept(
    *,
    project_id: int,
    source: str,
    spans: list[SpanRecord],
    traces: list[TraceRecord] = (),
    scores: list[ScoreRecord] = (),
) -> IngestBatch:
    """Store the batch durably in one write (redacted first: no secret is ever stored) and enqueue its expansion."""
    redactor = Redactor(project_pii_mode(project_id))
    spans = [s.redacted(redactor) for s in spans]
    traces = [t.redacted(redactor) for t in traces]
    scores = [s.redacted(redactor) for s in scores]
    now = timezone.now()
    batch = IngestBatch.objects.create(
        project_id=project_id,
        source=source,
        payload=payload_dumps(spans, list(traces), list(scores)),
        span_count=len(spans),
        received_at=now,
        enqueued_at=now,
    )
    with _cache_lock:
        _backlog_cache["count"] += 1
    batch_id = batch.pk
    transaction.on_commit(lambda: enqueue(batch_id))
    return batch


def enqueue(batch_id: int) -> None:
    from apps.traces.tasks import expand_batch

    try:
        expand_batch.apply_async(args=[batch_id], queue="ingest")
    except Exception:  # the batch is stored: the sweep enqueues it again, the app must not see an error
        logger.exception("Could not enqueue ingest batch %s; the sweep will retry it", batch_id)


# --- expand ---------------------------------------------------------------------------------------


def batch_expand(*, batch_id: int) -> bool:
    """Write a pending batch's rows; False when it is gone or already done (running twice writes nothing twice).

    The payload is read and turned into rows before the write transaction opens, so the transaction (on
    SQLite, the one writer every accept waits for) only checks the batch, reads what is stored and writes.
    """
    found = IngestBatch.objects.filter(pk=batch_id, status=BatchStatus.PENDING).values_list("project_id", "payload")
    found = found.first()
    if found is None:
        return False
    project_id, payload = found
    spans, traces, scores = payload_loads(payload)
    prepared = _prepare(project_id, spans, batch_id)
    with transaction.atomic():
        if not IngestBatch.objects.select_for_update().filter(pk=batch_id, status=BatchStatus.PENDING).exists():
            return False
        rows_write(
            project_id=project_id, spans=spans, traces=traces, scores=scores, batch_id=batch_id, _prepared=prepared
        )
        IngestBatch.objects.filter(pk=batch_id).update(
            status=BatchStatus.DONE, payload="", processed_at=timezone.now(), error=""
        )
    return True


def batch_failed(*, batch_id: int, error: str) -> None:
    """Count a failed attempt; after INGEST_MAX_ATTEMPTS the batch is marked failed (kept for inspection)."""
    batch = IngestBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        return
    attempts = batch.attempts + 1
    status = BatchStatus.FAILED if attempts >= settings.INGEST_MAX_ATTEMPTS else BatchStatus.PENDING
    IngestBatch.objects.filter(pk=batch_id, status=BatchStatus.PENDING).update(
        attempts=attempts, status=status, error=error[:500]
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _resolve_prompts(project_id: int, spans: list[SpanRecord]) -> dict[tuple[str, int | None, str], tuple[Any, ...]]:
    """(name, version, label) -> (prompt_version_id, version number, flags) for every prompt the spans name."""
    from apps.prompts.models import Label, Prompt, PromptVersion

    wanted = {(s.prompt_name, s.prompt_version, s.prompt_label) for s in spans if s.prompt_name}
    if not wanted:
        return {}
    names = {w[0] for w in wanted}
    prompts = dict(Prompt.objects.filter(project_id=project_id, name__in=names).values_list("name", "pk"))
    numbers = {w[1] for w in wanted if w[1] is not None}
    versions = {
        (prompt_id, number): pk
        for prompt_id, number, pk in PromptVersion.objects.filter(
            prompt_id__in=prompts.values(), number__in=numbers
        ).values_list("prompt_id", "number", "pk")
    }
    labels = {
        (prompt_id, name): (pk, number)
        for prompt_id, name, pk, number in Label.objects.filter(prompt_id__in=prompts.values()).values_list(
            "prompt_id", "name", "version_id", "version__number"
        )
    }
    resolved = {}
    for name, number, label in wanted:
        prompt_id = prompts.get(name)
        if prompt_id is None:
            resolved[(name, number, label)] = (None, number, ["unknown_prompt"])
        elif number is not None:
            pk = versions.get((prompt_id, number))
            resolved[(name, number, label)] = (pk, number, [] if pk else ["unknown_version"])
        elif label:
            found = labels.get((prompt_id, label))
            resolved[(name, number, label)] = (found[0], found[1], []) if found else (None, None, ["unknown_label"])
        else:
            resolved[(name, number, label)] = (None, None, ["no_version"])
    return resolved


def _lock_traces(project_id: int, trace_ids: list[str]) -> None:
    if connection.vendor != "postgresql" or not trace_ids:
        return
    keys = sorted(
        int.from_bytes(hashlib.blake2b(f"{project_id}:{t}".encode(), digest_size=8).digest(), "big", signed=True)
        for t in trace_ids
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(%s::bigint[]) AS k) AS keys", [keys])


class _Prepared:
    """A write's span rows built before its transaction: the rows as the database takes them (JSON columns
    encoded, times adapted), their keys, and per trace the fields a trace summary reads, in stored order."""

    __slots__ = ("rows", "keys", "summaries", "generations")

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.keys: list[tuple[str, str]] = []
        self.summaries: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.generations: dict[tuple[str, str], dict[str, Any]] = {}


def _prepare(project_id: int, spans: list[SpanRecord], batch_id: int | None) -> _Prepared:
    """The span rows (the first of duplicate ids inside the batch wins, as the insert would keep it)."""
    resolved = _resolve_prompts(project_id, spans)
    sqlite = connection.vendor == "sqlite"
    prepared = _Prepared()
    rows, keys, summaries, generations = prepared.rows, prepared.keys, prepared.summaries, prepared.generations
    seen: set[tuple[str, str]] = set()
    flags_json: dict[tuple[str, ...], str] = {}
    no_link = (None, None, [])
    for s in spans:
        key = (s.trace_id, s.span_id)
        if key in seen:
            continue
        seen.add(key)
        keys.append(key)
        version_id, number, flags = (
            resolved[(s.prompt_name, s.prompt_version, s.prompt_label)] if s.prompt_name else no_link
        )
        if number is None:
            number = s.prompt_version
        flags_key = tuple(flags)
        encoded_flags = flags_json.get(flags_key)
        if encoded_flags is None:
            encoded_flags = flags_json[flags_key] = _json(flags)
        start, end = _EPOCH + timedelta(microseconds=s.start_us), _EPOCH + timedelta(microseconds=s.end_us)
        duration = (s.end_us - s.start_us) / 1000
        status = "error" if s.error else "ok"
        cost = Decimal(str(s.cost)) if s.cost is not None else None
        if sqlite:  # what Django's adapt_datetimefield_value writes: the naive UTC time, str()
            start_db, end_db = str(start.replace(tzinfo=None)), str(end.replace(tzinfo=None))
        else:
            start_db, end_db = start, end
        rows.append(
            (
                project_id, s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, start_db, end_db, duration,
                status, s.status_message, s.provider, s.model, s.operation, _json(s.input), _json(s.output),
                s.input_text, s.output_text, _json(s.variables), s.input_tokens, s.output_tokens, cost,
                s.prompt_name, number, s.prompt_label, version_id, _json(s.attributes), encoded_flags, batch_id,
            )
        )  # fmt: skip
        # The fields traces_recompute reads from stored spans, in its SUMMARY_FIELDS order.
        summaries[s.trace_id].append(
            (
                s.trace_id, s.parent_span_id, s.name, s.kind, start, end, status, s.model, s.input_tokens,
                s.output_tokens, cost, s.prompt_name, number, s.prompt_label, version_id,
                s.input_text[:TRACE_TEXT_CHARS], s.output_text[:TRACE_TEXT_CHARS], flags,
            )
        )  # fmt: skip
        if s.kind == "generation":
            generations[key] = {
                "trace_id": s.trace_id, "span_id": s.span_id, "prompt_version_id": version_id,
                "prompt_label": s.prompt_label, "model": s.model, "start_time": start, "duration_ms": duration,
                "status": status, "input_tokens": s.input_tokens, "output_tokens": s.output_tokens, "cost": cost,
                "output_text": s.output_text,
            }  # fmt: skip
    for rows_of in summaries.values():
        if len(rows_of) > 1:
            rows_of.sort(key=lambda r: r[4])  # stable: equal times keep the batch's order (the rows' ids)
    return prepared


def _json(value: Any) -> str | None:
    return json_text(value)


def bulk_insert_ignore(
    table: str,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    json_columns: set[str],
    *,
    on_conflict: str = "ON CONFLICT DO NOTHING",
    conflict_free: bool = False,
):
    """Insert rows, skipping (or, with `on_conflict`, updating) those whose unique key exists.

    COPY into a temporary table then one INSERT ... SELECT on PostgreSQL; `executemany` on SQLite.
    `conflict_free` says the caller knows no row's key is stored (it read them under the traces' locks):
    PostgreSQL then COPYs straight into the table (in a savepoint: should a key exist after all, the
    temporary-table way runs instead).
    """
    if not rows:
        return
    json_at = [i for i, c in enumerate(columns) if c in json_columns]

    def encoded(row):
        if not json_at:
            return row
        row = list(row)
        for i in json_at:
            row[i] = _json(row[i])
        return row

    column_list = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if conflict_free:
                try:
                    with transaction.atomic(), connection.wrap_database_errors:  # psycopg's errors as Django's
                        with cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
                            for row in rows:
                                copy.write_row(encoded(row))
                    return
                except IntegrityError:
                    logger.warning("COPY into %s met a stored key; inserting with %s instead", table, on_conflict)
            load = f"{table}_load"
            cursor.execute(
                f"CREATE TEMP TABLE {load} ON COMMIT DROP AS SELECT {column_list} FROM {table} WITH NO DATA"  # noqa: S608
            )
            with cursor.copy(f"COPY {load} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(encoded(row))
            cursor.execute(
                f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {load} {on_conflict}"  # noqa: S608
            )
            cursor.execute(f"DROP TABLE {load}")
        else:
            ops = connection.ops
            datetime_at = [i for i, r in enumerate(rows[0]) if isinstance(r, datetime)]
            if json_at or datetime_at:
                prepared = []
                for row in rows:
                    row = list(row)
                    for i in json_at:
                        row[i] = _json(row[i])
                    for i in datetime_at:
                        value = row[i]
                        if value is not None and value.tzinfo is UTC:  # as adapt_datetimefield_value writes it
                            row[i] = str(value.replace(tzinfo=None))
                        else:
                            row[i] = ops.adapt_datetimefield_value(value)
                    prepared.append(row)
            else:
                prepared = rows
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(
                f"INSERT INTO {table} ({column_list}) VALUES ({marks}) {on_conflict}",  # noqa: S608
                prepared,
            )


def _score_rows(project_id: int, scores: list[ScoreRecord]) -> list[tuple[Any, ...]]:
    return [
        (
            project_id, s.score_id, s.trace_id, s.span_id, s.name, s.data_type, s.value, s.string_value, s.comment,
            s.end_user_id, s.source, _dt(s.created_us),
        )
        for s in scores
    ]  # fmt: skip


def rows_write(
    *,
    project_id: int,
    spans: list[SpanRecord],
    traces: list[TraceRecord] = (),
    scores: list[ScoreRecord] = (),
    batch_id: int | None = None,
    _prepared: _Prepared | None = None,
) -> None:
    """Write the records' rows and recompute the summary of every trace they touch. Call inside a transaction."""
    prepared = _prepared if _prepared is not None else _prepare(project_id, spans, batch_id)
    touched = sorted({s.trace_id for s in spans} | {t.trace_id for t in traces} | {s.trace_id for s in scores})
    _lock_traces(project_id, touched)
    # What is stored already, read once under the locks: the spans of the traces this write names (which of
    # its spans are new; which traces had none) and which of the touched traces have a summary row.
    stored_spans = _stored_span_keys(project_id, list(prepared.summaries))
    with_spans = {trace_id for trace_id, _span_id in stored_spans}
    with_row = _stored_trace_ids(project_id, touched)
    new_spans = [k for k in prepared.keys if k not in stored_spans]
    new_scores = _new_score_ids(project_id, list(scores)) if scores else []
    bulk_insert_ignore(
        Span._meta.db_table, SPAN_COLUMNS, prepared.rows, set(), conflict_free=len(new_spans) == len(prepared.keys)
    )
    bulk_insert_ignore(Score._meta.db_table, SCORE_COLUMNS, _score_rows(project_id, list(scores)), set())
    # A trace with neither stored spans nor a row is summed up from this write's spans alone (no re-read).
    fresh = {
        trace_id: rows_of
        for trace_id, rows_of in prepared.summaries.items()
        if trace_id not in with_spans and trace_id not in with_row
    }
    traces_recompute(
        project_id=project_id, trace_ids=touched, spans=spans, traces=list(traces), fresh=fresh, with_row=with_row
    )
    if hooks.listening() and (new_spans or new_scores):
        generations = [prepared.generations[k] for k in new_spans if k in prepared.generations]
        hooks.notify(
            hooks.Written(project_id=project_id, span_keys=new_spans, score_ids=new_scores, generations=generations)
        )


def _stored_span_keys(project_id: int, trace_ids: list[str]) -> set[tuple[str, str]]:
    sql = f"SELECT trace_id, span_id FROM {Span._meta.db_table} WHERE project_id = %s AND trace_id IN"  # noqa: S608
    return set(select_in(sql, [project_id], trace_ids))


def _stored_trace_ids(project_id: int, trace_ids: list[str]) -> set[str]:
    sql = f"SELECT trace_id FROM {Trace._meta.db_table} WHERE project_id = %s AND trace_id IN"  # noqa: S608
    return {row[0] for row in select_in(sql, [project_id], trace_ids)}


def _feedback(project_id: int, trace_ids: list[str]) -> dict[str, list[float]]:
    """The values of the feedback scores (not the studio's own) on each trace."""
    sql = (
        f"SELECT trace_id, value FROM {Score._meta.db_table} WHERE project_id = %s AND value IS NOT NULL "  # noqa: S608
        "AND source <> %s AND trace_id IN"
    )
    feedback: dict[str, list[float]] = defaultdict(list)
    for trace_id, value in select_in(sql, [project_id, PROGRAM_SCORE_SOURCE], trace_ids):
        feedback[trace_id].append(value)
    return feedback


def _new_score_ids(project_id: int, scores: list[ScoreRecord]) -> list[str]:
    """The score ids of this write that are not stored yet."""
    score_ids = list(dict.fromkeys(s.score_id for s in scores))
    stored: set[str] = set()
    for ids in _chunks(score_ids):
        stored.update(Score.objects.filter(project_id=project_id, score_id__in=ids).values_list("score_id", flat=True))
    return [i for i in score_ids if i not in stored]


def _chunks(items: list[str], size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _TraceRow:
    """A trace summary row being built (a new row needs no Django model instance: only its column values)."""

    __slots__ = TRACE_COLUMNS

    def __init__(self, project_id: int, trace_id: str) -> None:
        self.project_id, self.trace_id = project_id, trace_id
        self.name = ""
        self.start_time = self.end_time = self.cost = self.prompt_version_number = self.prompt_version_id = None
        self.duration_ms = 0.0
        self.status = "ok"
        self.span_count = self.generation_count = self.input_tokens = self.output_tokens = 0
        self.model = self.prompt_name = self.prompt_label = self.input_text = self.output_text = ""
        self.user_id = self.session_id = self.environment = ""
        self.tags, self.metadata, self.flags = [], {}, []
        self.feedback_count = 0
        self.feedback_mean = self.updated_at = None


_trace_columns = operator.attrgetter(*TRACE_COLUMNS)

SUMMARY_FIELDS = (
    "trace_id", "parent_span_id", "name", "kind", "start_time", "end_time", "status", "model", "input_tokens",
    "output_tokens", "cost", "prompt_name", "prompt_version_number", "prompt_label", "prompt_version_id",
    "short_in", "short_out", "flags",
)  # fmt: skip


def traces_recompute(
    *,
    project_id: int,
    trace_ids: list[str],
    spans: list[SpanRecord] = (),
    traces: list[TraceRecord] = (),
    fresh: dict[str, list[tuple[Any, ...]]] | None = None,
    with_row: set[str] | None = None,
) -> None:
    """Recompute the summary rows of `trace_ids` from their spans and scores (idempotent).

    Fields only a trace record or a span's attributes carry (user, session,
    environment, tags, metadata, an explicit name) keep their stored value
    unless this batch names a new one. A trace with neither spans nor a trace
    record (feedback that came first) gets no row yet.

    `fresh` maps traces the caller knows have no stored spans and no row (read under their locks) to
    this write's spans of them (SUMMARY_FIELDS tuples in stored order): those are summed up without
    reading anything back. `with_row`, when given, is the set of `trace_ids` that have a row.
    """
    fresh = fresh or {}
    explicit = {t.trace_id: t for t in traces}
    from_spans: dict[str, dict[str, str]] = defaultdict(dict)
    for s in spans:
        if s.user_id or s.session_id or s.environment:
            for key in ("user_id", "session_id", "environment"):
                if getattr(s, key):
                    from_spans[s.trace_id][key] = getattr(s, key)
    now = timezone.now()
    new_rows: list[Any] = []
    feedback = _feedback(project_id, trace_ids)
    for trace_id, rows_of in fresh.items():
        trace = _TraceRow(project_id, trace_id)
        _summarize(
            trace, rows_of, explicit.get(trace_id), from_spans.get(trace_id, {}), feedback.get(trace_id, []), now
        )
        new_rows.append(trace)
    rows: list[Any] = []
    others = [t for t in trace_ids if t not in fresh]
    for ids in _chunks(others):
        with_row_here = ids if with_row is None else [t for t in ids if t in with_row]
        existing = (
            {t.trace_id: t for t in Trace.objects.filter(project_id=project_id, trace_id__in=with_row_here)}
            if with_row_here
            else {}
        )
        span_rows = defaultdict(list)
        for row in (
            Span.objects.filter(project_id=project_id, trace_id__in=ids)
            .annotate(short_in=Substr("input_text", 1, TRACE_TEXT_CHARS))
            .annotate(short_out=Substr("output_text", 1, TRACE_TEXT_CHARS))
            .values_list(*SUMMARY_FIELDS)
            .order_by("start_time", "id")
        ):
            span_rows[row[0]].append(row)
        for trace_id in ids:
            trace = existing.get(trace_id)
            record = explicit.get(trace_id)
            rows_of = span_rows.get(trace_id, [])
            if trace is None and record is None and not rows_of:
                continue
            if trace is None:
                trace = _TraceRow(project_id, trace_id)
            _summarize(trace, rows_of, record, from_spans.get(trace_id, {}), feedback.get(trace_id, []), now)
            rows.append(trace)
    updated = ", ".join(f"{c} = EXCLUDED.{c}" for c in TRACE_COLUMNS[2:])
    for batch_rows, conflict_free in ((new_rows, True), (rows, False)):
        bulk_insert_ignore(
            Trace._meta.db_table,
            TRACE_COLUMNS,
            [_trace_columns(t) for t in batch_rows],
            {"tags", "metadata", "flags"},
            on_conflict=f"ON CONFLICT (project_id, trace_id) DO UPDATE SET {updated}",
            conflict_free=conflict_free,
        )


def spans_have_root(spans: list) -> bool:
    return any(not s[1] for s in spans)


def _summarize(trace: Trace, spans: list, record: TraceRecord | None, attrs: dict, feedback: list, now) -> None:
    trace.updated_at = now
    if record is not None:
        for key in ("user_id", "session_id", "environment"):
            if getattr(record, key):
                setattr(trace, key, getattr(record, key))
        if record.tags:
            trace.tags = record.tags
        if record.metadata:
            trace.metadata = {**(trace.metadata or {}), **record.metadata}
    for key, value in attrs.items():
        setattr(trace, key, value)
    if len(spans) == 1:  # most traces: the same sums as below, without the lists
        s = spans[0]
        generation = s[3] == "generation"
        trace.start_time, trace.end_time = s[4], s[5]
        trace.duration_ms = (s[5] - s[4]).total_seconds() * 1000
        trace.status = "error" if s[6] == "error" else "ok"
        trace.span_count = 1
        trace.generation_count = 1 if generation else 0
        trace.input_tokens, trace.output_tokens = s[8] or 0, s[9] or 0
        trace.cost = s[10]
        trace.model = s[7] if generation and s[7] else ""
        if s[11]:
            trace.prompt_name, trace.prompt_version_number, trace.prompt_label, trace.prompt_version_id = s[11:15]
        else:
            trace.prompt_name, trace.prompt_version_number, trace.prompt_label, trace.prompt_version_id = (
                "",
                None,
                "",
                None,
            )
        if not s[1] or not trace.name:
            trace.name = s[2]
        trace.input_text, trace.output_text = s[15] or "", s[16] or ""
        trace.flags = sorted(set(s[17])) if s[17] else []
    elif spans:
        root = next((s for s in spans if not s[1]), spans[0])
        generations = [s for s in spans if s[3] == "generation"]
        trace.start_time = min(s[4] for s in spans)
        trace.end_time = max(s[5] for s in spans)
        trace.duration_ms = (trace.end_time - trace.start_time).total_seconds() * 1000
        trace.status = "error" if any(s[6] == "error" for s in spans) else "ok"
        trace.span_count = len(spans)
        trace.generation_count = len(generations)
        trace.input_tokens = sum(s[8] or 0 for s in spans)
        trace.output_tokens = sum(s[9] or 0 for s in spans)
        costs = [s[10] for s in spans if s[10] is not None]
        trace.cost = sum(costs, Decimal(0)) if costs else None
        first = generations[0] if generations else root
        trace.model = next((s[7] for s in generations if s[7]), "")
        linked = [s for s in spans if s[11]]
        prompt = max(linked, key=lambda s: (s[14] is not None, s[12] or 0)) if linked else None
        trace.prompt_name = prompt[11] if prompt else ""
        trace.prompt_version_number = prompt[12] if prompt else None
        trace.prompt_label = prompt[13] if prompt else ""
        trace.prompt_version_id = prompt[14] if prompt else None
        if spans_have_root(spans) or not trace.name:  # else keep the name until the root span arrives
            trace.name = root[2]
        trace.input_text = first[15] or root[15] or ""
        trace.output_text = (generations[-1] if generations else root)[16] or root[16] or ""
        trace.flags = sorted({flag for s in spans for flag in (s[17] or [])})
    elif trace.start_time is None:
        start = record.start_us if record and record.start_us else None
        trace.start_time = trace.end_time = _dt(start) if start else now
    if record is not None:
        if record.name:
            trace.name = record.name
        if record.input_text:
            trace.input_text = record.input_text[:TRACE_TEXT_CHARS]
        if record.output_text:
            trace.output_text = record.output_text[:TRACE_TEXT_CHARS]
    trace.feedback_count = len(feedback)
    trace.feedback_mean = sum(feedback) / len(feedback) if feedback else None


# --- the sweep and retention ---------------------------------------------------------------------


def batches_requeue(*, older_than_seconds: int | None = None) -> int:
    """Enqueue again the pending batches whose message was lost (a broker outage, a purge, a killed worker).

    Each is re-sent at most once per INGEST_REQUEUE_SECONDS, so a long but healthy backlog is not flooded
    with copies; a copy that finds its batch done does nothing.
    """
    age = settings.INGEST_REQUEUE_SECONDS if older_than_seconds is None else older_than_seconds
    now = timezone.now()
    ids = list(
        IngestBatch.objects.filter(status=BatchStatus.PENDING, enqueued_at__lte=now - timedelta(seconds=age))
        .order_by("pk")
        .values_list("pk", flat=True)[:1000]
    )
    IngestBatch.objects.filter(pk__in=ids).update(enqueued_at=now)
    for batch_id in ids:
        enqueue(batch_id)
    return len(ids)


def retention_apply(*, chunk: int | None = None, now: datetime | None = None) -> dict[str, int]:
    """Delete traces, spans and scores older than each project's retention, `chunk` rows per statement."""
    from apps.accounts.models import Project

    chunk = chunk or settings.TRACE_DELETE_CHUNK
    now = now or timezone.now()
    days = dict(TraceSettings.objects.values_list("project_id", "retention_days"))
    deleted = {"spans": 0, "traces": 0, "scores": 0, "batches": 0}
    for project_id in Project.objects.values_list("pk", flat=True):
        cutoff = now - timedelta(days=days.get(project_id, settings.TRACE_RETENTION_DAYS))
        for key, model, field in (
            ("spans", Span, "start_time"),
            ("traces", Trace, "start_time"),
            ("scores", Score, "created_at"),
        ):
            while True:
                ids = list(
                    model.objects.filter(project_id=project_id, **{f"{field}__lt": cutoff}).values_list(
                        "pk", flat=True
                    )[:chunk]
                )
                if not ids:
                    break
                with transaction.atomic():
                    model.objects.filter(pk__in=ids).delete()
                deleted[key] += len(ids)
    done_cutoff = now - timedelta(days=1)
    while True:
        ids = list(
            IngestBatch.objects.filter(status=BatchStatus.DONE, processed_at__lt=done_cutoff).values_list(
                "pk", flat=True
            )[:chunk]
        )
        if not ids:
            break
        IngestBatch.objects.filter(pk__in=ids).delete()
        deleted["batches"] += len(ids)
    return deleted

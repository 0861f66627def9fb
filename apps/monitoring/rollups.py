"""Hourly rollups of generations, kept by the ingest task, exact under duplicate, out-of-order and late batches.

The traces app tells `on_written` which spans and scores a write added (never a
duplicate: apps/traces/hooks.py), inside the batch's transaction; this adds
their deltas with one upsert per table (`count = count + excluded.count`), so
a late batch lands in its own hour and a retried one adds nothing. The same
upserts keep the daily tables (the hourly deltas added up per UTC day), which
the dashboard reads for the whole days of a range.

What a rollup counts (the same definition `raw_aggregate` computes from the raw rows):
- each generation span (kind `generation`) in the hour of its start, on its
  prompt version (0 when unlinked) and model: count, errors, latency sum and
  log-spaced latency buckets, tokens, cost (in 1e-8 units), empty outputs;
- each numeric or boolean score on a generation: a score naming the generation's
  span, or a score naming only its trace (it then counts once for every
  generation of that trace). A score that arrives before its generation is
  counted when the generation arrives.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction

from apps.core.sql import select_in
from apps.monitoring.models import (
    DailyLatencyRollup,
    DailyRollup,
    DailyScoreRollup,
    HourlyRollup,
    LatencyRollup,
    ScoreRollup,
)
from apps.traces.hooks import Written
from apps.traces.models import Score, Span

BUCKET_BASE = 1.1  # each latency bucket is 10% wider than the one below: percentiles within 5%
MAX_BUCKET = 200
COST_UNIT = Decimal("100000000")

GENERATION_SUMS = ("count", "errors", "latency_ms_sum", "input_tokens", "output_tokens", "cost_units", "empty_outputs")
GEN_FIELDS = (
    "trace_id", "span_id", "prompt_version_id", "model", "start_time", "duration_ms", "status",
    "input_tokens", "output_tokens", "cost", "output_text",
)  # fmt: skip


def latency_bucket(ms: float) -> int:
    """0 for under 1 ms; else b with BUCKET_BASE**(b-1) <= ms < BUCKET_BASE**b."""
    if ms < 1:
        return 0
    return min(MAX_BUCKET, 1 + int(math.floor(math.log(ms) / math.log(BUCKET_BASE))))


def bucket_bounds(bucket: int) -> tuple[float, float]:
    if bucket <= 0:
        return 0.0, 1.0
    return BUCKET_BASE ** (bucket - 1), BUCKET_BASE**bucket


def percentile(buckets: dict[int, int], q: float) -> float | None:
    """The q-quantile (0..1) of the latencies counted in `buckets`, interpolated inside its bucket."""
    total = sum(buckets.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for bucket in sorted(buckets):
        count = buckets[bucket]
        if seen + count >= rank:
            low, high = bucket_bounds(bucket)
            return low + (high - low) * ((rank - seen) / count if count else 0)
        seen += count
    return bucket_bounds(max(buckets))[1]


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    """The UTC midnight of `moment`'s day (the daily rollups' key)."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def by_day(hourly: dict[tuple, Any]) -> dict[tuple, Any]:
    """Sums keyed (version, model, hour, *rest) added up per (version, model, day, *rest)."""
    daily: dict[tuple, Any] = {}
    for key, value in hourly.items():
        day_key = (key[0], key[1], day_of(key[2]), *key[3:])
        if isinstance(value, list):
            daily[day_key] = (
                [a + b for a, b in zip(daily[day_key], value, strict=True)] if day_key in daily else list(value)
            )
        else:
            daily[day_key] = daily.get(day_key, 0) + value
    return daily


def cost_units(cost: Any) -> int:
    return 0 if cost is None else int((Decimal(str(cost)) * COST_UNIT).to_integral_value())


def _prompt_ids(version_ids: set[int]) -> dict[int, int]:
    from apps.prompts.models import PromptVersion

    ids = {v for v in version_ids if v}
    found = dict(PromptVersion.objects.filter(pk__in=ids).values_list("pk", "prompt_id")) if ids else {}
    return {**found, 0: 0}


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Deltas:
    def __init__(self) -> None:
        self.hourly: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0, 0, 0, 0, 0])
        self.latency: dict[tuple, int] = defaultdict(int)
        self.scores: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0.0])

    @staticmethod
    def key(gen: dict) -> tuple:
        return (gen["prompt_version_id"] or 0, gen["model"] or "", hour_of(gen["start_time"]))

    def add_generation(self, gen: dict) -> None:
        key = self.key(gen)
        row = self.hourly[key]
        row[0] += 1
        row[1] += gen["status"] == "error"
        row[2] += gen["duration_ms"] or 0.0
        row[3] += gen["input_tokens"] or 0
        row[4] += gen["output_tokens"] or 0
        row[5] += cost_units(gen["cost"])
        row[6] += not (gen["output_text"] or "").strip()
        self.latency[(*key, latency_bucket(gen["duration_ms"] or 0.0))] += 1

    def add_score(self, gen: dict, name: str, value: float) -> None:
        row = self.scores[(*self.key(gen), name)]
        row[0] += 1
        row[1] += value
        row[2] += value * value

    def write(self, project_id: int) -> None:
        versions = {k[0] for k in self.hourly} | {k[0] for k in self.scores}
        prompts = _prompt_ids(versions)
        tables = (
            (HourlyRollup, DailyRollup, (), GENERATION_SUMS, self.hourly),
            (LatencyRollup, DailyLatencyRollup, ("bucket",), ("count",), self.latency),
            (ScoreRollup, DailyScoreRollup, ("name",), ("count", "total", "total_sq"), self.scores),
        )
        for hourly_model, daily_model, extra_key, sums, deltas in tables:
            for model, period, rows in ((hourly_model, "hour", deltas), (daily_model, "day", by_day(deltas))):
                _upsert(
                    model,
                    ("prompt_version_id", "model", period, *extra_key),
                    sums,
                    [
                        (project_id, prompts.get(k[0], 0), *k, *(v if isinstance(v, list) else [v]))
                        for k, v in rows.items()
                    ],
                )


def _upsert(model, key_fields: tuple[str, ...], sum_fields: tuple[str, ...], rows: list[tuple]) -> None:
    """Add `rows` (project_id, prompt_id, *key, *sums) to the table: insert, or add to the row with the same key.

    The rows go in the order of their keys, so two transactions adding to the same rows lock them in the same
    order: one waits for the other instead of each holding a row the other needs (a deadlock, which PostgreSQL
    ends by failing one of them).
    """
    if not rows:
        return
    keys = 2 + len(key_fields)
    rows = sorted(rows, key=lambda row: row[:keys])
    table = connection.ops.quote_name(model._meta.db_table)
    q = connection.ops.quote_name
    columns = ("project_id", "prompt_id", *key_fields, *sum_fields)
    conflict = ", ".join(q(c) for c in ("project_id", *key_fields))
    updates = ", ".join(f"{q(c)} = {table}.{q(c)} + EXCLUDED.{q(c)}" for c in sum_fields)
    marks = ", ".join(["%s"] * len(columns))
    sql = (
        f"INSERT INTO {table} ({', '.join(q(c) for c in columns)}) VALUES ({marks}) "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )
    adapt = connection.ops.adapt_datetimefield_value
    prepared = [tuple(adapt(v) if isinstance(v, datetime) else v for v in row) for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, prepared)


def _generations(project_id: int, keys: list[tuple[str, str]]) -> list[dict]:
    wanted = set(keys)
    found = []
    for ids in _chunks(sorted({k[0] for k in keys})):
        for row in Span.objects.filter(project_id=project_id, trace_id__in=ids, kind="generation").values(*GEN_FIELDS):
            if (row["trace_id"], row["span_id"]) in wanted:
                found.append(row)
    return found


def _scores_of_traces(project_id: int, trace_ids: list[str]) -> list[tuple]:
    """(trace_id, span_id, name, value) of the numeric and boolean scores on the traces, on a bare cursor:
    this runs for every ingest batch with hundreds of trace ids, where the ORM's IN lookup costs more than
    the query (usually answered from the index with no row)."""
    table = connection.ops.quote_name(Score._meta.db_table)
    sql = f"SELECT trace_id, span_id, name, value FROM {table} WHERE project_id = %s AND value IS NOT NULL AND "  # noqa: S608
    return select_in(f"{sql}trace_id IN", [project_id], trace_ids)


def on_written(written: Written) -> None:
    """Add what one ingest write added (its new spans and scores) to the rollups. Runs in the batch's transaction."""
    project_id = written.project_id
    if written.generations is not None:
        new_gens = written.generations
    else:
        new_gens = _generations(project_id, written.span_keys) if written.span_keys else []
    new_gen_keys = {(g["trace_id"], g["span_id"]) for g in new_gens}
    deltas = Deltas()
    for gen in new_gens:
        deltas.add_generation(gen)
    # New generations with every score already stored on them (including this write's).
    if new_gens:
        by_trace: dict[str, list[dict]] = defaultdict(list)
        for gen in new_gens:
            by_trace[gen["trace_id"]].append(gen)
        for trace_id, span_id, name, value in _scores_of_traces(project_id, sorted(by_trace)):
            for gen in by_trace[trace_id]:
                if not span_id or span_id == gen["span_id"]:
                    deltas.add_score(gen, name, value)
    # New scores on generations stored before this write.
    if written.score_ids:
        scores = []
        for ids in _chunks(written.score_ids):
            scores += Score.objects.filter(project_id=project_id, score_id__in=ids, value__isnull=False).values_list(
                "trace_id", "span_id", "name", "value"
            )
        if scores:
            old: dict[str, list[dict]] = defaultdict(list)
            for ids in _chunks(sorted({s[0] for s in scores})):
                for gen in Span.objects.filter(project_id=project_id, trace_id__in=ids, kind="generation").values(
                    *GEN_FIELDS
                ):
                    if (gen["trace_id"], gen["span_id"]) not in new_gen_keys:
                        old[gen["trace_id"]].append(gen)
            for trace_id, span_id, name, value in scores:
                for gen in old.get(trace_id, []):
                    if not span_id or span_id == gen["span_id"]:
                        deltas.add_score(gen, name, value)
    deltas.write(project_id)


def _count_all(project_id: int) -> tuple[Deltas, int]:
    """A project's rollups counted from its raw rows in one pass over its generations (scores held by trace)."""
    scores: dict[str, list[tuple]] = defaultdict(list)
    for trace_id, span_id, name, value in (
        Score.objects.filter(project_id=project_id, value__isnull=False)
        .values_list("trace_id", "span_id", "name", "value")
        .iterator(chunk_size=10_000)
    ):
        scores[trace_id].append((span_id, name, value))
    deltas = Deltas()
    count = 0
    gens = Span.objects.filter(project_id=project_id, kind="generation").values(*GEN_FIELDS)
    for gen in gens.iterator(chunk_size=10_000):
        count += 1
        deltas.add_generation(gen)
        for span_id, name, value in scores.get(gen["trace_id"], ()):
            if not span_id or span_id == gen["span_id"]:
                deltas.add_score(gen, name, value)
    return deltas, count


def rollups_rebuild(*, project_id: int) -> int:
    """Recompute a project's rollups from its raw rows (after a restore, or for data written before monitoring).

    One pass over the generations, and each rollup row inserted once (not updated once per chunk, which
    would leave a dead row version per update inside one transaction on PostgreSQL).
    """
    with transaction.atomic():
        for model in (HourlyRollup, LatencyRollup, ScoreRollup, DailyRollup, DailyLatencyRollup, DailyScoreRollup):
            model.objects.filter(project_id=project_id).delete()
        deltas, count = _count_all(project_id)
        deltas.write(project_id)
    return count


def raw_aggregate(*, project_id: int) -> dict[str, dict]:
    """The rollups' figures computed from the raw rows (tests and the benchmark compare the two)."""
    deltas, _ = _count_all(project_id)
    hourly = {k: list(v) for k, v in deltas.hourly.items()}
    latency = dict(deltas.latency)
    scores = {k: list(v) for k, v in deltas.scores.items()}
    return {
        "hourly": hourly,
        "latency": latency,
        "scores": scores,
        "daily": by_day(hourly),
        "daily_latency": by_day(latency),
        "daily_scores": by_day(scores),
    }


def stored_rollups(*, project_id: int) -> dict[str, dict]:
    """Every stored rollup row as {key: sums}, keyed as `raw_aggregate` keys them."""

    def rows(model, period: str, extra: tuple[str, ...], sums: tuple[str, ...]) -> dict:
        out = {}
        for r in model.objects.filter(project_id=project_id).values(
            "prompt_version_id", "model", period, *extra, *sums
        ):
            key = (r["prompt_version_id"], r["model"], r[period], *(r[e] for e in extra))
            out[key] = [r[s] for s in sums] if len(sums) > 1 else r[sums[0]]
        return out

    score_sums = ("count", "total", "total_sq")
    return {
        "hourly": rows(HourlyRollup, "hour", (), GENERATION_SUMS),
        "latency": rows(LatencyRollup, "hour", ("bucket",), ("count",)),
        "scores": rows(ScoreRollup, "hour", ("name",), score_sums),
        "daily": rows(DailyRollup, "day", (), GENERATION_SUMS),
        "daily_latency": rows(DailyLatencyRollup, "day", ("bucket",), ("count",)),
        "daily_scores": rows(DailyScoreRollup, "day", ("name",), score_sums),
    }

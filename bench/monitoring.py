"""Monitoring benchmark: the dashboard's queries (rollups) against a bare SQL aggregate over the raw rows.

    .venv/bin/python bench/monitoring.py                  # a temporary SQLite database
    DATABASE_URL=postgres://.../scratch .venv/bin/python bench/monitoring.py

1. Stores BENCH_MONITORING_STORED generations (default 1,000,000) over 30
   days with plain bulk inserts, two prompt versions and two models, and builds
   their rollups (`rollups_rebuild`: one pass over the generations, the hourly
   and daily rows written once).
2. Times what the dashboard runs for the last 30 days per day (volume, errors,
   latency p50/p95/p99, tokens, cost per version) against the same figures by
   one bare SQL aggregate over the raw span rows, in the same run (each the
   median of BENCH_MONITORING_REPEATS). On SQLite the bare query computes no
   percentiles (SQLite has none), on PostgreSQL it uses percentile_cont, so
   the ratio favours the bare query on SQLite.
   `dashboard_vs_raw_aggregate` = bare time / dashboard time (target >= 10).

3. Online evaluation throughput on the local OpenAI-compatible test server
   (apps/providers/testing/server.py, in this process, BENCH_ONLINE_LATENCY_MS per call): BENCH_ONLINE_EVALS
   generations of a prompt under a rule that samples all of them with an LLM judge and a regex, evaluated by the
   task's body (`evaluations_run`: claims, a budget reservation per generation in one conditional UPDATE, the
   judge through the gateway from a pool of ONLINE_EVAL_CONCURRENCY threads, settlement, scores written through
   the ingest writer and rolled up), against the bare judge calls of the same requests through the gateway from
   a pool of the same size, in the same run, no database. `online_eval_vs_bare_judge_calls` = online
   evaluations/s / bare calls/s (1.0 would be no overhead at all; the per-generation database work is the rest).

    BENCH_MONITORING_ONLY=online .venv/bin/python bench/monitoring.py   # only step 3
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STORED = int(os.environ.get("BENCH_MONITORING_STORED", "1000000"))
REPEATS = int(os.environ.get("BENCH_MONITORING_REPEATS", "5"))
ONLY = os.environ.get("BENCH_MONITORING_ONLY", "")
ONLINE_EVALS = int(os.environ.get("BENCH_ONLINE_EVALS", "600"))
ONLINE_LATENCY_MS = int(os.environ.get("BENCH_ONLINE_LATENCY_MS", "50"))


def setup_django(workdir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ["STUDIO_DATA_DIR"] = str(workdir)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def fill(project_id: int, version_ids: dict[int, int], want: int, now: datetime) -> None:
    from django.db import transaction

    from apps.traces.ingest import JSON_SPAN_COLUMNS, SPAN_COLUMNS, bulk_insert_ignore

    rng = random.Random(7)
    chunk = 50_000
    for first in range(0, want, chunk):
        spans = []
        for i in range(first, min(first + chunk, want)):
            start = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
            duration = rng.lognormvariate(6.5, 0.5)
            end = start + timedelta(milliseconds=duration)
            version = 1 + i % 2
            status = "error" if i % 40 == 0 else "ok"
            model = "gpt-4o-mini" if i % 5 else "claude-3-5-haiku"
            spans.append((
                project_id, uuid.uuid4().hex, "g", "", "chat", "generation", start, end, duration, status, "",
                "openai", model, "chat", None, None, "in", "out", {}, 40, 20, "0.00002000", "support-reply",
                version, "production", version_ids[version], {}, [], None,
            ))  # fmt: skip
        with transaction.atomic():
            bulk_insert_ignore("traces_span", SPAN_COLUMNS, spans, JSON_SPAN_COLUMNS)


def bare_aggregate(project_id: int, since: datetime) -> list:
    from django.db import connection

    if connection.vendor == "postgresql":
        sql = """
            SELECT prompt_version_id, date_trunc('day', start_time) AS day, count(*),
                   sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END), sum(input_tokens), sum(output_tokens), sum(cost),
                   percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms)
            FROM traces_span WHERE project_id = %s AND kind = 'generation' AND start_time >= %s
            GROUP BY 1, 2 ORDER BY 1, 2"""
        params = [project_id, since]
    else:
        sql = """
            SELECT prompt_version_id, substr(start_time, 1, 10) AS day, count(*),
                   sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END), sum(input_tokens), sum(output_tokens), sum(cost),
                   avg(duration_ms)
            FROM traces_span WHERE project_id = %s AND kind = 'generation' AND start_time >= %s
            GROUP BY 1, 2 ORDER BY 1, 2"""
        params = [project_id, connection.ops.adapt_datetimefield_value(since)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run_online() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from django.conf import settings
    from django.db import transaction

    from apps.accounts.models import Project
    from apps.experiments import evaluators
    from apps.monitoring import online
    from apps.monitoring.models import OnlineEvalStatus, OnlineEvaluation
    from apps.prompts import services as prompt_services
    from apps.prompts.tests.factories import PromptFactory, make_version
    from apps.providers import gateway
    from apps.providers.models import EndpointKind
    from apps.providers.services import endpoint_create
    from apps.providers.testing.server import Behaviour, ModelServer
    from apps.traces.ingest import rows_write
    from apps.traces.records import SpanRecord

    concurrency = settings.ONLINE_EVAL_CONCURRENCY
    server = ModelServer(Behaviour(latency_ms=ONLINE_LATENCY_MS)).start()
    try:
        project = Project.objects.create(name="Online bench", slug="online-bench")
        prompt = PromptFactory(project=project, name="support-reply")
        version = make_version(prompt, "Answer {{ ticket }}")
        prompt_services.label_move(prompt=prompt, label_name="production", version=version, actor="bench")
        judge = endpoint_create(project=project, actor="bench", name="Judge", kind=EndpointKind.SIMULATED,
                                model="openai/echo", api_base=server.url, max_concurrency=concurrency,
                                max_retries=0)  # fmt: skip
        rubric = "Is the reply polite and on topic? Grade it."
        rule = online.rule_create(project=project, actor="bench", name="bench", prompt=prompt, label="production",
                                  sample_rate=1.0, daily_max_evaluations=ONLINE_EVALS * 2, evaluators=[
                                      {"name": "judge", "kind": "llm_judge",
                                       "params": {"endpoint_id": judge.pk, "rubric": rubric}},
                                      {"name": "greets", "kind": "regex", "params": {"pattern": "^Hi"}}])  # fmt: skip
        now_us = int(time.time() * 1_000_000) - 3_600_000_000
        spans = [
            SpanRecord(trace_id=uuid.uuid4().hex, span_id="g0", name="chat", kind="generation",
                       start_us=now_us + i * 1000, end_us=now_us + i * 1000 + 500_000, model="gpt-4o-mini",
                       input_text="Where is my order?", output_text=f"Hi, grade {1 + i % 5}: it ships today.",
                       variables={"ticket": "where is my order"}, prompt_name="support-reply",
                       prompt_label="production")
            for i in range(ONLINE_EVALS)
        ]  # fmt: skip
        with transaction.atomic():
            rows_write(project_id=project.pk, spans=spans)
        ids = list(OnlineEvaluation.objects.filter(rule=rule).values_list("pk", flat=True))
        assert len(ids) == ONLINE_EVALS, len(ids)
        target = gateway.Target.from_endpoint(judge)
        requests = [evaluators.judge_messages(s.output_text, None, s.variables, {"rubric": rubric}) for s in spans]
        gateway.chat(target, requests[0], params=dict(online.JUDGE_PARAMS))  # warm litellm up outside the timings

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            answers = list(pool.map(lambda m: gateway.chat(target, m, params=dict(online.JUDGE_PARAMS)), requests))
        bare = time.perf_counter() - started
        assert len(answers) == ONLINE_EVALS

        started = time.perf_counter()
        counts = online.evaluations_run(ids=ids, concurrency=concurrency)
        evaluated = time.perf_counter() - started
        assert counts[OnlineEvalStatus.DONE] == ONLINE_EVALS, counts
    finally:
        server.stop()
    print(f"online evaluation of {ONLINE_EVALS} generations (judge + regex, {concurrency} calls in flight, "
          f"{ONLINE_LATENCY_MS} ms per call): {ONLINE_EVALS / evaluated:,.0f} evaluations/s; "
          f"the bare judge calls: {ONLINE_EVALS / bare:,.0f} calls/s")  # fmt: skip
    print(f"online_eval_vs_bare_judge_calls: {(ONLINE_EVALS / evaluated) / (ONLINE_EVALS / bare):.2f}")
    print(f"load: {os.getloadavg()}")


def run() -> None:
    from django.db import connection

    from apps.accounts.models import Project
    from apps.monitoring import rollups, selectors
    from apps.monitoring.models import HourlyRollup
    from apps.prompts.tests.factories import PromptFactory, make_version

    project = Project.objects.create(name="Bench", slug="bench")
    prompt = PromptFactory(project=project, name="support-reply")
    version_ids = {1: make_version(prompt, "Answer {{ ticket }}").pk, 2: make_version(prompt, "Reply: {{ ticket }}").pk}
    now = datetime.now(UTC)
    started = time.perf_counter()
    fill(project.pk, version_ids, STORED, now)
    print(f"stored {STORED:,} generations in {time.perf_counter() - started:.1f} s ({connection.vendor})")
    started = time.perf_counter()
    rollups.rollups_rebuild(project_id=project.pk)
    rebuild = time.perf_counter() - started
    print(f"rollups built in {rebuild:.1f} s: {HourlyRollup.objects.filter(project=project).count():,} hourly rows "
          f"({STORED / rebuild:,.0f} generations/s)")  # fmt: skip
    f = selectors.filters_from({"range": "30d", "step": "day"}, now=now)
    dashboard, data = timed(lambda: selectors.metrics(project_id=project.pk, f=f), REPEATS)
    bare, rows = timed(lambda: bare_aggregate(project.pk, f.since), REPEATS)
    assert data["overall"]["volume"] == sum(r[2] for r in rows) == STORED, (data["overall"]["volume"], STORED)
    print(f"dashboard (rollups): {dashboard * 1000:.1f} ms; bare aggregate over the raw rows: {bare * 1000:.1f} ms")
    print(f"dashboard_vs_raw_aggregate = {bare / dashboard:.1f} (target >= 10)")
    print(f"load: {os.getloadavg()}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as tmp:
        workdir = Path(tmp)
        setup_django(workdir)
        from support.scratch import scratch_database  # bench/support/scratch.py

        with scratch_database():
            if ONLY != "online":
                run()
            if ONLY in ("", "online"):
                run_online()


if __name__ == "__main__":
    main()

"""Monitoring benchmark: the dashboard's queries (rollups) against a bare SQL aggregate over the raw rows.

    .venv/bin/python bench/monitoring.py                  # a temporary SQLite database
    DATABASE_URL=postgres://.../scratch .venv/bin/python bench/monitoring.py

1. Stores BENCH_MONITORING_STORED generations (default 200,000; the issue asks
   for 1,000,000) over 30 days with plain bulk inserts, two prompt versions and
   two models, and builds their rollups (`rollups_rebuild`, the same code the
   ingest task runs per batch).
2. Times what the dashboard runs for the last 30 days per day (volume, errors,
   latency p50/p95/p99, tokens, cost per version) against the same figures by
   one bare SQL aggregate over the raw span rows, in the same run (each the
   median of BENCH_MONITORING_REPEATS). On SQLite the bare query computes no
   percentiles (SQLite has none), on PostgreSQL it uses percentile_cont, so
   the ratio favours the bare query on SQLite.
   `dashboard_vs_raw_aggregate` = bare time / dashboard time (target >= 10).

Online evaluation throughput is not measured: online evaluation is not built yet.
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
STORED = int(os.environ.get("BENCH_MONITORING_STORED", "200000"))
REPEATS = int(os.environ.get("BENCH_MONITORING_REPEATS", "5"))


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
          f"({STORED / rebuild:,.0f} generations/s through the ingest listener)")  # fmt: skip
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
        from django.core.management import call_command
        from django.db import connection

        external = connection.vendor != "sqlite"
        old_name = None
        if external:
            old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        else:
            call_command("migrate", verbosity=0, interactive=False)
        try:
            run()
        finally:
            connection.close()
            if external:
                connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()

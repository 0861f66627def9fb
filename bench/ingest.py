"""Ingest benchmark: generations sent through the API by concurrent clients, written by a real Celery worker.

    .venv/bin/python bench/ingest.py                      # a temporary SQLite database and the file broker
    DATABASE_URL=postgres://.../scratch CELERY_BROKER_URL=redis://.../6 .venv/bin/python bench/ingest.py

Starts gunicorn (BENCH_WEB_WORKERS processes, 4 threads each) and one Celery
worker on the `ingest` queue (2 processes, as `make run` starts it), then:

1. BENCH_INGEST_CLIENTS threads POST BENCH_INGEST_GENERATIONS generations
   (default 200,000) to /api/v1/traces in batches of BENCH_INGEST_BATCH (500),
   each a trace of one generation linked to a prompt version (the bodies are
   built before the clock starts: that is the load generator's work). Prints
   `ingest_spans_per_s` (from the first request until the worker has written
   the last row) and the accept latency p50/p95 (request to 202).
2. The same rows through a bare COPY (PostgreSQL) or executemany (SQLite) into
   a copy of the span table with its indexes, in this process:
   `ingest_vs_copy` = ingest rate / bare rate (target >= 0.5).
3. Fills the tables up to BENCH_INGEST_STORED generations (default 1,000,000)
   with plain bulk inserts, then times the traces list's query (the selector
   the page and GET /api/v1/traces run: prompt + version + status + the last
   7 days, newest 50) against the same SQL written by hand on a cursor:
   `traces_page_vs_bare_query` = bare time / selector time (target >= 0.5).
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GENERATIONS = int(os.environ.get("BENCH_INGEST_GENERATIONS", "200000"))
STORED = int(os.environ.get("BENCH_INGEST_STORED", "1000000"))
BATCH = int(os.environ.get("BENCH_INGEST_BATCH", "500"))
CLIENTS = int(os.environ.get("BENCH_INGEST_CLIENTS", "8"))
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup_django(workdir: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ["STUDIO_DATA_DIR"] = str(workdir)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] or ""
    if db.get("PASSWORD"):
        auth += ":" + db["PASSWORD"]
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def generation(trace_id: str, start: datetime, i: int) -> dict:
    return {
        "id": f"g{i}",
        "trace_id": trace_id,
        "name": "chat gpt-4o-mini",
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(milliseconds=700 + i % 500)).isoformat(),
        "model": "gpt-4o-mini",
        "input": [{"role": "user", "content": f"Ticket {i}: my invoices page has been blank since this morning."}],
        "output": f"Answer {i}: invoices load slowly in the EU region right now; a fix is on its way.",
        "usage": {"input_tokens": 40 + i % 30, "output_tokens": 20 + i % 20},
        "cost": 0.00002,
        "prompt": {"name": "support-reply", "version": 1 + i % 2, "label": "production"},
        "variables": {"ticket": f"Ticket {i}", "customer_name": "Dana"},
    }


def bodies_build(total: int) -> list[bytes]:
    """The request bodies of `total` generations in batches, built before the clock starts: making the
    load is the clients' work, not the studio's, and it would take the same two cores from the studio."""
    now = datetime.now(UTC) - timedelta(hours=1)
    bodies = []
    for first in range(0, total, BATCH):
        gens = [
            generation(uuid.uuid4().hex, now + timedelta(milliseconds=i), i)
            for i in range(first, min(first + BATCH, total))
        ]
        bodies.append(json.dumps({"generations": gens}).encode())
    return bodies


def send_all(port: int, key: str, bodies: list[bytes]) -> tuple[list[float], int]:
    """POST the bodies from CLIENTS threads; accept latencies and the 429s met."""
    batches: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        batches.put(body)
    latencies: list[float] = []
    throttled = [0]
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        while True:
            try:
                body = batches.get_nowait()
            except queue.Empty:
                break
            while True:
                started = time.perf_counter()
                conn.request("POST", "/api/v1/traces", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status == 202:
                    with lock:
                        latencies.append(time.perf_counter() - started)
                    break
                if response.status == 429:
                    with lock:
                        throttled[0] += 1
                    time.sleep(float(response.getheader("Retry-After", "1")))
                    continue
                raise RuntimeError(f"POST /api/v1/traces answered {response.status}")
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, throttled[0]


def bare_copy_rate(project_id: int, version_ids: dict[int, int], total: int) -> float:
    """Rows per second of the same span rows through a bare COPY / executemany into a copy of the span table."""
    from django.db import connection, transaction

    from apps.traces.ingest import SPAN_COLUMNS

    columns = ", ".join(SPAN_COLUMNS)
    now = datetime.now(UTC) - timedelta(hours=1)
    rows = []
    for i in range(total):
        g = generation(uuid.uuid4().hex, now, i)
        start = now + timedelta(milliseconds=i)
        rows.append((
            project_id, g["trace_id"], g["id"], "", g["name"], "generation", start, start + timedelta(seconds=1),
            1000.0, "ok", "", "openai", g["model"], "chat", json.dumps(g["input"]), json.dumps(g["output"]),
            g["input"][0]["content"], g["output"], json.dumps(g["variables"]), g["usage"]["input_tokens"],
            g["usage"]["output_tokens"], "0.00002000", "support-reply", 1 + i % 2, "production",
            version_ids[1 + i % 2], "{}", "[]", None,
        ))  # fmt: skip
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TABLE IF EXISTS bench_span_copy")
            cursor.execute("CREATE TABLE bench_span_copy (LIKE traces_span INCLUDING ALL)")
            started = time.perf_counter()
            with transaction.atomic():
                with cursor.copy(f"COPY bench_span_copy ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            cursor.execute("DROP TABLE IF EXISTS bench_span_copy")
            cursor.execute("CREATE TABLE bench_span_copy AS SELECT * FROM traces_span WHERE 0")
            cursor.execute("CREATE UNIQUE INDEX bench_span_copy_key ON bench_span_copy (project_id, trace_id, span_id)")
            ops = connection.ops
            prepared = [
                (*r[:6], ops.adapt_datetimefield_value(r[6]), ops.adapt_datetimefield_value(r[7]), *r[8:]) for r in rows
            ]
            marks = ", ".join(["%s"] * len(SPAN_COLUMNS))
            started = time.perf_counter()
            with transaction.atomic():
                cursor.executemany(f"INSERT INTO bench_span_copy ({columns}) VALUES ({marks})", prepared)  # noqa: S608
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_span_copy")
    return total / seconds


def fill(project_id: int, version_ids: dict[int, int], have: int, want: int) -> float:
    """Add traces and spans (one generation each) with plain bulk inserts until `want` are stored."""
    from django.db import transaction

    from apps.traces.ingest import JSON_SPAN_COLUMNS, SPAN_COLUMNS, bulk_insert_ignore

    trace_columns = (
        "project_id", "trace_id", "name", "start_time", "end_time", "duration_ms", "status", "span_count",
        "generation_count", "input_tokens", "output_tokens", "cost", "model", "prompt_name", "prompt_version_number",
        "prompt_label", "prompt_version_id", "input_text", "output_text", "user_id", "session_id", "environment",
        "tags", "metadata", "flags", "feedback_count", "feedback_mean", "updated_at",
    )  # fmt: skip
    rng = random.Random(7)
    started = time.perf_counter()
    now = datetime.now(UTC)
    chunk = 50_000
    for first in range(have, want, chunk):
        traces, spans = [], []
        for i in range(first, min(first + chunk, want)):
            trace_id = uuid.uuid4().hex
            start = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
            end = start + timedelta(milliseconds=rng.uniform(200, 3000))
            version = 1 + i % 2
            status = "error" if i % 40 == 0 else "ok"
            text_in, text_out = f"Ticket {i}: where is my order?", f"Answer {i}: it ships tomorrow."
            traces.append((
                project_id, trace_id, "support", start, end, (end - start).total_seconds() * 1000, status, 1, 1,
                40, 20, "0.00002000", "gpt-4o-mini", "support-reply", version, "production", version_ids[version],
                text_in, text_out, "", "", "", [], {}, [], 0, None, now,
            ))  # fmt: skip
            spans.append((
                project_id, trace_id, "g", "", "chat", "generation", start, end, (end - start).total_seconds() * 1000,
                status, "", "openai", "gpt-4o-mini", "chat", None, None, text_in, text_out, {}, 40, 20,
                "0.00002000", "support-reply", version, "production", version_ids[version], {}, [], None,
            ))  # fmt: skip
        with transaction.atomic():
            bulk_insert_ignore("traces_trace", trace_columns, traces, {"tags", "metadata", "flags"})
            bulk_insert_ignore("traces_span", SPAN_COLUMNS, spans, JSON_SPAN_COLUMNS)
    return time.perf_counter() - started


def page_vs_bare(project_id: int, repeats: int = 30) -> tuple[float, float]:
    from django.db import connection

    from apps.traces import selectors

    params = {"prompt": "support-reply", "version": "2", "status": "ok", "since": "7d"}
    since = datetime.now(UTC) - timedelta(days=7)
    fields = ", ".join(selectors.LIST_FIELDS)
    bare_sql = (
        f"SELECT {fields} FROM traces_trace WHERE project_id = %s AND prompt_name = %s "  # noqa: S608
        "AND prompt_version_number = %s AND status = %s AND start_time >= %s "
        "ORDER BY start_time DESC, id DESC LIMIT 51"
    )
    if connection.vendor == "sqlite":
        since_param = connection.ops.adapt_datetimefield_value(since)
    else:
        since_param = since
    page_times, bare_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        rows, _cursor = selectors.trace_page(project_id=project_id, filters=selectors.filters_from(params), per_page=50)
        page_times.append(time.perf_counter() - started)
        assert len(rows) == 50
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(bare_sql, [project_id, "support-reply", 2, "ok", since_param])
            assert len(cursor.fetchall()) == 51
        bare_times.append(time.perf_counter() - started)
    return statistics.median(page_times), statistics.median(bare_times)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes of a process group (the server's or the worker's)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ..., utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        setup_django(workdir)
        from support.scratch import scratch_database  # bench/support/scratch.py

        with scratch_database():
            run(workdir)


def run(workdir: Path) -> None:
    from django.db import connection

    from apps.accounts.models import Project
    from apps.accounts.services import api_key_create
    from apps.prompts.tests.factories import PromptFactory, make_version
    from apps.traces.models import BatchStatus, IngestBatch, Span

    project = Project.objects.create(name="Bench", slug="bench")
    prompt = PromptFactory(project=project, name="support-reply")
    version_ids = {1: make_version(prompt, "Answer {{ ticket }}").pk, 2: make_version(prompt, "Reply: {{ ticket }}").pk}
    _, key = api_key_create(project=project, name="bench", scope="ingest", actor="bench")
    env = {**os.environ, "DATABASE_URL": database_url(), "STUDIO_DATA_DIR": str(workdir), "DEBUG": "false",
           "SECRET_KEY": secrets.token_urlsafe(50), "SECURE_SSL_REDIRECT": "false", "API_THROTTLE_RATE": "off",
           "STATIC_MANIFEST": "false", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}  # fmt: skip
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "studio.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(WEB_WORKERS), "--threads", "4", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "studio", "worker", "-Q", "ingest", "--concurrency", "2",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/v1/")
                conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        print(f"database: {connection.vendor}, generations sent: {GENERATIONS:,} in batches of {BATCH} "
              f"from {CLIENTS} clients, load before: {load()}", flush=True)  # fmt: skip
        bodies = bodies_build(GENERATIONS)
        web_cpu0, worker_cpu0 = group_cpu_seconds(web.pid), group_cpu_seconds(worker.pid)
        started = time.perf_counter()
        latencies, throttled = send_all(port, key, bodies)
        del bodies
        accepted_at = time.perf_counter() - started
        backlog = IngestBatch.objects.filter(status=BatchStatus.PENDING).count()
        while IngestBatch.objects.filter(status=BatchStatus.PENDING).exists():
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        web_cpu, worker_cpu = group_cpu_seconds(web.pid) - web_cpu0, group_cpu_seconds(worker.pid) - worker_cpu0
        written = Span.objects.filter(project=project).count()
        failed = IngestBatch.objects.filter(status=BatchStatus.FAILED).count()
        assert written == GENERATIONS and not failed, f"{written} spans written, {failed} batches failed"
        ingest_rate = GENERATIONS / elapsed
        latencies.sort()
        print(f"all accepted after {accepted_at:.1f} s ({backlog} batches still waiting then), all written after "
              f"{elapsed:.1f} s, 429s met: {throttled}")  # fmt: skip
        print(f"cpu_us_per_span: web {web_cpu / GENERATIONS * 1e6:.0f}, worker {worker_cpu / GENERATIONS * 1e6:.0f} "
              f"(process CPU time of gunicorn's and the ingest worker's processes)")  # fmt: skip
        print(f"ingest_spans_per_s: {ingest_rate:,.0f}")
        print(f"accept_latency_ms: p50 {latencies[len(latencies) // 2] * 1000:.0f}, "
              f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.0f} (per batch of {BATCH})", flush=True)  # fmt: skip
    finally:
        for process in (web, worker):
            os.killpg(process.pid, signal.SIGTERM)
        for process in (web, worker):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    copy_rate = bare_copy_rate(project.pk, version_ids, GENERATIONS)
    what = "COPY" if connection.vendor == "postgresql" else "executemany"
    print(f"bare_{what}_spans_per_s: {copy_rate:,.0f}")
    print(f"ingest_vs_copy: {ingest_rate / copy_rate:.2f}  (target >= 0.5)")
    if STORED > GENERATIONS:
        seconds = fill(project.pk, version_ids, GENERATIONS, STORED)
        print(f"filled to {STORED:,} generations in {seconds:.0f} s", flush=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE traces_trace")
    page, bare = page_vs_bare(project.pk)
    stored = max(STORED, GENERATIONS)
    print(f"traces_page_ms: {page * 1000:.2f}, bare_query_ms: {bare * 1000:.2f} (with {stored:,} stored)")
    print(f"traces_page_vs_bare_query: {bare / page:.2f}  (target >= 0.5)")
    print(f"load after: {load()} (a shared 2-core machine)")


if __name__ == "__main__":
    main()

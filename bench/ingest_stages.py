"""CPU microseconds per span of each ingest stage, in one process (no HTTP, no broker).

    .venv/bin/python bench/ingest_stages.py                # a temporary SQLite database
    DATABASE_URL=postgres://.../scratch .venv/bin/python bench/ingest_stages.py
    BENCH_STAGES_PROFILE=expand .venv/bin/python bench/ingest_stages.py   # + cProfile of one stage

Sends BENCH_STAGES_BATCHES (default 20) batches of 500 generations shaped as
bench/ingest.py sends them through the request's steps (JSON parse, records,
batch_accept) and then the worker's (batch_expand), and prints the process CPU
time and the wall time of each step per span (SQLite's own work is in-process,
so its CPU is included; PostgreSQL's server time shows only in the wall time). Complements bench/ingest.py, whose
figures are wall-clock under concurrency.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
BATCHES = int(os.environ.get("BENCH_STAGES_BATCHES", "20"))
BATCH = 500
PROFILE = os.environ.get("BENCH_STAGES_PROFILE", "")


def main() -> None:
    from ingest import database_url, generation, load, setup_django  # bench/ingest.py

    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        setup_django(Path(tmp))
        from support.scratch import scratch_database  # bench/support/scratch.py

        with scratch_database():
            run(generation, load)
            print(f"database: {database_url().split('@')[-1]}")


def run(generation, load) -> None:
    from django.db import transaction

    from apps.accounts.models import Project
    from apps.prompts.tests.factories import PromptFactory, make_version
    from apps.traces import ingest
    from apps.traces.models import Span, Trace
    from apps.traces.records import native_batch

    project = Project.objects.create(name="Bench", slug="bench")
    prompt = PromptFactory(project=project, name="support-reply")
    make_version(prompt, "Answer {{ ticket }}")
    make_version(prompt, "Reply: {{ ticket }}")
    now = datetime.now(UTC) - timedelta(hours=1)
    bodies = []
    for b in range(BATCHES + 1):
        gens = [
            generation(uuid.uuid4().hex, now + timedelta(milliseconds=i), i) for i in range(b * BATCH, (b + 1) * BATCH)
        ]
        bodies.append(json.dumps({"generations": gens}).encode())
    stages = {"parse": 0.0, "records": 0.0, "accept": 0.0, "expand": 0.0}
    walls = dict(stages)
    profiles = {name: cProfile.Profile() for name in stages}
    batch_ids = []
    print(f"{BATCHES} batches of {BATCH} generations, load before: {load()}", flush=True)

    def timed(name, fn, *args, **kwargs):
        profile = profiles[name] if PROFILE in (name, "all") and not warm else None
        started, wall = time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        result = fn(*args, **kwargs)
        if profile:
            profile.disable()
        stages[name] += time.process_time() - started
        walls[name] += time.perf_counter() - wall
        return result

    def accept(spans, traces, scores):
        with transaction.atomic():
            return ingest.batch_accept(
                project_id=project.pk, source="native", spans=spans, traces=traces, scores=scores
            )

    for n, body in enumerate(bodies):
        warm = n == 0  # the first batch warms caches (prompt lookups, statements) and is not counted
        before, walls_before = dict(stages), dict(walls)
        document = timed("parse", json.loads, body)
        spans, traces, scores = timed("records", native_batch, document)
        batch = timed("accept", accept, spans, traces, scores)
        batch_ids.append(batch.pk)
        timed("expand", ingest.batch_expand, batch_id=batch.pk)
        if warm:
            stages.update(before)
            walls.update(walls_before)
    assert Span.objects.filter(project=project).count() == (BATCHES + 1) * BATCH
    assert Trace.objects.filter(project=project).count() == (BATCHES + 1) * BATCH
    spans_counted = BATCHES * BATCH
    total = sum(stages.values())
    print("stage    CPU us/span  wall us/span")
    for name, seconds in stages.items():
        print(f"{name:8s} {seconds / spans_counted * 1e6:11.1f} {walls[name] / spans_counted * 1e6:13.1f}")
    wall_total = sum(walls.values())
    per_span = (total / spans_counted * 1e6, wall_total / spans_counted * 1e6)
    print(f"{'total':8s} {per_span[0]:11.1f} {per_span[1]:13.1f}  (load after: {load()})")
    if PROFILE:
        for name, profile in profiles.items():
            if PROFILE in (name, "all"):
                print(f"--- {name}")
                pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()

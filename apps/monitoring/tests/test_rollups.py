from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from apps.monitoring import rollups
from apps.monitoring.models import DailyRollup, HourlyRollup
from apps.traces import ingest
from apps.traces.records import native_batch
from apps.traces.tests.factories import generation, new_id


def _accept(project, document):
    spans, traces, scores = native_batch(document)
    return ingest.batch_accept(project_id=project.pk, source="native", spans=spans, traces=traces, scores=scores)


def _traffic(rng, n_traces=40):
    """Documents of generations spread over 6 hours (some errors, two models, two versions) and their feedback."""
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    gens, scores = [], []
    for _ in range(n_traces):
        trace_id = new_id()
        for g in range(rng.choice([1, 1, 2])):
            start = base + timedelta(minutes=rng.randrange(6 * 60), seconds=rng.random())
            item = generation(
                trace_id,
                span_id=f"g{g}",
                start=start,
                prompt={"name": "greet", "version": rng.choice([1, 2])},
                model=rng.choice(["gpt-4o-mini", "claude-3-5-haiku"]),
                cost=round(rng.random() / 1000, 8),
                usage={"input_tokens": rng.randrange(5, 500), "output_tokens": rng.randrange(0, 300)},
                output=rng.choice(["fine", "", "It ships tomorrow."]),
            )
            item["end_time"] = (start + timedelta(milliseconds=rng.lognormvariate(6, 1))).isoformat()
            if rng.random() < 0.2:
                item["status"] = "error"
            gens.append(item)
        if rng.random() < 0.5:  # trace-level feedback: counts for each of its generations
            scores.append({"id": new_id(), "trace_id": trace_id, "name": "thumbs", "value": rng.random() < 0.7})
        if rng.random() < 0.3:
            scores.append({"id": new_id(), "trace_id": trace_id, "span_id": "g0", "name": "rating",
                           "value": rng.randrange(1, 6)})  # fmt: skip
        if rng.random() < 0.1:
            scores.append({"id": new_id(), "trace_id": trace_id, "name": "tag", "value": "spam"})  # categorical
    return gens, scores


def _assert_equal(project):
    raw = rollups.raw_aggregate(project_id=project.pk)
    stored = rollups.stored_rollups(project_id=project.pk)
    # the hourly tables, and the daily ones beside them
    for hourly, latency, scores in (("hourly", "latency", "scores"), ("daily", "daily_latency", "daily_scores")):
        assert raw[latency] == stored[latency]
        assert raw[hourly].keys() == stored[hourly].keys()
        for key, values in raw[hourly].items():
            got = stored[hourly][key]
            assert got[:2] == values[:2] and got[3:] == values[3:], key
            assert got[2] == pytest.approx(values[2])
        assert raw[scores].keys() == stored[scores].keys()
        for key, values in raw[scores].items():
            assert stored[scores][key] == pytest.approx(values), key


def test_rollups_equal_raw_aggregates_after_out_of_order_duplicate_and_late_batches(project, released):
    rng = random.Random(7)
    gens, scores = _traffic(rng)
    items = [("g", g) for g in gens] + [("s", s) for s in scores]
    rng.shuffle(items)  # feedback often arrives before its generation, generations of a trace apart
    batches = []
    for start in range(0, len(items), 9):
        chunk = items[start : start + 9]
        batches.append({"generations": [i for k, i in chunk if k == "g"], "scores": [i for k, i in chunk if k == "s"]})
    accepted = [_accept(project, b) for b in batches]
    duplicates = [_accept(project, b) for b in rng.sample(batches, 5)]  # retried by the app
    order = accepted + duplicates
    rng.shuffle(order)
    for batch in order:
        ingest.batch_expand(batch_id=batch.pk)
    ingest.batch_expand(batch_id=accepted[0].pk)  # the same message delivered twice
    _assert_equal(project)
    # A late batch: two days old generations and new feedback on old traces.
    old = datetime.now(UTC) - timedelta(days=2)
    late_trace = new_id()
    late = {
        "generations": [generation(late_trace, span_id="late", start=old, prompt={"name": "greet", "version": 1})],
        "scores": [{"id": new_id(), "trace_id": gens[0]["trace_id"], "name": "thumbs", "value": False},
                   {"id": new_id(), "trace_id": late_trace, "name": "thumbs", "value": True}],
    }  # fmt: skip
    ingest.batch_expand(batch_id=_accept(project, late).pk)
    ingest.batch_expand(batch_id=_accept(project, late).pk)
    _assert_equal(project)
    assert HourlyRollup.objects.filter(hour=rollups.hour_of(old.replace(tzinfo=UTC))).exists()
    assert DailyRollup.objects.filter(day=rollups.day_of(old)).exists()
    total = sum(r.count for r in HourlyRollup.objects.filter(project=project))
    assert total == len(gens) + 1


def test_rebuild_gives_the_same_rollups(project, released):
    gens, scores = _traffic(random.Random(3), n_traces=15)
    ingest.batch_expand(batch_id=_accept(project, {"generations": gens, "scores": scores}).pk)
    before = rollups.stored_rollups(project_id=project.pk)
    assert rollups.rollups_rebuild(project_id=project.pk) == len(gens)
    assert rollups.stored_rollups(project_id=project.pk) == before


def test_percentiles_from_buckets_are_within_five_percent():
    rng = random.Random(1)
    values = sorted(rng.lognormvariate(6, 1) for _ in range(20_000))
    buckets: dict[int, int] = {}
    for v in values:
        b = rollups.latency_bucket(v)
        buckets[b] = buckets.get(b, 0) + 1
    for q in (0.5, 0.95, 0.99):
        exact = values[int(q * len(values)) - 1]
        assert rollups.percentile(buckets, q) == pytest.approx(exact, rel=0.05)


def test_a_month_per_day_reads_whole_days_from_the_daily_rows_and_gives_the_hourly_figures(project, released):
    """The dashboard per day over a range with ragged edges: daily rows inside, hourly rows at the edges."""
    from apps.monitoring import selectors
    from apps.monitoring.models import DailyLatencyRollup

    rng = random.Random(11)
    now = datetime.now(UTC).replace(minute=17)
    gens = []
    for i in range(120):
        start = now - timedelta(hours=rng.uniform(0, 24 * 9))
        item = generation(new_id(), span_id="g0", start=start, prompt={"name": "greet", "version": 1 + i % 2})
        item["end_time"] = (start + timedelta(milliseconds=rng.lognormvariate(6, 1))).isoformat()
        gens.append(item)
    ingest.batch_expand(batch_id=_accept(project, {"generations": gens}).pk)
    since = now - timedelta(days=7, hours=5)
    per_day = selectors.metrics(
        project_id=project.pk, f=selectors.MetricFilters(range="custom", since=since, until=now, step="day")
    )
    # The same figures from the hourly rows alone, added up per day here.
    per_hour = selectors.metrics(
        project_id=project.pk, f=selectors.MetricFilters(range="custom", since=since, until=now, step="hour")
    )
    in_range = [g for g in gens if rollups.hour_of(since) <= datetime.fromisoformat(g["start_time"]) < now]
    assert per_day["overall"]["volume"] == per_hour["overall"]["volume"] == len(in_range)
    assert per_day["overall"]["p95"] == pytest.approx(per_hour["overall"]["p95"])
    for day_version, hour_version in zip(per_day["versions"], per_hour["versions"], strict=True):
        days: dict = {}
        for point in hour_version["points"]:
            days[rollups.day_of(point["at"])] = days.get(rollups.day_of(point["at"]), 0) + point["volume"]
        assert {p["at"]: p["volume"] for p in day_version["points"]} == days
    # Whole days came from the daily rows: with them emptied, only the edges' hours are left.
    DailyRollup.objects.filter(project=project).delete()
    DailyLatencyRollup.objects.filter(project=project).delete()
    edges = selectors.metrics(
        project_id=project.pk, f=selectors.MetricFilters(range="custom", since=since, until=now, step="day")
    )
    first_day = rollups.day_of(since) + timedelta(days=1)
    last_day = rollups.day_of(now)
    at_edges = [g for g in in_range if not first_day <= datetime.fromisoformat(g["start_time"]) < last_day]
    assert 0 < edges["overall"]["volume"] == len(at_edges) < len(in_range)


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_daily_rows_from_the_hourly_ones(project, released):
    from django.core.management import call_command

    gens, scores = _traffic(random.Random(5), n_traces=20)
    ingest.batch_expand(batch_id=_accept(project, {"generations": gens, "scores": scores}).pk)
    before = rollups.stored_rollups(project_id=project.pk)
    call_command("migrate", "monitoring", "0002", verbosity=0)
    call_command("migrate", "monitoring", verbosity=0)
    after = rollups.stored_rollups(project_id=project.pk)
    assert after["daily"] and after.keys() == before.keys()
    for table, rows in before.items():
        assert after[table].keys() == rows.keys(), table
        for key, values in rows.items():  # sums of float durations may differ in their last bit (order of adding)
            assert after[table][key] == pytest.approx(values, rel=1e-12), (table, key)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_adding_to_the_same_rows_in_opposite_orders_do_not_deadlock(project):
    """Two writers add scores of the same five names to the same hour, one in the order a-e and one in e-a,
    each in its own transaction, many times over. Rows taken in the order they came would deadlock on
    PostgreSQL (each holding a row the other waits for); taken in the order of their keys, one waits."""
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time")
    import threading

    from apps.monitoring.models import DailyScoreRollup, ScoreRollup

    gen = {"prompt_version_id": 0, "model": "m", "start_time": datetime.now(UTC)}
    names = ["a", "b", "c", "d", "e"]
    rounds = 60
    failures: list[Exception] = []
    start = threading.Barrier(2)

    def writer(order: list[str]) -> None:
        try:
            start.wait()
            for _ in range(rounds):
                with transaction.atomic():
                    deltas = rollups.Deltas()
                    for name in order:
                        deltas.add_score(gen, name, 1.0)
                    deltas.write(project.pk)
        except Exception as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(o,)) for o in (names, names[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    for model in (ScoreRollup, DailyScoreRollup):
        counts = dict(model.objects.filter(project=project).values_list("name", "count"))
        assert counts == {name: 2 * rounds for name in names}

"""Online evaluation: sampling from ingest, the experiments' evaluators and the judge through the gateway
(on the local test server, with injected failures), the daily budget under concurrent workers, and the scores
where a user sees them (trace feedback, rollups, alert rules)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from apps.monitoring import alerts, online
from apps.monitoring.models import (
    Alert,
    AlertMetric,
    OnlineEvalBudget,
    OnlineEvalStatus,
    OnlineEvaluation,
    ScoreRollup,
)
from apps.prompts import services as prompt_services
from apps.prompts.tests.factories import make_version
from apps.traces import ingest
from apps.traces.models import Score, Trace
from apps.traces.records import native_batch
from apps.traces.tests.factories import generation, new_id

pytestmark = pytest.mark.django_db(transaction=True)

RUBRIC = "Is the reply polite and on topic? Grade it."  # no digit: the echo judge's first number is the output's


def _ingest(project, items, scores=()):
    spans, traces, score_records = native_batch({"generations": items, "scores": list(scores)})
    batch = ingest.batch_accept(project_id=project.pk, source="native", spans=spans, traces=traces,
                                scores=score_records)  # fmt: skip
    ingest.batch_expand(batch_id=batch.pk)


def _traffic(project, n, *, label="production", start=None):
    """n generations of greet served under `label`, each output carrying a grade the echo judge reads back."""
    start = start or timezone.now() - timedelta(minutes=30)
    keys = []
    items = []
    for i in range(n):
        trace_id = new_id()
        grade = 1 + i % 5
        items.append(
            generation(trace_id, span_id="g0", start=start + timedelta(seconds=i),
                       prompt={"name": "greet", "label": label}, variables={"name": "Ada"},
                       output=f"Grade {grade}: hello Ada, your parcel ships today.")
        )  # fmt: skip
        keys.append((trace_id, "g0"))
    for first in range(0, n, 25):
        _ingest(project, items[first : first + 25])
    return keys


def _rule(project, released, judge, **fields):
    fields.setdefault("sample_rate", 0.5)
    fields.setdefault("daily_max_evaluations", 1000)
    fields.setdefault(
        "evaluators",
        [
            {"name": "judge", "kind": "llm_judge", "params": {"endpoint_id": judge.pk, "rubric": RUBRIC, "pass_at": 3}},
            {"name": "greets", "kind": "regex", "params": {"pattern": "hello"}},
        ],
    )
    return online.rule_create(project=project, actor="test", name=fields.pop("name", "polite"), prompt=released,
                              label=fields.pop("label", "production"), **fields)  # fmt: skip


def _run_concurrently(ids, workers=4, **options):
    """`workers` threads, each a worker running the task body on its share of the ids, and one more on all of
    them (a message delivered twice: it races the others for the claims)."""
    failures = []
    shares = [ids[i::workers] for i in range(workers)] + [ids]

    def work(share):
        try:
            online.evaluations_run(ids=share, **options)
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures


def _pending_ids(rule):
    return list(OnlineEvaluation.objects.filter(rule=rule).values_list("pk", flat=True))


def test_online_evaluation_under_20_percent_judge_failures_scores_or_errors_every_sampled_generation(
    project, released, simulated_endpoint, sim_server
):
    judge = simulated_endpoint("Judge", "openai/echo", max_retries=0, max_concurrency=8)
    rule = _rule(project, released, judge)
    sim_server.configure(fail_500=0.2, seed=3)
    _traffic(project, 80)

    evaluations = OnlineEvaluation.objects.filter(rule=rule)
    sampled = evaluations.count()
    assert 25 <= sampled <= 55  # half of 80, drawn by a hash of each generation
    _run_concurrently(_pending_ids(rule))

    statuses = Counter(evaluations.values_list("status", flat=True))
    done = list(evaluations.filter(status=OnlineEvalStatus.DONE))
    errored = list(evaluations.filter(status=OnlineEvalStatus.ERROR))
    assert len(done) + len(errored) == sampled, statuses  # nothing left pending, running or skipped
    judge_calls = sim_server.requests("/chat/completions")
    assert len(judge_calls) == sampled  # each sampled generation was judged once, by one worker
    failed_calls = [c for c in judge_calls if c.status == 500]
    assert 0 < len(failed_calls) < sampled / 2 and len(errored) == len(failed_calls)
    scores = {(s.trace_id, s.name): s for s in Score.objects.filter(project=project, source="online")}
    for evaluation in done:
        judged = scores[(evaluation.trace_id, "polite.judge")]
        grade = int(judged.comment.split("judge: ")[1].split("/")[0])
        assert judged.value == pytest.approx((grade - 1) / 4) and judged.span_id == "g0"
        assert scores[(evaluation.trace_id, "polite.greets")].value == 1.0
    for evaluation in errored:
        assert "Provider error" in evaluation.error
        assert scores[(evaluation.trace_id, "polite.judge")].string_value == "error"
        assert scores[(evaluation.trace_id, "polite.greets")].value == 1.0  # the regex still scored
    # Shown like feedback: the dashboard's rollups count each online evaluator, the trace's own feedback does not.
    judged_rollup = ScoreRollup.objects.filter(project=project, name="polite.judge")
    assert sum(r.count for r in judged_rollup) == len(done)
    assert sum(r.count for r in ScoreRollup.objects.filter(project=project, name="polite.greets")) == sampled
    assert not Trace.objects.filter(project=project, feedback_count__gt=0).exists()
    budget = OnlineEvalBudget.objects.get(rule=rule)
    assert budget.evaluations == sampled and budget.skipped == 0


def test_the_daily_budget_is_never_exceeded_by_concurrent_workers(project, released, simulated_endpoint, sim_server):
    # $1,000 per million tokens: a judge call costs about $0.05 and reserves about $0.30 (its max_tokens).
    judge = simulated_endpoint("Judge", "openai/echo", max_retries=0, max_concurrency=8,
                               price_input_per_mtok=Decimal(1000), price_output_per_mtok=Decimal(1000))  # fmt: skip
    by_cost = _rule(project, released, judge, name="by-cost", sample_rate=1.0, daily_max_evaluations=None,
                    daily_max_cost=Decimal("0.9"))  # fmt: skip
    by_count = _rule(project, released, judge, name="by-count", sample_rate=1.0, daily_max_evaluations=7)
    sim_server.configure(fail_500=0.2, seed=5)
    _traffic(project, 30)

    _run_concurrently(_pending_ids(by_cost) + _pending_ids(by_count), workers=4, concurrency=4)

    for rule in (by_cost, by_count):
        evaluations = OnlineEvaluation.objects.filter(rule=rule)
        assert evaluations.count() == 30
        counts = {s: evaluations.filter(status=s).count() for s in OnlineEvalStatus.values}
        assert counts["pending"] == counts["running"] == 0
        budget = OnlineEvalBudget.objects.get(rule=rule)
        evaluated = counts["done"] + counts["error"]
        assert budget.evaluations == evaluated and budget.skipped == counts["skipped"] > 0
        spent = sum((e.cost or 0 for e in evaluations), Decimal(0))
        assert Decimal(budget.cost_units) / 100_000_000 == spent  # every reservation settled to the real cost
        if rule.daily_max_cost is not None:
            assert 0 < spent <= rule.daily_max_cost
        else:
            assert evaluated == 7
    assert len(sim_server.requests("/chat/completions")) == sum(
        OnlineEvalBudget.objects.values_list("evaluations", flat=True)
    )


def test_it_samples_only_the_rules_label_and_the_same_generations_every_time(
    project, released, simulated_endpoint, sim_server
):
    judge = simulated_endpoint("Judge", "openai/echo")
    rule = _rule(project, released, judge, sample_rate=0.3)
    production = _traffic(project, 60)
    _traffic(project, 20, label="staging")
    sampled = set(OnlineEvaluation.objects.filter(rule=rule).values_list("trace_id", "span_id"))
    assert sampled and sampled <= set(production)
    assert sampled == {k for k in production if online.sampled(rule.pk, *k, 0.3)}
    online.rule_set_active(rule=rule, active=False, actor="test")
    _traffic(project, 20)
    assert OnlineEvaluation.objects.filter(rule=rule).count() == len(sampled)  # paused: nothing more sampled
    online.evaluations_run(ids=_pending_ids(rule))
    assert set(OnlineEvaluation.objects.filter(rule=rule).values_list("status", flat=True)) == {"skipped"}
    assert not sim_server.requests("/chat/completions")


def test_an_alert_rule_reads_an_online_evaluators_pass_rate(project, released, simulated_endpoint, sim_server):
    judge = simulated_endpoint("Judge", "openai/echo", max_retries=0)
    rule = _rule(project, released, judge, sample_rate=1.0)
    _traffic(project, 25)
    online.evaluations_run(ids=_pending_ids(rule))
    alert_rule = alerts.rule_create(project=project, actor="test", name="judge low", prompt_id=released.pk,
                                    metric=AlertMetric.ONLINE_EVAL_MEAN, score_name="polite.judge",
                                    operator="below", threshold=0.9, window_hours=2, min_volume=10)  # fmt: skip
    alert = alerts.rule_evaluate(alert_rule)
    assert isinstance(alert, Alert) and "polite.judge" in alert.message
    assert alert.value == pytest.approx(0.5)  # grades 1..5 in turn: a mean of 3 on 1..5
    assert alert.volume == 25


def test_it_refuses_a_rule_without_a_budget_or_with_an_evaluator_that_cannot_run(
    project, released, simulated_endpoint, sim_server
):
    judge = simulated_endpoint("Judge", "openai/echo")
    with pytest.raises(online.OnlineEvalError, match="daily budget"):
        _rule(project, released, judge, daily_max_evaluations=None)
    with pytest.raises(online.OnlineEvalError, match="no known price"):
        _rule(project, released, judge, daily_max_cost=Decimal("1"))
    with pytest.raises(online.OnlineEvalError, match="does not compile"):
        _rule(project, released, judge, evaluators=[{"name": "bad", "kind": "regex", "params": {"pattern": "("}}])
    with pytest.raises(online.OnlineEvalError, match="kind must be one of"):
        _rule(project, released, judge, evaluators=[{"name": "exact", "kind": "exact_match", "params": {}}])


def test_a_new_version_under_the_label_is_sampled_after_the_move(project, released, simulated_endpoint, sim_server):
    judge = simulated_endpoint("Judge", "openai/echo")
    rule = _rule(project, released, judge, sample_rate=1.0)
    v3 = make_version(released, "Good day {{ name }}")
    prompt_services.label_move(prompt=released, label_name="production", version=v3, actor="test")
    trace_id = new_id()
    _ingest(project, [generation(trace_id, span_id="g0", prompt={"name": "greet", "version": 3})])
    evaluation = OnlineEvaluation.objects.get(rule=rule)
    assert evaluation.trace_id == trace_id and evaluation.prompt_version_id == v3.pk  # the label's version now


def test_the_sweep_gives_up_on_an_evaluation_that_kills_its_workers_and_forgets_old_ones(
    project, released, simulated_endpoint, sim_server
):
    judge = simulated_endpoint("Judge", "openai/echo")
    rule = _rule(project, released, judge, sample_rate=1.0)
    _traffic(project, 3)
    first, second, third = OnlineEvaluation.objects.filter(rule=rule).order_by("pk")
    past = timezone.now() - timedelta(minutes=1)
    OnlineEvaluation.objects.filter(pk=first.pk).update(status="running", claimed_until=past, attempts=3)
    OnlineEvaluation.objects.filter(pk=second.pk).update(status="running", claimed_until=past, attempts=1)
    assert online.evaluations_requeue() == 1  # the second goes out again; the first is given up
    first.refresh_from_db()
    assert first.status == "error" and "Gave up" in first.error
    online.evaluations_run(ids=[second.pk, third.pk])
    assert set(OnlineEvaluation.objects.values_list("status", flat=True)) == {"error", "done"}
    scores = Score.objects.filter(project=project, source="online").count()
    assert online.evaluations_forget(now=timezone.now() + timedelta(days=31)) == 3
    assert not OnlineEvaluation.objects.exists() and not OnlineEvalBudget.objects.exists()
    assert Score.objects.filter(project=project, source="online").count() == scores == 4  # two evaluators each


def test_an_alert_rule_reads_a_rules_online_evaluation_error_rate(project, released, simulated_endpoint, sim_server):
    judge = simulated_endpoint("Judge", "openai/echo", max_retries=0)
    rule = _rule(project, released, judge, sample_rate=1.0)
    sim_server.configure(fail_500=0.2, seed=8)
    _traffic(project, 40)
    online.evaluations_run(ids=_pending_ids(rule))
    errored = OnlineEvaluation.objects.filter(rule=rule, status="error").count()
    assert errored > 0
    alert_rule = alerts.rule_create(project=project, actor="test", name="judge failing",
                                    metric=AlertMetric.ONLINE_EVAL_ERROR_RATE, score_name="polite",
                                    operator="above", threshold=0.05, window_hours=1, min_volume=10)  # fmt: skip
    alert = alerts.rule_evaluate(alert_rule)
    assert alert is not None and alert.volume == 40
    assert alert.value == pytest.approx(errored / 40) and "Online evaluation error rate of polite" in alert.message

"""Each guardrail reads the arms from production traces, points the right way, and honours its tolerance;
an automatic rollback reaches the webhooks with its evidence."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from apps.rollouts import selectors, services
from apps.traces import ingest
from apps.traces.models import BatchStatus, IngestBatch
from apps.traces.tests.factories import generation, new_id
from apps.webhooks.models import WebhookDelivery
from apps.webhooks.tests.factories import WebhookFactory

pytestmark = pytest.mark.django_db


def _traffic(sender, *, version: int, count: int, cost: float, thumbs_up: float) -> None:
    generations, scores = [], []
    for i in range(count):
        trace_id = new_id()
        generations.append(generation(trace_id, prompt={"name": "greet", "version": version, "label": "production"},
                                      start=datetime.now(UTC), cost=cost))  # fmt: skip
        scores.append({"id": new_id(), "trace_id": trace_id, "name": "thumbs", "value": i < count * thumbs_up})
    assert sender.post("/api/v1/traces", {"generations": generations, "scores": scores}).status_code == 202
    for batch_id in IngestBatch.objects.filter(status=BatchStatus.PENDING).values_list("pk", flat=True):
        ingest.batch_expand(batch_id=batch_id)


def _rollout(split_prompt, editor, guardrails):
    return services.rollout_start(prompt=split_prompt, label_name="production", actor=editor,
                                  canary_version=split_prompt.versions.get(number=3), guardrails=guardrails,
                                  min_volume=10_000, min_minutes=0)  # fmt: skip


@pytest.fixture
def sender(make_key, api):
    return api(make_key("ingest"))


def test_lower_feedback_and_dearer_calls_are_worse_beyond_their_tolerance(split_prompt, editor, sender):
    rollout = _rollout(split_prompt, editor, [
        {"metric": "feedback", "tolerance": 0.05},
        {"metric": "cost", "tolerance": 0.5},  # 50% dearer is tolerated
        {"metric": "score", "name": "thumbs", "tolerance": 0.05},
    ])  # fmt: skip
    _traffic(sender, version=2, count=300, cost=0.001, thumbs_up=0.9)
    _traffic(sender, version=3, count=300, cost=0.0013, thumbs_up=0.5)
    report = {g.metric: g for g in selectors.guardrails(rollout)}
    feedback, cost, score = report["feedback"], report["cost"], report["score"]
    assert feedback.stable_value == pytest.approx(0.9) and feedback.canary_value == pytest.approx(0.5)
    assert feedback.verdict.difference == pytest.approx(0.4) and feedback.verdict.harmful  # lower is worse
    assert score.verdict.harmful and score.canary_n == 300
    assert cost.canary_value == pytest.approx(0.0013) and not cost.verdict.harmful  # 30% dearer: tolerated


def test_better_feedback_is_never_harm(split_prompt, editor, sender):
    rollout = _rollout(split_prompt, editor, [{"metric": "feedback", "tolerance": 0.0}])
    _traffic(sender, version=2, count=200, cost=0.001, thumbs_up=0.5)
    _traffic(sender, version=3, count=200, cost=0.001, thumbs_up=0.95)
    (feedback,) = selectors.guardrails(rollout)
    assert feedback.verdict.difference < 0 and not feedback.verdict.harmful


def test_an_automatic_rollback_is_sent_to_the_webhooks_with_its_evidence(split_prompt, editor, sender, project):
    hook = WebhookFactory(project=project, url="http://127.0.0.1:9/hook", events=["canary.rolled_back"])
    rollout = _rollout(split_prompt, editor, [{"metric": "cost", "tolerance": 0.1}])
    _traffic(sender, version=2, count=200, cost=0.001, thumbs_up=1.0)
    _traffic(sender, version=3, count=200, cost=0.003, thumbs_up=1.0)
    assert services.rollout_evaluate(rollout_id=rollout.pk) == "rolled_back"
    delivery = WebhookDelivery.objects.get(webhook=hook)
    data = json.loads(delivery.body)["data"]
    assert (delivery.event, data["automatic"], data["actor"]) == ("canary.rolled_back", True, services.WATCHER)
    (evidence,) = data["evidence"]["guardrails"]
    assert evidence["metric"] == "cost" and evidence["harmful"] and evidence["interval"][0] > evidence["tolerance"]

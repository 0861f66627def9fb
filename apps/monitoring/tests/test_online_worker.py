"""End to end with a real Celery worker: a batch accepted by ingest is expanded by the worker, its generations are
sampled, and the worker judges them through the gateway on the local test server (and the sweep rescues a row
whose message was lost)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from apps.monitoring import online
from apps.monitoring.models import OnlineEvalStatus, OnlineEvaluation
from apps.monitoring.tests.test_online import _rule
from apps.traces import ingest
from apps.traces.models import Score
from apps.traces.records import native_batch
from apps.traces.tests.factories import generation, new_id

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for(condition, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_ingest_samples_and_the_worker_scores_through_the_gateway(project, released, simulated_endpoint, sim_server,
                                                                  celery_worker):  # fmt: skip
    judge = simulated_endpoint("Judge", "openai/echo", max_retries=0)
    rule = _rule(project, released, judge, sample_rate=1.0)
    items = [
        generation(new_id(), span_id="g0", prompt={"name": "greet", "label": "production"}, variables={"name": "Ada"},
                   output=f"Grade {1 + i % 5}: hello Ada.")
        for i in range(6)
    ]  # fmt: skip
    spans, traces, scores = native_batch({"generations": items})
    ingest.batch_accept(project_id=project.pk, source="native", spans=spans, traces=traces, scores=scores)

    def finished() -> bool:
        statuses = list(OnlineEvaluation.objects.filter(rule=rule).values_list("status", flat=True))
        return len(statuses) == 6 and set(statuses) == {OnlineEvalStatus.DONE}

    assert _wait_for(finished), list(OnlineEvaluation.objects.values_list("status", "error"))
    assert Score.objects.filter(project=project, name="polite.judge", source="online").count() == 6
    assert len(sim_server.requests("/chat/completions")) == 6

    # A message lost after sampling: the row stays pending until the sweep sends it again.
    lost = OnlineEvaluation.objects.filter(rule=rule).first()
    long_ago = lost.created_at - timedelta(minutes=10)
    OnlineEvaluation.objects.filter(pk=lost.pk).update(status=OnlineEvalStatus.PENDING, created_at=long_ago)
    assert online.evaluations_requeue() == 1
    assert _wait_for(lambda: OnlineEvaluation.objects.get(pk=lost.pk).status != OnlineEvalStatus.PENDING)

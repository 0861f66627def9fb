"""End to end on the live server: simulated app traffic through the Python client, traces ingested, the watcher.

A worse v3 (its template sends the model server's fault marker `[[fail:500]]` on a third of the tickets) is
rolled back on its own; a good v2 reaches 100% step by step; the audit log shows every step.
"""

from __future__ import annotations

import pytest
from prompt_studio import Studio

from apps.accounts.services import api_key_create
from apps.audit.models import AuditEvent
from apps.prompts import services as prompt_services
from apps.prompts.models import Label, LabelMove
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.rollouts import services, tasks, traffic
from apps.rollouts.models import Rollout
from apps.traces import ingest
from apps.traces.models import BatchStatus, IngestBatch

SAMPLES = {"question": "Where is my order?", "ticket": 7}


@pytest.fixture
def shop(transactional_db, project, settings):
    settings.API_CACHE_POLL_MS = 0
    settings.API_THROTTLE_RATE = "off"
    prompt = PromptFactory(project=project, name="support")
    v1 = make_version(prompt, "Answer: {{ question }} (ticket {{ ticket }})", samples=SAMPLES)
    make_version(prompt, "Answer kindly: {{ question }} (ticket {{ ticket }})", samples=SAMPLES)
    make_version(
        prompt,
        "{% if ticket is divisibleby 3 %}[[fail:500]] {% endif %}Answer: {{ question }} (ticket {{ ticket }})",
        samples=SAMPLES,
    )
    prompt_services.label_move(prompt=prompt, label_name="production", version=v1, actor="test")
    _, key = api_key_create(project=project, name="shop", scope="ingest", actor="test")
    return prompt, key


def _drive(live_server, sim_server, prompt, key, rollout: Rollout, calls: int) -> traffic.TrafficStats:
    studio = Studio(live_server.url, key, ttl=0.0, max_stale=0.0)
    studio.configure_tracing(flush_interval=0.05)

    def after_batch(sent, stats) -> bool:
        for batch_id in IngestBatch.objects.filter(status=BatchStatus.PENDING).values_list("pk", flat=True):
            ingest.batch_expand(batch_id=batch_id)  # what the ingest worker does
        tasks.watch()  # what beat runs every ROLLOUT_WATCH_SECONDS
        rollout.refresh_from_db()
        return rollout.is_active

    return traffic.run(studio=studio, model_url=sim_server.url, prompt_name=prompt.name, calls=calls, batch=100,
                       errors=0.02, after_batch=after_batch, timeout=10)  # fmt: skip


def _canary_audit(rollout: Rollout) -> list[tuple[str, str]]:
    events = AuditEvent.objects.filter(action__startswith="canary.", object_id=str(rollout.pk)).order_by("id")
    return [(e.action, e.actor_repr) for e in events]


def test_a_worse_canary_is_rolled_back_on_its_own(shop, live_server, sim_server):
    prompt, key = shop
    v3 = prompt.versions.get(number=3)
    rollout = services.rollout_start(prompt=prompt, label_name="production", canary_version=v3, actor="test",
                                     steps=[1000, 5000, 10_000], min_volume=100, min_minutes=0)  # fmt: skip
    stats = _drive(live_server, sim_server, prompt, key, rollout, calls=3000)
    assert rollout.status == "rolled_back", stats.line()
    assert stats.errors["canary"] / stats.calls["canary"] > 0.2  # the fault markers did make it worse
    label = Label.objects.get(prompt=prompt, name="production")
    assert (label.version.number, label.canary_version_id, label.canary_weight) == (1, None, 0)
    event = rollout.events.get(kind="rolled_back")
    assert event.automatic and event.actor_repr == services.WATCHER
    harmful = [g for g in event.evidence["guardrails"] if g["harmful"]]
    assert [g["metric"] for g in harmful] == ["error_rate"] and harmful[0]["interval"][0] > 0
    assert _canary_audit(rollout) == [("canary.started", "test"), ("canary.rolled_back", services.WATCHER)]
    assert LabelMove.objects.filter(prompt=prompt).first().action == "rolled_back"
    # The answer after the rollback: every key gets v1 again.
    assert {Studio(live_server.url, key).get_prompt("support", key=f"user-{i}").version for i in range(50)} == {1}


def test_a_good_canary_reaches_100_percent_step_by_step(shop, live_server, sim_server):
    prompt, key = shop
    v2 = prompt.versions.get(number=2)
    rollout = services.rollout_start(prompt=prompt, label_name="production", canary_version=v2, actor="test",
                                     steps=[1000, 5000, 10_000], min_volume=100, min_minutes=0)  # fmt: skip
    stats = _drive(live_server, sim_server, prompt, key, rollout, calls=4000)
    assert rollout.status == "promoted", stats.line()
    assert stats.calls["canary"] >= 200 and stats.calls["stable"] > stats.calls["canary"]
    label = Label.objects.get(prompt=prompt, name="production")
    assert (label.version.number, label.canary_version_id) == (2, None)
    assert [(e.kind, e.from_weight, e.to_weight, e.automatic) for e in rollout.events.all()] == [
        ("started", 0, 1000, False),
        ("stepped", 1000, 5000, True),
        ("promoted", 5000, 10_000, True),
    ]
    assert _canary_audit(rollout) == [
        ("canary.started", "test"),
        ("canary.stepped", services.WATCHER),
        ("canary.promoted", services.WATCHER),
    ]
    moves = LabelMove.objects.filter(prompt=prompt, label_name="production").order_by("id")
    assert [(m.action, m.to_version.number, m.to_canary_weight) for m in moves] == [
        ("created", 1, 0),
        ("split", 1, 1000),
        ("split", 1, 5000),
        ("moved", 2, 0),
    ]

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core import heartbeats
from apps.core.models import WorkerHeartbeat


@pytest.fixture
def alive(db):
    heartbeats.beat(role="worker", hostname="celery@test")
    heartbeats.beat(role="beat", hostname="beat@test")


def test_it_reports_every_part_ok(client, alive):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok", "database": "ok", "broker": "ok", "cache": "ok", "worker": "ok", "beat": "ok"
    }  # fmt: skip


def test_it_names_the_part_that_is_down(client, alive, monkeypatch):
    from apps.core import health

    monkeypatch.setitem(health.CHECKS, "cache", lambda: "ConnectionError: refused")
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["cache"] == "down"
    assert body["database"] == "ok"
    assert "refused" in body["errors"]["cache"]


def test_a_dead_beat_is_not_ok(client, alive, settings):
    WorkerHeartbeat.objects.filter(role="beat").update(
        seen_at=timezone.now() - timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS + 5)
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["beat"] == "down" and body["worker"] == "ok"
    assert "no Celery beat alive: the last one was seen" in body["errors"]["beat"]


def test_no_worker_ever_is_not_ok_but_the_web_scope_still_is(client, db):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["errors"]["worker"] == "no Celery worker has started"
    web = client.get("/healthz?scope=web")
    assert web.status_code == 200
    assert web.json() == {"status": "ok", "database": "ok", "broker": "ok", "cache": "ok"}


def test_workers_detail_counts_the_live_ones(client, alive, settings):
    heartbeats.beat(role="worker", hostname="celery@other")
    WorkerHeartbeat.objects.filter(hostname="celery@other").update(seen_at=timezone.now() - timedelta(hours=1))
    body = client.get("/healthz?workers=1").json()
    assert body["workers"]["alive"] == 1
    assert body["beats"]["alive"] == 1

"""The canary pages: start a canary from the form, see arms, guardrails with intervals, the boundary, the steps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.rollouts import services
from apps.rollouts.models import Rollout
from apps.traces import ingest
from apps.traces.models import BatchStatus, IngestBatch
from apps.traces.tests.factories import generation, new_id

pytestmark = pytest.mark.django_db


def _send(api_client, version: int, count: int, errors: int) -> None:
    items = []
    for i in range(count):
        item = generation(new_id(), prompt={"name": "greet", "version": version, "label": "production"},
                          start=datetime.now(UTC))  # fmt: skip
        if i < errors:
            item.update(status="error", status_message="HTTP 500")
        items.append(item)
    assert api_client.post("/api/v1/traces", {"generations": items}).status_code == 202
    for batch_id in IngestBatch.objects.filter(status=BatchStatus.PENDING).values_list("pk", flat=True):
        ingest.batch_expand(batch_id=batch_id)


def test_an_editor_starts_a_canary_from_the_page_and_sees_it(split_prompt, editor, client):
    client.force_login(editor)
    version_page = client.get(f"/p/{split_prompt.project.slug}/prompts/greet/v/3/").content.decode()
    assert f"/p/{split_prompt.project.slug}/canaries/new/greet/3/" in version_page  # the version's action
    page = client.get(f"/p/{split_prompt.project.slug}/canaries/new/greet/3/", follow=True)
    assert page.status_code == 200 and b"Start a canary" in page.content
    assert page.context["form"]["version"].value() == "3" and page.context["form"]["prompt"].value() == "greet"
    response = client.post(
        f"/p/{split_prompt.project.slug}/canaries/",
        {"prompt": "greet", "label": "production", "version": 3, "steps": "10, 50, 100", "min_volume": 50,
         "min_minutes": 0, "error_rate": 0.01, "latency_p95": 0.5},
    )  # fmt: skip
    rollout = Rollout.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/canaries/{rollout.pk}/")
    assert rollout.steps == [1000, 5000, 10_000] and [g["metric"] for g in rollout.guardrails] == [
        "error_rate",
        "latency_p95",
    ]
    detail = client.get(response["Location"]).content.decode()
    assert "v2" in detail and "v3" in detail and "90%" in detail and "10%" in detail
    assert "not enough calls yet" in detail


def test_the_page_shows_the_boundary_and_the_automatic_rollback(split_prompt, editor, client, make_key, api):
    rollout = services.rollout_start(prompt=split_prompt, label_name="production",
                                     canary_version=split_prompt.versions.get(number=3), actor=editor,
                                     steps=[1000, 10_000], min_volume=10_000, min_minutes=0)  # fmt: skip
    sender = api(make_key("ingest"))
    _send(sender, version=2, count=200, errors=4)
    _send(sender, version=3, count=60, errors=1)
    assert services.rollout_evaluate(rollout_id=rollout.pk) == "watching"
    _send(sender, version=3, count=60, errors=30)
    assert services.rollout_evaluate(rollout_id=rollout.pk) == "rolled_back"
    client.force_login(editor)
    page = client.get(f"/p/{split_prompt.project.slug}/canaries/{rollout.pk}/").content.decode()
    assert 'id="boundary-error_rate" data-figure=' in page
    assert "Rolled back" in page and "canary watcher" in page and "automatic" in page
    assert 'class="badge text-bg-danger">worse' in page


def test_a_viewer_sees_the_page_but_cannot_act(split_prompt, editor, member, client):
    rollout = services.rollout_start(prompt=split_prompt, label_name="production",
                                     canary_version=split_prompt.versions.get(number=3), actor=editor)  # fmt: skip
    client.force_login(member("viewer", "vera"))
    page = client.get(f"/p/{split_prompt.project.slug}/canaries/{rollout.pk}/")
    assert page.status_code == 200 and b"Roll back" not in page.content
    refused = client.post(f"/p/{split_prompt.project.slug}/canaries/{rollout.pk}/rollback/")
    assert refused.status_code == 403
    assert Rollout.objects.get().status == "running"

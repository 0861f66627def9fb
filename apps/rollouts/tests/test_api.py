"""REST of canaries: start a watched canary, read it, promote, pause, roll back; what it refuses."""

from __future__ import annotations

import pytest

from apps.prompts.models import Label

pytestmark = pytest.mark.django_db


def test_a_write_key_starts_steps_pauses_and_rolls_back_a_canary(split_prompt, make_key, api):
    client = api(make_key("write"))
    plan = {"prompt": "greet", "version": 3, "steps": [1000, 5000, 10_000],
            "guardrails": [{"metric": "error_rate", "tolerance": 0.01}]}  # fmt: skip
    started = client.post("/api/v1/canaries", plan)
    assert started.status_code == 201, started.json()
    canary = started.json()
    assert (canary["stable_version"], canary["canary_version"], canary["weight"], canary["status"]) == (
        2,
        3,
        1000,
        "running",
    )
    served = client.get("/api/v1/prompts/greet?label=production").json()
    assert served["split"]["canary_weight"] == 1000
    stepped = client.post(f"/api/v1/canaries/{canary['id']}/promote").json()
    assert stepped["weight"] == 5000 and stepped["events"][-1]["actor"].startswith("api key")
    assert client.post(f"/api/v1/canaries/{canary['id']}/pause").json()["status"] == "paused"
    rolled_back = client.post(f"/api/v1/canaries/{canary['id']}/rollback").json()
    assert (rolled_back["status"], rolled_back["weight"]) == ("rolled_back", 0)
    assert [e["kind"] for e in rolled_back["events"]] == ["started", "stepped", "paused", "rolled_back"]
    label = Label.objects.get(prompt=split_prompt, name="production")
    assert (label.version.number, label.canary_version_id) == (2, None)
    again = client.post(f"/api/v1/canaries/{canary['id']}/promote")
    assert again.status_code == 409
    listed = client.get("/api/v1/canaries?prompt=greet").json()["canaries"]
    assert [c["id"] for c in listed] == [canary["id"]]


def test_it_refuses_a_bad_plan_a_read_key_and_an_unknown_canary(split_prompt, make_key, api):
    writer = api(make_key("write"))
    falling = writer.post("/api/v1/canaries", {"prompt": "greet", "version": 3, "steps": [5000, 1000, 10_000]})
    assert falling.status_code == 400 and falling.json()["code"] == "invalid_plan"
    unnamed = writer.post("/api/v1/canaries", {"prompt": "greet", "version": 3, "guardrails": [{"metric": "score"}]})
    assert unnamed.status_code == 400 and "names its score" in unnamed.json()["detail"]
    assert writer.post("/api/v1/canaries", {"prompt": "greet", "version": 9}).status_code == 404
    assert writer.post("/api/v1/canaries/99/promote").status_code == 404
    reader = api(make_key("read"))
    assert reader.post("/api/v1/canaries", {"prompt": "greet", "version": 3}).status_code == 403
    assert reader.get("/api/v1/canaries").json() == {"canaries": []}
    assert not Label.objects.get(prompt=split_prompt, name="production").canary_version_id

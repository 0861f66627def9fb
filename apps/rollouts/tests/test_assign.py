"""Stickiness: the same key gets the same arm from the studio and the client; raising the weight only adds keys."""

from __future__ import annotations

import json

import pytest
from prompt_studio import assign
from prompt_studio.client import Prompt

from apps.api import selectors as api_selectors
from apps.prompts import services as prompt_services

KEYS = [f"user-{i}" for i in range(100_000)]


def _canary_keys(weight: int) -> set[str]:
    return {key for key in KEYS if assign.arm("greet", "production", key, weight) == assign.CANARY}


def test_it_splits_100000_keys_90_10_within_half_a_point():
    share = len(_canary_keys(1000)) / len(KEYS)
    assert abs(share - 0.10) < 0.005, share


def test_raising_the_weight_from_10_to_25_percent_moves_keys_only_into_the_canary():
    at_10, at_25 = _canary_keys(1000), _canary_keys(2500)
    assert at_10 <= at_25  # nobody leaves the canary
    assert abs(len(at_25) / len(KEYS) - 0.25) < 0.005
    assert len(_canary_keys(1000)) == len(at_10)  # the same answer every time


@pytest.mark.django_db
def test_the_studio_and_the_client_give_every_key_the_same_arm(split_prompt, make_key, api):
    v2, v3 = split_prompt.versions.get(number=2), split_prompt.versions.get(number=3)
    prompt_services.label_set(
        prompt=split_prompt, label_name="production", version=v2, canary_version=v3, canary_weight=1000, actor="test"
    )
    client = api(make_key())
    label_document = client.get("/api/v1/prompts/greet?label=production").json()
    assert label_document["arm"] == "stable" and label_document["split"]["canary"]["version"] == 3
    local = Prompt.from_document(label_document, label="production")
    # Every key through the server's own resolution (the code the endpoint runs) and the client's.
    resolved = api_selectors.resolve(project_id=split_prompt.project_id, name="greet", label="production")
    server = [api_selectors.arm_resolve(resolved, name="greet", label="production", key=k)[0] for k in KEYS]
    client_side = [local.for_key(k).arm for k in KEYS]
    assert server == client_side
    assert abs(server.count("canary") / len(KEYS) - 0.10) < 0.005
    # And over HTTP for a sample of keys: the answer names the arm, its version, and has an ETag per arm.
    etags = {}
    for key in KEYS[:60]:
        response = client.get(f"/api/v1/prompts/greet?label=production&key={key}")
        body = response.json()
        arm = local.for_key(key)
        assert (body["arm"], body["version"], response["X-Prompt-Arm"]) == (arm.arm, arm.version, arm.arm)
        etags.setdefault(body["arm"], set()).add(response["ETag"])
        again = client.get(f"/api/v1/prompts/greet?label=production&key={key}", HTTP_IF_NONE_MATCH=response["ETag"])
        assert again.status_code == 304
    assert len(etags["stable"]) == 1 and len(etags.get("canary", {"x"})) == 1
    assert etags["stable"] != etags.get("canary")


@pytest.mark.django_db
def test_the_releases_bundle_carries_the_split_so_the_client_assigns_offline(split_prompt, make_key, api, tmp_path):
    v2, v3 = split_prompt.versions.get(number=2), split_prompt.versions.get(number=3)
    prompt_services.label_set(
        prompt=split_prompt, label_name="production", version=v2, canary_version=v3, canary_weight=2500, actor="test"
    )
    bundle = api(make_key()).get("/api/v1/releases?label=production").json()
    entry = bundle["prompts"]["greet"]
    assert (entry["version"], entry["split"]["canary_version"], entry["split"]["canary_weight"]) == (2, 3, 2500)
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(bundle))
    from prompt_studio import Studio

    offline = Studio("http://127.0.0.1:9", "ps_none", snapshot_path=snapshot, retries=0, timeout=0.2)
    arms = {key: offline.get_prompt("greet", key=key) for key in KEYS[:400]}
    for key, prompt in arms.items():
        assert prompt.source == "snapshot"
        expected = assign.arm("greet", "production", key, 2500)
        assert (prompt.arm, prompt.version) == (expected, 3 if expected == "canary" else 2)
    assert {p.arm for p in arms.values()} == {"stable", "canary"}

from __future__ import annotations

import time

import pytest

from apps.accounts.models import ApiKey
from apps.accounts.services import api_key_revoke
from apps.accounts.tests.factories import ProjectFactory
from apps.api.auth import key_info_for
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db


def test_it_refuses_a_request_without_a_key(api, released):
    response = api(None).get("/api/v1/prompts/greet")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "Bearer" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer ps_not-a-key", "Bearer ", "Basic dXNlcjpwYXNz", "ps_raw-key-no-scheme"])
def test_it_refuses_a_bad_key_with_401(client, released, header):
    response = client.get("/api/v1/prompts/greet", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] in ("invalid_key", "invalid_auth_header")


def test_it_refuses_a_revoked_key_at_once(api, make_key, released):
    raw = make_key("write")
    assert api(raw).get("/api/v1/prompts/greet").status_code == 200  # now cached in this process
    api_key_revoke(api_key=ApiKey.objects.get(), actor="test")
    response = api(raw).get("/api/v1/prompts/greet")
    assert response.status_code == 401
    assert response.json()["code"] == "key_revoked"


def test_it_lets_a_read_key_read_but_not_write(api, make_key, released):
    raw = make_key("read")
    assert api(raw).get("/api/v1/prompts").status_code == 200
    assert api(raw).post("/api/v1/prompts/greet/render", {"variables": {"name": "Ada"}}).status_code == 200
    move = api(raw).post("/api/v1/prompts/greet/labels/production", {"version": 2})
    assert move.status_code == 403
    assert move.json()["code"] == "write_scope_required"
    save = api(raw).post("/api/v1/prompts/greet/versions", {"type": "text", "template": "x", "parent_version": 2})
    assert save.status_code == 403
    assert released.labels.get(name="production").version.number == 1
    assert released.versions.count() == 2


def test_it_shows_nothing_of_another_project(api, make_key, released):
    other = ProjectFactory(slug="other")
    make_version(PromptFactory(project=other, name="secret"), "Top {{ secret }}")
    raw_other = make_key("write", of_project=other)
    for path in ("/api/v1/prompts/greet", "/api/v1/prompts/greet?version=1", "/api/v1/prompts/greet/versions"):
        response = api(raw_other).get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "prompt_not_found"
    assert api(raw_other).post("/api/v1/prompts/greet/render", {}).status_code == 404
    assert api(raw_other).post("/api/v1/prompts/greet/labels/production", {"version": 2}).status_code == 404
    assert api(raw_other).get("/api/v1/prompts").json() == {
        "prompts": [{"name": "secret", "description": "", "latest_version": 1, "labels": {}}]
    }
    assert api(raw_other).get("/api/v1/releases").status_code == 404
    assert released.labels.get(name="production").version.number == 1


def test_it_records_when_a_key_was_last_used(api, make_key, released):
    raw = make_key()
    assert ApiKey.objects.get().last_used_at is None
    api(raw).get("/api/v1/prompts")
    assert ApiKey.objects.get().last_used_at is not None


def test_it_checks_a_key_in_well_under_a_millisecond(make_key, released):
    raw = make_key()
    assert key_info_for(raw) is not None  # the first check reads the database once
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        key_info_for(raw)
    per_check = (time.perf_counter() - started) / rounds
    assert per_check < 0.0002, f"{per_check * 1e6:.0f} µs per key check"


def test_it_throttles_each_key_separately(api, make_key, released, settings):
    from django.core.cache import cache

    cache.clear()
    settings.API_THROTTLE_RATE = "3/min"
    first, second = make_key(name="first"), make_key(name="second")
    assert [api(first).get("/api/v1/prompts").status_code for _ in range(3)] == [200, 200, 200]
    refused = api(first).get("/api/v1/prompts")
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert api(second).get("/api/v1/prompts").status_code == 200


def test_it_throttles_the_fetch_path_too(api, make_key, released, settings):
    from django.core.cache import cache

    cache.clear()
    settings.API_THROTTLE_RATE = "2/min"
    client = api(make_key())
    assert [client.get("/api/v1/prompts/greet").status_code for _ in range(2)] == [200, 200]
    refused = client.get("/api/v1/prompts/greet")
    assert (refused.status_code, refused.json()["code"]) == (429, "throttled")
    assert refused["Retry-After"]


def test_it_answers_head_and_refuses_other_methods_as_json(api, make_key, released, client):
    raw = make_key()
    head = client.head("/api/v1/prompts/greet", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert head.status_code == 200 and head["ETag"]
    assert client.head("/api/v1/prompts/greet").status_code == 401
    refused = api(raw).post("/api/v1/prompts/greet", {})
    assert (refused.status_code, refused.json()["code"]) == (405, "method_not_allowed")

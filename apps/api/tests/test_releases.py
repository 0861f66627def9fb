from __future__ import annotations

import pytest

from apps.prompts import services
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_released(project, released):
    other = PromptFactory(project=project, name="other")
    services.label_move(prompt=other, label_name="production", version=make_version(other, "Other"), actor="t")
    PromptFactory(project=project, name="unreleased")
    return other


def test_it_bundles_every_prompt_released_under_a_label(api, make_key, two_released):
    response = api(make_key()).get("/api/v1/releases?label=production")
    assert response.status_code == 200
    body = response.json()
    assert (body["project"], body["label"]) == ("acme", "production")
    assert list(body["prompts"]) == ["greet", "other"]
    assert body["prompts"]["greet"] == api(make_key()).get("/api/v1/prompts/greet").json()
    assert response["ETag"]
    staging = api(make_key()).get("/api/v1/releases?label=staging").json()
    assert list(staging["prompts"]) == ["greet"]
    assert api(make_key()).get("/api/v1/releases?label=latest").json()["prompts"]["greet"]["version"] == 2


def test_it_answers_304_until_a_release_changes(api, make_key, released, two_released):
    client = api(make_key())
    etag = client.get("/api/v1/releases")["ETag"]
    assert client.get("/api/v1/releases", HTTP_IF_NONE_MATCH=etag).status_code == 304
    services.label_move(prompt=released, label_name="production", version=released.versions.get(number=2), actor="t")
    changed = client.get("/api/v1/releases", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed.json()["prompts"]["greet"]["version"] == 2
    assert changed["ETag"] != etag


def test_it_answers_404_for_a_label_no_prompt_has(api, make_key, released):
    response = api(make_key()).get("/api/v1/releases?label=canary")
    assert (response.status_code, response.json()["code"]) == (404, "label_not_found")
    assert api(make_key()).get("/api/v1/releases?label=NOT%20OK").status_code == 400

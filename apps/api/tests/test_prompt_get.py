from __future__ import annotations

import pytest

from apps.prompts import services
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db


def test_it_serves_the_production_version_by_default(api, make_key, released):
    response = api(make_key()).get("/api/v1/prompts/greet")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "greet"
    assert body["version"] == 1
    assert body["type"] == "text"
    assert body["template"] == "Hello {{ name }}"
    assert body["messages"] is None
    assert body["config"] == {"temperature": 0.2}
    assert body["variables"] == [{"name": "name", "type": "string", "description": ""}]
    assert body["labels"] == ["production"]
    assert body["content_hash"] == released.versions.get(number=1).content_hash
    assert response["ETag"].startswith('"') and len(response["ETag"]) > 20
    assert response["Cache-Control"] == "private, no-cache"
    assert response["Vary"] == "Authorization"


def test_it_serves_a_label_or_a_version(api, make_key, released):
    client = api(make_key())
    assert client.get("/api/v1/prompts/greet?label=staging").json()["version"] == 2
    assert client.get("/api/v1/prompts/greet?label=latest").json()["version"] == 2
    assert client.get("/api/v1/prompts/greet?version=1").json()["labels"] == ["production"]
    # Both: that version, if it carries that label (a pinned version that must still be released).
    assert client.get("/api/v1/prompts/greet?label=production&version=1").json()["version"] == 1
    assert client.get("/api/v1/prompts/greet?label=latest&version=2").json()["version"] == 2
    body = client.get("/api/v1/prompts/greet?version=2").json()
    assert body["variables"] == [
        {"name": "name", "type": "string", "description": ""},
        {"name": "age", "type": "number", "description": ""},
    ]


def test_it_serves_chat_messages(api, make_key, project):
    prompt = PromptFactory(project=project, name="chat")
    messages = [{"role": "system", "content": "Be {{ tone }}"}, {"role": "user", "content": "{{ q }}"}]
    version = make_version(prompt, kind="chat", messages=messages)
    services.label_move(prompt=prompt, label_name="production", version=version, actor="test")
    body = api(make_key()).get("/api/v1/prompts/chat").json()
    assert body["type"] == "chat"
    assert body["template"] is None
    assert body["messages"] == messages


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/prompts/nope", 404, "prompt_not_found"),
        ("/api/v1/prompts/greet?label=canary", 404, "label_not_found"),
        ("/api/v1/prompts/greet?version=9", 404, "version_not_found"),
        ("/api/v1/prompts/greet?version=0", 400, "invalid_version"),
        ("/api/v1/prompts/greet?version=abc", 400, "invalid_version"),
        ("/api/v1/prompts/greet?version=99999999999999999999", 400, "invalid_version"),
        ("/api/v1/prompts/greet?label=Bad%20Label", 400, "invalid_label"),
        ("/api/v1/prompts/greet?label=production&version=2", 404, "label_not_on_version"),
        ("/api/v1/prompts/Not%20A%20Name", 404, "prompt_not_found"),
        ("/api/v1/prompts/greet/unknown", 404, "not_found"),
    ],
)
def test_it_answers_bad_requests_with_a_code_and_detail(api, make_key, released, path, status, code):
    response = api(make_key()).get(path)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code
    assert response.json()["detail"]


def test_it_answers_304_while_the_etag_is_current(api, make_key, released):
    client = api(make_key())
    etag = client.get("/api/v1/prompts/greet")["ETag"]
    not_modified = client.get("/api/v1/prompts/greet", HTTP_IF_NONE_MATCH=etag)
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified["ETag"] == etag
    assert client.get("/api/v1/prompts/greet", HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304
    assert client.get("/api/v1/prompts/greet", HTTP_IF_NONE_MATCH='"stale"').status_code == 200


def test_it_answers_304_without_loading_the_version(api, make_key, released, django_assert_num_queries):
    client = api(make_key())
    etag = client.get("/api/v1/prompts/greet")["ETag"]
    # One query: the cache stamp, read every request in tests (API_CACHE_POLL_MS=0); no version row, no serializing.
    with django_assert_num_queries(1) as queries:
        assert client.get("/api/v1/prompts/greet", HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert "promptversion" not in queries.captured_queries[0]["sql"].split("FROM")[1].split(")")[0]


def test_it_changes_the_etag_when_the_label_moves(api, make_key, released):
    client = api(make_key())
    etag = client.get("/api/v1/prompts/greet")["ETag"]
    services.label_move(prompt=released, label_name="production", version=released.versions.get(number=2), actor="t")
    response = client.get("/api/v1/prompts/greet", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert response["ETag"] != etag


def test_it_changes_the_etag_when_another_label_joins_the_version(api, make_key, released):
    client = api(make_key())
    etag = client.get("/api/v1/prompts/greet?version=1")["ETag"]
    services.label_move(prompt=released, label_name="canary", version=released.versions.get(number=1), actor="t")
    response = client.get("/api/v1/prompts/greet?version=1", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert response.json()["labels"] == ["canary", "production"]


def test_it_lists_the_prompts_with_their_labels(api, make_key, released, project):
    PromptFactory(project=project, name="empty")
    assert api(make_key()).get("/api/v1/prompts").json() == {
        "prompts": [
            {"name": "empty", "description": "", "latest_version": None, "labels": {}},
            {"name": "greet", "description": "", "latest_version": 2, "labels": {"production": 1, "staging": 2}},
        ]
    }


def test_it_lists_a_prompts_versions(api, make_key, released):
    body = api(make_key()).get("/api/v1/prompts/greet/versions").json()
    assert [(v["version"], v["parent_version"], v["labels"]) for v in body["versions"]] == [
        (2, 1, ["staging"]),
        (1, None, ["production"]),
    ]

from __future__ import annotations

import pytest

from apps.prompts import services
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db


def test_it_renders_the_production_text(api, make_key, released):
    response = api(make_key()).post("/api/v1/prompts/greet/render", {"variables": {"name": "Ada"}})
    assert response.status_code == 200
    assert response.json() == {
        "name": "greet",
        "version": 1,
        "type": "text",
        "text": "Hello Ada",
        "config": {"temperature": 0.2},
    }


def test_it_renders_a_label_or_version(api, make_key, released):
    client = api(make_key())
    variables = {"name": "Ada", "age": 36}
    assert client.post("/api/v1/prompts/greet/render", {"label": "staging", "variables": variables}).json()["text"] == (
        "Hi Ada, you are 36"
    )
    assert client.post("/api/v1/prompts/greet/render", {"version": 2, "variables": variables}).json()["version"] == 2


def test_it_renders_chat_messages(api, make_key, project):
    prompt = PromptFactory(project=project, name="chat")
    messages = [{"role": "system", "content": "Be {{ tone }}"}, {"role": "user", "content": "{{ q }}"}]
    version = make_version(prompt, kind="chat", messages=messages)
    services.label_move(prompt=prompt, label_name="production", version=version, actor="test")
    body = api(make_key()).post("/api/v1/prompts/chat/render", {"variables": {"tone": "brief", "q": "Why?"}}).json()
    assert body["messages"] == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Why?"}]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({}, "variable 'name' is missing"),
        ({"name": 3}, "variable 'name' must be a string, got int"),
    ],
)
def test_it_names_a_missing_or_wrong_typed_variable(api, make_key, released, variables, message):
    response = api(make_key()).post("/api/v1/prompts/greet/render", {"variables": variables})
    assert response.status_code == 400
    assert response.json() == {"code": "invalid_variable", "detail": message, "variable": "name"}


def test_it_refuses_what_the_sandbox_refuses(api, make_key, project):
    prompt = PromptFactory(project=project, name="sneaky")
    version = make_version(prompt, "{{ name.__class__ }}", samples={"name": "x"})
    services.label_move(prompt=prompt, label_name="production", version=version, actor="test")
    response = api(make_key()).post("/api/v1/prompts/sneaky/render", {"variables": {"name": "x"}})
    assert response.status_code == 400
    assert response.json()["code"] == "render_failed"


@pytest.mark.parametrize(
    "payload",
    [{"variables": []}, {"variables": "x"}, {"version": "1"}, {"version": True}, {"label": 5}, ["a"]],
)
def test_it_refuses_a_malformed_body(api, make_key, released, payload):
    response = api(make_key()).post("/api/v1/prompts/greet/render", payload)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_a_label_and_a_version_render_that_version_only_if_it_carries_the_label(api, make_key, released):
    client = api(make_key())
    both = {"label": "production", "version": 1, "variables": {"name": "Ada"}}
    assert client.post("/api/v1/prompts/greet/render", both).json()["text"] == "Hello Ada"
    response = client.post("/api/v1/prompts/greet/render", {**both, "version": 2})
    assert response.status_code == 404 and response.json()["code"] == "label_not_on_version"


def test_it_refuses_broken_json(client, make_key, released):
    response = client.post(
        "/api/v1/prompts/greet/render",
        "{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {make_key()}",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"

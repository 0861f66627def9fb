"""REST and the Python client resolve includes exactly as the studio does: the documents carry the pinned texts."""

from __future__ import annotations

import pytest
from prompt_studio.client import Prompt, RenderError

from apps.prompts import services
from apps.prompts.content import content_of, render_content
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db


def release(prompt, version, label="production"):
    services.label_move(prompt=prompt, label_name=label, version=version, actor="test")


@pytest.fixture
def composed(project):
    """sig (v1 production), tone v2 pins sig v1, then sig v2 released; main and chat include them."""
    sig = PromptFactory(project=project, name="sig")
    release(sig, make_version(sig, "-- {{ who }} (old)"))
    tone = PromptFactory(project=project, name="tone")
    make_version(tone, "Be {{ mood }}.")
    release(tone, make_version(tone, 'Be {{ mood }}, {{ name }}.\n{% include "sig@production" %}'))
    release(sig, make_version(sig, "-- {{ who }}"))
    main = PromptFactory(project=project, name="main")
    release(main, make_version(main, 'Hi {{ name }}!\n{% include "tone@production" %}\n{% include "sig@production" %}'))
    chat = PromptFactory(project=project, name="chat")
    messages = [
        {"role": "system", "content": '{% include "tone@production" %}'},
        {"role": "user", "content": "{{ q }}"},
    ]
    release(chat, make_version(chat, kind="chat", messages=messages))
    return {"main": main, "chat": chat, "tone": tone, "sig": sig}


VALUES = {"name": "Ada", "mood": "calm", "who": "the team", "q": "why?"}


def test_the_document_carries_the_pins_and_every_text_they_reach(api, make_key, composed):
    body = api(make_key()).get("/api/v1/prompts/main").json()
    assert body["includes"] == {"sig@production": "sig:2", "tone@production": "tone:2"}
    assert body["snippets"] == {
        "sig:1": {"name": "sig", "version": 1, "template": "-- {{ who }} (old)", "includes": {}},
        "sig:2": {"name": "sig", "version": 2, "template": "-- {{ who }}", "includes": {}},
        "tone:2": {
            "name": "tone",
            "version": 2,
            "template": 'Be {{ mood }}, {{ name }}.\n{% include "sig@production" %}',
            "includes": {"sig@production": "sig:1"},
        },
    }
    assert [v["name"] for v in body["variables"]] == ["name", "mood", "who"]
    plain = api(make_key()).get("/api/v1/prompts/sig").json()
    assert (plain["includes"], plain["snippets"]) == ({}, {})


@pytest.mark.parametrize("name", ["main", "chat"])
def test_the_client_renders_offline_exactly_what_the_studio_renders(api, make_key, composed, name):
    client = api(make_key())
    served = client.post(f"/api/v1/prompts/{name}/render", {"variables": VALUES}).json()
    studio_output = served.get("text", served.get("messages"))
    offline = Prompt.from_document(client.get(f"/api/v1/prompts/{name}").json()).render(**VALUES)
    assert offline == studio_output
    bundled = client.get("/api/v1/releases?label=production").json()["prompts"][name]
    assert Prompt.from_document(bundled).render(**VALUES) == studio_output
    assert studio_output == render_content(content_of(composed[name].versions.get(number=1)), VALUES)
    if name == "main":
        assert studio_output == "Hi Ada!\nBe calm, Ada.\n-- the team (old)\n-- the team"


def test_a_release_of_a_snippet_changes_no_served_prompt(api, make_key, composed):
    client = api(make_key())
    before = client.post("/api/v1/prompts/main/render", {"variables": VALUES}).json()["text"]
    release(composed["tone"], make_version(composed["tone"], "Totally different {{ mood }}."))
    assert client.post("/api/v1/prompts/main/render", {"variables": VALUES}).json()["text"] == before
    assert client.get("/api/v1/prompts/main").json()["includes"]["tone@production"] == "tone:2"


def test_a_version_saved_through_the_api_is_pinned_and_a_missing_snippet_is_a_400_with_the_line(
    api, make_key, composed
):
    client = api(make_key("write"))
    payload = {"type": "text", "template": 'x\n{% include "tone@production" %}', "parent_version": None,
               "create_prompt": True}  # fmt: skip
    created = client.post("/api/v1/prompts/fresh/versions", payload)
    assert created.status_code == 201, created.json()
    assert created.json()["includes"] == {"tone@production": "tone:2"}
    payload = {**payload, "template": 'x\ny\n{% include "tone@nowhere" %}', "parent_version": 1}
    refused = client.post("/api/v1/prompts/fresh/versions", payload)
    assert refused.status_code == 400
    assert (refused.json()["code"], refused.json()["line"]) == ("invalid_content", 3)
    assert "tone has no label 'nowhere'" in refused.json()["detail"]


def test_a_hostile_snippet_is_a_400_from_the_api_and_a_render_error_in_the_client(api, make_key, project):
    heavy = PromptFactory(project=project, name="heavy")
    release(heavy, make_version(heavy, "{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}"))
    host = PromptFactory(project=project, name="host")
    release(host, make_version(host, 'Hello {% include "heavy@production" %}'))
    client = api(make_key())
    items = list(range(10_000))
    response = client.post("/api/v1/prompts/host/render", {"variables": {"items": items}})
    assert (response.status_code, response.json()["code"]) == (400, "render_failed")
    assert "time limit" in response.json()["detail"]
    with pytest.raises(RenderError, match="time limit"):
        Prompt.from_document(client.get("/api/v1/prompts/host").json()).render(items=items)


def test_a_document_whose_snippets_were_tampered_with_is_refused_not_guessed(api, make_key, composed):
    document = api(make_key()).get("/api/v1/prompts/main").json()
    del document["snippets"]["sig:1"]
    with pytest.raises(RenderError, match="sig:1.*missing"):
        Prompt.from_document(document).render(**VALUES)

"""The client against a real studio: a prompt with snippets renders from the snapshot, the studio stopped, as it did."""

from __future__ import annotations

import json

import pytest
from prompt_studio import Studio

from apps.accounts.services import api_key_create
from apps.accounts.tests.factories import ProjectFactory
from apps.api.tests.server import StudioServer
from apps.prompts import services
from apps.prompts.tests.factories import PromptFactory, make_version


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # factories set passwords


def _release(prompt, version):
    services.label_move(prompt=prompt, label_name="production", version=version, actor="test")


def test_a_snapshot_renders_includes_offline_exactly_as_the_studio(transactional_db, tmp_path):
    project = ProjectFactory(slug="offline")
    tone = PromptFactory(project=project, name="tone")
    _release(tone, make_version(tone, "Be {{ mood }}{% for t in tags %} #{{ t|upper }}{% endfor %}."))
    main = PromptFactory(project=project, name="main")
    _release(main, make_version(main, 'Hi {{ name }}!\n{% include "tone@production" %}'))
    _release(tone, make_version(tone, "Changed after main was saved."))  # main stays pinned to tone v1
    _, key = api_key_create(project=project, name="offline", scope="read", actor="test")
    values = {"name": "Ada", "mood": "calm", "tags": ["x", "y"]}

    server = StudioServer().start()
    try:
        studio = Studio(server.url, key, timeout=1.0, retries=0)
        online = studio.get_prompt("main")
        served = json.loads(_post(server.url, key, "/api/v1/prompts/main/render", {"variables": values}))["text"]
        snapshot = studio.save_snapshot(tmp_path / "snapshot.json")
    finally:
        server.stop()

    assert served == "Hi Ada!\nBe calm #X #Y."
    assert online.render(**values) == served
    cold = Studio(server.url, key, timeout=0.5, retries=0, snapshot_path=snapshot)
    offline = cold.get_prompt("main")
    assert offline.source == "snapshot"
    assert offline.render(**values) == served


def _post(base_url: str, key: str, path: str, body: dict) -> bytes:
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the test server
        base_url + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.read()

"""The client against a real studio server (gunicorn in a subprocess), including the server stopping mid-test.

The client package imports nothing from the server; these tests do, to seed the
database and start the server.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from prompt_studio import Prompt, RenderError, Studio, StudioError, StudioUnavailable

from apps.accounts.services import api_key_create
from apps.accounts.tests.factories import ProjectFactory
from apps.api.tests.server import StudioServer
from apps.prompts import services
from apps.prompts.tests.factories import PromptFactory, make_version


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # factories set passwords


@pytest.fixture
def seeded(transactional_db):
    project = ProjectFactory(slug="client")
    greet = PromptFactory(project=project, name="greet")
    v1 = make_version(
        greet, "Hello {{ name }}{% for t in tags %} #{{ t | upper }}{% endfor %}", config={"temperature": 0.1}
    )
    v2 = make_version(greet, "Hi {{ name }}!")
    services.label_move(prompt=greet, label_name="production", version=v1, actor="test")
    chat = PromptFactory(project=project, name="chat")
    chat_messages = [{"role": "system", "content": "Be {{ tone }}."}, {"role": "user", "content": "{{ question }}"}]
    services.label_move(
        prompt=chat, label_name="production", version=make_version(chat, kind="chat", messages=chat_messages), actor="t"
    )
    _, raw_key = api_key_create(project=project, name="client-tests", scope="read", actor="test")
    return {"greet": greet, "v1": v1, "v2": v2, "key": raw_key}


@pytest.fixture
def server(seeded):
    studio_server = StudioServer().start()
    yield studio_server
    studio_server.stop()


def _move_production(seeded, version) -> None:
    services.label_move(prompt=seeded["greet"], label_name="production", version=version, actor="test")


def _eventually(check, seconds: float = 3.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {seconds} s")


def test_it_fetches_and_renders_a_released_prompt(server, seeded):
    studio = Studio(server.url, seeded["key"])
    prompt = studio.get_prompt("greet")
    assert (prompt.version, prompt.type, prompt.source) == (1, "text", "studio")
    assert prompt.config == {"temperature": 0.1}
    assert prompt.render(name="Ada", tags=["a", "b"]) == "Hello Ada #A #B"
    assert studio.get_prompt("greet", version=2).render(name="Ada") == "Hi Ada!"
    assert studio.get_prompt("greet", label="latest").version == 2
    chat = studio.get_prompt("chat")
    assert chat.render(tone="brief", question="Why?") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why?"},
    ]


def test_it_renders_with_the_servers_sandbox_rules(server, seeded):
    prompt = Studio(server.url, seeded["key"]).get_prompt("greet")
    with pytest.raises(RenderError) as missing:
        prompt.render(tags=[])
    assert missing.value.variable == "name"
    assert "variable 'name' is missing" in str(missing.value)
    with pytest.raises(RenderError) as wrong:
        prompt.render(name=3, tags=[])
    assert "must be a string" in str(wrong.value)
    sneaky = Prompt("x", 1, "text", "{{ name.__class__.__mro__ }}", None, {}, [{"name": "name", "type": "string"}])
    with pytest.raises(RenderError, match="not allowed"):
        sneaky.render(name="a")
    huge = Prompt("x", 1, "text", "{{ 'a' * 10000000 }}", None, {}, [])
    with pytest.raises(RenderError, match="exceed"):
        huge.render()


def test_it_serves_from_its_cache_within_the_ttl(server, seeded):
    studio = Studio(server.url, seeded["key"], ttl=60)
    first = studio.get_prompt("greet")
    assert all(studio.get_prompt("greet") is first for _ in range(20))
    assert studio.stats["requests"] == 1


def test_it_revalidates_with_its_etag(server, seeded):
    studio = Studio(server.url, seeded["key"], ttl=0.05, max_stale=0.05)
    first = studio.get_prompt("greet")
    time.sleep(0.1)
    assert studio.get_prompt("greet") is first
    assert studio.stats["not_modified"] == 1


def test_it_serves_stale_while_it_revalidates_in_the_background(server, seeded):
    studio = Studio(server.url, seeded["key"], ttl=0.3, max_stale=60)
    assert studio.get_prompt("greet").version == 1
    _move_production(seeded, seeded["v2"])
    time.sleep(1.0)  # past the ttl, and past the server's cache poll interval
    started = time.monotonic()
    assert studio.get_prompt("greet").version == 1  # at once, from the cache
    assert time.monotonic() - started < 0.05
    assert studio.stats["background_refreshes"] == 1
    _eventually(lambda: studio.get_prompt("greet").version == 2)


def test_it_refetches_synchronously_past_the_maximum_staleness(server, seeded):
    studio = Studio(server.url, seeded["key"], ttl=0.1, max_stale=0.2)
    assert studio.get_prompt("greet").version == 1
    _move_production(seeded, seeded["v2"])
    time.sleep(1.0)
    assert studio.get_prompt("greet").version == 2
    assert studio.stats["background_refreshes"] == 0


def test_it_keeps_apps_working_when_the_studio_stops(server, seeded, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="prompt_studio")
    snapshot = tmp_path / "snapshot.json"
    studio = Studio(server.url, seeded["key"], ttl=0.05, max_stale=0.1, timeout=0.5, retries=1, backoff=0.01)
    assert studio.get_prompt("greet").version == 1
    studio.save_snapshot(snapshot)
    assert set(json.loads(snapshot.read_text())["prompts"]) == {"chat", "greet"}

    server.stop()
    time.sleep(0.2)

    # 1. the last good copy
    stale = studio.get_prompt("greet")
    assert (stale.version, stale.render(name="Ada", tags=[])) == (1, "Hello Ada")
    assert "serving last good copy v1 of greet@production" in caplog.text
    # 2. the snapshot, for a process that never reached the studio
    cold = Studio(server.url, seeded["key"], timeout=0.5, retries=0, snapshot_path=snapshot)
    from_snapshot = cold.get_prompt("chat")
    assert from_snapshot.source == "snapshot"
    assert from_snapshot.render(tone="calm", question="?")[0]["content"] == "Be calm."
    # 3. the caller's fallback
    fallback = cold.get_prompt("unknown", fallback="Hello {{ name }} (offline)")
    assert (fallback.source, fallback.render(name="Ada")) == ("fallback", "Hello Ada (offline)")
    assert "serving the caller's fallback of unknown@production" in caplog.text
    # nothing at all: a clear error
    with pytest.raises(StudioUnavailable, match="no cached copy, snapshot or fallback of unknown@production"):
        cold.get_prompt("unknown")
    assert cold.get_prompt("greet", label="staging", fallback="x").source == "fallback"  # the snapshot is production

    server.start()  # back on the same port
    _move_production(seeded, seeded["v2"])
    _eventually(lambda: studio.get_prompt("greet").version == 2)
    assert studio.get_prompt("greet").source == "studio"


def test_it_retries_with_backoff_then_gives_up(server, seeded):
    server.stop()
    studio = Studio(server.url, seeded["key"], timeout=0.5, retries=2, backoff=0.1)
    started = time.monotonic()
    with pytest.raises(StudioUnavailable):
        studio.get_prompt("greet")
    assert studio.stats["requests"] == 3
    assert 0.1 <= time.monotonic() - started < 3


def test_it_raises_the_studios_answer_for_an_unknown_prompt(server, seeded):
    studio = Studio(server.url, seeded["key"])
    with pytest.raises(StudioError) as error:
        studio.get_prompt("nope")
    assert (error.value.status, error.value.code) == (404, "prompt_not_found")
    assert studio.get_prompt("nope", fallback={"type": "text", "template": "fallback"}).render() == "fallback"
    with pytest.raises(StudioError) as bad_key:
        Studio(server.url, "ps_wrong").get_prompt("greet")
    assert bad_key.value.status == 401


def test_it_is_safe_to_share_between_threads(server, seeded):
    studio = Studio(server.url, seeded["key"], ttl=0.05, max_stale=0.5)
    results, errors = [], []

    def work():
        try:
            for _ in range(40):
                results.append(studio.get_prompt("greet").render(name="Ada", tags=[]))
                time.sleep(0.005)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == ["Hello Ada"] * 480
    assert studio.stats["requests"] < 100

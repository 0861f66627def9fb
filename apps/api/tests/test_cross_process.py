"""A label move is visible to every web process within a second, each with its own in-memory cache."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from apps.accounts.services import api_key_create, api_key_revoke
from apps.accounts.tests.factories import ProjectFactory
from apps.api.tests.server import StudioServer
from apps.prompts import services
from apps.prompts.tests.factories import PromptFactory, make_version


def _fetch(server: StudioServer, raw_key: str, path: str, etag: str | None = None) -> tuple[int, dict | None, str]:
    request = urllib.request.Request(f"{server.url}{path}", headers={"Authorization": f"Bearer {raw_key}"})
    if etag:
        request.add_header("If-None-Match", etag)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read()), response.headers["ETag"]
    except urllib.error.HTTPError as exc:
        return exc.code, None, exc.headers.get("ETag", "")


@pytest.fixture
def two_servers(transactional_db):
    # The servers poll the database stamp every 500 ms (the default), as in production.
    servers = [StudioServer(env={"API_CACHE_POLL_MS": "500"}), StudioServer(env={"API_CACHE_POLL_MS": "500"})]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_it_shows_a_label_move_on_every_process_within_a_second(two_servers):
    project = ProjectFactory(slug="xproc")
    prompt = PromptFactory(project=project, name="greet")
    v1, v2 = make_version(prompt, "Hello {{ name }}"), make_version(prompt, "Hi {{ name }}")
    services.label_move(prompt=prompt, label_name="production", version=v1, actor="test")
    _, raw = api_key_create(project=project, name="app", scope="read", actor="test")

    etags = {}
    for server in two_servers:
        for _ in range(3):  # warm each process's cache
            status, body, etag = _fetch(server, raw, "/api/v1/prompts/greet")
            assert (status, body["version"]) == (200, 1)
        assert _fetch(server, raw, "/api/v1/prompts/greet", etag)[0] == 304
        etags[server.port] = etag

    services.label_move(prompt=prompt, label_name="production", version=v2, actor="test")
    moved_at = time.monotonic()
    seen: dict[int, float] = {}
    while len(seen) < len(two_servers) and time.monotonic() - moved_at < 3:
        for server in two_servers:
            if server.port not in seen:
                status, body, _ = _fetch(server, raw, "/api/v1/prompts/greet", etags[server.port])
                if status == 200 and body["version"] == 2:
                    seen[server.port] = time.monotonic() - moved_at
        time.sleep(0.02)
    assert len(seen) == 2, f"only {len(seen)} of 2 processes saw the move within 3 s"
    assert max(seen.values()) < 1.0, f"seconds until each process saw the move: {seen}"


def test_it_refuses_a_revoked_key_on_every_process_within_a_second(two_servers):
    project = ProjectFactory(slug="xproc")
    prompt = PromptFactory(project=project, name="greet")
    services.label_move(prompt=prompt, label_name="production", version=make_version(prompt), actor="test")
    api_key, raw = api_key_create(project=project, name="app", scope="read", actor="test")
    for server in two_servers:
        assert _fetch(server, raw, "/api/v1/prompts/greet")[0] == 200
    api_key_revoke(api_key=api_key, actor="test")
    time.sleep(1.0)
    for server in two_servers:
        assert _fetch(server, raw, "/api/v1/prompts/greet")[0] == 401

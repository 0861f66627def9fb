"""While four hostile renders run at once, /healthz and a prompt fetch on the same web process keep answering.

Every hostile render is refused with a 400 and every health check and fetch in between answers 200. How fast
they answer is a speed target, so it lives in the fetch benchmark (bench/fetch.py,
`healthz_p50_under_attack_vs_quiet` and `fetch_p50_under_attack_vs_quiet`); this test prints its timings only.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.error
import urllib.request

import pytest

from apps.accounts.services import api_key_create
from apps.accounts.tests.factories import ProjectFactory
from apps.api.tests.server import StudioServer
from apps.prompts import services
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.prompts.tests.hostile import CONCURRENT


def _post(url: str, key: str, body: dict) -> int:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _timed_get(url: str, key: str | None = None) -> float:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        response.read()
        assert response.status == 200
    return time.perf_counter() - started


@pytest.fixture
def server(transactional_db):
    studio = StudioServer(threads=8)
    try:
        yield studio.start()
    finally:
        studio.stop()


def test_healthz_and_a_fetch_answer_while_four_hostile_renders_run(server):
    project = ProjectFactory(slug="acme")
    greet = PromptFactory(project=project, name="greet")
    services.label_move(prompt=greet, label_name="production", version=make_version(greet, "Hi {{ name }}"), actor="t")
    for index, (source, variables) in enumerate(CONCURRENT):
        make_version(PromptFactory(project=project, name=f"hostile-{index}"), source, samples=variables)
    _, key = api_key_create(project=project, name="app", scope="read", actor="test")
    quiet_health, quiet_fetch = [], []
    for _ in range(20):
        quiet_health.append(_timed_get(f"{server.url}/healthz?scope=web"))
        quiet_fetch.append(_timed_get(f"{server.url}/api/v1/prompts/greet", key))

    stop = threading.Event()
    statuses: list[int] = []

    def attack(index: int) -> None:
        body = {"version": 1, "variables": CONCURRENT[index][1]}
        while not stop.is_set():
            statuses.append(_post(f"{server.url}/api/v1/prompts/hostile-{index}/render", key, body))

    attackers = [threading.Thread(target=attack, args=(index,)) for index in range(len(CONCURRENT))]
    for thread in attackers:
        thread.start()
    try:
        time.sleep(1.0)  # every attacker has a render under way
        health, fetch = [], []
        for _ in range(20):
            health.append(_timed_get(f"{server.url}/healthz?scope=web"))
            fetch.append(_timed_get(f"{server.url}/api/v1/prompts/greet", key))
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in attackers:
            thread.join()
    print(f"\nquiet: healthz ms median {statistics.median(quiet_health) * 1000:.1f}, "
          f"fetch ms median {statistics.median(quiet_fetch) * 1000:.1f}")  # fmt: skip
    print(f"under attack: healthz ms: median {statistics.median(health) * 1000:.1f}, max {max(health) * 1000:.1f}; "
          f"fetch ms: median {statistics.median(fetch) * 1000:.1f}, max {max(fetch) * 1000:.1f}; "
          f"{len(statuses)} hostile renders answered {sorted(set(statuses))}")  # fmt: skip
    assert statuses and set(statuses) == {400}  # _timed_get asserted that each check and fetch answered 200
    assert len(health) == len(fetch) == 20

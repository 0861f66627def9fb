"""The MCP server through the SDK's own client: `manage.py mcp` over stdio, and streamable HTTP against gunicorn.

The database is seeded in the test; the server runs in a subprocess against it,
and the client talks to it only through the MCP transport.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio
import httpx
import pytest
from django.conf import settings
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

from apps.accounts.services import api_key_create
from apps.accounts.tests.factories import UserFactory
from apps.api.tests.server import StudioServer, database_url
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version, record
from apps.experiments.models import Experiment
from apps.prompts import services
from apps.prompts.models import Prompt
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def seeded(project, simulated_endpoint, member):
    from apps.reviews.services import policy_save

    greet = PromptFactory(project=project, name="greet", description="Says hello to a user")
    v1 = make_version(greet, "Hello {{ name }}, you are {{ age }}", samples={"name": "Ada", "age": 36})
    make_version(greet, "Hi {{ name }}, aged {{ age }}!", samples={"name": "Ada", "age": 36})
    services.label_move(prompt=greet, label_name="production", version=v1, actor="test")
    chat = PromptFactory(project=project, name="helper")
    messages = [{"role": "system", "content": "Be {{ tone }}."}, {"role": "user", "content": "{{ question }}"}]
    services.label_move(
        prompt=chat, label_name="production", version=make_version(chat, kind="chat", messages=messages), actor="t"
    )
    policy_save(
        project=project,
        label_name="production",
        protected=True,
        required_approvals=1,
        approver_roles=["reviewer"],
        actor=member("admin"),
    )
    people = [record(name="Ada", age=36), record(name="Bo", age=7), record(name="Cy", age=41)]
    make_dataset_version(DatasetFactory(project=project, name="people"), people)
    simulated_endpoint("echo", "openai/echo")
    _send_traces(project)
    keys = {}
    for scope in ("read", "write"):
        _, keys[scope] = api_key_create(project=project, name=f"mcp-{scope}", scope=scope, actor=UserFactory())
    return {"project": project, "greet": greet, **keys}


def _send_traces(project) -> None:
    """Two production traces of greet v1 and one failed trace of helper, written as the ingest task writes them."""
    from apps.traces import ingest
    from apps.traces.records import native_batch
    from apps.traces.tests.factories import generation, new_id

    spans = [
        generation(new_id(), prompt={"name": "greet", "version": 1, "label": "production"}, output="Hello Ada"),
        generation(new_id(), prompt={"name": "greet", "version": 1, "label": "production"}, output="Hello Bo"),
        generation(new_id(), prompt={"name": "helper", "version": 1, "label": "production"}, status="error"),
    ]
    records = native_batch({"generations": spans})
    batch = ingest.batch_accept(
        project_id=project.pk, source="native", spans=records[0], traces=records[1], scores=records[2]
    )
    assert ingest.batch_expand(batch_id=batch.pk) is True


@pytest.fixture
def http_server(seeded):
    server = StudioServer().start()
    yield server
    server.stop()


@asynccontextmanager
async def http_session(url: str, key: str):
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        async with streamable_http_client(f"{url}/mcp/", http_client=http) as (read, write, _):
            async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=30)) as session:
                await session.initialize()
                yield session


@asynccontextmanager
async def stdio_session(key: str):
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "STUDIO_DATA_DIR": str(settings.DATA_DIR),
        "API_THROTTLE_RATE": "off",
        "PROMPT_STUDIO_KEY": key,
    }
    params = StdioServerParameters(
        command=sys.executable, args=[str(settings.BASE_DIR / "manage.py"), "mcp"], env=env, cwd=settings.BASE_DIR
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=30)) as session:
            await session.initialize()
            yield session


def _data(result: types.CallToolResult) -> dict:
    return json.loads(result.content[0].text)


async def _read_tour(session: ClientSession) -> dict:
    """What a read key can do, as an agent would try it."""
    seen: dict = {}
    seen["tools"] = sorted(tool.name for tool in (await session.list_tools()).tools)
    seen["search"] = _data(await session.call_tool("list_prompts", {"query": "hello"}))
    seen["get"] = _data(await session.call_tool("get_prompt", {"name": "greet", "version": 2}))
    seen["render"] = _data(
        await session.call_tool("render_prompt", {"name": "greet", "variables": {"name": "Bo", "age": 7}})
    )
    seen["bad_render"] = await session.call_tool("render_prompt", {"name": "greet", "variables": {"name": "Bo"}})
    seen["diff"] = _data(await session.call_tool("diff_versions", {"name": "greet", "old": "production", "new": 2}))
    seen["datasets"] = _data(await session.call_tool("list_datasets", {}))
    seen["traces"] = _data(await session.call_tool("recent_traces", {"name": "greet", "label": "production"}))
    seen["traces_found"] = _data(await session.call_tool("recent_traces", {"name": "greet", "search": "Bo"}))
    seen["traces_none"] = _data(await session.call_tool("recent_traces", {"name": "helper", "status": "ok"}))
    seen["traces_bad"] = await session.call_tool("recent_traces", {"name": "greet", "since": "last tuesday"})
    seen["resources"] = sorted(str(r.uri) for r in (await session.list_resources()).resources)
    resource = await session.read_resource("prompt-studio://prompts/greet/versions/2")
    seen["resource"] = json.loads(resource.contents[0].text)
    prompts = (await session.list_prompts()).prompts
    seen["prompts"] = {p.name: [(a.name, a.required) for a in p.arguments] for p in prompts}
    seen["prompt_text"] = await session.get_prompt("greet", {"name": "Cy", "age": "41"})
    seen["prompt_chat"] = await session.get_prompt("helper", {"tone": "brief", "question": "Why?"})
    try:
        await session.get_prompt("greet", {"name": "Cy", "age": "forty"})
    except McpError as exc:
        seen["prompt_bad_argument"] = exc.error.message
    seen["write_as_read"] = await session.call_tool(
        "create_version", {"name": "greet", "type": "text", "template": "Yo {{ name }}"}
    )
    return seen


def _check_read_tour(seen: dict) -> None:
    assert "create_version" not in seen["tools"] and "start_experiment" not in seen["tools"]
    assert {"list_prompts", "get_prompt", "render_prompt", "diff_versions", "list_datasets"} <= set(seen["tools"])
    assert [p["name"] for p in seen["search"]["prompts"]] == ["greet"]
    assert seen["get"]["version"] == 2 and seen["get"]["template"] == "Hi {{ name }}, aged {{ age }}!"
    assert seen["render"]["text"] == "Hello Bo, you are 7"
    assert seen["bad_render"].isError
    assert _data(seen["bad_render"])["code"] == "invalid_variable" and _data(seen["bad_render"])["variable"] == "age"
    assert seen["diff"]["old"]["version"] == 1 and seen["diff"]["new"]["version"] == 2
    assert "-Hello {{ name }}, you are {{ age }}" in seen["diff"]["diff"]
    assert "+Hi {{ name }}, aged {{ age }}!" in seen["diff"]["diff"]
    assert [d["name"] for d in seen["datasets"]["datasets"]] == ["people"]
    assert len(seen["traces"]["traces"]) == 2
    assert {(t["prompt"]["name"], t["prompt"]["version"], t["prompt"]["linked"]) for t in seen["traces"]["traces"]} == {
        ("greet", 1, True)
    }
    assert len(seen["traces_found"]["traces"]) == 1 and seen["traces_none"]["traces"] == []
    assert seen["traces_bad"].isError and _data(seen["traces_bad"])["code"] == "invalid_filter"
    assert "prompt-studio://prompts/greet/labels/production" in seen["resources"]
    assert "prompt-studio://prompts/helper/labels/production" in seen["resources"]
    assert seen["resource"]["version"] == 2
    assert seen["prompts"] == {"greet": [("name", True), ("age", True)], "helper": [("tone", True), ("question", True)]}
    assert [m.content.text for m in seen["prompt_text"].messages] == ["Hello Cy, you are 41"]
    assert [(m.role, m.content.text) for m in seen["prompt_chat"].messages] == [("user", "Be brief."), ("user", "Why?")]
    assert "age" in seen["prompt_bad_argument"] and "forty" in seen["prompt_bad_argument"]
    assert seen["write_as_read"].isError and _data(seen["write_as_read"])["code"] == "write_scope_required"


async def _write_tour(session: ClientSession) -> dict:
    seen: dict = {}
    seen["tools"] = {tool.name for tool in (await session.list_tools()).tools}
    seen["created"] = _data(
        await session.call_tool(
            "create_version",
            {"name": "greet", "type": "text", "template": "Hey {{ name }}", "message": "short", "label": "production"},
        )
    )
    seen["staged"] = _data(
        await session.call_tool(
            "create_version", {"name": "greet", "type": "text", "template": "Hey there {{ name }}", "label": "staging"}
        )
    )
    seen["stale"] = await session.call_tool(
        "create_version", {"name": "greet", "type": "text", "template": "Old {{ name }}", "parent_version": 1}
    )
    seen["new_prompt"] = _data(
        await session.call_tool(
            "create_version", {"name": "farewell", "type": "text", "template": "Bye {{ name }}", "create_prompt": True}
        )
    )
    started = await session.call_tool(
        "start_experiment",
        {
            "name": "from an agent",
            "dataset": "people",
            "variants": [{"name": "A", "prompt": "greet", "label": "staging", "endpoint": "echo"}],
        },
    )
    seen["started"] = _data(started)
    seen["status"] = _data(await session.call_tool("get_experiment", {"id": seen["started"]["id"]}))
    seen["summary"] = await session.call_tool("get_experiment_summary", {"id": seen["started"]["id"]})
    seen["missing"] = await session.call_tool("get_experiment", {"id": 999999})
    seen["invalid_input"] = await session.call_tool("get_experiment", {"id": "one"})
    return seen


def _check_write_tour(seen: dict, greet: Prompt) -> None:
    assert {"create_version", "start_experiment"} <= seen["tools"]
    created = seen["created"]
    assert created["created"] is True and created["version"] == 3
    # The gate holds: the version is saved, the protected label stays on v1.
    assert created["label"]["moved"] is False and created["label"]["code"] == "review_required"
    assert greet.labels.get(name="production").version.number == 1
    assert seen["staged"]["label"]["moved"] is True and greet.labels.get(name="staging").version.number == 4
    assert seen["stale"].isError and _data(seen["stale"])["code"] == "stale_parent"
    assert seen["new_prompt"]["version"] == 1 and Prompt.objects.filter(name="farewell").exists()
    experiment = Experiment.objects.get(pk=seen["started"]["id"])
    assert experiment.name == "from an agent" and seen["status"]["cells"]["total"] == 3
    assert seen["status"]["variants"][0]["prompt"].startswith("greet")
    assert not seen["summary"].isError
    assert seen["missing"].isError and _data(seen["missing"])["code"] == "experiment_not_found"
    assert seen["invalid_input"].isError and "Input validation error" in seen["invalid_input"].content[0].text


def test_it_serves_a_read_key_over_streamable_http(seeded, http_server):
    async def tour():
        async with http_session(http_server.url, seeded["read"]) as session:
            return await _read_tour(session)

    _check_read_tour(anyio.run(tour))


def test_it_serves_a_write_key_over_streamable_http_and_the_gate_holds(seeded, http_server):
    async def tour():
        async with http_session(http_server.url, seeded["write"]) as session:
            return await _write_tour(session)

    _check_write_tour(anyio.run(tour), seeded["greet"])


def test_the_http_transport_refuses_a_missing_or_bad_key(seeded, http_server):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    missing = httpx.post(f"{http_server.url}/mcp/", json=body, headers=headers)
    assert missing.status_code == 401 and missing.json()["code"] == "not_authenticated"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    bad = httpx.post(f"{http_server.url}/mcp/", json=body, headers={**headers, "Authorization": "Bearer ps_nope"})
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_key"
    stream = httpx.get(f"{http_server.url}/mcp/", headers={"Accept": "text/event-stream", **_auth(seeded["read"])})
    assert stream.status_code == 405 and stream.headers["Allow"] == "POST"


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_it_serves_a_read_key_over_stdio(seeded):
    async def tour():
        async with stdio_session(seeded["read"]) as session:
            return await _read_tour(session)

    _check_read_tour(anyio.run(tour))


def test_it_serves_a_write_key_over_stdio_and_the_gate_holds(seeded):
    async def tour():
        async with stdio_session(seeded["write"]) as session:
            return await _write_tour(session)

    _check_write_tour(anyio.run(tour), seeded["greet"])


def test_manage_py_mcp_refuses_to_start_without_a_valid_key(seeded):
    import subprocess

    env = {**os.environ, "DATABASE_URL": database_url(), "STUDIO_DATA_DIR": str(settings.DATA_DIR)}
    env.pop("PROMPT_STUDIO_KEY", None)
    for extra, message in (([], "Give an API key"), (["--key", "ps_wrong"], "not valid")):
        done = subprocess.run(
            [sys.executable, "manage.py", "mcp", *extra],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0 and message in done.stderr

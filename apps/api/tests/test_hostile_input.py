"""What the API cannot take is refused with a JSON 4xx that names the problem: never a 500, never read into memory."""

from __future__ import annotations

import json
import socket
import time

import pytest
from django.test import Client

from apps.api.tests.server import StudioServer
from apps.datasets.models import Dataset

pytestmark = pytest.mark.django_db

DEEP = "[" * 50_000 + "]" * 50_000
HUGE = "9" * 5_000

# (a JSON body, the words the 400 must contain)
HOSTILE_JSON = [
    ('{"variables": {"x": NaN}}', "NaN is not a JSON number"),
    ('{"variables": {"x": -Infinity}}', "-Infinity is not a JSON number"),
    ('{"variables": {"x": ' + HUGE + "}}", "a number with 5,000 digits"),
    ('{"variables": {"x": 1' + HUGE + ".5}}", "a number with 5,002 digits"),
    ('{"variables": {"x": 1e999}}', "too large to store"),
    ('{"variables": {"x": ' + DEEP + "}}", "nested deeper than 100 levels"),
]


@pytest.mark.parametrize("body, problem", HOSTILE_JSON)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/prompts/greet/render",
        "/api/v1/prompts/greet/versions",
        "/api/v1/prompts/greet/labels/staging",
        "/api/v1/experiments",
    ],
)
def test_hostile_json_bodies_are_a_400_that_names_the_problem(client, make_key, released, path, body, problem):
    key = make_key("write")
    response = client.post(path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "invalid_json"
    assert problem in response.json()["detail"]


@pytest.mark.parametrize("body, problem", HOSTILE_JSON)
def test_hostile_json_lines_are_a_400_that_names_the_line(client, make_key, body, problem):
    rows = '{"input": {"q": "fine"}}\n' + body.replace('"variables"', '"input"')
    response = client.post(
        "/api/v1/datasets/qa/versions?create=true",
        rows,
        content_type="application/x-ndjson",
        HTTP_AUTHORIZATION=f"Bearer {make_key('write')}",
    )
    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "invalid_jsonl"
    assert response.json()["detail"].startswith("Line 2, column ") and problem in response.json()["detail"]
    assert not Dataset.objects.exists()


def test_a_json_body_over_the_limit_is_a_413(client, make_key, released, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    body = json.dumps({"variables": {"name": "x" * 5000}})
    response = client.post(
        "/api/v1/prompts/greet/render", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {make_key()}"
    )
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large" and "DATA_UPLOAD_MAX_MEMORY_SIZE" in response.json()["detail"]


def test_json_lines_over_dataset_max_upload_mb_are_a_413(client, make_key, settings):
    settings.DATASET_MAX_UPLOAD_MB = 1
    line = json.dumps({"input": {"q": "x" * 1000}})
    body = "\n".join([line] * 1100)  # about 1.1 MB, sent without an honest size would still be cut at 1 MB + 1
    response = client.post(
        "/api/v1/datasets/qa/versions?create=true",
        body,
        content_type="application/x-ndjson",
        HTTP_AUTHORIZATION=f"Bearer {make_key('write')}",
    )
    assert response.status_code == 413
    assert "DATASET_MAX_UPLOAD_MB" in response.json()["detail"]
    assert not Dataset.objects.exists()


@pytest.fixture
def live_server_with_key(transactional_db, make_key):
    key = make_key("write")
    server = StudioServer(env={"DATASET_MAX_UPLOAD_MB": "50"}).start()
    try:
        yield server, key
    finally:
        server.stop()


def test_a_60_mb_body_is_refused_before_it_is_sent(live_server_with_key):
    """The server answers 413 from the headers alone: the client has sent none of the 60 MB it announced."""
    server, key = live_server_with_key
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            (
                "POST /api/v1/datasets/big/versions?create=true HTTP/1.1\r\n"
                "Host: 127.0.0.1\r\n"
                f"Authorization: Bearer {key}\r\n"
                "Content-Type: application/x-ndjson\r\n"
                f"Content-Length: {60 * 1024 * 1024}\r\n"
                "Connection: close\r\n\r\n"
                '{"input": {"q": 1}}\n'
            ).encode()
        )
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(body)["code"] == "body_too_large"
    assert time.monotonic() - started < 5
    assert not Dataset.objects.exists()


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "options"])
def test_an_unknown_api_path_is_the_json_404_for_every_method(method, make_key):
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)("/api/v1/no/such/thing", HTTP_AUTHORIZATION=f"Bearer {make_key()}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "detail": "No API endpoint at /api/v1/no/such/thing."}

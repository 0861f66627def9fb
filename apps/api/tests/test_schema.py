"""The OpenAPI schema validates, the docs page loads from vendored assets, and fuzzing it finds no server error."""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from studio.wsgi import application

# Dataset rows are posted as JSON Lines: generate good rows, and junk bytes.
_ROW = st.fixed_dictionaries({"input": st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=3)})
schemathesis.openapi.media_type(
    "application/x-ndjson",
    st.one_of(
        st.lists(_ROW, max_size=5).map(lambda rows: "\n".join(json.dumps(row) for row in rows).encode()),
        st.binary(max_size=50),
    ),
)
# OTLP protobuf bodies: junk bytes (the real SDK's protobuf is tested in apps/traces/tests).
schemathesis.openapi.media_type("application/x-protobuf", st.binary(max_size=200))


@pytest.fixture
def wsgi_keeps_connection(db):
    """In-process WSGI calls must not close the test's database connection (the test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def write_key(make_key, released):
    return make_key("write", name="fuzzer")


def test_it_answers_every_generated_request_without_a_server_error(wsgi_keeps_connection, write_key):
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema?format=json", application)
    headers = {"Authorization": f"Bearer {write_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 35  # prompts (8), datasets (6), experiments (7), traces (5), monitoring (6), canaries (3)

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case):
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        no_server_error()


@pytest.mark.django_db
def test_it_serves_a_valid_schema_and_the_docs_page(client):
    schema_response = client.get("/api/v1/schema?format=json")
    assert schema_response.status_code == 200
    paths = schema_response.json()["paths"]
    assert {"/api/v1/prompts/{name}", "/api/v1/releases", "/api/v1/prompts/{name}/render"} <= set(paths)
    assert schema_response.json()["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()

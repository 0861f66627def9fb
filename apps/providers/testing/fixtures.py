"""pytest fixtures around the simulated model server; loaded for every app by the root conftest.

`model_server` runs one server per test session on 127.0.0.1 (a Celery worker
subprocess reaches it over HTTP); `sim_server` resets its behaviour and request
log for one test; `simulated_endpoint` saves an endpoint of a project that
points at it, through the real service.
"""

from __future__ import annotations

import pytest

from apps.providers.testing.server import ModelServer


@pytest.fixture(scope="session")
def model_server():
    server = ModelServer(host="127.0.0.1", port=0).start()
    yield server
    server.stop()


@pytest.fixture
def sim_server(model_server):
    model_server.reset()
    yield model_server
    model_server.reset()


@pytest.fixture
def simulated_endpoint(sim_server, project):
    """make(name="Echo", model="openai/echo", **fields) -> ModelEndpoint of `project` on the simulated server."""
    from apps.providers.models import EndpointKind
    from apps.providers.services import endpoint_create

    def make(name: str = "Simulated echo", model: str = "openai/echo", *, for_project=None, **fields):
        fields.setdefault("max_retries", 2)
        fields.setdefault("timeout_seconds", 10)
        return endpoint_create(
            project=for_project or project,
            actor="test",
            name=name,
            kind=EndpointKind.SIMULATED,
            model=model,
            api_base=sim_server.url,
            **fields,
        )

    return make

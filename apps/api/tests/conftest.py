from __future__ import annotations

import pytest

from apps.accounts.services import api_key_create
from apps.accounts.tests.factories import UserFactory
from apps.api import cache
from apps.prompts import services
from apps.prompts.tests.factories import PromptFactory, make_version


@pytest.fixture(autouse=True)
def fresh_api_cache(settings):
    """Each test starts with empty per-process caches that re-read the database stamp on every request."""
    settings.API_CACHE_POLL_MS = 0
    settings.API_THROTTLE_RATE = "off"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # factories set passwords
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_key(project):
    def make(scope: str = "read", *, of_project=None, name: str = "app"):
        _, raw = api_key_create(project=of_project or project, name=name, scope=scope, actor=UserFactory())
        return raw

    return make


@pytest.fixture
def api(client):
    """api(raw_key).get(path, **headers) -> response; JSON bodies for post."""

    class Api:
        def __init__(self, raw_key: str | None):
            self.headers = {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"} if raw_key else {}

        def get(self, path, **headers):
            return client.get(path, **self.headers, **headers)

        def post(self, path, data=None, **headers):
            return client.post(path, data or {}, content_type="application/json", **self.headers, **headers)

    return Api


@pytest.fixture
def released(project):
    """A text prompt 'greet' with v1 (production) and v2 (staging)."""
    prompt = PromptFactory(project=project, name="greet")
    v1 = make_version(prompt, "Hello {{ name }}", samples={"name": "Ada"}, config={"temperature": 0.2})
    v2 = make_version(prompt, "Hi {{ name }}, you are {{ age }}", samples={"name": "Ada", "age": 36})
    services.label_move(prompt=prompt, label_name="production", version=v1, actor="test")
    services.label_move(prompt=prompt, label_name="staging", version=v2, actor="test")
    return prompt

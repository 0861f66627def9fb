import pytest

from apps.api.tests.conftest import api, fresh_api_cache, make_key  # noqa: F401 - shared fixtures
from apps.prompts import services as prompt_services
from apps.prompts.tests.factories import PromptFactory, make_version


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def split_prompt(project):
    """'greet' with v1, v2 (production) and v3, on an unprotected label."""
    prompt = PromptFactory(project=project, name="greet")
    make_version(prompt, "Hello {{ name }}", samples={"name": "Ada"})
    v2 = make_version(prompt, "Hi {{ name }}", samples={"name": "Ada"})
    make_version(prompt, "Hey {{ name }}, welcome", samples={"name": "Ada"})
    prompt_services.label_move(prompt=prompt, label_name="production", version=v2, actor="test")
    return prompt

import pytest

from apps.prompts.tests.factories import PromptFactory, make_version
from apps.reviews.tests.factories import ReleasePolicyFactory


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # The factories set a password on every user; PBKDF2's cost would dominate these tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def cast(member):
    """The people of a review: the author (an editor who writes and asks), a reviewer and an admin."""

    class Cast:
        author = member("editor", "alice")
        reviewer = member("reviewer", "rita")
        admin = member("admin", "adam")

    return Cast


@pytest.fixture
def prompt(project, cast):
    prompt = PromptFactory(project=project, name="greet")
    make_version(prompt, "Hello {{ name }}", actor=cast.author, samples={"name": "Dana"})
    make_version(prompt, "Hi {{ name }}!", actor=cast.author, samples={"name": "Dana"})
    make_version(prompt, "Hey {{ name }}, welcome.", actor=cast.author, samples={"name": "Dana"})
    return prompt


@pytest.fixture
def policy(project):
    return ReleasePolicyFactory(project=project, label_name="production", required_approvals=1)


def version(prompt, number):
    return prompt.versions.get(number=number)

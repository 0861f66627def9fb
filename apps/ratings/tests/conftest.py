import pytest

from apps.ratings.tests.factories import make_experiment


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def raters(member):
    return [member("editor", f"rater{i}") for i in range(1, 4)]


@pytest.fixture
def experiment(project, editor):
    return make_experiment(project, editor)

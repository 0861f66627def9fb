import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from studio import env


def test_it_reads_typed_values(monkeypatch):
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env.env_bool("X_BOOL", False) is True
    assert env.env_int("X_INT", 1) == 42
    assert env.env_list("X_LIST", []) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "reader,value",
    [(lambda: env.env_bool("X_BAD", False), "maybe"), (lambda: env.env_int("X_BAD", 1, minimum=0), "-3")],
)
def test_it_fails_loudly_on_a_bad_value_naming_the_variable(monkeypatch, reader, value):
    monkeypatch.setenv("X_BAD", value)
    with pytest.raises(ImproperlyConfigured, match="X_BAD"):
        reader()


def _start(env_vars: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','studio.settings'); django.setup()",
        ],
        cwd=settings.BASE_DIR,
        env={"PATH": "/usr/bin:/bin", "STUDIO_DATA_DIR": str(settings.DATA_DIR), **env_vars},
        capture_output=True,
        text=True,
    )


def test_production_refuses_to_start_with_the_default_secret_key():
    result = _start({"DEBUG": "false"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_it_refuses_an_unknown_database_scheme():
    result = _start({"DATABASE_URL": "mysql://x@y/z"})
    assert result.returncode != 0 and "DATABASE_URL" in result.stderr


def test_seed_demo_refuses_to_run_in_production():
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"],
        cwd=settings.BASE_DIR,
        env={
            "PATH": "/usr/bin:/bin",
            "DEBUG": "false",
            "SECRET_KEY": "x" * 50,
            "STUDIO_DATA_DIR": str(settings.DATA_DIR),
        },
        capture_output=True,
        text=True,
    )
    # A production configuration does not install the demo app, so the command does not exist there.
    assert result.returncode != 0 and "Unknown command: 'seed_demo'" in result.stderr

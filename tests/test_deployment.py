"""docker-compose.yml parses, and every command it and the Dockerfile run exists in the project."""

import importlib.util
import re
import shutil
from pathlib import Path

import yaml
from django.conf import settings

from studio.celery import QUEUES

ROOT = Path(settings.BASE_DIR)


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_services_of_a_deployment():
    services = _compose()["services"]
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(services)
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["CELERY_BROKER_URL"].startswith("redis://")
        assert env["DEBUG"] == "false"


def _check_command(command: list[str]) -> None:
    program = command[0]
    if program == "gunicorn":
        module, _, attribute = command[1].partition(":")
        assert importlib.util.find_spec(module) is not None, module
        assert attribute == "application"
        assert shutil.which("gunicorn", path=str(ROOT / ".venv" / "bin")) or importlib.util.find_spec("gunicorn")
    elif program == "celery":
        assert command[1:3] == ["-A", "studio"]
        assert importlib.util.find_spec("studio.celery") is not None
        if "-Q" in command:
            queues = set(command[command.index("-Q") + 1].split(","))
            assert queues <= set(QUEUES), queues
    elif program == "python":
        if command[1] == "manage.py":
            assert (ROOT / "manage.py").exists()
    elif program in ("redis-server", "redis-cli", "CMD-SHELL", "CMD"):
        return
    else:
        raise AssertionError(f"unknown program in docker-compose.yml: {program}")


def test_every_command_in_compose_exists_in_the_project():
    for name, service in _compose()["services"].items():
        if "command" in service and name in ("web", "worker", "beat"):
            _check_command(service["command"])
        health = service.get("healthcheck", {}).get("test", [])
        if name == "web":
            assert "/healthz" in " ".join(health)


def test_the_dockerfile_copies_only_what_exists_and_runs_a_real_server():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+) ", dockerfile, flags=re.M):
        assert (ROOT / source).exists(), source
    entrypoint = re.search(r'ENTRYPOINT \["([^"]+)"\]', dockerfile).group(1)
    assert (ROOT / entrypoint.removeprefix("/app/")).exists()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, flags=re.M).group(1)
    _check_command(yaml.safe_load(cmd))

"""deploy/validate.py, as CI runs it: the shipped manifests and compose file pass, broken copies fail by name."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
SCRIPT = ROOT / "deploy/validate.py"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def _validate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def manifests(tmp_path) -> Path:
    copy = tmp_path / "kubernetes"
    shutil.copytree(ROOT / "deploy/kubernetes", copy)
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@needs_kubectl
def test_the_shipped_manifests_are_valid():
    done = _validate("kubernetes")
    assert done.returncode == 0, done.stderr
    assert "overlays/production: 19 objects checked" in done.stdout
    assert "overlays/dev: 21 objects checked" in done.stdout


@needs_kubectl
@pytest.mark.parametrize(
    "file,old,new,problem",
    [
        ("base/web.yaml", "containerPort: 8000", "containerPort: eight-thousand",
         "Deployment/prompt-studio-web: spec.template.spec.containers.0.ports.0.containerPort"),
        ("base/beat.yaml", "  replicas: 1", "  replica: 1", "Deployment/prompt-studio-beat"),
        ("base/autoscaling.yaml", "  minReplicaCount: 1", "  minReplicas: 1",
         "ScaledObject/prompt-studio-worker-interactive: spec: Additional properties are not allowed"),
        ("base/autoscaling.yaml", "        listName: interactive\n", "",
         ""),  # harmless for the schema (metadata is a free map), so it must stay valid
        ("base/disruption-budgets.yaml", "apiVersion: policy/v1", "apiVersion: policy/v2",
         "PodDisruptionBudget/prompt-studio-web: no schema for policy/v2 PodDisruptionBudget"),
    ],
)  # fmt: skip
def test_a_broken_manifest_fails_naming_the_object(manifests, file, old, new, problem):
    _edit(manifests / file, old, new)
    done = _validate("kubernetes", str(manifests / "overlays/dev"))
    if not problem:
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 1, done.stdout
    assert problem in done.stderr, done.stderr


@needs_kubectl
def test_a_kustomization_that_does_not_render_fails(manifests):
    _edit(manifests / "base/kustomization.yaml", "  - beat.yaml\n", "  - missing.yaml\n")
    done = _validate("kubernetes", str(manifests / "base"))
    assert done.returncode == 1 and "kubectl kustomize failed" in done.stderr


def test_the_compose_file_follows_the_compose_specification():
    done = _validate("compose")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "old,new,problem",
    [
        ('    command: ["celery", "-A", "studio", "beat"', '    comand: ["celery", "-A", "studio", "beat"',
         "services.beat: 'comand' does not match any of the regexes"),
        ("      interval: 5s\n", "      interval: [5]\n", "services.postgres.healthcheck.interval"),
    ],
)  # fmt: skip
def test_a_broken_compose_file_fails_naming_the_field(tmp_path, old, new, problem):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((ROOT / "docker-compose.yml").read_text().replace(old, new, 1))
    assert broken.read_text() != (ROOT / "docker-compose.yml").read_text()
    done = _validate("compose", str(broken))
    assert done.returncode == 1 and problem in done.stderr, done.stderr

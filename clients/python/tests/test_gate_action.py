"""The GitHub Action's own steps, run as the example workflow runs them, against a live studio.

The client is installed as a package (its `prompt-studio` console script), the
steps' shell scripts are taken from `.github/actions/prompt-studio-gate/action.yml`
with the workflow's inputs, and they run against gunicorn with a real Celery
worker and the simulated model server, on demo-like data: a support-reply chat
prompt released under a protected production label and a support-tickets dataset.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from apps.accounts.services import api_key_create, membership_add
from apps.accounts.tests.factories import UserFactory
from apps.api.tests.server import StudioServer
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version, record
from apps.experiments.models import Experiment
from apps.prompts import services
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

ACTION = settings.BASE_DIR / ".github/actions/prompt-studio-gate/action.yml"
WORKFLOW = settings.BASE_DIR / "docs/prompt-gate.example.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
TICKETS = [
    ("Ada", "My invoice is wrong."),
    ("Bo", "The app crashes on start."),
    ("Cy", "How do I export my data?"),
    ("Di", "I was charged twice."),
    ("Ed", "Login link expired."),
    ("Fay", "Where is the dark mode?"),
    ("Gus", "Can I change my plan?"),
    ("Hal", "The report is empty."),
]


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`pip install` of the client from a copy of clients/python, as the action's install step does."""
    action_client = (ACTION.parent / "../../../clients/python").resolve()
    assert (action_client / "pyproject.toml").is_file()  # the path the action's install step uses
    work = tmp_path_factory.mktemp("client")
    source = work / "source"
    shutil.copytree(action_client, source, ignore=shutil.ignore_patterns("tests", "*.egg-info", "build"))
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--target", str(target), str(source)],
        check=True,
        timeout=300,
    )  # fmt: skip
    assert (target / "bin/prompt-studio").is_file()
    return target


@pytest.fixture
def demo_like(project, simulated_endpoint):
    from apps.reviews.services import policy_save

    reply = PromptFactory(project=project, name="support-reply", description="Replies to a ticket")
    messages = [
        {"role": "system", "content": "You are a friendly support agent."},
        {"role": "user", "content": "Customer {{ customer_name }} writes:\n{{ ticket }}"},
    ]
    v1 = make_version(reply, kind="chat", messages=messages, samples={"customer_name": "Ada", "ticket": "Hi"})
    services.label_move(prompt=reply, label_name="production", version=v1, actor="test")
    admin = UserFactory()
    membership_add(project=project, username=admin.username, role="admin", actor="test")
    policy_save(
        project=project, label_name="production", protected=True, required_approvals=1,
        approver_roles=["reviewer"], actor=admin,
    )  # fmt: skip
    rows = [record(customer_name=name, ticket=ticket) for name, ticket in TICKETS]
    make_dataset_version(DatasetFactory(project=project, name="support-tickets"), rows)
    simulated_endpoint("Simulated echo", "openai/echo")  # answers with the last user message
    _, key = api_key_create(project=project, name="ci", scope="write", actor="test")
    return {"prompt": reply, "key": key}


@pytest.fixture
def studio(demo_like, celery_worker):
    server = StudioServer().start()
    yield server
    server.stop()


def _inputs(**overrides: str) -> dict[str, str]:
    """The action's inputs: its defaults, then what the example workflow passes, then the test's values."""
    action = yaml.safe_load(ACTION.read_text())
    values = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    workflow = yaml.safe_load(WORKFLOW.read_text())
    step = next(s for s in workflow["jobs"]["gate"]["steps"] if "prompt-studio-gate" in str(s.get("uses", "")))
    values.update({k: str(v) for k, v in step["with"].items()})
    values.update(overrides)
    return values


def _run_action(inputs: dict[str, str], repo: Path, client: Path, tmp: Path) -> tuple[int, str]:
    """Run the action's shell steps in order, as a runner would; stop at the first that fails."""
    action = yaml.safe_load(ACTION.read_text())

    def expand(text: str) -> str:
        def value(match: re.Match) -> str:
            expression = match.group(1)
            if expression.startswith("inputs."):
                return inputs[expression.removeprefix("inputs.")]
            return "prompt change from the test"  # github.event.pull_request.title || github.sha

        return EXPRESSION.sub(value, text)

    summary, output = tmp / "step-summary.md", tmp / "github-output"
    log = []
    for step in action["runs"]["steps"]:
        if "run" not in step or step["name"] == "Install the Prompt Studio client":
            continue  # setup-python, and the install the `installed` fixture did the same way
        env = {
            **os.environ,
            "PATH": f"{client / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(client),
            "GITHUB_ACTION_PATH": str(ACTION.parent),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_OUTPUT": str(output),
            "RUNNER_TEMP": str(tmp),
            **{name: expand(str(value)) for name, value in step.get("env", {}).items()},
        }
        done = subprocess.run(
            ["bash", "-e", "-c", expand(step["run"])], cwd=repo, env=env, capture_output=True, text=True, timeout=300
        )
        log.append(f"$ {step['name']}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            return done.returncode, "\n".join(log)
    return 0, "\n".join(log)


def _repo_with_prompts(client: Path, studio: StudioServer, key: str, tmp: Path) -> Path:
    repo = tmp / "repo"
    repo.mkdir()
    env = {**os.environ, "PYTHONPATH": str(client), "PROMPT_STUDIO_URL": studio.url, "PROMPT_STUDIO_KEY": key}
    subprocess.run([str(client / "bin/prompt-studio"), "pull"], cwd=repo, env=env, check=True, timeout=60)
    return repo


def test_the_gate_passes_a_better_candidate_and_fails_one_that_is_not(installed, studio, demo_like, tmp_path):
    repo = _repo_with_prompts(installed, studio, demo_like["key"], tmp_path)
    prompt_file = repo / "prompts/support-reply.yaml"
    original = prompt_file.read_text()
    inputs = _inputs(
        url=studio.url,
        key=demo_like["key"],
        endpoint="Simulated echo",
        evaluator='polite=contains:{"value": "Thanks"}',
        **{"min-win-rate": "0.6", "max-p": "0.05", "timeout": "120"},
    )
    assert (inputs["prompt"], inputs["dataset"], inputs["candidate"]) == ("support-reply", "support-tickets", "latest")

    # A pull request that thanks the customer: v2 wins on every row.
    prompt_file.write_text(original.replace("Customer {{ customer_name }} writes:", "Thanks, {{ customer_name }}!"))
    code, log = _run_action(inputs, repo, installed, tmp_path)
    assert code == 0, log
    assert "support-reply: saved v2" in log and "gate passed" in log
    assert "PASS  win rate >= 0.6: 1.000 (8 wins, 0 losses, 0 ties)" in log
    assert "8/8 cells done" in log or "16/16 cells done" in log
    junit = ET.parse(tmp_path / "prompt-studio-support-reply.junit.xml").getroot()  # noqa: S314 - our own report
    assert junit.get("failures") == "0" and junit.get("tests") == "3"
    summary = (tmp_path / "step-summary.md").read_text()
    assert "## Prompt Studio gate: support-reply latest against production — passed ✅" in summary
    assert "| win rate >= 0.6 | ✅ |" in summary
    assert "junit=" in (tmp_path / "github-output").read_text()
    # The gate never releases: production stays on v1.
    assert demo_like["prompt"].labels.get(name="production").version.number == 1

    # A later push that drops the thanks again: no better than production, so the gate fails.
    prompt_file.write_text(original.replace("writes:", "says:"))
    (tmp_path / "step-summary.md").unlink()
    code, log = _run_action(inputs, repo, installed, tmp_path)
    assert code == 1, log
    assert "support-reply: saved v3" in log and "gate FAILED" in log
    assert "FAIL  win rate >= 0.6: 0.500 (0 wins, 0 losses, 8 ties)" in log
    assert "FAIL  p-value <= 0.05: 1" in log
    junit = ET.parse(tmp_path / "prompt-studio-support-reply.junit.xml").getroot()  # noqa: S314 - our own report
    assert junit.get("failures") == "2"
    failure = junit.find(".//testcase[@name='win rate >= 0.6']/failure")
    assert failure is not None and failure.get("message").startswith("0.500")
    assert "FAILED ❌" in (tmp_path / "step-summary.md").read_text()
    assert Experiment.objects.filter(status="finished").count() == 2


def test_the_gate_fails_clearly_on_a_dataset_that_does_not_exist(installed, studio, demo_like, tmp_path):
    repo = _repo_with_prompts(installed, studio, demo_like["key"], tmp_path)
    inputs = _inputs(url=studio.url, key=demo_like["key"], endpoint="Simulated echo", dataset="nope")
    code, log = _run_action(inputs, repo, installed, tmp_path)
    assert code == 2, log
    assert "support-reply: unchanged, v1" in log
    assert "404 dataset_not_found" in log

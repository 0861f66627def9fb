"""prompt-studio pull / push / render / diff against a real studio server (gunicorn in a subprocess).

The CLI runs in this process (`main([...])`) and reaches the studio only over HTTP.
"""

from __future__ import annotations

import pytest
import yaml
from prompt_studio.cli import main

from apps.accounts.services import api_key_create, membership_add
from apps.accounts.tests.factories import ProjectFactory, UserFactory
from apps.api.tests.server import StudioServer
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version, record
from apps.experiments.models import Experiment
from apps.prompts import services
from apps.prompts.models import Prompt
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def seeded():
    from apps.reviews.services import policy_save

    project = ProjectFactory(slug="cli")
    greet = PromptFactory(project=project, name="greet", description="Says hello")
    v1 = make_version(greet, "Hello {{ name }}, you are {{ age }}", samples={"name": "Ada", "age": 36})
    services.label_move(prompt=greet, label_name="production", version=v1, actor="test")
    helper = PromptFactory(project=project, name="helper")
    messages = [{"role": "system", "content": "Be {{ tone }}.\nAlways."}, {"role": "user", "content": "{{ q }}"}]
    make_version(helper, kind="chat", messages=messages, config={"temperature": 0.3})
    admin = UserFactory()
    membership_add(project=project, username=admin.username, role="admin", actor="test")
    policy_save(
        project=project,
        label_name="production",
        protected=True,
        required_approvals=1,
        approver_roles=["reviewer"],
        actor=admin,
    )
    _, write_key = api_key_create(project=project, name="cli", scope="write", actor="test")
    _, read_key = api_key_create(project=project, name="cli-read", scope="read", actor="test")
    return {"project": project, "greet": greet, "helper": helper, "write": write_key, "read": read_key}


@pytest.fixture
def server(seeded):
    studio = StudioServer().start()
    yield studio
    studio.stop()


@pytest.fixture
def cli(server, seeded, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPT_STUDIO_URL", server.url)
    monkeypatch.setenv("PROMPT_STUDIO_KEY", seeded["write"])

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_pull_then_push_round_trips_without_a_new_version(cli, tmp_path, seeded):
    code, out, _ = cli("pull")
    assert code == 0 and "greet: v1 (latest) -> prompts/greet.yaml" in out
    greet = yaml.safe_load((tmp_path / "prompts/greet.yaml").read_text())
    assert greet == {
        "name": "greet",
        "description": "Says hello",
        "type": "text",
        "template": "Hello {{ name }}, you are {{ age }}",
        "config": {},
        "variables": [{"name": "name", "type": "string"}, {"name": "age", "type": "number"}],
    }
    helper = yaml.safe_load((tmp_path / "prompts/helper.yaml").read_text())
    assert helper["messages"][0] == {"role": "system", "content": "Be {{ tone }}.\nAlways."}
    assert "content: |-\n    Be {{ tone }}.\n    Always." in (tmp_path / "prompts/helper.yaml").read_text()
    code, out, _ = cli("push")
    assert code == 0 and out.splitlines() == ["greet: unchanged, v1", "helper: unchanged, v1"]
    assert seeded["greet"].versions.count() == 1


def test_push_saves_changed_and_new_files_and_keeps_samples(cli, tmp_path, seeded):
    cli("pull", "--format", "jinja", "greet")
    path = tmp_path / "prompts/greet.jinja"
    text = path.read_text()
    assert text.startswith("{#- prompt-studio\n") and text.endswith("-#}\nHello {{ name }}, you are {{ age }}")
    path.write_text(text.replace("Hello", "Hi"))
    (tmp_path / "prompts/farewell.yaml").write_text("type: text\ntemplate: Bye {{ name }}\n")
    code, out, _ = cli("push", "--message", "warmer")
    assert code == 0 and out.splitlines() == ["farewell: saved v1", "greet: saved v2"]
    v2 = seeded["greet"].versions.get(number=2)
    assert v2.template == "Hi {{ name }}, you are {{ age }}" and v2.message == "warmer"
    assert [spec.get("sample") for spec in v2.variables] == ["Ada", 36]  # kept from v1
    assert Prompt.objects.get(name="farewell").versions.get().template == "Bye {{ name }}"


def test_push_never_moves_a_protected_label(cli, tmp_path, seeded):
    cli("pull", "greet")
    path = tmp_path / "prompts/greet.yaml"
    path.write_text(path.read_text().replace("Hello", "Hey"))
    code, out, err = cli("push", "--label", "production")
    assert code == 1 and "greet: saved v2" in out
    assert "production NOT moved" in err and "review" in err
    assert seeded["greet"].labels.get(name="production").version.number == 1
    code, out, _ = cli("push", "--label", "staging")
    assert code == 0 and "greet: staging -> v2" in out


def test_push_checks_every_file_before_sending_any(cli, tmp_path, seeded):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/a.yaml").write_text("type: text\ntemplate: A {{ x }}\n")
    (tmp_path / "prompts/b.yaml").write_text("type: text\ntemplate: B\ncolour: red\n")
    code, _, err = cli("push")
    assert code == 2 and "prompts/b.yaml: unknown key(s) colour" in err
    assert not Prompt.objects.filter(name="a").exists()


def test_push_reports_a_template_the_studio_refuses(cli, tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/broken.yaml").write_text("type: text\ntemplate: 'Hi {{ name'\n")
    code, _, err = cli("push")
    assert code == 2 and "400 invalid_content" in err


def test_render_from_the_studio_and_from_a_file(cli, tmp_path):
    code, out, _ = cli("render", "greet", "--var", "name=Ada", "--var", "age=36")
    assert code == 0 and out == "Hello Ada, you are 36\n"
    code, out, _ = cli("render", "helper", "--label", "latest", "--vars-json", '{"tone": "brief", "q": "Why?"}')
    assert code == 0 and '"content": "Be brief.\\nAlways."' in out
    code, _, err = cli("render", "greet", "--var", "name=Ada", "--var", "age=old")
    assert code == 2 and "--var age: 'old' is not a number" in err
    code, _, err = cli("render", "greet", "--var", "name=Ada")
    assert code == 2 and "invalid_variable" in err and "age" in err
    (tmp_path / "local.yaml").write_text("type: text\ntemplate: 'Yo {{ who | upper }}'\n")
    code, out, _ = cli("render", "--file", "local.yaml", "--var", "who=bo", "--url", "", "--key", "")
    assert code == 0 and out == "Yo BO\n"


def test_diff_of_two_versions_and_of_a_file_against_a_label(cli, tmp_path, seeded):
    make_version(seeded["greet"], "Hi {{ name }}", config={"temperature": 0.5}, samples={"name": "Ada"})
    code, out, _ = cli("diff", "greet", "production", "latest")
    assert code == 1
    assert "-Hello {{ name }}, you are {{ age }}\n+Hi {{ name }}" in out
    assert "config.temperature: — -> 0.5" in out and "variable age:" in out
    code, out, _ = cli("diff", "greet", "1", "1")
    assert code == 0 and out == "no differences\n"
    cli("pull", "greet", "--label", "production")
    code, out, _ = cli("diff", "--file", "prompts/greet.yaml")
    assert code == 0 and out == "no differences\n"
    code, out, _ = cli("diff", "--file", "prompts/greet.yaml", "--against", "latest")
    assert code == 1 and "+Hello {{ name }}, you are {{ age }}" in out and "config.temperature: 0.5 -> None" in out


def test_errors_are_named_with_exit_code_2(cli, server, seeded, monkeypatch):
    code, _, err = cli("pull", "nope")
    assert code == 2 and "No prompt called nope" in err
    monkeypatch.setenv("PROMPT_STUDIO_KEY", seeded["read"])
    (code, _, err) = cli("push", "--dir", "missing")
    assert code == 2 and "No folder missing" in err
    cli("pull", "greet")
    code, _, err = cli("push")
    assert code == 2 and "403 write_scope_required" in err
    monkeypatch.setenv("PROMPT_STUDIO_KEY", "ps_wrong")
    code, _, err = cli("pull")
    assert code == 2 and "401 invalid_key" in err
    monkeypatch.setenv("PROMPT_STUDIO_URL", "http://127.0.0.1:9")
    code, _, err = cli("pull")
    assert code == 2 and "did not answer" in err


def test_eval_cancels_an_experiment_that_does_not_finish_in_time(cli, seeded, simulated_endpoint, tmp_path):
    """No worker runs here, so the experiment never finishes: the gate gives up, cancels it, and says so."""
    make_dataset_version(DatasetFactory(project=seeded["project"], name="people"), [record(name="Ada", age=1)])
    simulated_endpoint("echo", "openai/echo", for_project=seeded["project"])
    code, out, err = cli(
        "eval", "--prompt", "greet", "--candidate", "latest", "--against", "production", "--dataset", "people",
        "--endpoint", "echo", "--evaluator", 'length:{"max": 100}', "--min-win-rate", "0.5",
        "--timeout", "1", "--poll", "0.2", "--junit", str(tmp_path / "gate.xml"),
    )  # fmt: skip
    assert code == 2 and "0/2 cells done" in out
    assert "did not finish within 1 s; it was cancelled" in err
    assert Experiment.objects.get().status == "cancelled"
    assert not (tmp_path / "gate.xml").exists()


def test_eval_refuses_bad_arguments_before_starting_anything(cli):
    common = ["eval", "--prompt", "greet", "--candidate", "1", "--dataset", "d", "--endpoint", "e"]
    code, _, err = cli(*common, "--evaluator", "exact_match")
    assert code == 2 and "Give a threshold" in err
    code, _, err = cli(*common, "--evaluator", "length:{max}", "--min-win-rate", "0.5")
    assert code == 2 and "must be a JSON object" in err
    code, _, err = cli(*common, "--evaluator", "exact_match", "--gate-evaluator", "judge", "--max-p", "0.05")
    assert code == 2 and "'judge' is not one of the --evaluator names" in err
    assert not Experiment.objects.exists()


def test_a_cancelled_ci_job_cancels_its_experiment(server, seeded, simulated_endpoint):
    """CI cancels a job with SIGINT, then SIGTERM: the experiment stops too, instead of spending on models."""
    import os
    import signal
    import subprocess
    import sys
    import time

    make_dataset_version(DatasetFactory(project=seeded["project"], name="people"), [record(name="Ada", age=1)])
    simulated_endpoint("echo", "openai/echo", for_project=seeded["project"])
    env = {**os.environ, "PROMPT_STUDIO_URL": server.url, "PROMPT_STUDIO_KEY": seeded["write"]}
    process = subprocess.Popen(
        [sys.executable, "-m", "prompt_studio", "eval", "--prompt", "greet", "--candidate", "latest",
         "--dataset", "people", "--endpoint", "echo", "--evaluator", "exact_match", "--min-win-rate", "0.5",
         "--poll", "0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not Experiment.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2 and "was cancelled" in err
    assert Experiment.objects.get().status == "cancelled"

import pytest

from apps.accounts.tests.factories import MembershipFactory, ProjectFactory
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments.models import Experiment, ExperimentStatus
from apps.experiments.tests.factories import build_experiment, make_rows
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db


def _builder_post(version, prompt_version, endpoint, **extra):
    data = {
        "name": "greeting test",
        "dataset_version": version.pk,
        "repeats": "2",
        "budget": "",
        "variant-TOTAL_FORMS": "2",
        "variant-INITIAL_FORMS": "0",
        "variant-0-name": "A",
        "variant-0-prompt_version": prompt_version.pk,
        "variant-0-endpoint": endpoint.pk,
        "variant-0-params": "",
        "variant-1-name": "B",
        "variant-1-prompt_version": prompt_version.pk,
        "variant-1-endpoint": endpoint.pk,
        "variant-1-params": '{"temperature": 0.1}',
        "evaluator-TOTAL_FORMS": "1",
        "evaluator-INITIAL_FORMS": "0",
        "evaluator-0-kind": "contains",
        "evaluator-0-name": "mentions item",
        "evaluator-0-params": '{"value": "item"}',
    }
    data.update(extra)
    return data


def test_the_builder_saves_a_draft_with_an_estimate(client_for, editor, project, simulated_endpoint):
    version = make_dataset_version(DatasetFactory(project=project), make_rows(5), actor=editor)
    prompt_version = make_version(PromptFactory(project=project), "{{ question }}", samples={"question": "q"})
    endpoint = simulated_endpoint()
    client = client_for(editor)
    response = client.post("/p/acme/experiments/new/", _builder_post(version, prompt_version, endpoint))
    assert response.status_code == 302
    experiment = Experiment.objects.get(project=project)
    assert experiment.estimated_calls == 20 and experiment.status == ExperimentStatus.DRAFT
    assert experiment.variants.get(name="B").params == {"temperature": 0.1}
    page = client.get(response["Location"]).content.decode()
    assert "20</strong> model calls" in page and "Every row has every variable" in page


def test_the_builder_names_bad_json_and_keeps_the_form(client_for, editor, project, simulated_endpoint):
    version = make_dataset_version(DatasetFactory(project=project), make_rows(2), actor=editor)
    prompt_version = make_version(PromptFactory(project=project), "{{ question }}")
    post = _builder_post(version, prompt_version, simulated_endpoint(), **{"variant-1-params": "{temperature: }"})
    response = client_for(editor).post("/p/acme/experiments/new/", post)
    assert response.status_code == 200
    assert b"not valid JSON" in response.content and b"greeting test" in response.content
    assert not Experiment.objects.exists()


def test_the_builder_refuses_another_projects_objects(client_for, editor, project, simulated_endpoint):
    other = ProjectFactory(slug="other")
    foreign_version = make_dataset_version(DatasetFactory(project=other), make_rows(2))
    prompt_version = make_version(PromptFactory(project=project), "{{ question }}")
    post = _builder_post(foreign_version, prompt_version, simulated_endpoint())
    response = client_for(editor).post("/p/acme/experiments/new/", post)
    assert response.status_code == 200 and not Experiment.objects.exists()


def test_a_viewer_reads_but_cannot_start(client_for, member, project, editor, simulated_endpoint):
    experiment = build_experiment(project, editor, [simulated_endpoint()], rows=2)
    client = client_for(member("viewer"))
    assert client.get(f"/p/acme/experiments/{experiment.pk}/").status_code == 200
    assert client.post(f"/p/acme/experiments/{experiment.pk}/start/").status_code == 403
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.DRAFT


def test_a_stranger_gets_404(client_for, project, editor, simulated_endpoint):
    experiment = build_experiment(project, editor, [simulated_endpoint()], rows=2)
    outsider = MembershipFactory(project=ProjectFactory(slug="else")).user
    assert client_for(outsider).get(f"/p/acme/experiments/{experiment.pk}/").status_code == 404
    assert client_for(outsider).get(f"/p/else/experiments/{experiment.pk}/").status_code == 404


def test_the_progress_fragment_and_csv_export(client_for, editor, project, simulated_endpoint):
    experiment = build_experiment(project, editor, [simulated_endpoint()], rows=3)
    client = client_for(editor)
    client.post(f"/p/acme/experiments/{experiment.pk}/start/")
    fragment = client.get(f"/p/acme/experiments/{experiment.pk}/?part=progress", HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 1s"' in fragment.content and b"0 of 3 cells" in fragment.content.replace(
        b"<strong>", b""
    ).replace(b"</strong>", b"")
    export = client.get(f"/p/acme/experiments/{experiment.pk}/export.csv")
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert lines[0].startswith("cell_id,row,variant,prompt,prompt_version,endpoint,repeat,status") and len(lines) == 4


def test_a_running_experiment_with_no_live_worker_says_so_instead_of_a_time_left(
    client_for, editor, project, simulated_endpoint
):
    from datetime import timedelta

    from django.utils import timezone

    from apps.core import heartbeats
    from apps.core.models import WorkerHeartbeat

    experiment = build_experiment(project, editor, [simulated_endpoint()], rows=3)
    client = client_for(editor)
    client.post(f"/p/acme/experiments/{experiment.pk}/start/")
    heartbeats.beat(role="worker", hostname="celery@gone")
    WorkerHeartbeat.objects.update(seen_at=timezone.now() - timedelta(minutes=5))
    fragment = client.get(f"/p/acme/experiments/{experiment.pk}/?part=progress", HTTP_HX_REQUEST="true")
    assert b'id="no-worker"' in fragment.content and b"No worker is running" in fragment.content
    assert b"the last one was seen 300 s ago" in fragment.content
    assert b"s left" not in fragment.content
    heartbeats.beat(role="worker", hostname="celery@gone")
    page = client.get(f"/p/acme/experiments/{experiment.pk}/")
    assert b'id="no-worker"' not in page.content

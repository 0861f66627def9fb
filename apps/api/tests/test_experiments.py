"""An experiment from CI over REST: start it, poll its status, read its cells."""

import pytest

from apps.accounts.tests.factories import ProjectFactory
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments import runner
from apps.experiments.models import Cell, Experiment
from apps.experiments.tests.factories import make_rows
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(project, simulated_endpoint):
    make_dataset_version(DatasetFactory(project=project, name="questions"), make_rows(3))
    prompt = PromptFactory(project=project, name="asker")
    make_version(prompt, "{{ question }}", samples={"question": "q"})
    simulated_endpoint("echo", "openai/echo")
    return project


def _body(**extra):
    body = {
        "name": "from ci",
        "dataset": "questions",
        "variants": [{"name": "A", "prompt": "asker", "label": "latest", "endpoint": "echo"}],
        "evaluators": [{"name": "exact", "kind": "exact_match"}],
        "repeats": 2,
    }
    body.update(extra)
    return body


def test_ci_starts_an_experiment_and_reads_its_summary_and_cells(api, make_key, setup):
    client = api(make_key("write"))
    response = client.post("/api/v1/experiments", _body())
    assert response.status_code == 201, response.json()
    experiment_id = response.json()["id"]
    assert response.json()["status"] == "running"
    runner.run_batch(experiment_id, list(Cell.objects.filter(experiment_id=experiment_id).values_list("pk", flat=True)))
    status = client.get(f"/api/v1/experiments/{experiment_id}").json()
    assert status["status"] == "finished"
    assert status["cells"] == {"total": 6, "done": 6, "running": 0, "failed": 0, "pending": 0, "cancelled": 0}
    assert status["variants"][0]["evaluators"]["exact"] == {"mean": 1.0, "pass_rate": 1.0, "n": 6, "errors": 0}
    cells = client.get(f"/api/v1/experiments/{experiment_id}/cells").json()
    assert cells["count"] == 6 and cells["cells"][0]["output"] == "what is item 0"
    assert cells["cells"][0]["scores"]["exact"]["passed"] is True


def test_a_read_key_cannot_start_an_experiment(api, make_key, setup):
    response = api(make_key("read")).post("/api/v1/experiments", _body())
    assert response.status_code == 403 and not Experiment.objects.exists()


@pytest.mark.parametrize(
    "change,code",
    [
        ({"dataset": "nope"}, "dataset_not_found"),
        ({"variants": [{"name": "A", "prompt": "asker", "version": 9, "endpoint": "echo"}]}, "version_not_found"),
        ({"variants": [{"name": "A", "prompt": "asker", "endpoint": "gpt-9"}]}, "endpoint_not_found"),
        ({"evaluators": [{"name": "x", "kind": "vibes"}]}, "invalid_request"),  # the schema lists the kinds
        ({"repeats": 0}, "invalid"),
    ],
)
def test_bad_input_is_named(api, make_key, setup, change, code):
    response = api(make_key("write")).post("/api/v1/experiments", _body(**change))
    assert response.status_code in (400, 404)
    assert response.json()["code"].startswith(code)
    assert not Experiment.objects.exists()


def test_another_projects_key_sees_nothing(api, make_key, setup):
    response = api(make_key("write")).post("/api/v1/experiments", _body(start=False))
    experiment_id = response.json()["id"]
    stranger = api(make_key("write", of_project=ProjectFactory(slug="else")))
    assert stranger.get(f"/api/v1/experiments/{experiment_id}").status_code == 404
    assert stranger.post(f"/api/v1/experiments/{experiment_id}/cancel").status_code == 404
    assert stranger.get("/api/v1/experiments").json() == {"experiments": []}


def test_the_summary_reports_ratings_win_rates_and_agreement(api, make_key, project, editor, member):
    from apps.ratings import services as rating_services
    from apps.ratings.tests.factories import judge_all, make_experiment

    raters = [member("editor", f"rater{i}") for i in range(3)]
    experiment = make_experiment(project, editor, rows=20)
    queue = rating_services.queue_create(
        experiment=experiment, name="blind", kind="pairwise",
        variant_ids=list(experiment.variants.values_list("pk", flat=True)),
        raters_per_item=3, rater_ids=[r.pk for r in raters], actor=editor,
    )  # fmt: skip
    judge_all(queue, raters, lambda rater, position: "B" if position < 15 else "A")
    summary = api(make_key("read")).get(f"/api/v1/experiments/{experiment.pk}/summary").json()
    (pair,) = summary["pairs"]
    assert (pair["variant"], pair["against"], pair["n"], pair["ties"]) == ("B", "A", 60, 0)
    assert pair["win_rate"] == pytest.approx(45 / 60) and pair["ci_low"] < 0.75 < pair["ci_high"]
    assert pair["p_value"] < 0.001
    assert summary["agreement"]["method"] == "krippendorff_alpha"
    assert summary["verdict"].startswith("B beats A on 75% of items")
    stranger = api(make_key("read", of_project=ProjectFactory(slug="other")))
    assert stranger.get(f"/api/v1/experiments/{experiment.pk}/summary").status_code == 404

"""GET /api/v1/experiments/{id}/compare: the CI gate's win rate of a candidate over a baseline on scores."""

import pytest

from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments import runner
from apps.experiments.models import Cell
from apps.experiments.tests.factories import make_rows
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def finished(project, simulated_endpoint, api, make_key):
    """Baseline v1 echoes the question (exact match passes), candidate v2 adds a prefix (fails), on 8 rows."""
    make_dataset_version(DatasetFactory(project=project, name="questions"), make_rows(8))
    prompt = PromptFactory(project=project, name="asker")
    make_version(prompt, "{{ question }}", samples={"question": "q"})
    make_version(prompt, "Q: {{ question }}", samples={"question": "q"})
    simulated_endpoint("echo", "openai/echo")
    client = api(make_key("write"))
    body = {
        "name": "gate",
        "dataset": "questions",
        "variants": [
            {"name": "baseline", "prompt": "asker", "version": 1, "endpoint": "echo"},
            {"name": "candidate", "prompt": "asker", "version": 2, "endpoint": "echo"},
        ],
        "evaluators": [{"name": "exact", "kind": "exact_match"}, {"name": "short", "kind": "length",
                                                                  "params": {"max": 1000}}],
    }  # fmt: skip
    created = client.post("/api/v1/experiments", body).json()
    assert "id" in created, created
    experiment_id = created["id"]
    runner.run_batch(experiment_id, list(Cell.objects.filter(experiment_id=experiment_id).values_list("pk", flat=True)))
    return client, experiment_id


def test_it_counts_rows_the_candidate_wins_and_loses(finished):
    client, experiment_id = finished
    worse = client.get(f"/api/v1/experiments/{experiment_id}/compare?candidate=candidate&baseline=baseline").json()
    assert worse["evaluator"] == "exact"
    assert (worse["wins"], worse["losses"], worse["ties"], worse["n"]) == (0, 8, 0, 8)
    assert worse["win_rate"] == 0.0 and worse["p_value"] == pytest.approx(2 / 2**8)
    assert (worse["candidate_mean"], worse["baseline_mean"]) == (0.0, 1.0)
    better = client.get(f"/api/v1/experiments/{experiment_id}/compare?candidate=baseline&baseline=candidate").json()
    assert better["win_rate"] == 1.0 and "in 8 of 8 rows" in better["verdict"]


def test_an_evaluator_where_both_pass_is_all_ties(finished):
    client, experiment_id = finished
    tied = client.get(
        f"/api/v1/experiments/{experiment_id}/compare?candidate=candidate&baseline=baseline&evaluator=short"
    ).json()
    assert (tied["ties"], tied["win_rate"], tied["p_value"]) == (8, 0.5, 1.0)


@pytest.mark.parametrize(
    "query,detail",
    [
        ("candidate=candidate", "Give candidate= and baseline="),
        ("candidate=C&baseline=baseline", "no variant 'C'"),
        ("candidate=candidate&baseline=baseline&evaluator=judge", "no evaluator 'judge'"),
        ("candidate=baseline&baseline=baseline", "two different variants"),
    ],
)
def test_bad_comparisons_are_400s_that_name_the_problem(finished, query, detail):
    client, experiment_id = finished
    response = client.get(f"/api/v1/experiments/{experiment_id}/compare?{query}")
    assert response.status_code == 400 and detail in response.json()["detail"]

"""Counterfactual and perturbed versions over REST, paraphrase through the gateway to the simulated server."""

from collections import Counter

import pytest

from apps.datasets import selectors
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version

pytestmark = pytest.mark.django_db

ROWS = [
    {"input": {"ticket": "She lost her card.", "n": 1}, "expected": "card", "metadata": {}},
    {"input": {"ticket": "He wants his money back, please.", "n": 2}, "expected": "refund", "metadata": {}},
]


def _post(client, key, path, body):
    return client.post(path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")


def test_a_write_key_makes_a_counterfactual_version(client, make_key, project):
    dataset = DatasetFactory(project=project, name="tickets")
    make_dataset_version(dataset, ROWS)
    response = _post(client, make_key("write"), "/api/v1/datasets/tickets/versions/1/counterfactual",
                     {"attribute": "gender", "columns": ["ticket"]})  # fmt: skip
    assert response.status_code == 201, response.json()
    assert response.json()["version"] == 2 and response.json()["rows"] == 4
    records = list(selectors.version_records(version=dataset.versions.get(number=2)))
    assert records[1]["input"]["ticket"] == "He lost his card."
    assert records[3]["input"]["ticket"] == "She wants her money back, please."


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"attribute": "gender"}, 400, "invalid_columns"),
        ({"attribute": "gender", "columns": ["nope"]}, 400, "invalid_counterfactual"),
        ({"attribute": "gender", "columns": ["ticket"], "values": ["female"]}, 400, "invalid_values"),
        ({"attribute": "hair", "columns": ["ticket"]}, 400, "invalid_counterfactual"),
    ],
)
def test_it_refuses_bad_counterfactual_requests(client, make_key, project, body, status, code):
    make_dataset_version(DatasetFactory(project=project, name="tickets"), ROWS)
    response = _post(client, make_key("write"), "/api/v1/datasets/tickets/versions/1/counterfactual", body)
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_a_read_key_cannot_make_a_version(client, make_key, project):
    make_dataset_version(DatasetFactory(project=project, name="tickets"), ROWS)
    response = _post(client, make_key("read"), "/api/v1/datasets/tickets/versions/1/counterfactual",
                     {"attribute": "gender", "columns": ["ticket"]})  # fmt: skip
    assert response.status_code == 403


def test_it_paraphrases_through_the_gateway(client, make_key, project, simulated_endpoint, sim_server):
    endpoint = simulated_endpoint(model="openai/reverse")
    dataset = DatasetFactory(project=project, name="tickets")
    make_dataset_version(dataset, ROWS)
    body = {"kinds": ["paraphrase", "whitespace"], "columns": ["ticket"], "endpoint": endpoint.pk}
    response = _post(client, make_key("write"), "/api/v1/datasets/tickets/versions/1/perturb", body)
    assert response.status_code == 201, response.json()
    records = list(selectors.version_records(version=dataset.versions.get(number=2)))
    assert Counter(r["metadata"]["pair_id"] for r in records) == {
        "paraphrase-1": 2, "paraphrase-2": 2, "whitespace-1": 2, "whitespace-2": 2}  # fmt: skip
    assert records[1]["input"]["ticket"] == "card. her lost She"  # the simulated "reverse" model
    assert len([s for s in sim_server.seen if s.path.endswith("/chat/completions")]) == 2


def test_paraphrase_without_a_local_model_is_a_clear_400(client, make_key, project):
    make_dataset_version(DatasetFactory(project=project, name="tickets"), ROWS)
    response = _post(client, make_key("write"), "/api/v1/datasets/tickets/versions/1/perturb",
                     {"kinds": ["paraphrase"], "columns": ["ticket"]})  # fmt: skip
    assert response.status_code == 400
    assert "local model" in response.json()["detail"] or "local model" in str(response.json())

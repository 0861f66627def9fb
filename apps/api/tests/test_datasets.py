"""Datasets over REST: list, versions, rows, and a new version from JSON Lines (write scope)."""

import json

import pytest

from apps.accounts.tests.factories import ProjectFactory
from apps.audit.models import AuditEvent
from apps.datasets.models import Dataset, DatasetVersion
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version

pytestmark = pytest.mark.django_db


def _jsonl(rows):
    return "\n".join(json.dumps(r) for r in rows)


def _post(client, key, path, body):
    return client.post(path, body, content_type="application/x-ndjson", HTTP_AUTHORIZATION=f"Bearer {key}")


ROWS = [{"input": {"q": f"question {i}"}, "expected": f"answer {i}", "metadata": {"split": "test"}} for i in range(150)]


def test_it_lists_datasets_versions_and_pages_of_rows(api, make_key, project):
    make_dataset_version(DatasetFactory(project=project, name="qa"), ROWS)
    client = api(make_key("read"))
    assert client.get("/api/v1/datasets").json()["datasets"] == [
        {"name": "qa", "description": "", "newest_version": 1, "rows": 150}
    ]
    versions = client.get("/api/v1/datasets/qa/versions").json()["versions"]
    assert versions[0]["version"] == 1 and versions[0]["rows"] == 150 and versions[0]["input_columns"] == ["q"]
    page2 = client.get("/api/v1/datasets/qa/versions/1/items?page=2").json()
    assert page2["pages"] == 2 and len(page2["rows"]) == 50
    assert page2["rows"][0] == {
        "row": 101,
        "input": {"q": "question 100"},
        "expected": "answer 100",
        "metadata": {"split": "test"},
    }
    assert client.get("/api/v1/datasets/qa/versions/1/items?page=3").status_code == 404
    assert client.get("/api/v1/datasets/qa/versions/2/items").json()["code"] == "version_not_found"


def test_a_write_key_adds_a_version_from_jsonl(client, make_key, project):
    key = make_key("write")
    response = _post(client, key, "/api/v1/datasets/new-set/versions?create=true&message=from+ci", _jsonl(ROWS[:3]))
    assert response.status_code == 201, response.json()
    assert response.json()["rows"] == 3 and response.json()["message"] == "from ci"
    again = _post(client, key, "/api/v1/datasets/new-set/versions", _jsonl(ROWS[:4]))
    assert again.json()["version"] == 2
    assert AuditEvent.objects.filter(project_id=project.pk, actor_repr__contains="api key").exists()


@pytest.mark.parametrize(
    "body,code,detail",
    [
        ('{"input": {"q": 1}}\n{"input": oops}', "invalid_jsonl", "Line 2"),
        ('{"q": 1}', "invalid_jsonl", "Line 1"),
        ("\n\n", "empty_body", "no rows"),
    ],
)
def test_bad_jsonl_is_named_and_saves_nothing(client, make_key, project, body, code, detail):
    DatasetFactory(project=project, name="qa")
    response = _post(client, make_key("write"), "/api/v1/datasets/qa/versions", body)
    assert response.status_code == 400
    assert response.json()["code"] == code and detail in response.json()["detail"]
    assert not DatasetVersion.objects.exists()


def test_a_read_key_cannot_write_and_strangers_see_nothing(client, api, make_key, project):
    make_dataset_version(DatasetFactory(project=project, name="qa"), ROWS[:2])
    assert _post(client, make_key("read"), "/api/v1/datasets/qa/versions", _jsonl(ROWS[:1])).status_code == 403
    stranger = make_key("write", of_project=ProjectFactory(slug="other"))
    assert api(stranger).get("/api/v1/datasets/qa/versions").status_code == 404
    assert _post(client, stranger, "/api/v1/datasets/qa/versions", _jsonl(ROWS[:1])).status_code == 404
    assert Dataset.objects.count() == 1 and DatasetVersion.objects.count() == 1


def test_a_nul_in_the_name_or_the_rows_is_a_clear_error(client, api, make_key, project):
    key = make_key("write")
    assert api(key).get("/api/v1/datasets/bad%00name/versions").status_code == 404
    response = _post(client, key, "/api/v1/datasets/qa/versions?create=true", '{"input": {"q": "a\\u0000b"}}')
    assert response.status_code == 400 and "NUL" in response.json()["detail"]
    assert not Dataset.objects.filter(name="qa").exists()

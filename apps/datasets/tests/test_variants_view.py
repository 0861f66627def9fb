"""The dataset page's form for counterfactual and perturbed versions."""

import pytest

from apps.datasets import selectors
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version

pytestmark = pytest.mark.django_db


def test_it_lists_lexicons_and_saves_a_counterfactual_version(client_for, editor, project):
    dataset = DatasetFactory(project=project, name="tickets")
    make_dataset_version(dataset, [{"input": {"ticket": "Ms. Emma Walsh paid her bill."}}], actor=editor)
    client = client_for(editor)
    url = f"/p/{project.slug}/datasets/{dataset.pk}/v/1/variants/"
    page = client.get(url)
    assert page.status_code == 200
    assert b"CC0-1.0" in page.content and b"name_origin: anglo" in page.content
    response = client.post(url, {"kind": "counterfactual", "swap": "gender|female|male", "columns": ["ticket"]})
    assert response.status_code == 302
    records = list(selectors.version_records(version=dataset.versions.get(number=2)))
    assert records[1]["input"]["ticket"] == "Mr. William Walsh paid his bill."


def test_a_bad_request_is_a_400_that_names_the_problem(client_for, editor, member, project):
    dataset = DatasetFactory(project=project, name="tickets")
    make_dataset_version(dataset, [{"input": {"ticket": "The bill is wrong."}}], actor=editor)
    url = f"/p/{project.slug}/datasets/{dataset.pk}/v/1/variants/"
    response = client_for(editor).post(url, {"kind": "counterfactual", "swap": "gender|female|male"})
    assert response.status_code == 400 and b"Choose at least one input column" in response.content
    response = client_for(editor).post(url, {"kind": "perturbation", "columns": ["ticket"], "seed": "x",
                                             "perturbations": ["typos"]})  # fmt: skip
    assert response.status_code == 400 and b"The seed must be a whole number" in response.content
    viewer = member("viewer", "vera")
    assert client_for(viewer).post(url, {"kind": "counterfactual"}).status_code == 403

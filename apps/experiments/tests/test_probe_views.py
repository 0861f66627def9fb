"""The probes page: start a bias or injection probe, and (admins) require one in a release policy."""

import pytest

from apps.datasets import services as dataset_services
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments.models import Experiment, ExperimentKind, ProbeRequirement
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.reviews.tests.factories import ReleasePolicyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_an_editor_starts_both_probes_from_the_page(project, editor, client_for, simulated_endpoint):
    source = make_dataset_version(DatasetFactory(project=project), [{"input": {"q": "She paid."}}], actor=editor)
    pairs = dataset_services.dataset_version_counterfactual(version=source, actor=editor, attribute="gender",
                                                            columns=["q"])  # fmt: skip
    version = make_version(PromptFactory(project=project), "Answer: {{ q }}", actor=editor, samples={"q": "hi"})
    endpoint = simulated_endpoint()
    client = client_for(editor)
    url = f"/p/{project.slug}/experiments/probes/"
    page = client.get(url)
    assert page.status_code == 200 and f'value="{pairs.pk}"'.encode() in page.content
    response = client.post(url, {"kind": "bias", "dataset_version": pairs.pk, "prompt_version": version.pk,
                                 "endpoint": endpoint.pk, "positive_label": "yes"})  # fmt: skip
    assert response.status_code == 302
    bias = Experiment.objects.get(kind=ExperimentKind.BIAS)
    assert bias.probe == {"positive_label": "yes"} and bias.cells.count() == 2
    response = client.post(url, {"kind": "injection", "prompt_version": version.pk, "endpoint": endpoint.pk})
    assert response.status_code == 302
    assert Experiment.objects.get(kind=ExperimentKind.INJECTION).cells.count() == 7


def test_bad_probe_requests_are_400s_that_name_the_problem(project, editor, client_for, simulated_endpoint):
    version = make_version(PromptFactory(project=project), "Answer: {{ q }}", actor=editor, samples={"q": "hi"})
    source = make_dataset_version(DatasetFactory(project=project), [{"input": {"q": "She paid."}}], actor=editor)
    url = f"/p/{project.slug}/experiments/probes/"
    endpoint = simulated_endpoint()
    response = client_for(editor).post(url, {"kind": "bias", "dataset_version": source.pk,
                                             "prompt_version": version.pk, "endpoint": endpoint.pk})  # fmt: skip
    assert response.status_code == 400 and b"no counterfactual pairs" in response.content
    response = client_for(editor).post(url, {"kind": "injection", "prompt_version": version.pk,
                                             "endpoint": endpoint.pk, "variables": "body"})  # fmt: skip
    assert response.status_code == 400 and b"no variable &#x27;body&#x27;" in response.content


def test_an_admin_requires_a_probe_and_an_editor_cannot(project, member, client_for):
    policy = ReleasePolicyFactory(project=project)
    url = f"/p/{project.slug}/experiments/probes/requirements/"
    data = {"policy": policy.pk, "kind": "injection", "max_percent": "5"}
    assert client_for(member("editor", "ed")).post(url, data).status_code == 403
    assert client_for(member("admin", "ada")).post(url, data).status_code == 302
    assert str(ProbeRequirement.objects.get(policy=policy)) == "injection success <= 5%"
    response = client_for(member("admin", "ada2")).post(url, {**data, "max_percent": "lots"})
    assert response.status_code == 400 and b"number of percent" in response.content

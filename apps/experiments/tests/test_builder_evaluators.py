"""The builder's evaluator rows: the empty one it shows is optional, and any row can be removed."""

import pytest

from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments.models import Experiment
from apps.experiments.tests.factories import make_rows
from apps.experiments.tests.test_views import _builder_post
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def builder(client_for, editor, project, simulated_endpoint):
    version = make_dataset_version(DatasetFactory(project=project), make_rows(3), actor=editor)
    prompt_version = make_version(PromptFactory(project=project), "{{ question }}", samples={"question": "q"})
    endpoint = simulated_endpoint()

    def post(**evaluators):
        data = _builder_post(version, prompt_version, endpoint)
        data.update({"evaluator-TOTAL_FORMS": "1", "evaluator-INITIAL_FORMS": "1"})  # the row the page shows
        data.update(evaluators)
        return client_for(editor).post("/p/acme/experiments/new/", data)

    return post


def test_the_empty_evaluator_row_the_page_shows_may_stay_empty(builder, client_for, editor):
    page = client_for(editor).get("/p/acme/experiments/new/").content.decode()
    assert 'name="evaluator-INITIAL_FORMS" value="1"' in page and 'name="evaluator-0-DELETE"' in page
    response = builder(**{"evaluator-0-kind": "", "evaluator-0-name": "", "evaluator-0-params": ""})
    assert response.status_code == 302
    assert not Experiment.objects.get().evaluators.exists()


def test_a_removed_evaluator_row_is_skipped_even_when_it_is_incomplete(builder):
    response = builder(**{"evaluator-0-kind": "", "evaluator-0-name": "half done", "evaluator-0-DELETE": "on"})
    assert response.status_code == 302
    assert not Experiment.objects.get().evaluators.exists()


def test_a_named_row_without_a_kind_is_refused_with_the_reason(builder):
    response = builder(**{"evaluator-0-kind": "", "evaluator-0-name": "half done"})
    assert response.status_code == 200 and not Experiment.objects.exists()
    assert "Choose a kind for this evaluator, or remove the row." in response.content.decode()


def test_a_kept_row_still_makes_its_evaluator(builder):
    assert builder().status_code == 302
    assert list(Experiment.objects.get().evaluators.values_list("name", flat=True)) == ["mentions item"]

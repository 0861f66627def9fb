"""The builder's Try button without JavaScript: the whole form posts with try_row, the page comes back with the
row's results and the draft as typed; nothing is saved."""

import pytest

from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments.models import Experiment
from apps.experiments.tests.factories import make_rows
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db


def _post(version, prompt_version, endpoint, **extra):
    data = {
        "name": "", "dataset_version": version.pk, "repeats": "1", "budget": "",
        "variant-TOTAL_FORMS": "1", "variant-INITIAL_FORMS": "0",
        "variant-0-name": "A", "variant-0-prompt_version": prompt_version.pk, "variant-0-endpoint": endpoint.pk,
        "variant-0-params": "",
        "evaluator-TOTAL_FORMS": "2", "evaluator-INITIAL_FORMS": "0",
        "evaluator-0-kind": "valid_json", "evaluator-0-name": "json",
        "evaluator-1-kind": "contains", "evaluator-1-name": "item 1", "evaluator-1-contains_value": "item 1",
    }  # fmt: skip
    data.update(extra)
    return data


def test_try_without_javascript_shows_the_rows_scores_in_the_page(client_for, editor, project, simulated_endpoint):
    version = make_dataset_version(DatasetFactory(project=project), make_rows(5), actor=editor)
    prompt_version = make_version(PromptFactory(project=project), "{{ question }}", samples={"question": "q"})
    post = _post(version, prompt_version, simulated_endpoint(), try_row="1")
    page = client_for(editor).post("/p/acme/experiments/new/", post)
    assert page.status_code == 200
    html = page.content.decode()
    results = html.split('id="evaluator-1-try"')[1].split("</table>")[0]
    assert results.count("<tr>") == 4  # the header and the first three rows
    assert results.count(">pass<") == 1 and results.count(">fail<") == 2  # only row 2 says "item 1"
    assert 'id="evaluator-0-try"></div>' in html  # the other row is left alone
    assert 'value="item 1"' in html and not Experiment.objects.exists()


def test_try_names_what_is_missing(client_for, editor, project, simulated_endpoint):
    version = make_dataset_version(DatasetFactory(project=project), make_rows(2), actor=editor)
    prompt_version = make_version(PromptFactory(project=project), "{{ question }}", samples={"question": "q"})
    client = client_for(editor)
    no_pattern = _post(version, prompt_version, simulated_endpoint(), **{"evaluator-1-kind": "regex", "try_row": "1"})
    page = client.post("/p/acme/experiments/new/", no_pattern, HTTP_HX_REQUEST="true").content.decode()
    assert page.startswith('<div id="evaluator-1-try"') and "Give the pattern." in page
    no_dataset = _post(version, prompt_version, simulated_endpoint("other"), dataset_version="", try_row="0")
    page = client.post("/p/acme/experiments/new/", no_dataset, HTTP_HX_REQUEST="true").content.decode()
    assert "Choose the dataset version to try on." in page

"""The experiment builder in a real browser: the evaluator row it shows can be removed, or left empty."""

import pytest

from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments.models import Experiment
from apps.experiments.tests.factories import make_rows
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_evaluator_row_can_be_removed_and_the_experiment_saves_without_one(
    page, login_page, member, project, simulated_endpoint
):
    editor = member("editor", "eddie")
    make_dataset_version(DatasetFactory(project=project, name="questions"), make_rows(3), actor=editor)
    make_version(PromptFactory(project=project, name="asker"), "{{ question }}", samples={"question": "q"})
    simulated_endpoint("echo", "openai/echo")
    login_page(editor)
    page.goto("/p/acme/experiments/new/")
    page.fill("#id_name", "no evaluators")
    page.select_option("#id_dataset_version", label="questions v1 (3 rows)")
    for index in (0, 1):
        page.select_option(f"#id_variant-{index}-prompt_version", label="asker v1")
        page.select_option(f"#id_variant-{index}-endpoint", label="echo")
    page.fill("#id_evaluator-0-name", "half done")  # started, then thought better of it
    page.get_by_label("Remove").check()
    assert not page.locator("#id_evaluator-0-name").is_visible()
    page.get_by_role("button", name="Save and estimate").click()
    page.get_by_text("Experiment saved as a draft").wait_for()
    assert not Experiment.objects.get(name="no evaluators").evaluators.exists()

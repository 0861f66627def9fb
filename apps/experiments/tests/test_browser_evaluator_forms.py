"""The evaluator forms in a real browser: an LLM judge built from the rubric library with its endpoint picked by
name, tried on the first rows through the gateway (the simulated judge on the local test server), then saved,
all without writing JSON."""

import pytest

from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments.models import Experiment
from apps.experiments.rubrics import RUBRICS
from apps.prompts.models import Prompt
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS = [
    {"input": {"question": "Is Paris the capital of France?"}, "expected": "Paris", "metadata": {}},
    {"input": {"question": "What is the capital of Italy?"}, "expected": "Rome", "metadata": {}},
    {"input": {"question": "Is Berlin in Germany?"}, "expected": "Berlin", "metadata": {}},
    {"input": {"question": "Not tried: only the first three rows are"}, "expected": "x", "metadata": {}},
]


def _builder(page, login_page, editor, project, simulated_endpoint):
    make_dataset_version(DatasetFactory(project=project, name="capitals"), ROWS, actor=editor)
    make_version(PromptFactory(project=project, name="asker"), "{{ question }}", samples={"question": "q"})
    simulated_endpoint("echo", "openai/echo")
    judge = simulated_endpoint("Strict judge", "openai/judge")
    login_page(editor)
    page.goto("/p/acme/experiments/new/")
    page.fill("#id_name", "capitals judged")
    page.select_option("#id_dataset_version", label="capitals v1 (4 rows)")
    for index in (0, 1):
        page.select_option(f"#id_variant-{index}-prompt_version", label="asker v1")
        page.select_option(f"#id_variant-{index}-endpoint", label="echo")
    return judge


def test_an_llm_judge_from_the_rubric_library_is_tried_on_rows_and_saved_without_json(
    page, login_page, member, project, simulated_endpoint
):
    editor = member("editor", "eddie")
    judge = _builder(page, login_page, editor, project, simulated_endpoint)
    row = page.locator("[data-evaluator-row]").first
    judge_fields = row.locator("fieldset[data-kinds='llm_judge']")
    assert judge_fields.is_hidden()  # no kind chosen: no kind's fields

    page.select_option("#id_evaluator-0-kind", label="LLM as judge")
    judge_fields.wait_for()
    assert row.locator("fieldset[data-kinds='regex']").is_hidden()
    page.select_option("#id_evaluator-0-endpoint", label="Strict judge")  # by name, not an id
    page.select_option("#id_evaluator-0-rubric_preset", label="Correctness against the expected answer")
    assert page.input_value("#id_evaluator-0-rubric") == RUBRICS["correctness"].text
    assert page.input_value("#id_evaluator-0-name") == "correctness"

    row.get_by_role("button", name="Try on the first rows").click()
    results = row.locator(".try-results tbody tr")
    results.nth(2).wait_for()
    assert results.count() == 3
    scores = [results.nth(i).locator(".try-score").inner_text() for i in range(3)]
    assert scores == ["1.00 pass", "0.00 fail", "1.00 pass"]
    assert "judge: 1/5" in results.nth(1).inner_text() and "misses the reference" in results.nth(1).inner_text()
    assert not Experiment.objects.exists() and not Prompt.objects.filter(name="llm-judge").exists()  # nothing saved

    page.get_by_role("button", name="Save and estimate").click()
    page.get_by_text("Experiment saved as a draft").wait_for()
    described = page.locator("#evaluators tbody tr").first.inner_text()
    assert "LLM as judge" in described and "endpoint Strict judge" in described
    assert "rubric: Correctness against the expected answer" in described
    page.locator("#evaluators").get_by_role("link", name="llm-judge v1").wait_for()
    evaluator = Experiment.objects.get(name="capitals judged").evaluators.get()
    judge_prompt = Prompt.objects.get(project=project, name="llm-judge")
    assert evaluator.kind == "llm_judge" and evaluator.name == "correctness"
    assert evaluator.params == {
        "endpoint": "Strict judge",
        "endpoint_id": judge.pk,
        "rubric_key": "correctness",
        "rubric": RUBRICS["correctness"].text,
        "scale_min": 1,
        "scale_max": 5,
        "pass_at": 4,
        "judge_prompt_version_id": judge_prompt.versions.get(number=1).pk,
    }
    assert list(judge_prompt.tags.values_list("name", flat=True)) == ["judge"]


def test_a_regex_evaluator_is_tried_and_a_missing_pattern_is_named(
    page, login_page, member, project, simulated_endpoint
):
    _builder(page, login_page, member("editor", "eddie"), project, simulated_endpoint)
    row = page.locator("[data-evaluator-row]").first
    page.select_option("#id_evaluator-0-kind", label="Matches a regex")
    row.get_by_role("button", name="Try on the first rows").click()
    row.locator(".evaluator-try", has_text="Give the pattern.").wait_for()

    page.fill("#id_evaluator-0-regex_pattern", r"^Is \w+")
    row.get_by_role("button", name="Try on the first rows").click()
    row.locator(".try-results tbody tr").nth(2).wait_for()
    scores = [row.locator(".try-score").nth(i).inner_text() for i in range(3)]
    assert scores == ["1.00 pass", "0.00 fail", "1.00 pass"]

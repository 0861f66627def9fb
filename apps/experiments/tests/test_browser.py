"""Build an experiment in the browser, watch it run on a real worker, read the results."""

import pytest

from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments.tests.factories import make_rows
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_it_builds_runs_and_shows_an_experiment(
    page, login_page, member, project, celery_worker, simulated_endpoint, sim_server
):
    editor = member("editor", "eddie")
    sim_server.configure(latency_ms=150)
    make_dataset_version(DatasetFactory(project=project, name="questions"), make_rows(12), actor=editor)
    prompt = PromptFactory(project=project, name="asker")
    make_version(prompt, "{{ question }}", samples={"question": "q"})
    simulated_endpoint("echo", "openai/echo", max_concurrency=2)
    simulated_endpoint("upper", "openai/upper", max_concurrency=2)

    login_page(editor)
    page.goto("/p/acme/experiments/")
    page.get_by_text("No experiments yet").wait_for()
    page.get_by_role("link", name="Build an experiment").click()
    page.wait_for_load_state()
    page.fill("#id_name", "echo vs upper")
    page.select_option("#id_dataset_version", label="questions v1 (12 rows)")
    page.select_option("#id_variant-0-prompt_version", label="asker v1")
    page.select_option("#id_variant-0-endpoint", label="echo")
    page.select_option("#id_variant-1-prompt_version", label="asker v1")
    page.select_option("#id_variant-1-endpoint", label="upper")
    page.select_option("#id_evaluator-0-kind", "exact_match")
    page.fill("#id_evaluator-0-name", "exact")
    page.check("#id_evaluator-0-exact_case_sensitive")
    page.get_by_role("button", name="Save and estimate").click()
    page.locator("#estimate").get_by_text("24").first.wait_for()
    page.get_by_role("button", name="Start 24 calls").click()
    bar = page.get_by_role("progressbar", name="Overall progress")
    bar.wait_for()
    # (no wait_for_function: its string predicate is an eval, which the page's Content-Security-Policy refuses)
    page.locator("#status", has_text="Finished").wait_for(timeout=120_000)
    rows = page.locator("#summary tbody tr")
    assert rows.nth(0).inner_text().startswith("A") and "100%" in rows.nth(0).inner_text()  # echo matches
    assert rows.nth(1).inner_text().startswith("B") and "\t0%" in rows.nth(1).inner_text()
    assert page.locator("#results td", has_text="WHAT IS ITEM 0").count() >= 1
    page.get_by_role("link", name="Failing scores").click()
    page.locator("#results", has_text="rows").wait_for()

"""The comparison page in Chromium: picked from the list, rows diffed word by word with inputs as fields, and
the summary catching up by itself while an experiment runs."""

from __future__ import annotations

import threading

import pytest

from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments import runner
from apps.experiments.models import Cell
from apps.experiments.tests.test_comparison import _records, make_experiment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_compares_experiments_and_updates_the_summary_while_one_runs(
    project, editor, simulated_endpoint, login_page
):
    dataset_version = make_dataset_version(DatasetFactory(project=project, name="faq"), _records(), actor=editor)
    echo = make_experiment(project, editor, dataset_version, simulated_endpoint("echo"), "echo")
    upper = make_experiment(project, editor, dataset_version, simulated_endpoint("up", "openai/upper"), "up",
                            run=False)  # fmt: skip

    page = login_page(editor)
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(f"/p/{project.slug}/experiments/")
    page.check(f"#compare-{echo.pk}")
    page.check(f"#compare-{upper.pk}")
    page.click("#compare-button")
    page.wait_for_selector("#compare-summary")
    summary = page.locator("#compare-summary tbody tr")
    assert summary.nth(0).inner_text().startswith("echo · A") and "baseline" in summary.nth(0).inner_text()
    assert summary.nth(1).locator(".cells-done").inner_text() == "0 / 3"
    assert page.locator("#compare-live").is_visible()

    cells = list(Cell.objects.filter(experiment=upper).values_list("pk", flat=True))
    worker = threading.Thread(target=runner.run_batch, args=(upper.pk, cells))  # the page polls meanwhile
    worker.start()
    worker.join(60)
    page.locator("#compare-summary tbody tr[data-column='1'] .cells-done", has_text="3 / 3").wait_for(timeout=30_000)
    page.locator("#comparison[data-running='false']").wait_for(timeout=30_000)
    assert summary.nth(1).locator(".mean-delta").inner_text() == "-1.000"

    first = page.locator(".compare-item").first
    assert first.locator("dt[data-field='question']").inner_text() == "question"
    assert "what is item zero" in first.locator(".item-fields").inner_text()
    assert '{"question"' not in page.content()  # inputs are fields, not raw JSON
    assert (
        first.locator(".compare-cell[data-column='1'] ins.diff-ins").first.inner_text().strip() == "WHAT IS ITEM ZERO"
    )
    assert first.locator(".compare-cell[data-column='1'] del.diff-del").first.inner_text() == "what is item zero"
    assert first.locator(".delta").inner_text() == "-1.00"
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0

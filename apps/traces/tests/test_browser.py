"""In a real browser: filter the traces, open one, add two of its generations to a dataset."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import version_records
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version, record
from apps.traces.tests.test_views import traffic  # noqa: F401 - the fixture


@pytest.mark.browser
def test_it_filters_opens_a_trace_and_adds_two_generations_to_a_dataset(login_page, editor, traffic, project):  # noqa: F811
    dataset = DatasetFactory(project=project, name="greetings")
    make_dataset_version(dataset, [record(name="Bo", age=1, expected="Hi Bo")])
    page = login_page(editor)
    page.goto("/p/acme/traces/")
    assert page.locator(".trace-row").count() == 2
    page.select_option("select[name=status]", "ok")  # htmx swaps the results in place
    expect(page.locator(".trace-row")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"status=ok"))
    page.locator("input[name=q]").press_sequentially("Lin")
    expect(page).to_have_url(re.compile(r"q=Lin"))
    expect(page.locator(".trace-row")).to_have_count(1)
    page.click("text=greeting")
    page.wait_for_selector("#timeline")
    assert page.locator(".span-row").count() == 3
    page.check("#to-dataset-form input[name=generation] >> nth=0")
    page.check("#to-dataset-form input[name=generation] >> nth=1")
    page.select_option("#dataset", label="greetings")
    page.fill("#dataset-message", "Two production greetings")
    page.click("#add-selected")
    page.wait_for_selector("text=Added 2 generation(s) to greetings as v2.")
    version = DatasetVersion.objects.get(dataset=dataset, number=2)
    assert version.message == "Two production greetings"
    rows = list(version_records(version=version))
    assert [r["expected"] for r in rows] == ["Hi Bo", "Hi Ada, you are 36", "Hi Lin"]

"""Add to dataset: a playground result becomes one more row in a new version of one of the project's datasets."""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse

from apps.accounts.tests.factories import ProjectFactory
from apps.audit.models import AuditEvent
from apps.datasets import selectors as dataset_selectors
from apps.datasets.models import DatasetVersion
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version, record
from apps.playground.models import PlaygroundResult, PlaygroundRun
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.providers.models import ResultStatus

VARIABLES = {"customer": "Dana", "question": "Where is my invoice?"}


@pytest.fixture
def version(project, editor):
    prompt = PromptFactory(project=project, name="support")
    return make_version(prompt, "{{ customer }} asks: {{ question }}", samples=VARIABLES, actor=editor)


def make_result(project, version=None, *, variables=None, status=ResultStatus.DONE, output="Your invoice is here."):
    run = PlaygroundRun.objects.create(
        project=project,
        version=version,
        content={"kind": "text", "template": "{{ customer }} asks: {{ question }}"},
        variables=VARIABLES if variables is None else variables,
    )
    return PlaygroundResult.objects.create(
        run=run, endpoint_name="Echo", model="openai/echo", status=status, output=output, request={"prompt": "x"}
    )


def url(result, project="acme") -> str:
    return reverse("playground:result_to_dataset", args=[project, result.run_id, result.pk])


@pytest.fixture
def tickets(project, editor):
    dataset = DatasetFactory(project=project, name="tickets")
    make_dataset_version(dataset, [record(customer="Ann", question="Hi?"), record(customer="Bo", question="Yo?")])
    return dataset


def rows(version) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "item_id"} for r in dataset_selectors.version_records(version=version)]


def test_it_appends_the_result_as_a_new_version_with_input_expected_and_metadata(
    project, editor, client_for, version, tickets
):
    result = make_result(project, version)
    response = client_for(editor).post(
        url(result), {"dataset": tickets.pk, "expected": "Your invoice is on the Billing page.", "message": ""}
    )

    assert response.status_code == 302 and response.url == reverse("playground:run", args=["acme", result.run_id])
    old, new = tickets.versions.order_by("number")
    assert (old.row_count, new.row_count, new.number, new.parent_id) == (2, 3, 2, old.pk)
    assert rows(new)[-1] == {
        "input": VARIABLES,
        "expected": "Your invoice is on the Billing page.",
        "metadata": {
            "source": "playground",
            "playground_run": result.run_id,
            "playground_result": result.pk,
            "endpoint": "Echo",
            "model": "openai/echo",
            "prompt": "support",
            "prompt_version": 1,
        },
    }
    assert rows(new)[:2] == rows(old)  # the rows before it are the same items, in order
    assert new.message == f"Added from playground run #{result.run_id} (Echo)" and new.author == editor
    event = AuditEvent.objects.get(action="dataset.version_created", object_id=str(new.pk))
    assert event.actor == editor and event.project_id == project.pk
    assert f"playground run #{result.run_id}" in event.after["message"]
    page = unescape(client_for(editor).get(response.url).content.decode())
    assert "Added a row to tickets as" in page
    assert f'href="{reverse("datasets:version", args=["acme", tickets.pk, 2])}">v2</a> (row 3)' in page


def test_it_offers_this_projects_datasets_with_the_output_as_the_expected_answer(
    project, editor, client_for, version, tickets
):
    DatasetFactory(project=ProjectFactory(slug="other"), name="someone-elses-data")
    result = make_result(project, version, output="Line one\nLine <two>")
    page = client_for(editor).get(url(result))
    html = page.content.decode()
    assert page.status_code == 200
    assert f'<option value="{tickets.pk}" selected>tickets (v1)</option>' in html  # the only one: chosen
    assert "someone-elses-data" not in html
    assert "Line one\nLine &lt;two&gt;</textarea>" in html
    assert "Where is my invoice?" in html and "playground_run" in html


def test_it_starts_the_first_version_of_a_dataset_that_has_none(project, editor, client_for, version):
    empty = DatasetFactory(project=project, name="fresh")
    result = make_result(project, version)
    assert "fresh (no versions yet)" in client_for(editor).get(url(result)).content.decode()
    client_for(editor).post(url(result), {"dataset": empty.pk, "expected": "Your invoice is here."})
    first = empty.versions.get()
    assert first.number == 1 and rows(first)[0]["input"] == VARIABLES and first.author == editor


def test_it_keeps_line_breaks_as_the_model_wrote_them_and_an_empty_answer_as_none(
    project, editor, client_for, version, tickets
):
    result = make_result(project, version)
    client = client_for(editor)
    client.post(url(result), {"dataset": tickets.pk, "expected": "one\r\ntwo", "message": "two lines"})
    client.post(url(result), {"dataset": tickets.pk, "expected": ""})
    with_text, without = tickets.versions.order_by("number")[1:]
    assert rows(with_text)[-1]["expected"] == "one\ntwo" and with_text.message == "two lines"
    assert rows(without)[-1]["expected"] is None and without.row_count == 4


def test_it_names_the_unsaved_prompt_in_the_metadata(project, editor, client_for, tickets):
    result = make_result(project, None)
    client_for(editor).post(url(result), {"dataset": tickets.pk, "expected": "x"})
    metadata = rows(tickets.versions.order_by("-number").first())[-1]["metadata"]
    assert metadata["prompt"] == "(unsaved content)" and metadata["prompt_version"] is None


@pytest.mark.parametrize(
    ("change", "result_fields", "message"),
    [
        ({"dataset": ""}, {}, "Pick a dataset."),
        ({"dataset": "tickets"}, {}, "Pick a dataset from the list."),
        ({}, {"variables": {}}, "has no variables, so the row would have no input"),
        ({}, {"status": ResultStatus.RUNNING}, "The result of Echo is still running"),
        ({"expected": "y" * 60}, {}, "Row 3, expected output: a value of 60 characters is over the limit of 50"),
    ],
)
def test_it_names_the_problem_and_saves_nothing(
    project, editor, client_for, version, tickets, settings, change, result_fields, message
):
    settings.DATASET_MAX_CELL_CHARS = 50
    result = make_result(project, version, **result_fields)
    post = {"dataset": tickets.pk, "expected": "my edited answer", **change}
    response = client_for(editor).post(url(result), post)
    html = unescape(response.content.decode())
    assert response.status_code == 400
    assert message in html
    assert f">\n{post['expected']}</textarea>" in html  # what was typed is still there
    assert tickets.versions.count() == 1


def test_it_answers_404_for_another_projects_dataset_run_or_result(project, editor, client_for, version, tickets):
    other = ProjectFactory(slug="other")
    foreign_dataset = DatasetFactory(project=other, name="foreign")
    make_dataset_version(foreign_dataset, [record(q="1")])
    result = make_result(project, version)
    client = client_for(editor)

    assert client.post(url(result), {"dataset": foreign_dataset.pk, "expected": "x"}).status_code == 404
    assert foreign_dataset.versions.count() == 1 and tickets.versions.count() == 1
    foreign_result = make_result(other)
    foreign_run_url = reverse("playground:result_to_dataset", args=["acme", foreign_result.run_id, foreign_result.pk])
    assert client.get(foreign_run_url).status_code == 404
    # A real run of this project with a result id of another run.
    mixed = reverse("playground:result_to_dataset", args=["acme", result.run_id, foreign_result.pk])
    assert client.post(mixed, {"dataset": tickets.pk, "expected": "x"}).status_code == 404
    assert DatasetVersion.objects.count() == 2


def test_it_is_for_editors(project, member, client_for, version, tickets):
    result = make_result(project, version)
    viewer = client_for(member("viewer", "vic"))
    assert viewer.get(url(result)).status_code == 403
    assert viewer.post(url(result), {"dataset": tickets.pk, "expected": "x"}).status_code == 403
    assert tickets.versions.count() == 1
    reviewer = client_for(member("reviewer", "rae"))
    assert reviewer.get(url(result)).status_code == 200


def test_it_shows_an_empty_state_with_a_way_to_create_a_dataset(project, editor, client_for, version):
    result = make_result(project, version)
    page = client_for(editor).get(url(result)).content.decode()
    assert "This project has no datasets yet." in page
    assert f'href="{reverse("datasets:import", args=["acme"])}">Create a dataset</a>' in page
    assert 'id="add-to-dataset-form"' not in page


def test_the_run_page_offers_it_on_finished_results(project, editor, client_for, version, tickets):
    done = make_result(project, version)
    failed = PlaygroundResult.objects.create(
        run=done.run, endpoint_name="Broken", model="openai/x", status=ResultStatus.FAILED, error_kind="auth"
    )
    page = client_for(editor).get(reverse("playground:run", args=["acme", done.run_id])).content.decode()
    assert url(done) in page and url(failed) in page
    warning = client_for(editor).get(url(failed)).content.decode()
    assert "This result failed (auth)" in warning


@pytest.mark.browser
def test_it_adds_a_result_to_a_dataset_from_the_run_page(project, editor, version, tickets, login_page):
    result = make_result(project, version, output="Your invoice is here.")
    page = login_page(editor)
    page.goto(reverse("playground:run", args=["acme", result.run_id]))
    page.click(".result[data-endpoint='Echo'] .add-to-dataset")
    page.select_option("#id_dataset", label="tickets (v1)")
    assert page.input_value("#id_expected") == "Your invoice is here."
    page.fill("#id_expected", "Your invoice is under Billing → Invoices.\nAsk us if it is not.")
    page.click("#add-button")

    page.wait_for_selector("#messages .alert-success")
    assert "Added a row to tickets as v2 (row 3)." in page.inner_text("#messages")
    page.click("#messages a:text('v2')")
    page.wait_for_load_state()
    newest = tickets.versions.order_by("-number").first()
    assert rows(newest)[-1]["expected"] == "Your invoice is under Billing → Invoices.\nAsk us if it is not."
    assert "Billing → Invoices" in page.content()

"""Experiments compared on one dataset: per-row deltas against the baseline, the rows that changed most first,
outputs diffed word by word, inputs as fields, and a page that polls while one of them runs."""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse

from apps.core.tests.pages import facts
from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments import comparison, runner, services
from apps.experiments.comparison import Segment
from apps.experiments.models import Cell
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db(transaction=True)

QUESTIONS = ["what is item zero", "hello", "two words"]


def _records(questions=QUESTIONS):
    return [{"input": {"question": q, "tries": i, "tags": ["faq"]}, "expected": q, "metadata": {}}
            for i, q in enumerate(questions)]  # fmt: skip


def make_experiment(project, editor, dataset_version, endpoint, name, *, run: bool = True):
    """An experiment started (running) and, with `run`, pulled to the end in this process."""
    prompt = PromptFactory(project=project, name=f"ask-{name}")
    version = make_version(prompt, "{{ question }}", samples={"question": "q"}, actor=editor)
    experiment = services.experiment_create(
        project=project,
        name=name,
        dataset_version=dataset_version,
        variants=[services.VariantSpec("A", version, endpoint)],
        evaluator_specs=[services.EvaluatorSpec("exact", "exact_match", {"case_sensitive": True})],
        repeats=1,
        budget=None,
        actor=editor,
    )
    services.experiment_start(experiment=experiment, actor=editor)
    ids = list(Cell.objects.filter(experiment=experiment).order_by("position").values_list("pk", flat=True))
    if run:
        runner.run_batch(experiment.pk, ids)
    experiment.refresh_from_db()
    return experiment


@pytest.fixture
def pair(project, editor, simulated_endpoint):
    dataset_version = make_dataset_version(DatasetFactory(project=project, name="faq"), _records(), actor=editor)
    echo = make_experiment(project, editor, dataset_version, simulated_endpoint("echo"), "echo")
    reverse_ = make_experiment(project, editor, dataset_version, simulated_endpoint("rev", "openai/reverse"), "rev")
    return echo, reverse_


def test_it_diffs_outputs_word_by_word():
    assert comparison.word_diff("the cat sat down", "the dog sat down") == [
        Segment("same", "the "),
        Segment("del", "cat "),
        Segment("ins", "dog "),
        Segment("same", "sat down"),
    ]
    assert comparison.word_diff("same", "same") == [Segment("same", "same")]


def test_it_shows_inputs_as_readable_fields():
    fields = comparison.readable_fields({"question": "hi", "tries": 2, "tags": ["a", "b"], "ok": True})
    assert [(f.name, f.text, f.block) for f in fields] == [
        ("question", "hi", False),
        ("tries", "2", False),
        ("tags", '[\n  "a",\n  "b"\n]', True),
        ("ok", "true", False),
    ]


def test_it_computes_per_row_deltas_and_puts_the_rows_that_changed_most_first(project, pair):
    echo, reverse_ = pair
    result = comparison.experiment_comparison(experiments=[echo, reverse_])
    baseline, other = result.columns
    assert result.evaluator == "exact" and baseline.mean == 1.0 and other.mean == pytest.approx(1 / 3)
    assert other.mean_delta == pytest.approx(-2 / 3) and (other.better, other.worse, other.same) == (0, 2, 1)
    assert other.changed_outputs == 2 and baseline.done == other.done == 3
    assert [row.cells[0].output for row in result.rows] == ["what is item zero", "two words", "hello"]
    assert [row.cells[1].delta for row in result.rows] == [-1.0, -1.0, 0.0]
    first = result.rows[0]
    assert first.cells[1].output == "zero item is what"
    assert first.cells[1].diff == [
        Segment("ins", "zero item is "),
        Segment("same", "what"),
        Segment("del", " is item zero"),
    ]
    assert [(f.name, f.text) for f in first.fields][:2] == [("question", "what is item zero"), ("tries", "0")]
    assert result.rows[2].cells[1].diff == [] and not result.running
    only = comparison.experiment_comparison(experiments=[echo, reverse_], only_changed=True)
    assert only.item_count == 2


def test_it_refuses_experiments_of_different_datasets_or_too_few(project, editor, pair, simulated_endpoint, client_for):
    echo, _ = pair
    other_data = make_dataset_version(DatasetFactory(project=project, name="other"), _records(["x"]), actor=editor)
    elsewhere = make_experiment(project, editor, other_data, simulated_endpoint("e2"), "elsewhere", run=False)
    url = reverse("experiments:compare", args=[project.slug])
    response = client_for(editor).get(url, {"ids": [echo.pk, elsewhere.pk]})
    assert response.status_code == 400
    assert "Only experiments on the same dataset can be compared" in unescape(response.content.decode())
    response = client_for(editor).get(url, {"ids": [echo.pk]})
    assert response.status_code == 400 and "Pick two or more experiments" in response.content.decode()


def test_the_page_polls_while_an_experiment_runs_and_stops_when_all_are_finished(
    project, editor, pair, simulated_endpoint, client_for
):
    echo, reverse_ = pair
    running = make_experiment(project, editor, echo.dataset_version, simulated_endpoint("up", "openai/upper"), "up",
                              run=False)  # fmt: skip
    client = client_for(editor)
    url = reverse("experiments:compare", args=[project.slug])
    html = client.get(url, {"ids": [running.pk, echo.pk], "baseline": echo.pk}).content.decode()
    assert 'hx-trigger="every 2s"' in html and "0 / 3" in html
    assert html.index(">echo · A</a>") < html.index(">up · A</a>")  # the baseline leads
    checked = facts(html)
    assert not checked.inline_scripts and not checked.handlers and not checked.unlabelled() and 'style="' not in html
    runner.run_batch(running.pk, list(Cell.objects.filter(experiment=running).values_list("pk", flat=True)))
    part = client.get(url, {"ids": [running.pk, echo.pk], "part": "comparison"}, HTTP_HX_REQUEST="true")
    html = part.content.decode()
    assert part.status_code == 200 and html.lstrip().startswith('<div id="comparison" data-running="false"')
    assert "hx-trigger" not in html and "3 / 3" in html
    page = client.get(reverse("experiments:list", args=[project.slug])).content.decode()
    assert f'name="ids" value="{reverse_.pk}"' in page


def test_an_experiment_page_links_to_its_comparison_with_the_others_on_its_dataset(
    project, editor, pair, simulated_endpoint, client_for
):
    echo, reverse_ = pair
    client = client_for(editor)
    detail = client.get(reverse("experiments:detail", args=[project.slug, reverse_.pk])).content.decode()
    link = reverse("experiments:compare_from", args=[project.slug, reverse_.pk])
    assert f'href="{link}">Compare with others on this dataset</a>' in detail
    response = client.get(link)
    assert response.status_code == 302
    assert response["Location"].endswith(f"?ids={reverse_.pk}&ids={echo.pk}&baseline={reverse_.pk}")
    alone_data = make_dataset_version(DatasetFactory(project=project, name="alone"), _records(["x"]), actor=editor)
    alone = make_experiment(project, editor, alone_data, simulated_endpoint("e3"), "alone", run=False)
    response = client.get(reverse("experiments:compare_from", args=[project.slug, alone.pk]))
    assert response.status_code == 404 and "No other experiment has run on alone yet." in response.content.decode()

"""Explaining one output: occlusion of each variable and the words the decision's probability depends on.

The simulated `biased` model answers DENIED when a woman is mentioned (she, her, ...) with probability 0.9
for its decision token: the applicant moves the decision, the amount does not, and within the applicant the
word "she" is the one the decision's probability hangs on.
"""

import time

import pytest
from django.db import transaction

from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments import runner, services
from apps.experiments.models import Cell, Explanation, ExplanationStatus
from apps.experiments.probes import explain
from apps.experiments.probes import services as probe_services
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.traces.ingest import rows_write
from apps.traces.models import Span
from apps.traces.records import native_batch

pytestmark = pytest.mark.django_db(transaction=True)
TEMPLATE = "Decide. Applicant: {{ applicant }}. Amount: {{ amount }}."


def _denied_cell(project, editor, endpoint) -> Cell:
    version = make_version(PromptFactory(project=project), TEMPLATE, actor=editor,
                           samples={"applicant": "x", "amount": 1})  # fmt: skip
    data = make_dataset_version(DatasetFactory(project=project),
                                [{"input": {"applicant": "she is a nurse", "amount": 5000}}], actor=editor)  # fmt: skip
    experiment = services.experiment_create(
        project=project, name="loans", dataset_version=data, actor=editor,
        variants=[services.VariantSpec("A", version, endpoint)],
    )  # fmt: skip
    services.experiment_start(experiment=experiment, actor=editor)
    runner.run_batch(experiment.pk, list(Cell.objects.filter(experiment=experiment).values_list("pk", flat=True)))
    cell = Cell.objects.get(experiment=experiment)
    assert cell.output == "DENIED"
    return cell


def test_occlusion_finds_the_variable_and_sensitivity_the_word(project, editor, simulated_endpoint):
    cell = _denied_cell(project, editor, simulated_endpoint("biased", "openai/biased"))
    subject = explain.subject_of_cell(cell)
    calls = []
    result = explain.explain(subject, tick=lambda: calls.append(1))
    assert len(calls) == explain.calls_needed(subject) == 1 + 2 + 1 + 4  # 2 variables, 4 words of the applicant
    assert (result["baseline"]["distance"], result["baseline"]["decision_changed"]) == (0.0, False)
    first, second = result["occlusion"]
    assert (first["variable"], first["output"], first["decision_changed"]) == ("applicant", "APPROVED", True)
    assert (second["variable"], second["decision_changed"], second["distance"]) == ("amount", False, 0.0)
    sensitivity = result["sensitivity"]
    assert sensitivity["available"] and sensitivity["token"] == "DENIED"
    top, *rest = sensitivity["words"]
    assert (top["word"], top["variable"], top["position"]) == ("she", "applicant", 0)
    assert top["delta"] == pytest.approx(2.1972, abs=1e-3)  # log 0.9 - log 0.1
    assert all(w["delta"] == 0 for w in rest)


def test_an_endpoint_without_logprobs_still_gets_the_occlusion(project, editor, simulated_endpoint, sim_server):
    cell = _denied_cell(project, editor, simulated_endpoint("biased", "openai/biased"))
    subject = explain.subject_of_cell(cell)
    sim_server.configure(fail_500=1.0)  # every call fails: each is reported, none raises
    result = explain.explain(subject)
    assert all(r["error"] for r in result["occlusion"]) and result["baseline"]["error"]
    assert result["sensitivity"]["available"] is False and "failed" in result["sensitivity"]["note"]


def test_the_page_starts_an_explanation_a_worker_runs(project, editor, simulated_endpoint, client_for, celery_worker):
    cell = _denied_cell(project, editor, simulated_endpoint("biased", "openai/biased"))
    client = client_for(editor)
    url = f"/p/{project.slug}/experiments/{cell.experiment_id}/cells/{cell.pk}/explain/"
    assert url.encode() in client.get(f"/p/{project.slug}/experiments/{cell.experiment_id}/").content
    assert b'id="no-explanation"' in client.get(url).content
    response = client.post(url, {"endpoint": cell.variant.endpoint_id})
    assert response.status_code == 302
    explanation = Explanation.objects.get(cell=cell)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not Explanation.objects.get(pk=explanation.pk).finished:
        time.sleep(0.2)
    explanation.refresh_from_db()
    assert explanation.status == ExplanationStatus.DONE and explanation.done == explanation.total == 8
    page = client.get(url).content
    assert b'id="occlusion"' in page and b"moves it" in page and b'id="sensitivity"' in page
    part = client.get(f"/p/{project.slug}/experiments/explanations/{explanation.pk}/")
    assert part.status_code == 200 and b"hx-trigger" not in part.content  # finished: no more polling


def test_a_production_generation_is_explained_on_an_endpoint_of_the_project(
    project, editor, simulated_endpoint, client_for
):
    version = make_version(PromptFactory(project=project, name="loans"), TEMPLATE, actor=editor,
                           samples={"applicant": "x", "amount": 1})  # fmt: skip
    endpoint = simulated_endpoint("biased", "openai/biased")
    batch = {"generations": [{"trace_id": "t1", "id": "g1", "name": "decide",
                        "start_time": "2026-12-05T10:00:00Z", "end_time": "2026-12-05T10:00:01Z", "model": "biased",
                        "prompt": {"name": "loans", "version": version.number},
                        "variables": {"applicant": "her bakery", "amount": 900}, "output": "DENIED"}]}  # fmt: skip
    spans, traces, scores = native_batch(batch)
    with transaction.atomic():  # rows_write runs inside the ingest task's transaction
        rows_write(project_id=project.pk, spans=spans, traces=traces, scores=scores)
    span = Span.objects.get(trace_id="t1")
    assert span.prompt_version_id == version.pk
    client = client_for(editor)
    trace_page = client.get(f"/p/{project.slug}/traces/t1/").content
    url = f"/p/{project.slug}/traces/{span.trace_id}/generations/{span.pk}/explain/"
    assert url.encode() in trace_page
    page = client.get(url)
    assert page.status_code == 200 and f'value="{endpoint.pk}" selected'.encode() in page.content  # its model's
    assert client.post(url, {"endpoint": endpoint.pk}).status_code == 302
    explanation = Explanation.objects.get(source_key=f"span:{span.pk}")
    probe_services.explanation_run(explanation_id=explanation.pk)  # what the worker runs
    explanation.refresh_from_db()
    assert explanation.status == ExplanationStatus.DONE
    assert explanation.result["occlusion"][0]["variable"] == "applicant"
    assert explanation.result["sensitivity"]["words"][0]["word"] == "her"
    probe_services.explanation_run(explanation_id=explanation.pk)  # a second delivery does nothing
    assert Explanation.objects.get(pk=explanation.pk).result == explanation.result


def test_what_cannot_be_explained_is_refused_with_the_reason(project, editor, member, simulated_endpoint, client_for):
    from apps.accounts.tests.factories import ProjectFactory

    other_project = ProjectFactory(slug="other")
    endpoint = simulated_endpoint("biased", "openai/biased")
    batch = {"generations": [{"trace_id": "t2", "id": "g2", "name": "free",
                        "start_time": "2026-12-05T10:00:00Z", "end_time": "2026-12-05T10:00:01Z",
                        "output": "hello"}]}  # fmt: skip
    spans, traces, scores = native_batch(batch)
    with transaction.atomic():  # rows_write runs inside the ingest task's transaction
        rows_write(project_id=project.pk, spans=spans, traces=traces, scores=scores)
    span = Span.objects.get(trace_id="t2")
    url = f"/p/{project.slug}/traces/{span.trace_id}/generations/{span.pk}/explain/"
    response = client_for(editor).post(url, {"endpoint": endpoint.pk})
    assert response.status_code == 400 and b"names no prompt version" in response.content
    assert not Explanation.objects.exists()
    viewer = member("viewer", "vic")
    assert client_for(viewer).post(url, {"endpoint": endpoint.pk}).status_code == 403
    with pytest.raises(explain.ExplainError, match="names no prompt version"):
        explain.subject_of_span(span, endpoint)
    cell = _denied_cell(project, editor, endpoint)
    subject = explain.subject_of_cell(cell)
    subject.endpoint = simulated_endpoint("elsewhere", "openai/echo", for_project=other_project)
    with pytest.raises(explain.ExplainError, match="this project's model endpoints"):
        probe_services.explanation_start(project=project, actor=editor, subject=subject, cell=cell)

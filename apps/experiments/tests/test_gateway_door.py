"""Experiment cells and their LLM judges pass the gateway's single door.

"Another process" holding a slot is a second limiter backend made like the one every process makes
(its own lock files on the embedded default, the same Redis or database otherwise).
"""

from __future__ import annotations

import pytest

from apps.experiments import runner
from apps.experiments import services as experiment_services
from apps.experiments.models import Cell, CellStatus, Score
from apps.experiments.tests.factories import build_experiment, make_rows
from apps.providers.gateway import limits
from apps.providers.tests.test_limits import hold_slot_elsewhere

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_limiter():
    limits.reset_limiter()
    yield
    limits.reset_limiter()


def test_judge_calls_hold_the_judge_endpoints_shared_slots(project, editor, simulated_endpoint, sim_server):
    model = simulated_endpoint("Model", "openai/echo", max_concurrency=4)
    judge = simulated_endpoint("Judge", "openai/upper", max_concurrency=1)
    rubric = {"endpoint_id": judge.pk, "rubric": "Is it right?"}
    experiment = build_experiment(
        project, editor, [model], rows=2, evaluators=[experiment_services.EvaluatorSpec("judge", "llm_judge", rubric)]
    )
    experiment_services.experiment_start(experiment=experiment, actor=editor)
    holder, released = hold_slot_elsewhere(judge, 1.5)
    runner.run_batch(experiment.pk, list(Cell.objects.filter(experiment=experiment).values_list("pk", flat=True)))
    holder.join()
    requests = sim_server.requests("/chat/completions")
    generations = [r for r in requests if r.body["model"] == "echo"]
    judgements = [r for r in requests if r.body["model"] == "upper"]
    assert len(generations) == 2 and len(judgements) == 2
    assert all(r.at < released[0] for r in generations)  # the model's own slots were free
    assert all(r.at >= released[0] for r in judgements)  # the judge waited for its endpoint's only slot
    assert Score.objects.filter(cell__experiment=experiment).count() == 2


def test_an_experiment_cell_with_a_provider_key_in_its_prompt_is_refused(
    project, editor, simulated_endpoint, sim_server
):
    endpoint = simulated_endpoint(api_key="correct-horse-battery-staple-42")
    records = make_rows(3)
    records[1]["input"]["question"] = "use sk-proj-Abcdefghijklmnopqrstuvwxyz012345 please"
    records[2]["input"]["question"] = "the key is correct-horse-battery-staple-42"
    experiment = build_experiment(project, editor, [endpoint], records=records)
    experiment_services.experiment_start(experiment=experiment, actor=editor)
    runner.run_batch(experiment.pk, list(Cell.objects.filter(experiment=experiment).values_list("pk", flat=True)))
    cells = {c.position: c for c in Cell.objects.filter(experiment=experiment)}
    assert cells[0].status == CellStatus.DONE
    assert cells[1].status == CellStatus.FAILED and "looks like a provider API key" in cells[1].error_message
    assert cells[2].status == CellStatus.FAILED
    assert "contains the API key of the endpoint 'Simulated echo'" in cells[2].error_message
    assert "correct-horse" not in cells[2].error_message
    sent = [r.body["messages"][-1]["content"] for r in sim_server.requests("/chat/completions")]
    assert sent == ["what is item 0"]  # nothing else reached the model

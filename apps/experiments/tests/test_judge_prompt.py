"""The judge prompt is a studio prompt: made once from the built-in one (llm-judge, tag judge), pinned by each
experiment, edited as new versions; the runner and the builder's Try render the pinned version through the
sandbox and call the judge through the gateway (the simulated judge on the local test server)."""

import pytest

from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments import rubrics, runner, services, trial
from apps.experiments.models import Cell, Score
from apps.experiments.tests.factories import build_experiment
from apps.prompts.models import Prompt
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = pytest.mark.django_db(transaction=True)

RECORDS = [
    {"input": {"question": "Is Paris in France?"}, "expected": "Paris", "metadata": {}},
    {"input": {"question": "Capital of Italy?"}, "expected": "Rome", "metadata": {}},
]
# A judge prompt that never shows the reference: the simulated judge then only asks for a non-empty output.
# Saved without types, its scale variables are text: the judge fills them in as text.
NO_REFERENCE = [
    {"role": "system", "content": "Grade from {{ scale_min }} to {{ scale_max }}. JSON only."},
    {"role": "user", "content": "Rubric:\n{{ rubric }}\n\nOutput to grade:\n{{ output }}"},
]


def test_the_default_judge_prompt_is_made_once_and_is_an_ordinary_versioned_prompt(project, editor):
    first = services.judge_prompt_ensure(project=project, actor=editor)
    again = services.judge_prompt_ensure(project=project, actor=editor)
    assert first.pk == again.pk and first.number == 1 and first.kind == "chat"
    prompt = Prompt.objects.get(project=project, name=rubrics.JUDGE_PROMPT_NAME)
    assert [t.name for t in prompt.tags.all()] == ["judge"]
    assert {v["name"] for v in first.variables} == set(rubrics.JUDGE_VARIABLES)
    edited = make_version(prompt, kind="chat", messages=NO_REFERENCE, actor=editor)
    assert services.judge_prompt_ensure(project=project, actor=editor).pk == edited.pk  # the newest


def test_the_runner_renders_the_pinned_judge_prompt_version(project, editor, simulated_endpoint, sim_server):
    model, judge = simulated_endpoint("Model", "openai/echo"), simulated_endpoint("Judge", "openai/judge")
    default = services.judge_prompt_ensure(project=project, actor=editor)
    custom = make_version(default.prompt, kind="chat", messages=NO_REFERENCE, actor=editor)
    params = {"endpoint_id": judge.pk, "rubric": "Does it name the city?", "pass_at": 4}
    specs = [
        services.EvaluatorSpec("pinned default", "llm_judge", {**params, "judge_prompt_version_id": default.pk}),
        services.EvaluatorSpec("pinned custom", "llm_judge", {**params, "judge_prompt_version_id": custom.pk}),
    ]
    experiment = build_experiment(project, editor, [model], evaluators=specs, records=RECORDS)
    services.experiment_start(experiment=experiment, actor=editor)
    runner.run_batch(experiment.pk, list(Cell.objects.filter(experiment=experiment).values_list("pk", flat=True)))
    passed = {(s.evaluator.name, s.cell.position): s.passed for s in Score.objects.filter(cell__experiment=experiment)}
    # The default shows the reference (row 2's echo misses "Rome"); the custom version does not.
    assert passed == {
        ("pinned default", 0): True, ("pinned default", 1): False,
        ("pinned custom", 0): True, ("pinned custom", 1): True,
    }  # fmt: skip
    judged = [r.body for r in sim_server.requests("/chat/completions") if r.body["model"] == "judge"]
    assert any(m["content"].startswith("Grade from 1 to 5") for body in judged for m in body["messages"])


def test_a_judge_prompt_with_a_variable_the_judge_does_not_fill_is_refused(project, editor, simulated_endpoint):
    judge = simulated_endpoint("Judge", "openai/judge")
    odd = make_version(
        PromptFactory(project=project, name="odd-judge"), kind="chat",
        messages=[{"role": "user", "content": "{{ output }} in {{ language }}"}],
    )  # fmt: skip
    spec = services.EvaluatorSpec("j", "llm_judge", {"endpoint_id": judge.pk, "rubric": "r",
                                                      "judge_prompt_version_id": odd.pk})  # fmt: skip
    with pytest.raises(services.ExperimentError, match="uses language; a judge prompt may use only rubric"):
        build_experiment(project, editor, [judge], evaluators=[spec], records=RECORDS)


def test_try_scores_the_first_rows_with_the_chosen_judge_prompt_and_saves_nothing(project, editor, simulated_endpoint):
    model, judge = simulated_endpoint("Model", "openai/echo"), simulated_endpoint("Judge", "openai/judge")
    version = make_dataset_version(DatasetFactory(project=project), RECORDS, actor=editor)
    asker = make_version(PromptFactory(project=project, name="asker"), "{{ question }}", samples={"question": "q"})
    common = dict(project=project, dataset_version_id=version.pk, prompt_version_id=asker.pk, endpoint_id=model.pk,
                  variant_params={}, kind="llm_judge")  # fmt: skip
    params = {"endpoint_id": judge.pk, "rubric": "Right city?", "scale_min": 1, "scale_max": 5, "pass_at": 4}
    rows = trial.evaluator_try(**common, params=params)
    assert [(r.position, r.output, r.score.passed) for r in rows] == [
        (1, "Is Paris in France?", True), (2, "Capital of Italy?", False),
    ]  # fmt: skip
    assert not Prompt.objects.filter(name=rubrics.JUDGE_PROMPT_NAME).exists()  # the built-in prompt, unsaved

    custom = make_version(PromptFactory(project=project, name="lenient"), kind="chat", messages=NO_REFERENCE)
    rows = trial.evaluator_try(**common, params={**params, "judge_prompt_version_id": custom.pk})
    assert [r.score.passed for r in rows] == [True, True]
    with pytest.raises(trial.TrialError, match="first variant"):
        trial.evaluator_try(**{**common, "endpoint_id": None}, params=params)

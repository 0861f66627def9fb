"""A finished experiment without a model: cells written directly, through the same helper the demo uses."""

from __future__ import annotations

from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments import services as experiment_services
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.providers.models import EndpointKind
from apps.providers.services import endpoint_create
from apps.ratings.seeding import SeedVariant, finished_experiment


def offline_endpoint(project, name: str = "offline"):
    return endpoint_create(
        project=project, actor="test", name=name, kind=EndpointKind.REMOTE, model="openai/offline",
        api_base="http://127.0.0.1:9/v1",
    )  # fmt: skip


def default_output(variant: str, position: int, repeat: int, item) -> str:
    return f"answer {position} from {variant}" + (" politely" if variant != "A" else "")


def default_score(evaluator: str, variant: str, position: int, output: str, item):
    good = variant != "A" or position % 3 == 0
    return (0.9 if good else 0.2), good, "seeded"


def make_experiment(
    project,
    actor,
    *,
    variant_names=("A", "B"),
    rows: int = 6,
    repeats: int = 1,
    output=default_output,
    evaluators=(("quality", "llm_judge"),),
    score=default_score,
    failed=None,
    prompt_name: str = "ask",
    versions=None,
):
    dataset = DatasetFactory(project=project)
    version = make_dataset_version(
        dataset,
        [{"input": {"question": f"question {i}"}, "expected": f"answer {i}", "metadata": {}} for i in range(rows)],
        actor=actor,
    )
    endpoint = offline_endpoint(project)
    if versions is None:
        prompt = PromptFactory(project=project, name=prompt_name)
        versions = [
            make_version(prompt, "{{ question }}" + " ?" * index, actor=actor, samples={"question": "q"})
            for index in range(len(variant_names))
        ]
    variants = [SeedVariant(name, version, endpoint) for name, version in zip(variant_names, versions, strict=True)]
    return finished_experiment(
        project=project,
        actor=actor,
        name="rated experiment",
        dataset_version=version,
        variants=variants,
        output=output,
        evaluators=[experiment_services.EvaluatorSpec(n, k, {"endpoint_id": endpoint.pk}) for n, k in evaluators],
        score=score,
        repeats=repeats,
        failed=failed,
    )


def judge_all(queue, raters, prefer, reason: str = ""):
    """Every rater answers each pending pair: `prefer(rater, position)` names the winning variant, or "tie"."""
    from apps.ratings import selectors, services

    for rater in raters:
        while (assignment := selectors.next_assignment(queue=queue, rater=rater)) is not None:
            winner = prefer(rater, assignment.item.position)
            if winner == "tie":
                choice = "tie"
            else:
                choice = "left" if assignment.left_cell.variant.name == winner else "right"
            services.judgement_submit(queue=queue, token=assignment.token, rater=rater, choice=choice, reason=reason)

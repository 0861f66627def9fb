"""Build experiments through the real services: dataset version, prompt versions, simulated-server endpoints."""

from __future__ import annotations

from apps.datasets.tests.factories import DatasetFactory, make_dataset_version
from apps.experiments import services
from apps.prompts.tests.factories import PromptFactory, make_version


def make_rows(count: int, *, with_expected: bool = True) -> list[dict]:
    return [
        {
            "input": {"question": f"what is item {i}"},
            "expected": f"what is item {i}" if with_expected else None,
            "metadata": {},
        }
        for i in range(count)
    ]


def build_experiment(
    project,
    actor,
    endpoints,
    *,
    rows: int = 10,
    repeats: int = 1,
    prompt_count: int = 1,
    evaluators=None,
    budget=None,
    records=None,
    template: str = "{{ question }}",
):
    dataset = DatasetFactory(project=project)
    version = make_dataset_version(dataset, records if records is not None else make_rows(rows), actor=actor)
    prompt = PromptFactory(project=project)
    prompt_versions = [
        make_version(prompt, template + (" " * i), actor=actor, samples={"question": "why"})
        for i in range(prompt_count)
    ]
    variants = []
    for p_index, prompt_version in enumerate(prompt_versions):
        for e_index, endpoint in enumerate(endpoints):
            variants.append(
                services.VariantSpec(chr(65 + p_index * len(endpoints) + e_index), prompt_version, endpoint)
            )
    return services.experiment_create(
        project=project,
        name="test experiment",
        dataset_version=version,
        variants=variants,
        evaluator_specs=evaluators or [],
        repeats=repeats,
        budget=budget,
        actor=actor,
    )

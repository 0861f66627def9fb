"""Writes of probes: a bias or injection probe is an experiment of that kind, made and started here."""

from __future__ import annotations

from apps.accounts.models import Project
from apps.experiments import services
from apps.experiments.models import Experiment, ExperimentKind


def bias_probe_create(
    *,
    project: Project,
    actor,
    dataset_version,
    prompt_version,
    endpoint,
    positive_label: str = "",
    evaluator_specs: list[services.EvaluatorSpec] | None = None,
    name: str = "",
    start: bool = True,
) -> Experiment:
    """An experiment of kind bias on a counterfactual dataset version (rows paired by pair_id)."""
    if "pair_id" not in (dataset_version.metadata_columns or []):
        raise services.ExperimentError(
            f"{dataset_version} has no counterfactual pairs (no pair_id in its metadata); "
            "make a counterfactual version on the dataset's page first."
        )
    experiment = services.experiment_create(
        project=project,
        name=name or f"Bias probe: {prompt_version} on {dataset_version}",
        dataset_version=dataset_version,
        variants=[services.VariantSpec("A", prompt_version, endpoint)],
        evaluator_specs=evaluator_specs or [],
        kind=ExperimentKind.BIAS,
        probe={"positive_label": positive_label.strip()[:200]},
        actor=actor,
    )
    if start:
        services.experiment_start(experiment=experiment, actor=actor)
    return experiment


def injection_probe_create(
    *,
    project: Project,
    actor,
    prompt_version,
    endpoint,
    variables: list[str] | None = None,
    name: str = "",
    start: bool = True,
) -> Experiment:
    """An experiment of kind injection: a dataset of attacks in each chosen variable (all by default)."""
    from apps.datasets import selectors as dataset_selectors
    from apps.datasets import services as dataset_services
    from apps.experiments.probes import injection

    names = prompt_version.variable_names
    variables = list(dict.fromkeys(variables or names))
    if not names:
        raise services.ExperimentError(f"{prompt_version} has no variables: there is nothing a user controls.")
    unknown = [v for v in variables if v not in names]
    if unknown:
        raise services.ExperimentError(f"{prompt_version} has no variable '{unknown[0]}'; it has {', '.join(names)}.")
    dataset_name = f"injection-probe-{prompt_version.prompt.name}"[:100]
    dataset = dataset_selectors.dataset_by_name(project=project, name=dataset_name) or dataset_services.dataset_create(
        project=project, name=dataset_name, actor=actor, description="Attacks made by the prompt-injection probe."
    )
    version = dataset_services.dataset_version_create_from_records(
        dataset=dataset,
        records=injection.probe_records(prompt_version, variables),
        message=f"Injection attacks for {prompt_version} in {', '.join(variables)}",
        actor=actor,
    )
    experiment = services.experiment_create(
        project=project,
        name=name or f"Injection probe: {prompt_version}",
        dataset_version=version,
        variants=[services.VariantSpec("A", prompt_version, endpoint)],
        kind=ExperimentKind.INJECTION,
        probe={"variables": variables},
        actor=actor,
    )
    if start:
        services.experiment_start(experiment=experiment, actor=actor)
    return experiment

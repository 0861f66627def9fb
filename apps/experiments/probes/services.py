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

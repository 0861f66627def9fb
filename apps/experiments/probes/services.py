"""Writes of probes: a bias or injection probe is an experiment of that kind, made and started here."""

from __future__ import annotations

import logging

from apps.accounts.models import Project
from apps.experiments import services
from apps.experiments.models import Experiment, ExperimentKind

logger = logging.getLogger(__name__)


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


# --- explanations --------------------------------------------------------------------------------


def explanation_start(*, project: Project, actor, subject, cell=None, source_key: str = ""):
    """Record an explanation of `subject` (explain.subject_of_cell / subject_of_span) and hand it to a worker.

    Raises ExplainError when it cannot be explained (say why), Forbidden below editor.
    """
    from django.db import transaction

    from apps.accounts.models import Role
    from apps.accounts.permissions import require_role
    from apps.experiments.models import Explanation
    from apps.experiments.probes import explain

    require_role(project_id=project.pk, actor=actor, role=Role.EDITOR, what="Explaining an output")
    if subject.endpoint is None or subject.endpoint.project_id != project.pk:
        raise explain.ExplainError("Choose one of this project's model endpoints to re-run the prompt on.")
    if subject.version.prompt.project_id != project.pk or (
        cell is not None and cell.experiment.project_id != project.pk
    ):
        raise explain.ExplainError("That output is not in this project.")
    explanation = Explanation.objects.create(
        project=project,
        cell=cell,
        source_key=source_key,
        prompt_version=subject.version,
        inputs=subject.inputs,
        output=subject.output,
        params=subject.params,
        endpoint=subject.endpoint,
        total=explain.calls_needed(subject),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    explanation_id = explanation.pk
    transaction.on_commit(lambda: _enqueue_explanation(explanation_id))
    return explanation


def _enqueue_explanation(explanation_id: int) -> None:
    from apps.experiments.tasks import explain_output

    explain_output.apply_async(args=[explanation_id], queue="interactive")


def explanation_run(*, explanation_id: int) -> None:
    """Run a pending explanation, writing its progress after each model call (a second run does nothing)."""
    from django.db.models import F
    from django.utils import timezone

    from apps.experiments.models import Explanation, ExplanationStatus
    from apps.experiments.probes import explain

    claimed = Explanation.objects.filter(pk=explanation_id, status=ExplanationStatus.PENDING).update(
        status=ExplanationStatus.RUNNING
    )
    if not claimed:
        return
    explanation = Explanation.objects.select_related("endpoint", "prompt_version").get(pk=explanation_id)

    def tick() -> None:
        Explanation.objects.filter(pk=explanation_id).update(done=F("done") + 1)

    try:
        result = explain.explain(explain.subject_of_explanation(explanation), tick)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong is shown on the page, not lost in a log
        logger.exception("Explanation %s failed", explanation_id)
        Explanation.objects.filter(pk=explanation_id).update(
            status=ExplanationStatus.FAILED, error=str(getattr(exc, "message", exc))[:500], finished_at=timezone.now()
        )
        return
    Explanation.objects.filter(pk=explanation_id).update(
        status=ExplanationStatus.DONE, result=result, done=F("total"), finished_at=timezone.now()
    )

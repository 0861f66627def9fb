"""Writes of experiments: build, start (cells first, then batches), pause, resume, cancel, re-run failed cells."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from apps.accounts.models import Project
from apps.audit.services import actor_user, audit_record
from apps.datasets import selectors as dataset_selectors
from apps.experiments import evaluators, rubrics, selectors
from apps.experiments.models import (
    Cell,
    CellStatus,
    EvaluatorConfig,
    Experiment,
    ExperimentStatus,
    Variant,
)


class ExperimentError(Exception):
    """A refused change to an experiment; the message is shown to the user as is."""


@dataclass
class VariantSpec:
    name: str
    prompt_version: Any
    endpoint: Any
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvaluatorSpec:
    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


def _check_specs(project: Project, dataset_version, variants: list[VariantSpec], evaluator_specs: list[EvaluatorSpec]):
    if dataset_version.dataset.project_id != project.pk:
        raise ExperimentError("That dataset version belongs to another project.")
    if not variants:
        raise ExperimentError("Add at least one variant (a prompt version and a model endpoint).")
    names = [v.name.strip() for v in variants]
    if any(not n or len(n) > 20 for n in names):
        raise ExperimentError("Each variant needs a short name (1 to 20 characters), such as A or B.")
    if len(set(names)) != len(names):
        raise ExperimentError("Variant names must be different from each other.")
    for spec in variants:
        if spec.prompt_version.prompt.project_id != project.pk:
            raise ExperimentError(f"Variant {spec.name}: that prompt version belongs to another project.")
        if spec.endpoint.project_id != project.pk:
            raise ExperimentError(f"Variant {spec.name}: that model endpoint belongs to another project.")
        if not isinstance(spec.params, dict):
            raise ExperimentError(f"Variant {spec.name}: parameter overrides must be a JSON object.")
    seen = set()
    for spec in evaluator_specs:
        kind = evaluators.KINDS.get(spec.kind)
        if kind is None:
            raise ExperimentError(f"Unknown evaluator '{spec.kind}'.")
        if not spec.name or spec.name in seen:
            raise ExperimentError("Each evaluator needs a name of its own.")
        seen.add(spec.name)
        if kind.needs_model:
            endpoint_id = (spec.params or {}).get("endpoint_id")
            from apps.providers.models import ModelEndpoint

            if not ModelEndpoint.objects.filter(pk=endpoint_id, project=project).exists():
                raise ExperimentError(f"Evaluator {spec.name}: choose a model endpoint of this project.")
        if spec.kind == "llm_judge" and (spec.params or {}).get("judge_prompt_version_id") is not None:
            _check_judge_prompt(project, spec)


def _check_judge_prompt(project: Project, spec: EvaluatorSpec) -> None:
    from apps.prompts.models import PromptVersion

    version = PromptVersion.objects.filter(pk=spec.params["judge_prompt_version_id"], prompt__project=project).first()
    if version is None:
        raise ExperimentError(f"Evaluator {spec.name}: choose a judge prompt of this project.")
    unknown = sorted({v["name"] for v in version.variables} - set(rubrics.JUDGE_VARIABLES))
    if unknown:
        raise ExperimentError(
            f"Evaluator {spec.name}: the judge prompt {version.prompt.name} v{version.number} uses "
            f"{', '.join(unknown)}; a judge prompt may use only {', '.join(rubrics.JUDGE_VARIABLES)}."
        )


def judge_prompt_ensure(*, project: Project, actor) -> Any:
    """The newest version of the project's default judge prompt (llm-judge), made from the built-in one the
    first time. It is an ordinary studio prompt: people edit it, and each experiment pins a version."""
    from apps.prompts import services as prompt_services
    from apps.prompts.content import build_content
    from apps.prompts.models import Prompt

    prompt = Prompt.objects.filter(project=project, name=rubrics.JUDGE_PROMPT_NAME).first()
    if prompt is None:
        try:
            prompt = prompt_services.prompt_create(
                project=project,
                name=rubrics.JUDGE_PROMPT_NAME,
                description="The LLM judge's prompt, used by experiments' LLM-as-judge evaluators.",
                tags=[rubrics.JUDGE_PROMPT_TAG],
                actor=actor,
            )
        except prompt_services.PromptError:  # made meanwhile by another request
            prompt = Prompt.objects.get(project=project, name=rubrics.JUDGE_PROMPT_NAME)
    newest = prompt.versions.order_by("-number").first()
    if newest is not None:
        return newest
    content = build_content(kind="chat", messages=rubrics.JUDGE_MESSAGES, variable_specs=rubrics.JUDGE_VARIABLE_SPECS)
    try:
        return prompt_services.prompt_version_create(
            prompt=prompt, content=content, parent_number=None, message="The built-in judge prompt", actor=actor
        )
    except prompt_services.StaleParent:
        return prompt.versions.order_by("-number").first()


@transaction.atomic
def experiment_create(
    *,
    project: Project,
    name: str,
    dataset_version,
    variants: list[VariantSpec],
    evaluator_specs: list[EvaluatorSpec] | None = None,
    repeats: int = 1,
    budget: Decimal | None = None,
    description: str = "",
    kind: str = "evaluation",
    probe: dict | None = None,
    actor,
) -> Experiment:
    evaluator_specs = evaluator_specs or []
    name = name.strip()
    if not name:
        raise ExperimentError("Give the experiment a name.")
    max_repeats = settings.EXPERIMENT_MAX_REPEATS
    if not 1 <= repeats <= max_repeats:
        raise ExperimentError(f"Repeats must be between 1 and {max_repeats}.")
    if budget is not None and budget <= 0:
        raise ExperimentError("A budget must be above zero (or left empty).")
    _check_specs(project, dataset_version, variants, evaluator_specs)
    calls = dataset_version.row_count * len(variants) * repeats
    if calls > settings.EXPERIMENT_MAX_CALLS:
        raise ExperimentError(f"{calls:,} calls is more than the limit of {settings.EXPERIMENT_MAX_CALLS:,}.")
    experiment = Experiment.objects.create(
        project=project,
        name=name,
        description=description,
        kind=kind,
        probe=probe or {},
        dataset_version=dataset_version,
        repeats=repeats,
        budget=budget,
        created_by=actor_user(actor),
        estimated_calls=calls,
    )
    Variant.objects.bulk_create(
        [
            Variant(
                experiment=experiment,
                name=v.name.strip(),
                prompt_version=v.prompt_version,
                endpoint=v.endpoint,
                params=v.params,
            )
            for v in variants
        ]
    )
    EvaluatorConfig.objects.bulk_create(
        [
            EvaluatorConfig(experiment=experiment, name=e.name, kind=e.kind, params=e.params or {})
            for e in evaluator_specs
        ]
    )
    audit_record(
        project_id=project.pk,
        actor=actor,
        action="experiment.created",
        obj=experiment,
        after={"variants": [v.name for v in variants], "calls": calls, "kind": kind},
    )
    return experiment


def _enqueue_batches(experiment_id: int, cell_ids: list[int]) -> None:
    from apps.experiments.tasks import run_batch

    size = settings.EXPERIMENT_BATCH_SIZE
    batches = [cell_ids[i : i + size] for i in range(0, len(cell_ids), size)]

    def send():
        for batch in batches:
            run_batch.delay(experiment_id, batch)

    transaction.on_commit(send)


def _mark_enqueued(cell_ids: list[int]) -> None:
    now = timezone.now()
    for start in range(0, len(cell_ids), 5000):
        Cell.objects.filter(pk__in=cell_ids[start : start + 5000]).update(enqueued_at=now)


@transaction.atomic
def experiment_start(*, experiment: Experiment, actor, allow_missing: bool = False) -> Experiment:
    """Create every cell (variant × row × repeat) in bulk, then enqueue them in batches after commit."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status != ExperimentStatus.DRAFT:
        raise ExperimentError(f"The experiment is {experiment.get_status_display().lower()}; only a draft can start.")
    if not allow_missing:
        missing = selectors.experiment_missing_variables(experiment=experiment)
        if missing:
            first = missing[0]
            problem = next(iter(first.problems))
            raise ExperimentError(
                f"Variant {first.variant}: {problem} in {first.problems[problem]} row(s) "
                f"(e.g. row {first.example_rows[0]}). Fix the dataset or choose another version."
            )
    variants = list(experiment.variants.all())
    rows = list(dataset_selectors.version_items_iter(version=experiment.dataset_version))
    if not rows:
        raise ExperimentError("The dataset version has no rows.")
    cells = [
        Cell(experiment=experiment, variant=variant, item=item, position=position, repeat=repeat)
        for position, item in rows
        for variant in variants
        for repeat in range(experiment.repeats)
    ]
    Cell.objects.bulk_create(cells, batch_size=2000, ignore_conflicts=True)
    experiment.status = ExperimentStatus.RUNNING
    experiment.started_at = timezone.now()
    experiment.estimated_calls = len(cells)
    experiment.save(update_fields=["status", "started_at", "estimated_calls"])
    cell_ids = list(
        Cell.objects.filter(experiment=experiment, status=CellStatus.PENDING)
        .order_by("position", "repeat", "variant_id")
        .values_list("pk", flat=True)
    )
    _mark_enqueued(cell_ids)
    _enqueue_batches(experiment.pk, cell_ids)
    audit_record(
        project_id=experiment.project_id,
        actor=actor,
        action="experiment.started",
        obj=experiment,
        after={"cells": len(cells)},
    )
    return experiment


@transaction.atomic
def experiment_pause(*, experiment: Experiment, actor) -> Experiment:
    updated = Experiment.objects.filter(pk=experiment.pk, status=ExperimentStatus.RUNNING).update(
        status=ExperimentStatus.PAUSED
    )
    if not updated:
        raise ExperimentError("Only a running experiment can be paused.")
    audit_record(project_id=experiment.project_id, actor=actor, action="experiment.paused", obj=experiment)
    return Experiment.objects.get(pk=experiment.pk)


@transaction.atomic
def experiment_resume(*, experiment: Experiment, actor) -> Experiment:
    updated = Experiment.objects.filter(pk=experiment.pk, status=ExperimentStatus.PAUSED).update(
        status=ExperimentStatus.RUNNING
    )
    if not updated:
        raise ExperimentError("Only a paused experiment can be resumed.")
    cell_ids = list(
        Cell.objects.filter(experiment_id=experiment.pk, status=CellStatus.PENDING).values_list("pk", flat=True)
    )
    _mark_enqueued(cell_ids)
    _enqueue_batches(experiment.pk, cell_ids)
    audit_record(project_id=experiment.project_id, actor=actor, action="experiment.resumed", obj=experiment)
    experiment = Experiment.objects.get(pk=experiment.pk)
    if not cell_ids:
        experiment_finish_if_done(experiment_id=experiment.pk)
    return experiment


@transaction.atomic
def experiment_cancel(*, experiment: Experiment, actor) -> Experiment:
    updated = Experiment.objects.filter(
        pk=experiment.pk, status__in=[ExperimentStatus.RUNNING, ExperimentStatus.PAUSED, ExperimentStatus.DRAFT]
    ).update(status=ExperimentStatus.CANCELLED, finished_at=timezone.now(), status_reason="cancelled by a user")
    if not updated:
        raise ExperimentError("The experiment has already ended.")
    Cell.objects.filter(experiment_id=experiment.pk, status=CellStatus.PENDING).update(status=CellStatus.CANCELLED)
    _record_totals(experiment.pk)
    audit_record(project_id=experiment.project_id, actor=actor, action="experiment.cancelled", obj=experiment)
    return Experiment.objects.get(pk=experiment.pk)


@transaction.atomic
def experiment_rerun_failed(*, experiment: Experiment, actor) -> int:
    """Put failed (and cancelled) cells back to pending and run them again; done cells are kept."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status in (ExperimentStatus.DRAFT, ExperimentStatus.RUNNING):
        raise ExperimentError("Re-run failed cells once the experiment has stopped.")
    cells = Cell.objects.filter(experiment=experiment, status__in=[CellStatus.FAILED, CellStatus.CANCELLED])
    cell_ids = list(cells.values_list("pk", flat=True))
    if not cell_ids:
        raise ExperimentError("No failed or cancelled cells to re-run.")
    cells.update(
        status=CellStatus.PENDING,
        claim_token="",
        claim_expires_at=None,
        error_kind="",
        error_message="",
        finished_at=None,
    )
    experiment.status = ExperimentStatus.RUNNING
    experiment.finished_at = None
    experiment.status_reason = ""
    experiment.save(update_fields=["status", "finished_at", "status_reason"])
    _mark_enqueued(cell_ids)
    _enqueue_batches(experiment.pk, cell_ids)
    audit_record(
        project_id=experiment.project_id,
        actor=actor,
        action="experiment.rerun_failed",
        obj=experiment,
        after={"cells": len(cell_ids)},
    )
    return len(cell_ids)


def _record_totals(experiment_id: int) -> None:
    totals = Cell.objects.filter(experiment_id=experiment_id).aggregate(
        tokens_in=Sum("tokens_in"),
        tokens_out=Sum("tokens_out"),
        cost=Sum("cost"),
        errors=Count("pk", filter=Q(status=CellStatus.FAILED)),
    )
    Experiment.objects.filter(pk=experiment_id).update(
        total_tokens_in=totals["tokens_in"] or 0,
        total_tokens_out=totals["tokens_out"] or 0,
        total_cost=totals["cost"] or 0,
        total_errors=totals["errors"] or 0,
    )


def experiment_finish_if_done(*, experiment_id: int) -> bool:
    """Finish a running experiment whose cells are all final. Counted from the cells; safe to call often."""
    open_cells = Cell.objects.filter(
        experiment_id=experiment_id, status__in=[CellStatus.PENDING, CellStatus.RUNNING]
    ).exists()
    if open_cells:
        return False
    with transaction.atomic():
        finished = Experiment.objects.filter(pk=experiment_id, status=ExperimentStatus.RUNNING).update(
            status=ExperimentStatus.FINISHED, finished_at=timezone.now()
        )
        if finished:
            _record_totals(experiment_id)
    return bool(finished)


def experiment_stop_for_budget(*, experiment_id: int, spent: Decimal) -> bool:
    with transaction.atomic():
        stopped = Experiment.objects.filter(pk=experiment_id, status=ExperimentStatus.RUNNING).update(
            status=ExperimentStatus.STOPPED,
            finished_at=timezone.now(),
            status_reason=f"budget spent: ${spent:.4f}",
        )
        if stopped:
            Cell.objects.filter(experiment_id=experiment_id, status=CellStatus.PENDING).update(
                status=CellStatus.CANCELLED, error_message="not run: the budget was spent"
            )
            _record_totals(experiment_id)
    return bool(stopped)


def spent_so_far(experiment_id: int) -> Decimal:
    return Cell.objects.filter(experiment_id=experiment_id).aggregate(total=Sum("cost"))["total"] or Decimal(0)


def batches_needed(cells: int) -> int:
    return math.ceil(cells / settings.EXPERIMENT_BATCH_SIZE)


def experiment_sweep() -> dict[str, int]:
    """Free expired claims and re-enqueue pending cells whose message is older than the requeue delay."""
    from datetime import timedelta

    now = timezone.now()
    expired = Cell.objects.filter(
        status=CellStatus.RUNNING, claim_expires_at__lt=now, experiment__status=ExperimentStatus.RUNNING
    )
    # A freed cell loses its enqueue time, so it is enqueued again right below.
    freed = expired.update(
        status=CellStatus.PENDING, claim_token="", claim_expires_at=None, started_at=None, enqueued_at=None
    )
    stale_before = now - timedelta(seconds=settings.EXPERIMENT_REQUEUE_SECONDS)
    stale = Cell.objects.filter(
        Q(enqueued_at__lt=stale_before) | Q(enqueued_at__isnull=True),
        status=CellStatus.PENDING,
        experiment__status=ExperimentStatus.RUNNING,
    )
    by_experiment: dict[int, list[int]] = {}
    for cell_id, experiment_id in stale.values_list("pk", "experiment_id")[:50_000]:
        by_experiment.setdefault(experiment_id, []).append(cell_id)
    with transaction.atomic():
        for experiment_id, cell_ids in by_experiment.items():
            _mark_enqueued(cell_ids)
            _enqueue_batches(experiment_id, cell_ids)
    for experiment_id in Experiment.objects.filter(status=ExperimentStatus.RUNNING).values_list("pk", flat=True):
        experiment_finish_if_done(experiment_id=experiment_id)
    return {"freed": freed, "requeued": sum(len(ids) for ids in by_experiment.values())}


def specs_from_forms(
    *, project: Project, form: dict, variants: list[dict], evaluator_rows: list[dict], actor=None
) -> dict:
    """Turn the builder's cleaned form data into experiment_create's arguments, scoped to the project.

    An LLM judge left on the default judge prompt gets the newest version of llm-judge (made on first use).
    """
    from apps.datasets.models import DatasetVersion
    from apps.prompts.models import PromptVersion
    from apps.providers.models import ModelEndpoint

    dataset_version = DatasetVersion.objects.filter(pk=form["dataset_version"], dataset__project=project).first()
    if dataset_version is None:
        raise ExperimentError("Choose a dataset version of this project.")
    variant_specs = []
    for row in variants:
        prompt_version = (
            PromptVersion.objects.filter(pk=row["prompt_version"], prompt__project=project)
            .select_related("prompt")
            .first()
        )
        endpoint = ModelEndpoint.objects.filter(pk=row["endpoint"], project=project).first()
        if prompt_version is None or endpoint is None:
            raise ExperimentError(
                f"Variant {row['name']}: choose a prompt version and a model endpoint of this project."
            )
        variant_specs.append(VariantSpec(row["name"], prompt_version, endpoint, row.get("params") or {}))
    evaluator_specs = [
        EvaluatorSpec(row.get("name") or evaluators.KINDS[row["kind"]].title, row["kind"], row.get("params") or {})
        for row in evaluator_rows
    ]
    for spec in evaluator_specs:
        if spec.kind == "llm_judge" and not spec.params.get("judge_prompt_version_id") and actor is not None:
            default = judge_prompt_ensure(project=project, actor=actor)
            spec.params = {**spec.params, "judge_prompt_version_id": default.pk}
    return {
        "name": form["name"],
        "description": form.get("description", ""),
        "dataset_version": dataset_version,
        "repeats": form["repeats"],
        "budget": form.get("budget"),
        "variants": variant_specs,
        "evaluator_specs": evaluator_specs,
    }

"""Reads of experiments: lists, live progress, results, summaries per variant. Always scoped to a project."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from apps.accounts.models import Project
from apps.datasets import selectors as dataset_selectors
from apps.experiments import evaluators, rubrics
from apps.experiments.models import Cell, CellStatus, EvaluatorConfig, Experiment, Score, Variant
from apps.prompts import sandbox
from apps.prompts.content import content_of


def experiment_list(*, project: Project) -> QuerySet[Experiment]:
    return (
        Experiment.objects.filter(project=project)
        .select_related("dataset_version__dataset")
        .annotate(variant_count=Count("variants", distinct=True))
        .order_by("-created_at")
    )


def experiment_get(*, project: Project, experiment_id: int) -> Experiment:
    experiment = (
        Experiment.objects.filter(project=project, pk=experiment_id).select_related("dataset_version__dataset").first()
    )
    if experiment is None:
        raise Http404("No such experiment in this project.")
    return experiment


def variant_list(*, experiment: Experiment) -> list[Variant]:
    return list(experiment.variants.select_related("prompt_version__prompt", "endpoint").order_by("name"))


@dataclass
class VariantProgress:
    name: str
    total: int = 0
    done: int = 0
    running: int = 0
    failed: int = 0
    pending: int = 0
    cancelled: int = 0

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.cancelled

    @property
    def percent(self) -> float:
        return 100.0 * self.finished / self.total if self.total else 0.0


@dataclass
class Progress:
    variants: list[VariantProgress]
    cost: Decimal
    eta_seconds: float | None
    elapsed_seconds: float | None

    @property
    def total(self) -> VariantProgress:
        overall = VariantProgress("all")
        for v in self.variants:
            for name in ("total", "done", "running", "failed", "pending", "cancelled"):
                setattr(overall, name, getattr(overall, name) + getattr(v, name))
        return overall


def experiment_progress(*, experiment: Experiment) -> Progress:
    counts = (
        Cell.objects.filter(experiment=experiment)
        .values("variant__name", "status")
        .annotate(n=Count("pk"))
        .order_by("variant__name")
    )
    by_variant: dict[str, VariantProgress] = {}
    for row in counts:
        progress = by_variant.setdefault(row["variant__name"], VariantProgress(row["variant__name"]))
        progress.total += row["n"]
        setattr(progress, row["status"], getattr(progress, row["status"]) + row["n"])
    cost = Cell.objects.filter(experiment=experiment).aggregate(total=Sum("cost"))["total"] or Decimal(0)
    variants = [by_variant.get(v.name, VariantProgress(v.name)) for v in experiment.variants.order_by("name")]
    elapsed = eta = None
    if experiment.started_at:
        end = experiment.finished_at or timezone.now()
        elapsed = (end - experiment.started_at).total_seconds()
        overall = Progress(variants, cost, None, None).total
        remaining = overall.pending + overall.running
        if overall.finished and remaining and not experiment.finished_at:
            eta = elapsed / overall.finished * remaining
    return Progress(variants, cost, eta, elapsed)


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = (len(ordered) - 1) * share
    low, high = int(index), min(int(index) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


@dataclass
class EvaluatorSummary:
    name: str
    mean: float | None
    pass_rate: float | None
    scored: int
    errored: int


@dataclass
class VariantSummary:
    name: str
    prompt: str
    endpoint: str
    done: int
    failed: int
    tokens_in: int
    tokens_out: int
    cost: Decimal
    latency_p50: float | None
    latency_p95: float | None
    evaluators: list[EvaluatorSummary] = field(default_factory=list)


def experiment_summary(*, experiment: Experiment) -> list[VariantSummary]:
    variants = variant_list(experiment=experiment)
    configs = list(EvaluatorConfig.objects.filter(experiment=experiment))
    latencies: dict[int, list[float]] = defaultdict(list)
    for variant_id, latency in Cell.objects.filter(experiment=experiment, status=CellStatus.DONE).values_list(
        "variant_id", "latency_ms"
    ):
        if latency is not None:
            latencies[variant_id].append(latency)
    totals = {
        row["variant_id"]: row
        for row in Cell.objects.filter(experiment=experiment)
        .values("variant_id")
        .annotate(
            done=Count("pk", filter=Q(status=CellStatus.DONE)),
            failed=Count("pk", filter=Q(status=CellStatus.FAILED)),
            tokens_in=Sum("tokens_in"),
            tokens_out=Sum("tokens_out"),
            cost=Sum("cost"),
        )
    }
    score_rows = (
        Score.objects.filter(cell__experiment=experiment)
        .values("cell__variant_id", "evaluator_id")
        .annotate(
            scored=Count("pk", filter=Q(error="")),
            errored=Count("pk", filter=~Q(error="")),
            passed=Count("pk", filter=Q(passed=True)),
        )
    )
    score_stats = {(r["cell__variant_id"], r["evaluator_id"]): r for r in score_rows}
    means: dict[tuple[int, int], list[float]] = defaultdict(list)
    for variant_id, evaluator_id, value in Score.objects.filter(cell__experiment=experiment, error="").values_list(
        "cell__variant_id", "evaluator_id", "value"
    ):
        if value is not None:
            means[(variant_id, evaluator_id)].append(value)
    summaries = []
    for variant in variants:
        row = totals.get(variant.pk, {})
        summary = VariantSummary(
            name=variant.name,
            prompt=f"{variant.prompt_version.prompt.name} v{variant.prompt_version.number}",
            endpoint=variant.endpoint.name,
            done=row.get("done", 0),
            failed=row.get("failed", 0),
            tokens_in=row.get("tokens_in") or 0,
            tokens_out=row.get("tokens_out") or 0,
            cost=row.get("cost") or Decimal(0),
            latency_p50=_percentile(latencies[variant.pk], 0.5),
            latency_p95=_percentile(latencies[variant.pk], 0.95),
        )
        for config in configs:
            stats = score_stats.get((variant.pk, config.pk), {})
            values = means[(variant.pk, config.pk)]
            scored = stats.get("scored", 0)
            summary.evaluators.append(
                EvaluatorSummary(
                    name=config.name,
                    mean=sum(values) / len(values) if values else None,
                    pass_rate=stats.get("passed", 0) / scored if scored else None,
                    scored=scored,
                    errored=stats.get("errored", 0),
                )
            )
        summaries.append(summary)
    return summaries


@dataclass
class ResultRow:
    position: int
    item: Any
    cells: dict[str, list[Cell]]


def experiment_results(
    *, experiment: Experiment, page: int = 1, per_page: int = 25, only: str = "", sort: str = ""
) -> tuple[list[ResultRow], int]:
    """Rows (dataset positions) × variants with their cells and scores, filtered and paginated."""
    cells = Cell.objects.filter(experiment=experiment)
    positions = cells.values_list("position", flat=True).distinct().order_by("position")
    if only == "failed":
        positions = positions.filter(status=CellStatus.FAILED)
    elif only == "low":
        positions = positions.filter(scores__passed=False)
    total = positions.count()
    start = (max(page, 1) - 1) * per_page
    page_positions = list(positions[start : start + per_page])
    rows: dict[int, ResultRow] = {}
    page_cells = (
        cells.filter(position__in=page_positions)
        .select_related("item", "variant")
        .prefetch_related("scores__evaluator")
        .order_by("position", "variant__name", "repeat")
    )
    for cell in page_cells:
        row = rows.setdefault(cell.position, ResultRow(cell.position, cell.item, defaultdict(list)))
        row.cells[cell.variant.name].append(cell)
    return [rows[p] for p in page_positions if p in rows], total


def experiment_cells_for_export(*, experiment: Experiment):
    return (
        Cell.objects.filter(experiment=experiment)
        .select_related("variant", "item")
        .prefetch_related("scores__evaluator")
        .order_by("position", "variant__name", "repeat")
    )


# --- before a start: what would fail, and what it would cost ---------------------------------------


@dataclass
class MissingVariables:
    """Rows whose inputs lack (or mistype) a variable a variant's prompt needs."""

    variant: str
    problems: dict[str, int]  # "variable 'x' is missing" -> number of rows
    example_rows: list[int]

    @property
    def row_count(self) -> int:
        return len(self.example_rows)


def experiment_missing_variables(*, experiment: Experiment, limit_examples: int = 20) -> list[MissingVariables]:
    """Rows that would fail to render, per variant: reported before start, not discovered as failures."""
    report = []
    variants = list(experiment.variants.select_related("prompt_version"))
    specs = {v.pk: v.prompt_version.variables for v in variants}
    problems: dict[int, dict[str, int]] = {v.pk: {} for v in variants}
    examples: dict[int, list[int]] = {v.pk: [] for v in variants}
    for position, item in dataset_selectors.version_items_iter(version=experiment.dataset_version):
        inputs = item.input if isinstance(item.input, dict) else {}
        for variant in variants:
            try:
                sandbox.validate_values(specs[variant.pk], inputs)
            except sandbox.TemplateProblem as exc:
                key = exc.message
                problems[variant.pk][key] = problems[variant.pk].get(key, 0) + 1
                if len(examples[variant.pk]) < limit_examples:
                    examples[variant.pk].append(position + 1)
    for variant in variants:
        if problems[variant.pk]:
            report.append(MissingVariables(variant.name, problems[variant.pk], examples[variant.pk]))
    return report


@dataclass
class Estimate:
    calls: int
    tokens_in: int | None
    tokens_out: int | None
    cost: Decimal | None
    sampled_rows: int
    unpriced: list[str] = field(default_factory=list)


def experiment_estimate(*, experiment: Experiment, sample_rows: int = 50) -> Estimate:
    """Calls, tokens and cost before starting: the prompt tokens of a sample of rows, scaled to all rows.

    Output tokens are the variant's max_tokens (or 256 when unset): an upper bound, not a guess.
    """
    from apps.prompts.content import render_content
    from apps.providers import gateway

    version = experiment.dataset_version
    rows = version.row_count
    calls = rows * experiment.variants.count() * experiment.repeats
    sample = []
    for position, item in dataset_selectors.version_items_iter(version=version):
        sample.append(item.input if isinstance(item.input, dict) else {})
        if position + 1 >= sample_rows:
            break
    if not sample:
        return Estimate(calls, 0, 0, Decimal(0), 0)
    tokens_in_total = tokens_out_total = 0
    cost_total: Decimal | None = Decimal(0)
    unpriced = []
    for variant in experiment.variants.select_related("prompt_version", "endpoint"):
        target = gateway.Target.from_endpoint(variant.endpoint, with_key=False)
        content = content_of(variant.prompt_version)
        counted = []
        for inputs in sample:
            try:
                rendered = render_content(content, inputs)
            except sandbox.TemplateProblem:
                continue
            counted.append(
                gateway.count_tokens(
                    target,
                    messages=rendered if isinstance(rendered, list) else None,
                    prompt=rendered if isinstance(rendered, str) else None,
                )
            )
        per_call_in = sum(counted) / len(counted) if counted else 0
        params = {**(variant.prompt_version.config or {}), **(variant.params or {})}
        per_call_out = int(params.get("max_tokens") or 256)
        variant_calls = rows * experiment.repeats
        tokens_in = int(per_call_in * variant_calls)
        tokens_out = per_call_out * variant_calls
        tokens_in_total += tokens_in
        tokens_out_total += tokens_out
        cost = gateway.estimate_cost(target, tokens_in, tokens_out)
        if cost is None:
            unpriced.append(variant.name)
        elif cost_total is not None:
            cost_total += cost
    return Estimate(calls, tokens_in_total, tokens_out_total, cost_total, len(sample), unpriced)


def evaluator_kinds() -> list[evaluators.Kind]:
    return list(evaluators.KINDS.values())


def judge_prompt_choices(*, project: Project) -> list[tuple[int, str]]:
    """Every version of the project's judge prompts (tag: judge), newest first, as (version id, title)."""
    from apps.prompts.models import PromptVersion

    versions = (
        PromptVersion.objects.filter(prompt__project=project, prompt__tags__name=rubrics.JUDGE_PROMPT_TAG)
        .select_related("prompt")
        .order_by("prompt__name", "-number")
    )
    return [(v.pk, f"{v.prompt.name} v{v.number}") for v in versions]


def judge_prompt_contents(*, configs: list[EvaluatorConfig]) -> dict[int, Any]:
    """The content of each judge prompt version the evaluators pin, by version id (for the runner)."""
    from apps.prompts.models import PromptVersion

    ids = {c.params.get("judge_prompt_version_id") for c in configs if c.kind == "llm_judge"} - {None}
    return {v.pk: content_of(v) for v in PromptVersion.objects.filter(pk__in=ids)}


def endpoint_ids_by_name(*, project: Project) -> dict[str, int]:
    from apps.providers import selectors as provider_selectors

    return {e.name: e.pk for e in provider_selectors.endpoint_list(project=project)}


def evaluator_descriptions(*, experiment: Experiment) -> list[dict[str, Any]]:
    """Each evaluator of the experiment in words for its page: kind, model endpoint, rubric, judge prompt."""
    from apps.prompts.models import PromptVersion

    configs = list(experiment.evaluators.order_by("pk"))
    version_ids = {c.params.get("judge_prompt_version_id") for c in configs} - {None}
    versions = {v.pk: v for v in PromptVersion.objects.filter(pk__in=version_ids).select_related("prompt")}
    rows = []
    for config in configs:
        kind = evaluators.KINDS.get(config.kind)
        judge_prompt = versions.get(config.params.get("judge_prompt_version_id"))
        rows.append(
            {
                "name": config.name,
                "kind": kind.title if kind else config.kind,
                "endpoint": config.params.get("endpoint", ""),
                "rubric": config.params.get("rubric", ""),
                "rubric_title": rubrics.RUBRICS[config.params["rubric_key"]].title
                if config.params.get("rubric_key") in rubrics.RUBRICS
                else "",
                "judge_prompt": judge_prompt,
                "params": json.dumps(config.params, ensure_ascii=False, sort_keys=True),
            }
        )
    return rows

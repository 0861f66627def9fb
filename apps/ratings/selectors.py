"""Reads of ratings: rater queues, the blind view of an assignment, the comparison rows.

The summary statistics of an experiment are computed in `apps/ratings/summary.py`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from apps.accounts.models import Project
from apps.experiments.models import Cell, CellStatus, Experiment, Score, Variant
from apps.ratings.models import (
    AnnotationQueue,
    Assignment,
    AssignmentStatus,
    Choice,
    ExperimentLink,
    PairwiseJudgement,
    QueueKind,
    Rating,
)

LOW_SCORE = 0.5


# --- queues --------------------------------------------------------------------------------------


def queue_get(*, project: Project, queue_id: int) -> AnnotationQueue:
    queue = (
        AnnotationQueue.objects.select_related("experiment").filter(experiment__project=project, pk=queue_id).first()
    )
    if queue is None:
        raise Http404("No such queue in this project.")
    return queue


def queue_list(*, experiment: Experiment) -> QuerySet[AnnotationQueue]:
    return experiment.annotation_queues.annotate(
        item_count=Count("items", distinct=True),
    ).prefetch_related("raters")


@dataclass
class QueueProgress:
    queue: AnnotationQueue
    done: int
    total: int
    claimable: int = 0

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done >= self.total and not self.claimable


def rater_progress(*, queue: AnnotationQueue, rater) -> QueueProgress:
    counts = Assignment.objects.filter(item__queue=queue, rater=rater).aggregate(
        total=Count("pk"), done=Count("pk", filter=Q(status=AssignmentStatus.DONE))
    )
    claimable = 0
    if queue.is_open:
        claimable = (
            queue.items.filter(assigned_count__lt=queue.raters_per_item).exclude(assignments__rater=rater).count()
        )
    return QueueProgress(queue, counts["done"], counts["total"], claimable)


def my_queues(*, project: Project, user) -> list[QueueProgress]:
    """Queues the user has work in, and open queues they could take items from."""
    queues = (
        AnnotationQueue.objects.filter(experiment__project=project)
        .filter(Q(items__assignments__rater=user) | Q(raters__isnull=True))
        .select_related("experiment")
        .distinct()
    )
    return [rater_progress(queue=q, rater=user) for q in queues]


def next_assignment(*, queue: AnnotationQueue, rater) -> Assignment | None:
    return (
        Assignment.objects.filter(item__queue=queue, rater=rater, status=AssignmentStatus.PENDING)
        .select_related("item__cell__item", "left_cell__item", "right_cell")
        .order_by("sequence", "id")
        .first()
    )


@dataclass
class BlindItem:
    """Everything a rater sees of one assignment: no cell, variant, prompt or experiment id or name."""

    token: str
    kind: str
    input: Any
    expected: Any
    left: str = ""
    right: str = ""
    output: str = ""


def blind_item(*, assignment: Assignment) -> BlindItem:
    if assignment.left_cell_id:
        item = assignment.left_cell.item
        return BlindItem(
            token=assignment.token,
            kind=QueueKind.PAIRWISE,
            input=item.input,
            expected=item.expected,
            left=assignment.left_cell.output,
            right=assignment.right_cell.output,
        )
    cell = assignment.item.cell
    return BlindItem(
        token=assignment.token,
        kind=QueueKind.RATING,
        input=cell.item.input,
        expected=cell.item.expected,
        output=cell.output,
    )


def after_submit(*, assignment: Assignment) -> dict[str, Any]:
    """What others said about the item the rater has just judged, in the rater's own left/right terms."""
    if assignment.left_cell_id:
        others = PairwiseJudgement.objects.filter(
            experiment_id=assignment.left_cell.experiment_id,
            position=assignment.item.position,
            assignment__item=assignment.item,
        ).exclude(rater_id=assignment.rater_id)
        counts: Counter = Counter()
        for judgement in others:
            if judgement.choice == Choice.TIE:
                counts["tie"] += 1
            else:
                winner = judgement.winner_cell_id
                winner_variant = Cell.objects.filter(pk=winner).values_list("variant_id", flat=True).first()
                left_variant = (
                    Cell.objects.filter(pk=assignment.left_cell_id).values_list("variant_id", flat=True).first()
                )
                counts["left" if winner_variant == left_variant else "right"] += 1
        return {"kind": "pairwise", "left": counts["left"], "right": counts["right"], "tie": counts["tie"]}
    ratings = Rating.objects.filter(cell_id=assignment.item.cell_id).exclude(rater_id=assignment.rater_id)
    scores = [r.score for r in ratings if r.score is not None]
    return {"kind": "rating", "count": len(ratings), "mean": sum(scores) / len(scores) if scores else None}


# --- the comparison view -----------------------------------------------------------------------


@dataclass
class CompareCell:
    cell: Cell
    scores: list[Score]
    diff_html: Any = None
    my_rating: Rating | None = None
    others: list[Rating] = field(default_factory=list)


@dataclass
class CompareRow:
    position: int
    item: Any
    variants: dict[str, list[CompareCell]]
    disagree: bool = False
    rated_by_me: bool = False


def _score_value(score: Score) -> float | None:
    return None if score.error else score.value


def comparison_rows(
    *,
    experiment: Experiment,
    user,
    only: str = "",
    sort: str = "",
    page: int = 1,
    per_page: int = 20,
) -> tuple[list[CompareRow], int]:
    """Items with every variant's outputs side by side, filtered (disagree, failed, low, unrated) and sorted.

    Others' ratings of an output are shown only once the user has rated that output.
    """
    from apps.prompts.diff import _words

    variants = list(experiment.variants.order_by("name"))
    base = Cell.objects.filter(experiment=experiment)
    positions = list(base.values_list("position", flat=True).distinct().order_by("position"))
    if only == "failed":
        positions = sorted(set(base.filter(status=CellStatus.FAILED).values_list("position", flat=True)))
    elif only == "low":
        low = Score.objects.filter(cell__experiment=experiment).filter(Q(passed=False) | Q(value__lt=LOW_SCORE))
        positions = sorted(set(low.values_list("cell__position", flat=True)))
    elif only == "unrated":
        rated = set(
            Rating.objects.filter(cell__experiment=experiment, rater=user).values_list("cell__position", flat=True)
        )
        positions = [p for p in positions if p not in rated]
    elif only == "disagree":
        passed: dict[int, set] = defaultdict(set)
        outputs: dict[int, set] = defaultdict(set)
        for position, value in Score.objects.filter(cell__experiment=experiment, error="").values_list(
            "cell__position", "passed"
        ):
            passed[position].add(value)
        for position, output in base.filter(status=CellStatus.DONE).values_list("position", "output"):
            outputs[position].add(output.strip())
        positions = [p for p in positions if len(passed[p]) > 1 or len(outputs[p]) > 1]
    if sort.startswith("score:"):
        evaluator_name = sort.split(":", 1)[1]
        means: dict[int, list[float]] = defaultdict(list)
        for position, value in Score.objects.filter(
            cell__experiment=experiment, evaluator__name=evaluator_name, error=""
        ).values_list("cell__position", "value"):
            if value is not None:
                means[position].append(value)
        positions.sort(key=lambda p: (sum(means[p]) / len(means[p])) if means[p] else 2.0)
    total = len(positions)
    start = (max(page, 1) - 1) * per_page
    page_positions = positions[start : start + per_page]
    cells = (
        base.filter(position__in=page_positions)
        .select_related("item", "variant")
        .prefetch_related("scores__evaluator", "ratings")
        .order_by("position", "variant__name", "repeat")
    )
    rows: dict[int, CompareRow] = {}
    for cell in cells:
        row = rows.setdefault(cell.position, CompareRow(cell.position, cell.item, {v.name: [] for v in variants}))
        ratings = list(cell.ratings.all())
        mine = next((r for r in ratings if r.rater_id == user.pk), None)
        row.variants[cell.variant.name].append(
            CompareCell(
                cell,
                list(cell.scores.all()),
                my_rating=mine,
                others=[r for r in ratings if r.rater_id != user.pk] if mine else [],
            )
        )
    ordered = [rows[p] for p in page_positions if p in rows]
    for row in ordered:
        first = next(
            (cells[0].cell for cells in row.variants.values() if cells and cells[0].cell.status == CellStatus.DONE),
            None,
        )
        outputs = set()
        for cells_of_variant in row.variants.values():
            for compare in cells_of_variant:
                if compare.cell.status == CellStatus.DONE:
                    outputs.add(compare.cell.output.strip())
                    if first is not None and compare.cell.pk != first.pk and compare.cell.output != first.output:
                        compare.diff_html = _words(first.output, compare.cell.output)[1]
                if compare.my_rating:
                    row.rated_by_me = True
        row.disagree = len(outputs) > 1
    return ordered, total


def variants_of(*, experiment: Experiment) -> list[Variant]:
    return list(experiment.variants.select_related("prompt_version__prompt", "endpoint").order_by("name"))


def links_for_review(*, review) -> QuerySet[ExperimentLink]:
    return ExperimentLink.objects.filter(review=review).select_related("experiment", "candidate", "baseline")


def experiments_for_version(*, version) -> QuerySet[Experiment]:
    """Experiments with a variant running this version (candidates to link as evidence)."""
    return Experiment.objects.filter(variants__prompt_version=version).distinct().order_by("-created_at")


def cost_per_output(*, experiment: Experiment) -> dict[str, float]:
    from django.db.models import Avg

    from apps.core.fields import CostField

    rows = (
        Cell.objects.filter(experiment=experiment, status=CellStatus.DONE, cost__isnull=False)
        .values("variant__name")
        .annotate(mean=Avg("cost", output_field=CostField(max_digits=14, decimal_places=8)))
    )
    return {row["variant__name"]: float(row["mean"]) for row in rows}

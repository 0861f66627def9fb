"""Reads for comparing experiments on one dataset: per-item deltas against the first (the baseline), the items
that changed most, outputs diffed word by word, and a summary per experiment that grows while cells finish.

Rows are matched by dataset item (items are content-addressed per dataset, so two versions of one dataset
share the rows they have in common). An experiment with several variants gives one column per variant.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from apps.accounts.models import Project
from apps.datasets.models import DatasetItem
from apps.experiments.models import Cell, CellStatus, Experiment, ExperimentStatus, Score, Variant

MAX_EXPERIMENTS = 6
# Outputs longer than this are diffed on their beginning only (a diff is quadratic in the worst case).
DIFF_CHARS = 4000
WORDS = re.compile(r"\s*\S+\s*|\s+")


class ComparisonProblem(Exception):
    """Experiments that cannot be compared; the message says why."""


@dataclass
class Column:
    key: tuple[int, int]
    experiment: Experiment
    variant: Variant
    label: str
    total: int = 0
    done: int = 0
    failed: int = 0
    cost: Decimal = Decimal(0)
    mean: float | None = None
    pass_rate: float | None = None
    mean_delta: float | None = None
    better: int = 0
    worse: int = 0
    same: int = 0
    changed_outputs: int = 0


@dataclass
class Segment:
    kind: str  # "same", "del", "ins"
    text: str


@dataclass
class ItemCell:
    column: Column
    status: str = ""
    output: str = ""
    score: float | None = None
    delta: float | None = None
    diff: list[Segment] = field(default_factory=list)
    changed: bool = False


@dataclass
class Field:
    name: str
    text: str
    block: bool  # shown as a block (long or structured), not inline


@dataclass
class ItemRow:
    item_id: int
    position: int
    change: float
    cells: list[ItemCell]
    fields: list[Field] = field(default_factory=list)
    expected: str = ""


@dataclass
class Comparison:
    experiments: list[Experiment]
    columns: list[Column]
    evaluators: list[str]
    evaluator: str
    rows: list[ItemRow]
    item_count: int
    running: bool


def word_diff(before: str, after: str) -> list[Segment]:
    """`after` against `before`, word by word: kept, removed and added runs. Words are compared without their
    spacing, which stays with the word before it."""
    a, b = WORDS.findall(before[:DIFF_CHARS]), WORDS.findall(after[:DIFF_CHARS])
    segments: list[Segment] = []
    matcher = difflib.SequenceMatcher(None, [w.strip() for w in a], [w.strip() for w in b], autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            segments.append(Segment("same", "".join(b[b1:b2])))
            continue
        if op in ("delete", "replace"):
            segments.append(Segment("del", "".join(a[a1:a2])))
        if op in ("insert", "replace"):
            segments.append(Segment("ins", "".join(b[b1:b2])))
    for before_it, segment in zip(segments, segments[1:], strict=False):
        # The last word of a text has no spacing after it: keep the next run apart from it on the page.
        if before_it.text and not before_it.text[-1].isspace() and not segment.text[:1].isspace():
            segment.text = " " + segment.text
    return segments


def readable_fields(values: Any, order: list[str] | None = None) -> list[Field]:
    """A row's input as named fields (in the dataset's column order): text as it is, numbers and booleans as
    JSON, objects and lists indented."""
    if not isinstance(values, dict):
        return [Field("input", json.dumps(values, ensure_ascii=False, indent=2), True)]
    rank = {name: index for index, name in enumerate(order or [])}
    fields = []
    for name, value in sorted(values.items(), key=lambda pair: rank.get(pair[0], len(rank))):
        if isinstance(value, str):
            fields.append(Field(str(name), value, len(value) > 80 or "\n" in value))
        elif isinstance(value, dict | list):
            fields.append(Field(str(name), json.dumps(value, ensure_ascii=False, indent=2), True))
        else:
            fields.append(Field(str(name), json.dumps(value), False))
    return fields


def _score(value: float | None, passed: bool | None) -> float | None:
    if value is not None:
        return float(value)
    if passed is not None:
        return 1.0 if passed else 0.0
    return None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def experiments_for_comparison(*, project: Project, ids: list[int], baseline: int | None = None) -> list[Experiment]:
    """The experiments oldest first, `baseline` (else the oldest) leading; refused unless 2 or more of one
    dataset."""
    unique = list(dict.fromkeys(ids))
    if len(unique) < 2:
        raise ComparisonProblem("Pick two or more experiments to compare.")
    if len(unique) > MAX_EXPERIMENTS:
        raise ComparisonProblem(f"Compare at most {MAX_EXPERIMENTS} experiments at once.")
    found = {
        e.pk: e
        for e in Experiment.objects.filter(project=project, pk__in=unique).select_related("dataset_version__dataset")
    }
    missing = [str(i) for i in unique if i not in found]
    if missing:
        raise ComparisonProblem(f"No experiment #{', #'.join(missing)} in this project.")
    experiments = sorted(found.values(), key=lambda e: (e.created_at, e.pk))
    if baseline in found:
        experiments.remove(found[baseline])
        experiments.insert(0, found[baseline])
    datasets = {e.dataset_version.dataset_id for e in experiments}
    if len(datasets) > 1:
        names = ", ".join(f"{e.name} ({e.dataset_version})" for e in experiments)
        raise ComparisonProblem(f"Only experiments on the same dataset can be compared: {names}.")
    return experiments


def experiments_on_dataset(*, experiment: Experiment, limit: int) -> list[Experiment]:
    """The newest other experiments on the experiment's dataset (any of its versions) that have cells."""
    return list(
        Experiment.objects.filter(
            project_id=experiment.project_id, dataset_version__dataset_id=experiment.dataset_version.dataset_id
        )
        .exclude(pk=experiment.pk)
        .exclude(status=ExperimentStatus.DRAFT)
        .order_by("-created_at", "-pk")[:limit]
    )


def experiment_comparison(
    *, experiments: list[Experiment], evaluator: str = "", limit: int = 50, only_changed: bool = False
) -> Comparison:
    """Every column's per-item score (mean over repeats) and its delta against the baseline column, the rows
    sorted by how much they changed (score deltas when an evaluator scores them, else how much the words
    changed), at most `limit` rows with their fields, expected output and word diffs."""
    variants = list(
        Variant.objects.filter(experiment__in=experiments).select_related("prompt_version__prompt", "endpoint")
    )
    order = {e.pk: i for i, e in enumerate(experiments)}
    variants.sort(key=lambda v: (order[v.experiment_id], v.name))
    by_pk = {e.pk: e for e in experiments}
    columns = [
        Column(
            key=(v.experiment_id, v.pk),
            experiment=by_pk[v.experiment_id],
            variant=v,
            label=f"{by_pk[v.experiment_id].name} · {v.name}",
        )
        for v in variants
    ]
    column_of = {c.key: c for c in columns}
    names = sorted(
        set.intersection(
            *[
                set(Score.objects.filter(cell__experiment=e).values_list("evaluator__name", flat=True).distinct())
                | set(e.evaluators.values_list("name", flat=True))
                for e in experiments
            ]
        )
    )
    chosen = evaluator if evaluator in names else (names[0] if names else "")

    outputs: dict[tuple[int, int], dict[int, str]] = defaultdict(dict)
    statuses: dict[tuple[int, int], dict[int, str]] = defaultdict(dict)
    positions: dict[int, int] = {}
    cells = Cell.objects.filter(experiment__in=experiments).values_list(
        "experiment_id", "variant_id", "item_id", "position", "repeat", "status", "output"
    )
    for experiment_id, variant_id, item_id, position, repeat, status, output in cells.order_by("repeat"):
        column = column_of[(experiment_id, variant_id)]
        column.total += 1
        column.done += status == CellStatus.DONE
        column.failed += status == CellStatus.FAILED
        if experiment_id == experiments[0].pk:
            positions[item_id] = position  # the baseline's row number, when it has the item
        else:
            positions.setdefault(item_id, position)
        if repeat == 0 or item_id not in outputs[column.key]:
            outputs[column.key][item_id] = output if status == CellStatus.DONE else ""
            statuses[column.key][item_id] = status
    for row in (
        Cell.objects.filter(experiment__in=experiments).values("experiment_id", "variant_id").annotate(cost=Sum("cost"))
    ):
        column_of[(row["experiment_id"], row["variant_id"])].cost = row["cost"] or Decimal(0)

    scores: dict[tuple[int, int], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    passes: dict[tuple[int, int], list[bool]] = defaultdict(list)
    if chosen:
        rows = Score.objects.filter(cell__experiment__in=experiments, evaluator__name=chosen, error="").values_list(
            "cell__experiment_id", "cell__variant_id", "cell__item_id", "value", "passed"
        )
        for experiment_id, variant_id, item_id, value, passed in rows:
            score = _score(value, passed)
            if passed is not None:
                passes[(experiment_id, variant_id)].append(passed)
            if score is not None:
                scores[(experiment_id, variant_id)][item_id].append(score)
    item_scores = {key: {item: _mean(values) for item, values in per.items()} for key, per in scores.items()}

    baseline = columns[0] if columns else None
    item_rows: list[ItemRow] = []
    for item_id, position in positions.items():
        cells_of_row = []
        change = 0.0
        base_output = outputs[baseline.key].get(item_id, "") if baseline else ""
        base_score = item_scores.get(baseline.key, {}).get(item_id) if baseline else None
        for column in columns:
            cell = ItemCell(column=column, status=statuses[column.key].get(item_id, ""))
            cell.output = outputs[column.key].get(item_id, "")
            cell.score = item_scores.get(column.key, {}).get(item_id)
            if column is not baseline:
                if cell.score is not None and base_score is not None:
                    cell.delta = cell.score - base_score
                    change = max(change, abs(cell.delta))
                if cell.status == CellStatus.DONE and statuses[baseline.key].get(item_id) == CellStatus.DONE:
                    cell.changed = cell.output != base_output
                    if cell.changed and not chosen:
                        ratio = difflib.SequenceMatcher(None, base_output.split(), cell.output.split()).ratio()
                        change = max(change, 1.0 - ratio)
            cells_of_row.append(cell)
        item_rows.append(ItemRow(item_id=item_id, position=position, change=change, cells=cells_of_row))

    for column in columns[1:]:
        deltas = [c.delta for row in item_rows for c in row.cells if c.column is column and c.delta is not None]
        column.mean_delta = _mean(deltas)
        column.better = sum(1 for d in deltas if d > 0)
        column.worse = sum(1 for d in deltas if d < 0)
        column.same = sum(1 for d in deltas if d == 0)
        column.changed_outputs = sum(1 for row in item_rows for c in row.cells if c.column is column and c.changed)
    for column in columns:
        values = [s for s in item_scores.get(column.key, {}).values() if s is not None]
        column.mean = _mean(values)
        column.pass_rate = _mean([1.0 if p else 0.0 for p in passes.get(column.key, [])])

    if only_changed:
        item_rows = [r for r in item_rows if r.change > 0 or any(c.changed for c in r.cells)]
    item_rows.sort(key=lambda r: (-r.change, -sum(c.changed for c in r.cells), r.position))
    shown = item_rows[:limit]
    items = DatasetItem.objects.in_bulk([r.item_id for r in shown])
    for row in shown:
        item = items.get(row.item_id)
        if item is not None:
            row.fields = readable_fields(item.input, experiments[0].dataset_version.input_columns)
            if item.expected is not None:
                row.expected = item.expected if isinstance(item.expected, str) else json.dumps(item.expected, indent=2)
        base = row.cells[0]
        for cell in row.cells[1:]:
            if cell.changed:
                cell.diff = word_diff(base.output, cell.output)
    return Comparison(
        experiments=experiments,
        columns=columns,
        evaluators=names,
        evaluator=chosen,
        rows=shown,
        item_count=len(item_rows),
        running=any(e.status == ExperimentStatus.RUNNING for e in experiments),
    )

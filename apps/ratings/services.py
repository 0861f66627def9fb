"""Writes of ratings: the rating form, ratings, annotation queues (assign, claim, submit), review links, thresholds.

Concurrency: a queue item is claimed with a conditional UPDATE (`assigned_count < N`),
an assignment is unique per (item, rater), and a submission flips its assignment
from pending to done with a conditional UPDATE, so two tabs or two raters can
neither double-assign an item nor record one assignment twice.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.permissions import require_role
from apps.audit.services import audit_record
from apps.experiments.models import Cell, CellStatus, Experiment, Variant
from apps.ratings.models import (
    AnnotationQueue,
    Assignment,
    AssignmentStatus,
    Choice,
    ExperimentLink,
    PairwiseJudgement,
    QueueItem,
    QueueKind,
    Rating,
    RatingForm,
    default_form_definition,
)

MAX_LABELS = 20
MAX_CRITERIA = 10
MAX_COMMENT_CHARS = 5000
CLAIM_BATCH = 10
_system_random = random.SystemRandom()


class RatingError(Exception):
    """A refused rating action; the message is shown to the user as is."""


# --- the rating form ---------------------------------------------------------------------------


def _names(raw: Any, what: str, limit: int) -> list[str]:
    if raw in (None, ""):
        return []
    if isinstance(raw, str):
        raw = [part for part in raw.replace("\n", ",").split(",")]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise RatingError(f"{what} must be a list of names.")
    names = [x.strip() for x in raw if x.strip()]
    if len(names) > limit:
        raise RatingError(f"At most {limit} {what.lower()}, not {len(names)}.")
    if len(set(n.lower() for n in names)) != len(names):
        raise RatingError(f"{what} must be different from each other.")
    if any(len(n) > 40 for n in names):
        raise RatingError(f"{what}: keep each name under 40 characters.")
    return names


def form_definition_clean(raw: Any) -> dict[str, Any]:
    """Check a form definition and return it normalised; RatingError names the problem."""
    if not isinstance(raw, dict):
        raise RatingError('A rating form is a JSON object, e.g. {"thumbs": true, "scale": {"min": 1, "max": 5}}.')
    unknown = set(raw) - {"thumbs", "scale", "labels", "multi_label", "criteria", "comment"}
    if unknown:
        raise RatingError(f"Unknown rating form field {sorted(unknown)[0]!r}.")
    scale = raw.get("scale")
    if scale:
        if not isinstance(scale, dict) or not all(isinstance(scale.get(k), int) for k in ("min", "max")):
            raise RatingError('The scale needs whole numbers min and max, e.g. {"min": 1, "max": 5}.')
        if not 0 <= scale["min"] < scale["max"] <= 10:
            raise RatingError("The scale must run from a lower to a higher whole number within 0..10.")
        scale = {"min": scale["min"], "max": scale["max"]}
    definition = {
        "thumbs": bool(raw.get("thumbs")),
        "scale": scale or None,
        "labels": _names(raw.get("labels"), "Labels", MAX_LABELS),
        "multi_label": bool(raw.get("multi_label")),
        "criteria": _names(raw.get("criteria"), "Criteria", MAX_CRITERIA),
        "comment": bool(raw.get("comment", True)),
    }
    if not (definition["thumbs"] or definition["scale"] or definition["labels"] or definition["criteria"]):
        raise RatingError("A rating form needs at least one question: thumbs, a scale, labels or criteria.")
    return definition


def form_definition(experiment: Experiment) -> dict[str, Any]:
    form = RatingForm.objects.filter(experiment=experiment).first()
    return form.definition if form else form_definition_clean(default_form_definition())


@transaction.atomic
def rating_form_save(*, experiment: Experiment, definition: Any, actor) -> RatingForm:
    require_role(project_id=experiment.project_id, actor=actor, role=Role.EDITOR, what="Changing the rating form")
    definition = form_definition_clean(definition)
    form, created = RatingForm.objects.select_for_update().get_or_create(
        experiment=experiment, defaults={"definition": definition, "updated_by": actor}
    )
    before = None if created else form.definition
    if not created:
        form.definition = definition
        form.updated_by = actor
        form.save(update_fields=["definition", "updated_by", "updated_at"])
    audit_record(
        project_id=experiment.project_id,
        actor=actor,
        action="rating_form.saved",
        obj=form,
        before=before,
        after=definition,
    )
    return form


def rating_values_clean(
    definition: dict[str, Any], data: dict[str, Any]
) -> tuple[dict[str, Any], int | None, bool | None]:
    """Parse a submitted rating against the form. Returns (values, score, thumb_up); RatingError names a bad field."""
    values: dict[str, Any] = {}
    thumb_up = score = None
    thumb = str(data.get("thumb") or "").strip()
    if thumb:
        if not definition.get("thumbs"):
            raise RatingError("This form has no thumbs up/down.")
        if thumb not in ("up", "down"):
            raise RatingError("Thumb must be up or down.")
        values["thumb"] = thumb
        thumb_up = thumb == "up"
    raw_score = str(data.get("score") or "").strip()
    if raw_score:
        scale = definition.get("scale")
        if not scale:
            raise RatingError("This form has no scale.")
        try:
            score = int(raw_score)
        except ValueError:
            raise RatingError(f"Score must be a whole number from {scale['min']} to {scale['max']}.") from None
        if not scale["min"] <= score <= scale["max"]:
            raise RatingError(f"Score must be from {scale['min']} to {scale['max']}, not {score}.")
        values["score"] = score
    labels = data.get("labels") or []
    if isinstance(labels, str):
        labels = [labels]
    labels = [label for label in labels if label]
    if labels:
        unknown = [label for label in labels if label not in definition.get("labels", [])]
        if unknown:
            raise RatingError(f"Unknown label {unknown[0]!r}.")
        if len(labels) > 1 and not definition.get("multi_label"):
            raise RatingError("Choose one label.")
        values["labels"] = sorted(set(labels))
    criteria = {}
    scale = definition.get("scale") or {"min": 1, "max": 5}
    for name in definition.get("criteria", []):
        raw = str(data.get(f"criterion:{name}") or "").strip()
        if not raw:
            continue
        try:
            value = int(raw)
        except ValueError:
            raise RatingError(f"{name} must be a whole number from {scale['min']} to {scale['max']}.") from None
        if not scale["min"] <= value <= scale["max"]:
            raise RatingError(f"{name} must be from {scale['min']} to {scale['max']}, not {value}.")
        criteria[name] = value
    if criteria:
        values["criteria"] = criteria
    if not values:
        raise RatingError("Give at least one answer: a thumb, a score, a label or a criterion.")
    return values, score, thumb_up


def _comment(raw: str) -> str:
    comment = (raw or "").strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise RatingError(f"Keep the comment under {MAX_COMMENT_CHARS} characters.")
    return comment


@transaction.atomic
def rating_submit(*, cell: Cell, rater, data: dict[str, Any], comment: str = "") -> Rating:
    """Create or replace the rater's own rating of one output."""
    require_role(project_id=cell.experiment.project_id, actor=rater, role=Role.EDITOR, what="Rating outputs")
    if cell.status != CellStatus.DONE:
        raise RatingError("Only outputs that were produced can be rated; this cell has none.")
    values, score, thumb_up = rating_values_clean(form_definition(cell.experiment), data)
    rating, _ = Rating.objects.update_or_create(
        cell=cell,
        rater=rater,
        defaults={"values": values, "score": score, "thumb_up": thumb_up, "comment": _comment(comment)},
    )
    return rating


# --- annotation queues -------------------------------------------------------------------------


def _done_cells(experiment: Experiment, variant_ids: list[int]) -> dict[tuple[int, int], list[int]]:
    """(variant id, position) -> ids of its done cells (one per repeat)."""
    cells: dict[tuple[int, int], list[int]] = {}
    for pk, variant_id, position in (
        Cell.objects.filter(experiment=experiment, variant_id__in=variant_ids, status=CellStatus.DONE)
        .order_by("position", "repeat")
        .values_list("pk", "variant_id", "position")
    ):
        cells.setdefault((variant_id, position), []).append(pk)
    return cells


def _balanced_sides(count: int) -> list[bool]:
    """`count` left/right orders, as many of each as possible (±1), in a random sequence."""
    sides = [index % 2 == 0 for index in range(count)]
    _system_random.shuffle(sides)
    return sides


def _make_assignments(items: list[QueueItem], rater, start_sequence: int, cells) -> list[Assignment]:
    """Assignments of `items` to `rater`: a random done repeat per side, balanced random left/right order."""
    sides = _balanced_sides(len(items))
    sequence = list(range(start_sequence, start_sequence + len(items)))
    _system_random.shuffle(sequence)
    made = []
    for item, low_on_left, number in zip(items, sides, sequence, strict=True):
        assignment = Assignment(item=item, rater=rater, sequence=number)
        if item.cell_id is None:
            low = _system_random.choice(cells[(item.variant_low_id, item.position)])
            high = _system_random.choice(cells[(item.variant_high_id, item.position)])
            assignment.left_cell_id, assignment.right_cell_id = (low, high) if low_on_left else (high, low)
        made.append(assignment)
    return made


@transaction.atomic
def queue_create(
    *,
    experiment: Experiment,
    name: str,
    kind: str,
    variant_ids: list[int],
    raters_per_item: int,
    rater_ids: list[int],
    actor,
) -> AnnotationQueue:
    """Make the queue's items; with named raters, assign each item to N of them (each rater gets a fair share)."""
    require_role(project_id=experiment.project_id, actor=actor, role=Role.EDITOR, what="Making an annotation queue")
    name = name.strip()
    if not name:
        raise RatingError("Give the queue a name.")
    if kind not in QueueKind.values:
        raise RatingError(f"Unknown queue kind {kind!r}.")
    variants = list(Variant.objects.filter(experiment=experiment, pk__in=variant_ids).order_by("name"))
    if len(variants) != len(set(variant_ids)):
        raise RatingError("Choose variants of this experiment.")
    if kind == QueueKind.PAIRWISE and len(variants) < 2:
        raise RatingError("A pairwise queue needs at least two variants.")
    if not variants:
        raise RatingError("Choose at least one variant to rate.")
    raters = list(
        get_user_model()
        .objects.filter(
            pk__in=rater_ids,
            memberships__project_id=experiment.project_id,
            memberships__role__in=[Role.EDITOR, Role.REVIEWER, Role.ADMIN],
        )
        .order_by("username")
    )
    if len(raters) != len(set(rater_ids)):
        raise RatingError("Raters must be members of this project with the editor role or above.")
    if raters_per_item < 1:
        raise RatingError("Each item needs at least one rater.")
    if raters and raters_per_item > len(raters):
        raise RatingError(
            f"{raters_per_item} raters per item needs at least {raters_per_item} raters; you chose {len(raters)}."
        )
    cells = _done_cells(experiment, [v.pk for v in variants])
    positions = sorted({position for _, position in cells})
    items: list[QueueItem] = []
    queue = AnnotationQueue.objects.create(
        experiment=experiment, name=name[:120], kind=kind, raters_per_item=raters_per_item, created_by=actor
    )
    queue.variants.set(variants)
    queue.raters.set(raters)
    if kind == QueueKind.PAIRWISE:
        for position in positions:
            for low, high in itertools.combinations(variants, 2):
                if (low.pk, position) in cells and (high.pk, position) in cells:
                    items.append(QueueItem(queue=queue, position=position, variant_low=low, variant_high=high))
    else:
        for variant in variants:
            for position in positions:
                for cell_id in cells.get((variant.pk, position), []):
                    items.append(QueueItem(queue=queue, position=position, cell_id=cell_id))
    if not items:
        raise RatingError("No finished outputs to rate: run the experiment first.")
    items = QueueItem.objects.bulk_create(items)
    if raters:
        per_rater: dict[int, list[QueueItem]] = {r.pk: [] for r in raters}
        for index, item in enumerate(items):
            for offset in range(raters_per_item):
                per_rater[raters[(index * raters_per_item + offset) % len(raters)].pk].append(item)
            item.assigned_count = raters_per_item
        QueueItem.objects.bulk_update(items, ["assigned_count"], batch_size=1000)
        assignments = []
        for rater in raters:
            assignments += _make_assignments(per_rater[rater.pk], rater, 0, cells)
        Assignment.objects.bulk_create(assignments, batch_size=1000)
    audit_record(
        project_id=experiment.project_id,
        actor=actor,
        action="annotation_queue.created",
        obj=queue,
        after={
            "experiment": experiment.pk,
            "kind": kind,
            "variants": [v.name for v in variants],
            "raters_per_item": raters_per_item,
            "raters": [r.get_username() for r in raters],
            "items": len(items),
        },
    )
    return queue


def queue_claim(*, queue: AnnotationQueue, rater, count: int = CLAIM_BATCH) -> int:
    """Take up to `count` more items of an open queue, each still short of raters and not yet the rater's.

    Each item is claimed with a conditional UPDATE, so concurrent raters never push an
    item past its number of raters; the (item, rater) constraint stops a rater's two
    tabs from taking one item twice. Returns how many were taken.
    """
    require_role(project_id=queue.experiment.project_id, actor=rater, role=Role.EDITOR, what="Rating outputs")
    if not queue.is_open:
        raise RatingError("This queue was assigned to named raters; ask its owner to add you.")
    taken: list[QueueItem] = []
    with transaction.atomic():
        mine = Assignment.objects.filter(item__queue=queue, rater=rater).values("item_id")
        candidates = list(
            QueueItem.objects.filter(queue=queue, assigned_count__lt=queue.raters_per_item)
            .exclude(pk__in=mine)
            .order_by("assigned_count", "position", "id")[: count * 3]
        )
        for item in candidates:
            if len(taken) >= count:
                break
            won = QueueItem.objects.filter(pk=item.pk, assigned_count__lt=queue.raters_per_item).update(
                assigned_count=F("assigned_count") + 1
            )
            if won == 1:
                taken.append(item)
        if not taken:
            return 0
        last = Assignment.objects.filter(item__queue=queue, rater=rater).order_by("-sequence").first()
        cells = _done_cells(queue.experiment, list(queue.variants.values_list("pk", flat=True)))
        assignments = _make_assignments(taken, rater, (last.sequence + 1) if last else 0, cells)
        try:
            with transaction.atomic():
                Assignment.objects.bulk_create(assignments)
        except IntegrityError:
            # The rater's other tab took some of these at the same moment: give the counts back, take none.
            transaction.set_rollback(True)
            return 0
    return len(taken)


def _pending_assignment(queue: AnnotationQueue, token: str, rater) -> Assignment:
    assignment = Assignment.objects.select_related("item").filter(token=token, item__queue=queue).first()
    if assignment is None or assignment.rater_id != rater.pk:
        raise RatingError("This item is not in your queue.")
    if assignment.status == AssignmentStatus.DONE:
        raise RatingError("You already submitted this item; your answer was kept.")
    return assignment


def _finish(assignment: Assignment) -> None:
    # The conditional UPDATE makes a double submission (two tabs, a double click) record nothing twice.
    flipped = Assignment.objects.filter(pk=assignment.pk, status=AssignmentStatus.PENDING).update(
        status=AssignmentStatus.DONE, done_at=timezone.now()
    )
    if flipped != 1:
        raise RatingError("You already submitted this item; your answer was kept.")


@transaction.atomic
def judgement_submit(*, queue: AnnotationQueue, token: str, rater, choice: str, reason: str = "") -> PairwiseJudgement:
    """Record a blind choice for one of the rater's pending pairs."""
    require_role(project_id=queue.experiment.project_id, actor=rater, role=Role.EDITOR, what="Rating outputs")
    if choice not in Choice.values:
        raise RatingError("Choose left, right or tie.")
    assignment = _pending_assignment(queue, token, rater)
    if assignment.left_cell_id is None:
        raise RatingError("This item is rated with the rating form, not as a pair.")
    _finish(assignment)
    return PairwiseJudgement.objects.create(
        experiment=queue.experiment,
        position=assignment.item.position,
        rater=rater,
        left_cell_id=assignment.left_cell_id,
        right_cell_id=assignment.right_cell_id,
        choice=choice,
        reason=_comment(reason),
        assignment=assignment,
    )


@transaction.atomic
def queue_rating_submit(
    *, queue: AnnotationQueue, token: str, rater, data: dict[str, Any], comment: str = ""
) -> Rating:
    require_role(project_id=queue.experiment.project_id, actor=rater, role=Role.EDITOR, what="Rating outputs")
    assignment = _pending_assignment(queue, token, rater)
    if assignment.item.cell_id is None:
        raise RatingError("This item is a pair: choose left, right or tie.")
    values, score, thumb_up = rating_values_clean(form_definition(queue.experiment), data)
    _finish(assignment)
    rating, _ = Rating.objects.update_or_create(
        cell_id=assignment.item.cell_id,
        rater=rater,
        defaults={
            "values": values,
            "score": score,
            "thumb_up": thumb_up,
            "comment": _comment(comment),
            "assignment": assignment,
        },
    )
    return rating


# --- evidence on reviews -----------------------------------------------------------------------


@transaction.atomic
def experiment_link_create(
    *, review, experiment: Experiment, actor, candidate: Variant | None = None, baseline: Variant | None = None
) -> ExperimentLink:
    """Offer an experiment as evidence on a review: its candidate variant runs the review's version."""
    from apps.prompts import selectors as prompt_selectors

    require_role(project_id=review.project_id, actor=actor, role=Role.EDITOR, what="Linking evidence")
    if experiment.project_id != review.project_id:
        raise RatingError("That experiment belongs to another project.")
    variants = list(experiment.variants.all())
    if candidate is None:
        candidate = next((v for v in variants if v.prompt_version_id == review.version_id), None)
    if candidate is None or candidate.experiment_id != experiment.pk:
        raise RatingError(
            f"No variant of {experiment.name} runs v{review.version.number}; choose the candidate variant."
        )
    if baseline is None:
        current = prompt_selectors.version_by_label(prompt=review.prompt, label_name=review.label_name)
        baseline = next((v for v in variants if current and v.prompt_version_id == current.pk and v != candidate), None)
        if baseline is None and len(variants) == 2:
            baseline = next(v for v in variants if v != candidate)
    if baseline is not None and (baseline.experiment_id != experiment.pk or baseline == candidate):
        raise RatingError("The baseline must be another variant of the same experiment.")
    try:
        with transaction.atomic():
            link = ExperimentLink.objects.create(
                review=review, experiment=experiment, candidate=candidate, baseline=baseline, created_by=actor
            )
    except IntegrityError:
        raise RatingError(f"{experiment.name} is already linked to this review.") from None
    audit_record(
        project_id=review.project_id,
        actor=actor,
        action="review.evidence_linked",
        obj=link,
        after={
            "review": review.pk,
            "experiment": experiment.pk,
            "candidate": candidate.name,
            "baseline": baseline.name if baseline else None,
        },
    )
    return link


RULE_FIELDS = {
    "min_win_rate": (0.0, 1.0),
    "max_p_value": (0.0, 1.0),
    "min_mean_rating": (0.0, 10.0),
    "min_ratings": (0, 1_000_000),
    "min_pass_rate": (0.0, 1.0),
}


def evidence_rules_clean(raw: dict[str, Any]) -> dict[str, Any]:
    rules: dict[str, Any] = {"required": bool(raw.get("required"))}
    for key, (low, high) in RULE_FIELDS.items():
        value = raw.get(key)
        if value in (None, ""):
            continue
        try:
            number = int(value) if key == "min_ratings" else float(value)
        except (TypeError, ValueError):
            raise RatingError(f"{key.replace('_', ' ')} must be a number.") from None
        if not low <= number <= high:
            raise RatingError(f"{key.replace('_', ' ')} must be between {low} and {high}.")
        rules[key] = number
    evaluator = str(raw.get("pass_rate_evaluator") or "").strip()
    if "min_pass_rate" in rules and not evaluator:
        raise RatingError("Name the evaluator whose pass rate is required.")
    if evaluator:
        rules["pass_rate_evaluator"] = evaluator[:60]
    if rules["required"] and len(rules) == 1:
        raise RatingError("Set at least one threshold before requiring them.")
    return rules


@transaction.atomic
def evidence_rules_save(*, policy, rules: dict[str, Any], actor):
    """Set the evidence thresholds of a release policy (project admins only, audited)."""
    require_role(project_id=policy.project_id, actor=actor, role=Role.ADMIN, what="Editing a release policy")
    rules = evidence_rules_clean(rules)
    policy = type(policy).objects.select_for_update().get(pk=policy.pk)
    before = policy.evidence_rules
    if before == rules:
        return policy
    policy.evidence_rules = rules
    policy.updated_by = actor
    policy.save(update_fields=["evidence_rules", "updated_by", "updated_at"])
    audit_record(
        project_id=policy.project_id,
        actor=actor,
        action="policy.evidence_rules_changed",
        obj=policy,
        object_repr=f"release policy of {policy.label_name}",
        before=before,
        after=rules,
    )
    return policy

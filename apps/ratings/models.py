"""Human ratings of experiment cells, blind pairwise judgements, annotation queues, experiment links of reviews.

A rater's pages name an assignment by its opaque `token` only: no cell, variant or
experiment id reaches the page of a blind judgement. The order a pair was shown in
is stored on the assignment when it is made and copied onto the judgement.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from apps.experiments.models import Cell, Experiment, Variant


def new_token() -> str:
    return secrets.token_urlsafe(18)


def default_form_definition() -> dict:
    return {"thumbs": True, "scale": {"min": 1, "max": 5}, "labels": [], "criteria": [], "comment": True}


class RatingForm(models.Model):
    """What a rater fills in for one output of an experiment; services.form_definition_clean checks `definition`."""

    experiment = models.OneToOneField(Experiment, on_delete=models.CASCADE, related_name="rating_form")
    definition = models.JSONField(default=default_form_definition)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"rating form of {self.experiment}"


class QueueKind(models.TextChoices):
    PAIRWISE = "pairwise", "Blind pairwise (left, right or tie)"
    RATING = "rating", "Rate single outputs with the rating form"


class AnnotationQueue(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="annotation_queues")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=12, choices=QueueKind.choices, default=QueueKind.PAIRWISE)
    raters_per_item = models.PositiveSmallIntegerField(default=1)
    # Empty: an open queue, any editor of the project takes items as they go (atomic claims).
    raters = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    variants = models.ManyToManyField(Variant, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(raters_per_item__gte=1), name="queue_at_least_one_rater")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return not self.raters.exists()


class QueueItem(models.Model):
    """One unit of work: an item (dataset row) and a pair of variants, or one cell to rate."""

    queue = models.ForeignKey(AnnotationQueue, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    variant_low = models.ForeignKey(Variant, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    variant_high = models.ForeignKey(Variant, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    cell = models.ForeignKey(Cell, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    assigned_count = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "position", "variant_low", "variant_high"],
                condition=models.Q(cell__isnull=True),
                name="queue_item_unique_pair",
            ),
            models.UniqueConstraint(
                fields=["queue", "cell"], condition=models.Q(cell__isnull=False), name="queue_item_unique_cell"
            ),
        ]
        indexes = [models.Index(fields=["queue", "assigned_count"])]

    def __str__(self) -> str:
        return f"{self.queue} row {self.position}"


class AssignmentStatus(models.TextChoices):
    PENDING = "pending", "To do"
    DONE = "done", "Done"


class Assignment(models.Model):
    """One rater's turn on one queue item. For a pair, the (randomized) left/right order is fixed here."""

    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=32, unique=True, default=new_token)
    left_cell = models.ForeignKey(Cell, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    right_cell = models.ForeignKey(Cell, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    sequence = models.PositiveIntegerField(default=0, help_text="The order of the rater's queue.")
    status = models.CharField(max_length=8, choices=AssignmentStatus.choices, default=AssignmentStatus.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["sequence", "id"]
        constraints = [models.UniqueConstraint(fields=["item", "rater"], name="assignment_one_per_rater")]
        indexes = [models.Index(fields=["rater", "status"])]

    def __str__(self) -> str:
        return f"{self.rater} on {self.item}"


class Rating(models.Model):
    """One rater's rating of one output (cell), filled in with the experiment's rating form."""

    cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="ratings")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    values = models.JSONField(default=dict)
    # Copied out of `values` for the statistics: the 1..N scale and the thumb.
    score = models.SmallIntegerField(null=True, blank=True)
    thumb_up = models.BooleanField(null=True, blank=True)
    comment = models.TextField(blank=True)
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="rating"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["cell", "rater"], name="rating_one_per_rater_and_cell")]

    def __str__(self) -> str:
        return f"{self.rater} rated {self.cell_id}: {self.values}"


class Choice(models.TextChoices):
    LEFT = "left", "Left is better"
    RIGHT = "right", "Right is better"
    TIE = "tie", "Tie"


class PairwiseJudgement(models.Model):
    """A rater's blind choice between two outputs of the same item, with the order they were shown in."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="pairwise_judgements")
    position = models.PositiveIntegerField()
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    left_cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="+")
    right_cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="+")
    choice = models.CharField(max_length=5, choices=Choice.choices)
    reason = models.TextField(blank=True)
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="judgement"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["experiment", "position"])]

    def __str__(self) -> str:
        return f"{self.rater} row {self.position}: {self.choice}"

    @property
    def winner_cell_id(self) -> int | None:
        return {"left": self.left_cell_id, "right": self.right_cell_id}.get(self.choice)


class ExperimentLink(models.Model):
    """An experiment offered as evidence on a review request: the candidate against the baseline variant."""

    review = models.ForeignKey("reviews.ReviewRequest", on_delete=models.CASCADE, related_name="experiment_links")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="review_links")
    candidate = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="+")
    baseline = models.ForeignKey(Variant, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["review", "experiment"], name="experiment_link_unique")]

    def __str__(self) -> str:
        return f"{self.experiment} on review #{self.review_id}"

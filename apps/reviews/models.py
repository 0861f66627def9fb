"""Release policies per label, review requests for a version, the conversation and decisions.

Approvals are rows of `ReviewEvent` (kind `approved`) tied to the exact version
and its content hash; they are counted by `services`, never stored as a number.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.accounts.models import Project, Role
from apps.prompts.models import Prompt, PromptVersion


def default_approver_roles() -> list[str]:
    return [Role.REVIEWER.value, Role.ADMIN.value]


class ReleasePolicy(models.Model):
    """How a label of a project is guarded. Edited by project admins, every change audited."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="release_policies")
    label_name = models.CharField(max_length=50)
    protected = models.BooleanField(default=True)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    approver_roles = models.JSONField(default=default_approver_roles)
    # Reserved for the evidence thresholds a later issue adds (e.g. {"min_win_rate": 0.55}).
    evidence_rules = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "label_name"], name="release_policy_unique_label"),
            models.CheckConstraint(condition=models.Q(required_approvals__gte=1), name="release_policy_min_one"),
        ]
        ordering = ["label_name"]
        verbose_name_plural = "release policies"

    def __str__(self) -> str:
        return f"{self.label_name} ({'protected' if self.protected else 'open'})"

    def as_audit(self) -> dict:
        return {
            "protected": self.protected,
            "required_approvals": self.required_approvals,
            "approver_roles": list(self.approver_roles),
        }


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Waiting for review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    RELEASED = "released", "Released"
    WITHDRAWN = "withdrawn", "Withdrawn"
    SUPERSEDED = "superseded", "Superseded"


ACTIVE_STATUSES = (ReviewStatus.OPEN, ReviewStatus.CHANGES_REQUESTED, ReviewStatus.APPROVED)


class ReviewRequest(models.Model):
    """A request to point `label_name` of a prompt at one exact version."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="review_requests")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="review_requests")
    version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="review_requests")
    # Copied at request time: an approval counts only while it still matches the version's content.
    content_hash = models.CharField(max_length=64)
    label_name = models.CharField(max_length=50)
    description = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_by_repr = models.CharField(max_length=200)
    reviewers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    status = models.CharField(max_length=20, choices=ReviewStatus.choices, default=ReviewStatus.OPEN)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="superseded_by"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    released_by_repr = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # One live request per version and label; a second click cannot open a twin.
            models.UniqueConstraint(
                fields=["prompt", "label_name", "version"],
                condition=models.Q(status__in=["open", "changes_requested", "approved"]),
                name="review_one_active_per_version_label",
            )
        ]
        indexes = [models.Index(fields=["project", "status", "-updated_at"])]
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.prompt.name} v{self.version.number} → {self.label_name}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def status_css(self) -> str:
        return {
            ReviewStatus.OPEN: "text-bg-warning",
            ReviewStatus.CHANGES_REQUESTED: "text-bg-danger",
            ReviewStatus.APPROVED: "text-bg-success",
            ReviewStatus.RELEASED: "text-bg-primary",
        }.get(self.status, "text-bg-secondary")


class ReviewEventKind(models.TextChoices):
    REQUESTED = "requested", "requested the release"
    COMMENT = "comment", "commented"
    APPROVED = "approved", "approved"
    CHANGES_REQUESTED = "changes_requested", "requested changes"
    UPDATED = "updated", "updated the request"
    WITHDRAWN = "withdrawn", "withdrew the request"
    RELEASED = "released", "released"


class ReviewEvent(models.Model):
    """One entry of a review's conversation; approvals and change requests are decisions on `version`."""

    review = models.ForeignKey(ReviewRequest, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=ReviewEventKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_repr = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.actor_repr} {self.get_kind_display()}"


class AcceptableUse(models.Model):
    """The project's acceptable-use statement: a reviewer confirms it with every approval (audited)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="acceptable_use")
    statement = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"acceptable use of {self.project}"

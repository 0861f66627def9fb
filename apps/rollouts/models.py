"""Canary releases: a plan that moves a label's split step by step, watched by the sequential test (stats.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.accounts.models import Project
from apps.prompts.models import Prompt, PromptVersion


def default_steps() -> list[int]:
    return [500, 2500, 5000, 10_000]  # basis points: 5% -> 25% -> 50% -> 100%


def default_guardrails() -> list[dict]:
    return [{"metric": "error_rate", "tolerance": 0.0}]


class RolloutStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    PROMOTED = "promoted", "Promoted to 100%"
    ROLLED_BACK = "rolled_back", "Rolled back"


ACTIVE = (RolloutStatus.RUNNING, RolloutStatus.PAUSED)


class Rollout(models.Model):
    """A canary of `canary_version` against `stable_version` under one label of a prompt."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rollouts")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="rollouts")
    label_name = models.CharField(max_length=50)
    stable_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    canary_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    # The approved review the canary's moves release under, on a protected label (else null).
    review_id = models.BigIntegerField(null=True, blank=True)
    steps = models.JSONField(default=default_steps, help_text="Canary weights in basis points; the last is 10000.")
    step_index = models.PositiveSmallIntegerField(default=0)
    min_volume = models.PositiveIntegerField(default=200, help_text="Canary calls a step needs before promotion.")
    min_minutes = models.FloatField(default=10.0, help_text="Minutes a step lasts at least.")
    guardrails = models.JSONField(default=default_guardrails)
    alpha = models.FloatField(default=0.05)
    status = models.CharField(max_length=12, choices=RolloutStatus.choices, default=RolloutStatus.RUNNING)
    started_at = models.DateTimeField()
    step_started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_evidence = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_by_repr = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "label_name"],
                condition=models.Q(status__in=["running", "paused"]),
                name="rollout_one_active_per_label",
            )
        ]
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"canary of {self.prompt.name} v{self.canary_version.number} on {self.label_name}"

    @property
    def weight(self) -> int:
        return self.steps[self.step_index]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE


class EventKind(models.TextChoices):
    STARTED = "started", "Started"
    STEPPED = "stepped", "Promoted to the next step"
    PROMOTED = "promoted", "Promoted to 100%"
    ROLLED_BACK = "rolled_back", "Rolled back"
    PAUSED = "paused", "Paused"
    RESUMED = "resumed", "Resumed"


class RolloutEvent(models.Model):
    """The history of a canary's steps: who or what acted, on which evidence."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=EventKind.choices)
    from_weight = models.PositiveSmallIntegerField(default=0)
    to_weight = models.PositiveSmallIntegerField(default=0)
    automatic = models.BooleanField(default=False)
    actor_repr = models.CharField(max_length=200)
    reason = models.CharField(max_length=500, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_weight}->{self.to_weight}"


class RolloutCheck(models.Model):
    """One look of the watcher: the guardrails' differences and boundaries then (the page's boundary chart)."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="checks")
    at = models.DateTimeField()
    weight = models.PositiveSmallIntegerField()
    canary_calls = models.PositiveIntegerField()
    guardrails = models.JSONField(default=list)
    outcome = models.CharField(max_length=12)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"check of rollout {self.rollout_id} at {self.at:%H:%M}: {self.outcome}"

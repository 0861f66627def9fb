from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from apps.accounts.models import Project

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
name_validator = RegexValidator(
    NAME_PATTERN,
    "Use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit (at most 100).",
)


class PromptKind(models.TextChoices):
    TEXT = "text", "Text template"
    CHAT = "chat", "Chat messages"


class Tag(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompt_tags")
    name = models.CharField(max_length=40)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="tag_unique_per_project")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    # The name is the prompt's URL-safe address in the studio and the REST API.
    name = models.CharField(max_length=100, validators=[name_validator])
    description = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="prompts")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="prompt_unique_name_per_project")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class VersionIsImmutable(Exception):
    pass


class PromptVersion(models.Model):
    """One saved state of a prompt. Never changed after it is saved: editing makes a new version.

    The database refuses any UPDATE of a version row too (triggers from migration
    0002, on SQLite and PostgreSQL), so `update()`, `bulk_update` and raw SQL fail.
    """

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=PromptKind.choices)
    template = models.TextField(blank=True, help_text="The template of a text prompt.")
    messages = models.JSONField(default=list, blank=True, help_text="[{role, content}] of a chat prompt.")
    config = models.JSONField(default=dict, blank=True)
    variables = models.JSONField(default=list, blank=True, help_text="[{name, type, description, sample}]")
    message = models.CharField(max_length=500, blank=True, help_text="What changed, like a commit message.")
    # Deleting a user leaves the version untouched (the row cannot change): author_id keeps the old id,
    # author_repr the name, so the four-eyes rule still knows who wrote it.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    author_repr = models.CharField(max_length=200, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prompt", "number"], name="version_unique_number_per_prompt")]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"{self.prompt.name} v{self.number}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise VersionIsImmutable("A prompt version never changes; save a new version instead.")
        super().save(*args, **kwargs)

    @property
    def variable_names(self) -> list[str]:
        return [spec["name"] for spec in self.variables]

    def sample_values(self) -> dict:
        return {spec["name"]: spec.get("sample") for spec in self.variables if "sample" in spec}


# A canary's share is in basis points: 1000 is 10% of the keys (buckets 0..9999, prompt_studio.assign).
SPLIT_BUCKETS = 10_000


class Label(models.Model):
    """A movable pointer such as `production` to one version of a prompt, or a weighted split for a canary.

    With a canary, `canary_weight` of every SPLIT_BUCKETS keys get `canary_version`, the rest `version`
    (the stable arm); which keys is decided by prompt_studio.assign, the same in the server and the client.
    """

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=50, validators=[name_validator])
    version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="labels")
    canary_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="canary_labels"
    )
    canary_weight = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt", "name"], name="label_unique_name_per_prompt"),
            models.CheckConstraint(
                condition=(
                    models.Q(canary_version__isnull=True, canary_weight=0)
                    | models.Q(canary_version__isnull=False, canary_weight__gt=0, canary_weight__lt=SPLIT_BUCKETS)
                ),
                name="label_split_is_consistent",
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.prompt.name}@{self.name}"


class LabelGatePass(models.Model):
    """A one-move permit that `services.label_move` writes and removes inside the transaction of a move.

    The database refuses any INSERT or UPDATE of a label row for which no pass
    names the same prompt, label and version (triggers from migration 0002), so
    `Label.save()`, `Label.objects.update()` and `loaddata` of a label fixture
    fail unless they run inside the gate, which also records the move and its
    audit event. A pass never outlives its transaction.
    """

    prompt_id = models.BigIntegerField()
    label_name = models.CharField(max_length=50)
    version_id = models.BigIntegerField()
    # A split needs a pass naming its canary arm and weight too (migration 0003): a weight change is a move.
    canary_version_id = models.BigIntegerField(null=True, blank=True)
    canary_weight = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt_id", "label_name", "version_id"], name="label_gate_pass_unique")
        ]

    def __str__(self) -> str:
        return f"pass for {self.label_name} of prompt {self.prompt_id} to version {self.version_id}"


class LabelAction(models.TextChoices):
    CREATED = "created", "created"
    MOVED = "moved", "moved"
    ROLLED_BACK = "rolled_back", "rolled back"
    SPLIT = "split", "split for a canary"
    DELETED = "deleted", "deleted"


class LabelMove(models.Model):
    """The history of a label: kept after the label itself is deleted."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="label_moves")
    label_name = models.CharField(max_length=50)
    action = models.CharField(max_length=16, choices=LabelAction.choices)
    from_version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # The canary arm before and after the move (none when the label was or is a plain pointer).
    from_canary_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    from_canary_weight = models.PositiveSmallIntegerField(default=0)
    to_canary_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_canary_weight = models.PositiveSmallIntegerField(default=0)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_repr = models.CharField(max_length=200)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["prompt", "label_name", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.label_name} {self.action} by {self.actor_repr}"


class IncludePin(models.Model):
    """One `{% include "name@label" %}` of a version, pinned to the version the label pointed at when it was saved.

    Written with the version, in its transaction, and never changed (the database refuses an UPDATE, as for
    versions): the version renders with these snippet versions whatever their labels do later. The pins are
    part of the version's content hash. `snippet_version` is RESTRICT: a snippet with dependents cannot be
    deleted on its own, only with them (a whole project).
    """

    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="include_pins")
    ref = models.CharField(max_length=151, help_text="What the template names, e.g. tone@production.")
    label_name = models.CharField(max_length=50)
    snippet_version = models.ForeignKey(PromptVersion, on_delete=models.RESTRICT, related_name="included_by")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "ref"], name="include_pin_unique_ref")]
        ordering = ["ref"]

    def __str__(self) -> str:
        return f"{self.ref} → v{self.snippet_version.number}"

"""Datasets, their immutable versions, and the items the versions share.

An item is content-addressed: its hash covers input, expected output and
metadata, and is unique per dataset, so a row that two versions have in common
is stored once. A version is an ordered list of items (DatasetVersionItem);
editing one row of a 100k-row version adds one item and the version's list,
never a copy of the other rows' content.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.accounts.models import Project


class VersionIsImmutable(Exception):
    pass


class Dataset(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="dataset_unique_name_per_project")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DatasetItem(models.Model):
    """One row's content. Never changed: an edit adds a new item with a new hash."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    content_hash = models.CharField(max_length=32)
    input = models.JSONField(default=dict, help_text="The input variables, a JSON object.")
    expected = models.JSONField(null=True, blank=True, help_text="The expected output: text or JSON; null if none.")
    metadata = models.JSONField(default=dict, blank=True, help_text="Tags, source, split, ...")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "content_hash"], name="dataset_item_unique_content"),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} of {self.dataset_id}"

    def as_record(self) -> dict:
        return {"input": self.input, "expected": self.expected, "metadata": self.metadata}


class VersionSource(models.TextChoices):
    IMPORT = "import", "Import"
    EDIT = "edit", "Edit"
    REDACTION = "redaction", "Redaction"
    API = "api", "API"
    COUNTERFACTUAL = "counterfactual", "Counterfactual"
    PERTURBATION = "perturbation", "Perturbation"


class DatasetVersion(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    message = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=16, choices=VersionSource.choices, default=VersionSource.IMPORT)
    row_count = models.PositiveIntegerField(default=0)
    # Column names in first-seen order; a JSON column, so no migration when data changes shape.
    input_columns = models.JSONField(default=list, blank=True)
    metadata_columns = models.JSONField(default=list, blank=True)
    has_expected = models.BooleanField(default=False)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    author_repr = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_unique_number"),
        ]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise VersionIsImmutable("A dataset version never changes; save a new version instead.")
        super().save(*args, **kwargs)


class DatasetVersionItem(models.Model):
    """The ordered rows of a version: `position` is the 0-based row index, contiguous within a version."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="rows")
    item = models.ForeignKey(DatasetItem, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "position"], name="dataset_version_item_unique_position"),
        ]

    def __str__(self) -> str:
        return f"v{self.version_id} row {self.position}"


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """An uploaded file between the steps of an import (preview, mapping) and, for a large file, its task.

    The file lives under DATASET_UPLOAD_DIR/<token>/ and is deleted when the
    import ends; the job row stays as the record of what happened.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="dataset_imports")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=64, unique=True)
    filename = models.CharField(max_length=255)
    file_format = models.CharField(max_length=8)
    size = models.PositiveBigIntegerField(default=0)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="imports")
    dataset_name = models.CharField(max_length=100, blank=True, help_text="The new dataset's name, if any.")
    mapping = models.JSONField(default=dict, blank=True)
    message = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.UPLOADED)
    error = models.TextField(blank=True)
    version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import of {self.filename} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)

"""Production traces: what released prompts did in apps, sent over OTLP or the native batch API.

Rows arrive in bulk (apps/traces/ingest.py). Spans and scores name their trace
by the client's `trace_id` (no foreign key), so a span, its trace and its
feedback may arrive in any order and in separate batches; the unique keys on
the client's ids make a retried batch write nothing twice. The surrogate keys
are bigints handed out in insertion order, so they are time-ordered.
"""

from __future__ import annotations

from django.db import models

from apps.accounts.models import Project


class PiiMode(models.TextChoices):
    OFF = "off", "Keep as sent"
    MASK = "mask", "Mask (e-mail, phone, card, IBAN)"
    DROP = "drop", "Drop the text of any field that has some"


class TraceSettings(models.Model):
    """A project's ingest settings; a project without a row uses the defaults (README: Traces)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="trace_settings")
    retention_days = models.PositiveIntegerField(default=30, help_text="Traces older than this are deleted.")
    pii_mode = models.CharField(max_length=8, choices=PiiMode.choices, default=PiiMode.OFF)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"traces of {self.project}: {self.retention_days} days, PII {self.pii_mode}"


class BatchStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class IngestBatch(models.Model):
    """One accepted request, stored whole in one write before the answer; a Celery task expands it into rows."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=8)  # otlp | native
    payload = models.TextField(help_text="The normalized, redacted batch as JSON; emptied once expanded.")
    span_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=8, choices=BatchStatus.choices, default=BatchStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField()
    enqueued_at = models.DateTimeField(help_text="When its message was last sent (the sweep re-sends stale ones).")
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "enqueued_at"], name="trace_batch_status")]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.span_count} spans, {self.status})"


class TraceStatus(models.TextChoices):
    OK = "ok", "OK"
    ERROR = "error", "Error"


class Trace(models.Model):
    """One request of an app, summed up from its spans by the ingest task (recomputed when spans arrive)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    trace_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    status = models.CharField(max_length=8, choices=TraceStatus.choices, default=TraceStatus.OK)
    span_count = models.PositiveIntegerField(default=0)
    generation_count = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=8, null=True, blank=True)
    model = models.CharField(max_length=200, blank=True)
    # The prompt of its generations (the newest version when several are used), as named and as resolved.
    prompt_name = models.CharField(max_length=100, blank=True)
    prompt_version_number = models.PositiveIntegerField(null=True, blank=True)
    prompt_label = models.CharField(max_length=50, blank=True)
    prompt_version = models.ForeignKey(
        "prompts.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    input_text = models.TextField(blank=True, help_text="The first generation's input, for search and lists.")
    output_text = models.TextField(blank=True)
    user_id = models.CharField(max_length=200, blank=True)
    session_id = models.CharField(max_length=200, blank=True)
    environment = models.CharField(max_length=50, blank=True)
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    flags = models.JSONField(default=list, blank=True, help_text="Problems found at ingest, e.g. unknown_prompt.")
    feedback_count = models.PositiveIntegerField(default=0)
    feedback_mean = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "trace_id"], name="trace_unique_client_id")]
        indexes = [
            models.Index(fields=["project", "-start_time", "-id"], name="trace_project_time"),
            models.Index(fields=["prompt_version", "-start_time"], name="trace_version_time"),
        ]

    def __str__(self) -> str:
        return f"trace {self.trace_id}"


class SpanKind(models.TextChoices):
    SPAN = "span", "Span"
    GENERATION = "generation", "Generation"


class Span(models.Model):
    """One operation of a trace; a generation is a span that called a model."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    trace_id = models.CharField(max_length=64)
    span_id = models.CharField(max_length=64)
    parent_span_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=12, choices=SpanKind.choices, default=SpanKind.SPAN)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    status = models.CharField(max_length=8, choices=TraceStatus.choices, default=TraceStatus.OK)
    status_message = models.CharField(max_length=500, blank=True)
    provider = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, blank=True)
    operation = models.CharField(max_length=50, blank=True)
    input = models.JSONField(null=True, blank=True, help_text="Messages or text sent to the model.")
    output = models.JSONField(null=True, blank=True)
    input_text = models.TextField(blank=True)
    output_text = models.TextField(blank=True)
    variables = models.JSONField(default=dict, blank=True, help_text="The prompt's variables, when sent.")
    input_tokens = models.BigIntegerField(null=True, blank=True)
    output_tokens = models.BigIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=16, decimal_places=8, null=True, blank=True)
    prompt_name = models.CharField(max_length=100, blank=True)
    prompt_version_number = models.PositiveIntegerField(null=True, blank=True)
    prompt_label = models.CharField(max_length=50, blank=True)
    prompt_version = models.ForeignKey(
        "prompts.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    attributes = models.JSONField(default=dict, blank=True)
    flags = models.JSONField(default=list, blank=True)
    batch_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "trace_id", "span_id"], name="span_unique_client_id")]
        indexes = [
            models.Index(fields=["prompt_version", "-start_time"], name="span_version_time"),
        ]  # and on start_time: BRIN on PostgreSQL, B-tree on SQLite (migration 0002)

    def __str__(self) -> str:
        return f"span {self.span_id} of {self.trace_id}"

    @property
    def is_generation(self) -> bool:
        return self.kind == SpanKind.GENERATION

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


class ScoreType(models.TextChoices):
    NUMERIC = "numeric", "Numeric"
    BOOLEAN = "boolean", "Boolean"
    CATEGORICAL = "categorical", "Categorical"


class Score(models.Model):
    """Feedback from an end user, or a score from a program, on a trace or one of its generations."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    score_id = models.CharField(max_length=64, help_text="The client's id (a retry writes nothing twice).")
    trace_id = models.CharField(max_length=64)
    span_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=100)
    data_type = models.CharField(max_length=12, choices=ScoreType.choices)
    value = models.FloatField(null=True, blank=True, help_text="The number; 1 or 0 for a boolean.")
    string_value = models.CharField(max_length=200, blank=True, help_text="The category of a categorical score.")
    comment = models.TextField(blank=True)
    end_user_id = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=20, default="api")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "score_id"], name="score_unique_client_id")]
        indexes = [models.Index(fields=["project", "trace_id"], name="score_trace")]

    def __str__(self) -> str:
        return f"{self.name}={self.display_value} on {self.trace_id}"

    @property
    def display_value(self) -> str:
        if self.data_type == ScoreType.CATEGORICAL:
            return self.string_value
        if self.data_type == ScoreType.BOOLEAN:
            return "yes" if self.value else "no"
        return f"{self.value:g}" if self.value is not None else ""

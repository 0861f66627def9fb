from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.accounts.models import Project
from apps.prompts.models import PromptVersion
from apps.providers.models import ModelEndpoint, ResultStatus


class PlaygroundRun(models.Model):
    """One press of Run: a prompt (a saved version or unsaved content), variables, and one result per endpoint."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="playground_runs")
    version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The content that ran, kept even when it was never saved as a version.
    content = models.JSONField()
    variables = models.JSONField(default=dict)
    # A run that continues a conversation: the result whose answer (or tool calls) it follows.
    parent_result = models.ForeignKey(
        "playground.PlaygroundResult", null=True, blank=True, on_delete=models.SET_NULL, related_name="continuations"
    )
    # The images sent with the run: name, content type, size and the data URL (also in each result's request).
    images = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "providers_playgroundrun"  # the table predates the app (moved out of providers)
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk}"


class PlaygroundResult(models.Model):
    run = models.ForeignKey(PlaygroundRun, on_delete=models.CASCADE, related_name="results")
    endpoint = models.ForeignKey(ModelEndpoint, null=True, on_delete=models.SET_NULL, related_name="+")
    endpoint_name = models.CharField(max_length=100)
    model = models.CharField(max_length=200)
    # The column of a comparison: "v3", "draft"; the saved version it ran, if any.
    label = models.CharField(max_length=120, blank=True)
    version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=ResultStatus.choices, default=ResultStatus.QUEUED)
    request = models.JSONField(default=dict, help_text="Exactly what was sent: messages or prompt, and parameters.")
    output = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=40, blank=True)
    tokens_in = models.PositiveIntegerField(null=True, blank=True)
    tokens_out = models.PositiveIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    provider_request_id = models.CharField(max_length=200, blank=True)
    # A streamed result's output grows while it runs (written every STREAM_WRITE_SECONDS); a failed one keeps it.
    streamed = models.BooleanField(default=False)
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    tokens_estimated = models.BooleanField(
        default=False, help_text="The provider sent no usage: tokens were counted with the model's tokenizer."
    )
    tool_calls = models.JSONField(default=list, blank=True, help_text="The tool calls the model asked for.")
    # The output parsed as JSON when a response format asked for JSON, and what the schema refused in it.
    structured = models.JSONField(null=True, blank=True)
    schema_errors = models.JSONField(default=list, blank=True)
    error_kind = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "providers_playgroundresult"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.endpoint_name}: {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in (ResultStatus.DONE, ResultStatus.FAILED)

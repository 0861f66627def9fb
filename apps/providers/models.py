from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.accounts.models import Project


class EndpointKind(models.TextChoices):
    REMOTE = "remote", "Provider"
    LOCAL = "local", "Local model (managed)"
    SIMULATED = "simulated", "Simulated (test server)"


class EndpointMode(models.TextChoices):
    CHAT = "chat", "Chat completions"
    COMPLETION = "completion", "Text completions"


class ModelEndpoint(models.Model):
    """A model reachable through litellm. The API key is stored encrypted and never rendered back."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_endpoints")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=EndpointKind.choices, default=EndpointKind.REMOTE)
    mode = models.CharField(max_length=16, choices=EndpointMode.choices, default=EndpointMode.CHAT)
    model = models.CharField(max_length=200, help_text="The litellm model string, e.g. openai/gpt-4o-mini.")
    api_base = models.CharField(max_length=500, blank=True, help_text="Base URL of an OpenAI-compatible server.")
    # Fernet token; see apps/providers/crypto.py. Never shown, never logged.
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_last4 = models.CharField(max_length=4, blank=True, editable=False)
    default_params = models.JSONField(default=dict, blank=True)
    timeout_seconds = models.FloatField(default=60)
    max_retries = models.PositiveSmallIntegerField(default=3)
    max_concurrency = models.PositiveIntegerField(default=4)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    price_input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    price_output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="endpoint_unique_name_per_project")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<ModelEndpoint {self.pk} {self.name} {self.model}>"

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)

    @property
    def masked_key(self) -> str:
        if not self.api_key_encrypted:
            return ""
        return f"••••{self.api_key_last4}" if self.api_key_last4 else "••••"

    @property
    def is_simulated(self) -> bool:
        return self.kind == EndpointKind.SIMULATED

    def audit_snapshot(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "mode": self.mode,
            "model": self.model,
            "api_base": self.api_base,
            "api_key": self.masked_key or "none",
            "default_params": self.default_params,
            "timeout_seconds": self.timeout_seconds,
            "max_retries": self.max_retries,
            "max_concurrency": self.max_concurrency,
            "requests_per_minute": self.requests_per_minute,
            "price_input_per_mtok": str(self.price_input_per_mtok) if self.price_input_per_mtok is not None else None,
            "price_output_per_mtok": str(self.price_output_per_mtok)
            if self.price_output_per_mtok is not None
            else None,
            "is_active": self.is_active,
        }


class ResultStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class EndpointCheck(models.Model):
    """One press of Test connection: a one-token call made by a worker on the interactive queue."""

    endpoint = models.ForeignKey(ModelEndpoint, on_delete=models.CASCADE, related_name="checks")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=ResultStatus.choices, default=ResultStatus.QUEUED)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    provider_request_id = models.CharField(max_length=200, blank=True)
    error_kind = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"check of {self.endpoint_id}: {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in (ResultStatus.DONE, ResultStatus.FAILED)

    @property
    def error_label(self) -> str:
        from apps.providers.gateway import ErrorKind

        return ErrorKind.labels.get(self.error_kind, self.error_kind or "Error")

    # A check is at most a 30 s call; one unfinished after this long has no worker (or lost it).
    PATIENCE = timedelta(seconds=45)

    @property
    def is_stalled(self) -> bool:
        return not self.is_finished and self.created_at < timezone.now() - self.PATIENCE


class EndpointSlot(models.Model):
    """A lease on one of an endpoint's concurrent call slots (the shared limiter on PostgreSQL without Redis)."""

    endpoint_id = models.BigIntegerField(db_index=True)
    holder = models.CharField(max_length=32)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "experiments_endpointslot"  # made by the experiments app, which used to own it

    def __str__(self) -> str:
        return f"slot of endpoint {self.endpoint_id} until {self.expires_at}"


class EndpointRateWindow(models.Model):
    """Calls started in one minute on one endpoint (the shared minute budget on PostgreSQL without Redis)."""

    endpoint_id = models.BigIntegerField()
    window = models.BigIntegerField(help_text="Minutes since the epoch.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "experiments_endpointratewindow"
        constraints = [models.UniqueConstraint(fields=["endpoint_id", "window"], name="rate_window_unique")]

    def __str__(self) -> str:
        return f"endpoint {self.endpoint_id} minute {self.window}: {self.count}"

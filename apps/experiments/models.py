"""Experiments: a dataset version × variants × repeats, one cell per model call, scores per cell."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.accounts.models import Project
from apps.core.fields import CostField


class ExperimentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    CANCELLED = "cancelled", "Cancelled"
    STOPPED = "stopped", "Stopped (budget spent)"
    FINISHED = "finished", "Finished"


ACTIVE_STATUSES = (ExperimentStatus.RUNNING,)
FINAL_STATUSES = (ExperimentStatus.CANCELLED, ExperimentStatus.STOPPED, ExperimentStatus.FINISHED)


class ExperimentKind(models.TextChoices):
    EVALUATION = "evaluation", "Evaluation"
    BIAS = "bias", "Bias probe (counterfactual pairs)"
    INJECTION = "injection", "Prompt-injection probe"


class Experiment(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=ExperimentKind.choices, default=ExperimentKind.EVALUATION)
    # A probe's settings (bias: the positive label; injection: the attacked variables), as given at creation.
    probe = models.JSONField(default=dict, blank=True)
    dataset_version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.PROTECT, related_name="experiments")
    repeats = models.PositiveSmallIntegerField(default=1)
    budget = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="Stop when this much (USD) is spent."
    )
    status = models.CharField(max_length=16, choices=ExperimentStatus.choices, default=ExperimentStatus.DRAFT)
    status_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    estimated_calls = models.PositiveIntegerField(default=0)
    estimated_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    estimated_cost = CostField(max_digits=14, decimal_places=6, null=True, blank=True)
    # Totals, written from the cells when the experiment ends.
    total_tokens_in = models.PositiveBigIntegerField(default=0)
    total_tokens_out = models.PositiveBigIntegerField(default=0)
    total_cost = CostField(max_digits=14, decimal_places=6, default=0)
    total_errors = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class Variant(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=20, help_text="A short name such as A, B, C.")
    prompt_version = models.ForeignKey("prompts.PromptVersion", on_delete=models.PROTECT, related_name="+")
    endpoint = models.ForeignKey("providers.ModelEndpoint", on_delete=models.PROTECT, related_name="+")
    params = models.JSONField(default=dict, blank=True, help_text="Parameter overrides for this variant.")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["experiment", "name"], name="variant_unique_name")]

    def __str__(self) -> str:
        return f"{self.experiment}: {self.name}"


class EvaluatorConfig(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="evaluators")
    name = models.CharField(max_length=60)
    kind = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["experiment", "name"], name="evaluator_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class CellStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Cell(models.Model):
    """One model call: a variant on one dataset row, one repeat. Claimed atomically, written once."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="cells")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="cells")
    item = models.ForeignKey("datasets.DatasetItem", on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField(help_text="The row of the dataset version.")
    repeat = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=12, choices=CellStatus.choices, default=CellStatus.PENDING)
    claim_token = models.CharField(max_length=32, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    request = models.JSONField(null=True, blank=True, help_text="The rendered messages or prompt sent.")
    output = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=40, blank=True)
    tokens_in = models.PositiveIntegerField(null=True, blank=True)
    tokens_out = models.PositiveIntegerField(null=True, blank=True)
    cost = CostField(max_digits=14, decimal_places=8, null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    provider_request_id = models.CharField(max_length=200, blank=True)
    error_kind = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position", "variant_id", "repeat"]
        constraints = [
            models.UniqueConstraint(fields=["variant", "position", "repeat"], name="cell_unique_variant_row_repeat")
        ]
        indexes = [
            models.Index(fields=["experiment", "status"]),
            models.Index(fields=["status", "claim_expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.variant.name} row {self.position} #{self.repeat}"


class Score(models.Model):
    cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="scores")
    evaluator = models.ForeignKey(EvaluatorConfig, on_delete=models.CASCADE, related_name="scores")
    value = models.FloatField(null=True, blank=True)
    passed = models.BooleanField(null=True, blank=True)
    explanation = models.TextField(blank=True)
    error = models.TextField(blank=True, help_text="Why the evaluator could not score; the cell itself is fine.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cell", "evaluator"], name="score_unique_per_cell")]

    def __str__(self) -> str:
        return f"{self.evaluator.name}={self.value}"


class ProbeRequirement(models.Model):
    """A release policy's demand for a probe: 'label flip rate <= 2% for gender', 'injection success <= 5%'.

    Kept here, not in the policy's JSON: reviews knows nothing of probes; the release check and the
    review page's evidence come from apps.experiments.probes.governance through reviews' registries.
    """

    policy = models.ForeignKey("reviews.ReleasePolicy", on_delete=models.CASCADE, related_name="probe_requirements")
    kind = models.CharField(
        max_length=16, choices=[(ExperimentKind.BIAS, "Bias"), (ExperimentKind.INJECTION, "Injection")]
    )
    attribute = models.CharField(max_length=60, blank=True, help_text="For a bias probe: the attribute, e.g. gender.")
    max_rate = models.FloatField(
        help_text="Bias: the highest label flip rate; injection: the highest attack success rate."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "kind", "attribute"], name="probe_requirement_unique"),
        ]

    def __str__(self) -> str:
        if self.kind == ExperimentKind.BIAS:
            return f"label flip rate <= {self.max_rate:.0%} for {self.attribute}"
        return f"injection success <= {self.max_rate:.0%}"


class ExplanationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Explanation(models.Model):
    """Which input moved one output (an experiment's cell or a production generation), run by a worker.

    It keeps what it explains (the prompt version, the inputs, the output and the call's parameters), so
    the worker needs nothing of where the output came from. `result` holds the occlusion rows and, where
    the endpoint returns log-probabilities, the words the output's first token was most sensitive to
    (see apps.experiments.probes.explain).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    cell = models.ForeignKey(Cell, null=True, blank=True, on_delete=models.CASCADE, related_name="explanations")
    source_key = models.CharField(max_length=100, blank=True, help_text="Another source's key, e.g. span:<id>.")
    prompt_version = models.ForeignKey("prompts.PromptVersion", on_delete=models.CASCADE, related_name="+")
    inputs = models.JSONField(default=dict, blank=True)
    output = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    endpoint = models.ForeignKey("providers.ModelEndpoint", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=ExplanationStatus.choices, default=ExplanationStatus.PENDING)
    done = models.PositiveIntegerField(default=0, help_text="Model calls made so far.")
    total = models.PositiveIntegerField(default=0, help_text="Model calls the explanation needs.")
    result = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "source_key", "-created_at"], name="explanation_source")]

    def __str__(self) -> str:
        return f"Explanation {self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.status in (ExplanationStatus.DONE, ExplanationStatus.FAILED)

"""Monitoring: hourly rollups of production generations, drift reports, alert rules and their alerts.

Rollups are kept by the ingest task (apps/monitoring/rollups.py, through the
traces app's write listeners), one row per project, prompt version, model and
hour, and the same sums per UTC day; the dashboards read only them. `prompt_version_id` is 0 for generations
linked to no version (a plain integer, not a foreign key, so the key is unique
on every database); `prompt_id` is 0 likewise.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.accounts.models import Project


class GenerationSums(models.Model):
    """What a rollup row adds up for the generations of one prompt version and model in its period."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    prompt_id = models.BigIntegerField(default=0)
    prompt_version_id = models.BigIntegerField(default=0)
    model = models.CharField(max_length=200, blank=True)
    count = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    latency_ms_sum = models.FloatField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost_units = models.BigIntegerField(default=0, help_text="Cost in units of 1e-8 (exact sums on every database).")
    empty_outputs = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class LatencyCounts(models.Model):
    """Generations per latency bucket (log-spaced, apps/monitoring/rollups.py) for p50/p95/p99."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    prompt_id = models.BigIntegerField(default=0)
    prompt_version_id = models.BigIntegerField(default=0)
    model = models.CharField(max_length=200, blank=True)
    bucket = models.SmallIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class ScoreSums(models.Model):
    """Numeric and boolean feedback (and online evaluation scores) per name, on the generation's key and period."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    prompt_id = models.BigIntegerField(default=0)
    prompt_version_id = models.BigIntegerField(default=0)
    model = models.CharField(max_length=200, blank=True)
    name = models.CharField(max_length=100)
    count = models.BigIntegerField(default=0)
    total = models.FloatField(default=0)
    total_sq = models.FloatField(default=0)

    class Meta:
        abstract = True


class HourlyRollup(GenerationSums):
    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "prompt_version_id", "model", "hour"], name="rollup_unique_key")
        ]
        indexes = [
            models.Index(fields=["project", "hour"], name="rollup_project_hour"),
            models.Index(fields=["prompt_id", "hour"], name="rollup_prompt_hour"),
        ]

    def __str__(self) -> str:
        return f"hourly rollup {self.prompt_version_id}/{self.model} at {self.hour:%Y-%m-%d %H}:00"


class LatencyRollup(LatencyCounts):
    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "prompt_version_id", "model", "hour", "bucket"], name="latency_rollup_unique_key"
            )
        ]
        indexes = [models.Index(fields=["project", "hour"], name="latency_rollup_project_hour")]

    def __str__(self) -> str:
        return f"latency rollup {self.prompt_version_id}/{self.model} at {self.hour:%Y-%m-%d %H}:00"


class ScoreRollup(ScoreSums):
    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "prompt_version_id", "model", "hour", "name"], name="score_rollup_unique_key"
            )
        ]
        indexes = [models.Index(fields=["project", "hour"], name="score_rollup_project_hour")]

    def __str__(self) -> str:
        return f"score rollup {self.prompt_version_id}/{self.model} at {self.hour:%Y-%m-%d %H}:00"


# The same sums per UTC day (`day` is the day's midnight in UTC), kept beside the hourly rows by the same
# upserts, so a month per day reads 24 times fewer rows (the dashboard reads whole days here, the ragged
# edges of its range from the hourly tables).


class DailyRollup(GenerationSums):
    day = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "prompt_version_id", "model", "day"], name="daily_rollup_unique_key"
            )
        ]
        indexes = [models.Index(fields=["project", "day"], name="daily_rollup_project_day")]

    def __str__(self) -> str:
        return f"daily rollup {self.prompt_version_id}/{self.model} on {self.day:%Y-%m-%d}"


class DailyLatencyRollup(LatencyCounts):
    day = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "prompt_version_id", "model", "day", "bucket"],
                name="daily_latency_rollup_unique_key",
            )
        ]
        indexes = [models.Index(fields=["project", "day"], name="daily_latency_project_day")]

    def __str__(self) -> str:
        return f"daily latency rollup {self.prompt_version_id}/{self.model} on {self.day:%Y-%m-%d}"


class DailyScoreRollup(ScoreSums):
    day = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "prompt_version_id", "model", "day", "name"], name="daily_score_rollup_unique_key"
            )
        ]
        indexes = [models.Index(fields=["project", "day"], name="daily_score_project_day")]

    def __str__(self) -> str:
        return f"daily score rollup {self.prompt_version_id}/{self.model} on {self.day:%Y-%m-%d}"


class DriftReport(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="drift_reports")
    prompt = models.ForeignKey("prompts.Prompt", on_delete=models.CASCADE, related_name="drift_reports")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    reference = models.CharField(max_length=200, help_text="What the window was compared with, in words.")
    reference_start = models.DateTimeField(null=True, blank=True)
    reference_end = models.DateTimeField(null=True, blank=True)
    alpha = models.FloatField(default=0.05)
    tests = models.JSONField(default=list, help_text="Every test run: metric, test, statistic, p, q, effect, line.")
    finding_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"drift of {self.prompt_id} ({self.finding_count} findings)"

    @property
    def findings(self) -> list[dict]:
        return [t for t in self.tests if t.get("finding")]


class AlertMetric(models.TextChoices):
    ERROR_RATE = "error_rate", "Error rate"
    LATENCY_P95 = "latency_p95", "Latency p95 (ms)"
    COST_PER_CALL = "cost_per_call", "Cost per call"
    VOLUME = "volume", "Volume (generations)"
    FEEDBACK_MEAN = "feedback_mean", "Feedback mean"
    ONLINE_EVAL_MEAN = "online_eval_mean", "Online evaluator mean or pass rate"
    ONLINE_EVAL_ERROR_RATE = "online_eval_errors", "Online evaluation error rate"
    DRIFT_FINDINGS = "drift_findings", "Drift findings"


class AlertOperator(models.TextChoices):
    ABOVE = "above", "above"
    BELOW = "below", "below"


class AlertRule(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alert_rules")
    prompt = models.ForeignKey("prompts.Prompt", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    metric = models.CharField(max_length=20, choices=AlertMetric.choices)
    operator = models.CharField(max_length=8, choices=AlertOperator.choices, default=AlertOperator.ABOVE)
    threshold = models.FloatField()
    score_name = models.CharField(max_length=100, blank=True, help_text="The feedback score a feedback rule reads.")
    window_hours = models.PositiveIntegerField(default=1)
    min_volume = models.PositiveIntegerField(default=20, help_text="Fewer generations in the window: not evaluated.")
    email = models.CharField(max_length=500, blank=True, help_text="Comma-separated addresses to mail.")
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="alert_rule_unique_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}: {self.metric} {self.operator} {self.threshold:g}"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alerts")
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    status = models.CharField(max_length=14, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    value = models.FloatField()
    volume = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=500)
    drift_report = models.ForeignKey(DriftReport, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    opened_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["rule", "status"], name="alert_rule_status")]

    def __str__(self) -> str:
        return f"alert {self.pk} ({self.status}): {self.message}"


class OnlineEvalRule(models.Model):
    """Sample a share of a prompt's live generations and score them with evaluators (apps/monitoring/online.py).

    Each evaluator's score is stored as a traces Score named `<rule>.<evaluator>` (source `online`), so it
    shows on the trace, in the score rollups (the dashboard) and in alert rules like any feedback.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="online_eval_rules")
    prompt = models.ForeignKey("prompts.Prompt", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=60, help_text="Letters, digits, - and _; the prefix of its score names.")
    label = models.CharField(max_length=50, blank=True, help_text="Only generations served under this label.")
    version_number = models.PositiveIntegerField(null=True, blank=True, help_text="Only this version.")
    sample_rate = models.FloatField(default=0.1, help_text="The share of matching generations evaluated (0..1).")
    evaluators = models.JSONField(default=list, help_text='[{"name": ..., "kind": ..., "params": {...}}]')
    daily_max_evaluations = models.PositiveIntegerField(null=True, blank=True)
    daily_max_cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    human_score_name = models.CharField(
        max_length=100, blank=True, help_text="The people's feedback the judge is calibrated against (e.g. thumbs)."
    )
    human_pass_at = models.FloatField(default=0.5, help_text="A human score at or above this is a pass.")
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="online_rule_unique_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"online evaluation {self.name} ({self.sample_rate:.0%} of {self.prompt_id})"

    def score_name(self, evaluator_name: str) -> str:
        return f"{self.name}.{evaluator_name}"


class OnlineEvalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Scored"
    ERROR = "error", "Errored"
    SKIPPED = "skipped", "Skipped"


class OnlineEvaluation(models.Model):
    """One sampled generation of a rule: pending until a worker claims it, then scored, errored or skipped."""

    rule = models.ForeignKey(OnlineEvalRule, on_delete=models.CASCADE, related_name="evaluations")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    trace_id = models.CharField(max_length=64)
    span_id = models.CharField(max_length=64)
    prompt_version_id = models.BigIntegerField(default=0)
    generation_start = models.DateTimeField()
    status = models.CharField(max_length=8, choices=OnlineEvalStatus.choices, default=OnlineEvalStatus.PENDING)
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    results = models.JSONField(default=list, blank=True, help_text="Per evaluator: value, passed, explanation, error.")
    error = models.CharField(max_length=500, blank=True)
    cost = models.DecimalField(max_digits=16, decimal_places=8, null=True, blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "trace_id", "span_id"], name="online_evaluation_unique_generation")
        ]
        indexes = [
            models.Index(fields=["rule", "status", "-created_at"], name="online_eval_rule_status"),
            models.Index(fields=["status", "created_at"], name="online_eval_status_time"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"online evaluation {self.pk} of {self.trace_id}/{self.span_id} ({self.status})"


class OnlineEvalBudget(models.Model):
    """A rule's spending on one UTC day. Evaluations reserve from it in one conditional UPDATE (never over)."""

    rule = models.ForeignKey(OnlineEvalRule, on_delete=models.CASCADE, related_name="budgets")
    day = models.DateField()
    evaluations = models.PositiveIntegerField(default=0, help_text="Evaluations started (reserved) today.")
    cost_units = models.BigIntegerField(default=0, help_text="Spent plus reserved, in units of 1e-8.")
    skipped = models.PositiveIntegerField(default=0, help_text="Sampled generations not evaluated: over budget.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "day"], name="online_budget_unique_day")]

    def __str__(self) -> str:
        return f"budget of rule {self.rule_id} on {self.day}: {self.evaluations} evaluations"

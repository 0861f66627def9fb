"""Demo data for monitoring: rollups of the seeded traffic, a shifted last half-day, a drift finding and an alert.

The traffic of the traces step is rolled up as it is written (the ingest listener);
a demo seeded before monitoring existed gets its rollups rebuilt here. Then the
last 12 hours of support-reply get extra traffic where `product` shifted to
Acme Shop and errors rose, a drift report finds it, and an error-rate rule opens
an alert. Once: a demo with a drift report is left alone.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from django.db import transaction

from apps.accounts.models import Project
from apps.demo.traces import NAMES, TICKETS, _generation
from apps.monitoring import alerts, drift, rollups
from apps.monitoring.models import AlertRule, DriftReport, HourlyRollup
from apps.prompts.models import Label
from apps.traces.ingest import rows_write
from apps.traces.models import Span
from apps.traces.records import TraceRecord


def _shifted_traffic(project: Project, now: datetime) -> int:
    label = Label.objects.filter(prompt__project=project, prompt__name="support-reply", name="production").first()
    if label is None:
        return 0
    version = label.version
    rng = random.Random(31)  # noqa: S311 - demo data, reproducible
    spans, traces = [], []
    for _ in range(200):
        start = now - timedelta(hours=12) + timedelta(seconds=rng.uniform(0, 12 * 3600 - 60))
        trace_id = uuid.uuid4().hex
        ticket, answer, _category = rng.choice(TICKETS)
        name = rng.choice(NAMES)
        # 90% Acme Shop against a third before: a finding whatever the hour the demo is seeded at (the
        # reference half-day's traffic follows office hours, 30 to 90 generations).
        product = "Acme Shop" if rng.random() < 0.9 else rng.choice(["Acme Cloud", "Acme Billing"])
        variables = {"product": product, "customer_name": name, "ticket": ticket, "known_issues": []}
        error = rng.random() < 0.12
        spans.append(_generation(rng, trace_id, "", start, version, "production", variables, answer.format(name=name),
                                 error=error))  # fmt: skip
        traces.append(TraceRecord(trace_id=trace_id, name="support-reply request", environment="production"))
    with transaction.atomic():
        rows_write(project_id=project.pk, spans=spans, traces=traces)
    return len(spans)


def seed_demo_monitoring(*, project: Project, actor=None) -> bool:
    """Seed the demo's monitoring once; True when it did."""
    if not HourlyRollup.objects.filter(project=project).exists() and Span.objects.filter(project=project).exists():
        rollups.rollups_rebuild(project_id=project.pk)
    if DriftReport.objects.filter(project=project).exists():
        return False
    now = datetime.now(UTC)
    if not _shifted_traffic(project, now):
        return False
    prompt = Label.objects.get(prompt__project=project, prompt__name="support-reply", name="production").prompt
    drift.report_create(prompt=prompt, window_hours=12, now=now)
    rule = AlertRule.objects.filter(project=project, name="support-reply errors").first()
    if rule is None:
        rule = alerts.rule_create(
            project=project, actor=actor, name="support-reply errors", prompt_id=prompt.pk, metric="error_rate",
            operator="above", threshold=0.05, window_hours=12, min_volume=20,
        )  # fmt: skip
    alerts.rule_evaluate(rule, now=now)
    return True


def seed_demo_online_evaluation(*, project: Project, actor=None) -> bool:
    """Two online evaluation rules on support-reply (production), once: `support-checks` (the experiments' pure
    evaluators, run now over half of the last three days' traffic, so its page, the dashboard and its calibration
    against the end users' thumbs have figures) and `support-judge` (the local model as judge, on 5% of new
    traffic; nothing is judged at seed time, the local model may not be serving yet)."""
    from apps.monitoring import online
    from apps.monitoring.models import OnlineEvalRule
    from apps.providers.models import EndpointKind, EndpointMode, ModelEndpoint

    if OnlineEvalRule.objects.filter(project=project).exists():
        return False
    label = Label.objects.filter(prompt__project=project, prompt__name="support-reply", name="production").first()
    if label is None:
        return False
    checks = online.rule_create(
        project=project, actor=actor, name="support-checks", prompt=label.prompt, label="production",
        sample_rate=0.5, daily_max_evaluations=2000, human_score_name="thumbs", human_pass_at=1.0,
        evaluators=[
            {"name": "opens-politely", "kind": "regex", "params": {"pattern": r"^(Hi|Yes|Sorry)\b"}},
            {"name": "short", "kind": "length", "params": {"max": 100, "unit": "chars"}},
            {"name": "no-ai-disclaimer", "kind": "not_contains", "params": {"value": "as an AI"}},
        ],
    )  # fmt: skip
    ids = online.rule_backfill(rule=checks, since=datetime.now(UTC) - timedelta(days=3))
    online.evaluations_run(ids=ids)
    judge = ModelEndpoint.objects.filter(project=project, kind=EndpointKind.LOCAL, mode=EndpointMode.CHAT).first()
    if judge is not None:
        online.rule_create(
            project=project, actor=actor, name="support-judge", prompt=label.prompt, label="production",
            sample_rate=0.05, daily_max_evaluations=100, human_score_name="thumbs", human_pass_at=1.0,
            evaluators=[{"name": "helpful", "kind": "llm_judge", "params": {
                "endpoint_id": judge.pk, "rubric": "Does the reply answer the ticket helpfully and politely?",
                "scale_min": 1, "scale_max": 5, "pass_at": 4}}],
        )  # fmt: skip
    return True

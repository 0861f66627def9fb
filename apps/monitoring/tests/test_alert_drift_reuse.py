"""A drift alert rule evaluated every few minutes reuses a recent equivalent report instead of piling up one per
evaluation (MONITORING_DRIFT_REUSE_MINUTES)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apps.monitoring import alerts, drift
from apps.monitoring.models import DriftReport
from apps.monitoring.tests.test_views import _send


def test_a_drift_rule_reuses_a_recent_equivalent_report(released, settings):
    settings.MONITORING_DRIFT_REUSE_MINUTES = 60
    project = released.project
    now = datetime.now(UTC)
    _send(project, 60, start=now - timedelta(hours=30), variables=lambda i: {"tier": "free"})
    _send(project, 60, start=now - timedelta(hours=3), variables=lambda i: {"tier": "pro" if i % 2 else "free"})
    rule = alerts.rule_create(project=project, actor="test", name="drift", metric="drift_findings", operator="above",
                              threshold=0, window_hours=24, min_volume=10, prompt_id=released.pk)  # fmt: skip
    other_window = drift.report_create(prompt=released, window_hours=12, now=now - timedelta(minutes=1))

    alert = alerts.rule_evaluate(rule, now=now)
    assert alert is not None and alert.drift_report_id != other_window.pk
    first = DriftReport.objects.exclude(pk=other_window.pk).get()
    for minutes in (5, 30, 59):  # the beat evaluates again: the same report is read, none is added
        alerts.rule_evaluate(rule, now=now + timedelta(minutes=minutes))
    assert DriftReport.objects.count() == 2
    assert alerts.measure(rule, now=now + timedelta(minutes=30))[2].pk == first.pk

    later = now + timedelta(minutes=61)  # older than the reuse window: a fresh report
    assert alerts.measure(rule, now=later)[2].pk != first.pk
    assert DriftReport.objects.count() == 3

    settings.MONITORING_DRIFT_REUSE_MINUTES = 0  # reuse switched off: every evaluation makes its report
    alerts.measure(rule, now=later + timedelta(minutes=1))
    assert DriftReport.objects.count() == 4

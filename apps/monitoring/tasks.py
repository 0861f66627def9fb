from __future__ import annotations

from celery import shared_task

from apps.monitoring import alerts


@shared_task(name="monitoring.evaluate_alerts", ignore_result=True)
def evaluate_alerts() -> None:
    """Evaluate every active alert rule (beat, every MONITORING_ALERT_SECONDS)."""
    alerts.rules_evaluate_all()

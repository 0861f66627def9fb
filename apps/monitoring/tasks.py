from __future__ import annotations

from celery import shared_task

from apps.monitoring import alerts


@shared_task(name="monitoring.evaluate_alerts", ignore_result=True)
def evaluate_alerts() -> None:
    """Evaluate every active alert rule (beat, every MONITORING_ALERT_SECONDS)."""
    alerts.rules_evaluate_all()


@shared_task(name="monitoring.online_evaluate", ignore_result=True, acks_late=True, queue="experiments")
def online_evaluate(evaluation_ids: list[int]) -> None:
    """Evaluate sampled generations of online evaluation rules.

    Running it twice evaluates nothing twice: only pending rows (or rows whose claim expired) are claimed,
    and an outcome is written only while this run holds the claim.
    """
    from apps.monitoring import online

    online.evaluations_run(ids=list(evaluation_ids))


@shared_task(name="monitoring.online_sweep", ignore_result=True)
def online_sweep() -> None:
    """Send again evaluations whose message was lost or whose worker died, and forget old finished ones.
    Twice is harmless: a re-sent evaluation is claimed once, and a deleted one is gone."""
    from apps.monitoring import online

    online.evaluations_requeue()
    online.evaluations_forget()

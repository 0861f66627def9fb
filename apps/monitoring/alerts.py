"""Alert rules and their alerts: evaluated by a beat task on the rollups (or a drift report), notified through
the project's webhooks and by email, each change audited in its transaction."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Project
from apps.audit.services import actor_repr, actor_user, audit_record
from apps.monitoring import selectors
from apps.monitoring.models import Alert, AlertMetric, AlertOperator, AlertRule, AlertStatus
from apps.webhooks import services as webhooks
from apps.webhooks.models import WebhookEvent

logger = logging.getLogger(__name__)


class AlertError(Exception):
    """A refused alert write; the message names the problem and is shown as is."""


def _rule_state(rule: AlertRule) -> dict[str, Any]:
    return {"name": rule.name, "metric": rule.metric, "operator": rule.operator, "threshold": rule.threshold,
            "window_hours": rule.window_hours, "min_volume": rule.min_volume, "prompt": rule.prompt_id,
            "score_name": rule.score_name, "email": rule.email, "active": rule.active}  # fmt: skip


def rule_create(*, project: Project, actor: Any, **fields) -> AlertRule:
    rule = AlertRule(project=project, created_by=actor_user(actor), **fields)
    if AlertRule.objects.filter(project=project, name=rule.name).exists():
        raise AlertError(f"This project already has an alert rule named {rule.name!r}.")
    if rule.metric == AlertMetric.DRIFT_FINDINGS and rule.prompt_id is None:
        raise AlertError("A drift rule needs a prompt: drift compares one prompt's windows.")
    if rule.metric == AlertMetric.FEEDBACK_MEAN and not rule.score_name:
        raise AlertError("A feedback rule needs the score name it reads (such as thumbs).")
    if rule.metric == AlertMetric.ONLINE_EVAL_MEAN and "." not in rule.score_name:
        raise AlertError("An online evaluator rule reads a score named <rule>.<evaluator> (such as polite.judge).")
    if rule.metric == AlertMetric.ONLINE_EVAL_ERROR_RATE and not rule.score_name:
        raise AlertError("An online evaluation error rule needs the online evaluation rule's name as its score.")
    with transaction.atomic():
        rule.save()
        audit_record(project_id=project.pk, actor=actor, action="alert_rule.created", obj=rule,
                     after=_rule_state(rule))  # fmt: skip
    return rule


def rule_set_active(*, rule: AlertRule, active: bool, actor: Any) -> AlertRule:
    with transaction.atomic():
        before = _rule_state(rule)
        rule.active = active
        rule.save(update_fields=["active"])
        audit_record(project_id=rule.project_id, actor=actor, action="alert_rule.updated", obj=rule, before=before,
                     after=_rule_state(rule))  # fmt: skip
    return rule


def rule_delete(*, rule: AlertRule, actor: Any) -> None:
    with transaction.atomic():
        audit_record(project_id=rule.project_id, actor=actor, action="alert_rule.deleted", obj=rule,
                     before=_rule_state(rule))  # fmt: skip
        rule.delete()


def measure(rule: AlertRule, *, now: datetime) -> tuple[float | None, int, Any]:
    """(value, volume, drift report or None) of the rule's metric over its window; value None: nothing to judge."""
    if rule.metric == AlertMetric.DRIFT_FINDINGS:
        report = _drift_report(rule, now=now)
        volume = max((t.get("n_window", 0) for t in report.tests), default=0)
        return float(report.finding_count), volume, report
    if rule.metric == AlertMetric.ONLINE_EVAL_ERROR_RATE:
        from apps.monitoring.models import OnlineEvalStatus, OnlineEvaluation

        statuses = list(
            OnlineEvaluation.objects.filter(
                rule__project_id=rule.project_id, rule__name=rule.score_name, finished_at__gte=now - timedelta(
                    hours=rule.window_hours), finished_at__lt=now,
                status__in=[OnlineEvalStatus.DONE, OnlineEvalStatus.ERROR],
            ).values_list("status", flat=True)
        )  # fmt: skip
        if not statuses:
            return None, 0, None
        return statuses.count(OnlineEvalStatus.ERROR) / len(statuses), len(statuses), None
    f = selectors.MetricFilters(
        prompt=rule.prompt.name if rule.prompt_id else "", range="custom",
        since=now - timedelta(hours=rule.window_hours), until=now,
    )  # fmt: skip
    data = selectors.metrics(project_id=rule.project_id, f=f)
    overall = data["overall"]
    if rule.metric in (AlertMetric.FEEDBACK_MEAN, AlertMetric.ONLINE_EVAL_MEAN):
        score = next((s for s in data["scores"] if s["name"] == rule.score_name), None)
        if score is None:
            return None, 0, None
        return score["total"]["mean"], score["total"]["n"], None
    value = {
        AlertMetric.ERROR_RATE: overall["error_rate"],
        AlertMetric.LATENCY_P95: overall["p95"],
        AlertMetric.COST_PER_CALL: overall["cost_per_call"],
        AlertMetric.VOLUME: float(overall["volume"]),
    }[rule.metric]
    return value, overall["volume"], None


def _drift_report(rule: AlertRule, *, now: datetime):
    """A drift report of the rule's prompt and window: an equivalent one made in the last
    MONITORING_DRIFT_REUSE_MINUTES (same prompt, same window length against the window before) is reused,
    so a rule evaluated every few minutes does not pile up a report per evaluation."""
    from apps.monitoring.drift import report_create
    from apps.monitoring.models import DriftReport

    reuse = timedelta(minutes=settings.MONITORING_DRIFT_REUSE_MINUTES)
    window = timedelta(hours=rule.window_hours)
    for recent in DriftReport.objects.filter(
        prompt_id=rule.prompt_id,
        reference_start__isnull=False,
        alpha=0.05,
        window_end__gt=now - reuse,
        window_end__lte=now,
    ).order_by("-window_end")[:20]:
        if recent.window_end - recent.window_start == window:
            return recent
    return report_create(prompt=rule.prompt, window_hours=rule.window_hours, now=now)


def _breached(rule: AlertRule, value: float) -> bool:
    return value > rule.threshold if rule.operator == AlertOperator.ABOVE else value < rule.threshold


def describe(rule: AlertRule, value: float, volume: int) -> str:
    metric = AlertMetric(rule.metric).label
    where = f" of {rule.prompt.name}" if rule.prompt_id else ""
    rates = (AlertMetric.ERROR_RATE, AlertMetric.ONLINE_EVAL_ERROR_RATE)
    shown = f"{value:.1%}" if rule.metric in rates else f"{value:.4g}"
    limit = f"{rule.threshold:.1%}" if rule.metric in rates else f"{rule.threshold:g}"
    if rule.score_name and rule.metric in (AlertMetric.FEEDBACK_MEAN, AlertMetric.ONLINE_EVAL_MEAN):
        metric = f"{metric} {rule.score_name}"
    elif rule.metric == AlertMetric.ONLINE_EVAL_ERROR_RATE:
        metric = f"{metric} of {rule.score_name}"
    return (f"{metric}{where} is {shown} over the last {rule.window_hours} h ({volume} generations), "
            f"{rule.operator} the threshold {limit}.")[:500]  # fmt: skip


def _notify(alert: Alert, event: str) -> None:
    rule = alert.rule
    data = {"alert": alert.pk, "rule": rule.name, "metric": rule.metric, "status": alert.status,
            "value": alert.value, "threshold": rule.threshold, "message": alert.message,
            "prompt": rule.prompt.name if rule.prompt_id else None}  # fmt: skip
    webhooks.emit(project_id=alert.project_id, event=event, data=data)
    addresses = [a.strip() for a in rule.email.split(",") if a.strip()]
    if addresses:
        subject = f"[{alert.project.name}] {'Alert' if event == WebhookEvent.ALERT_OPENED else 'Resolved'}: {rule.name}"

        def send() -> None:
            try:
                send_mail(subject, alert.message, settings.DEFAULT_FROM_EMAIL, addresses, fail_silently=False)
            except Exception:  # a mail server down must not undo the alert
                logger.exception("Could not mail alert %s", alert.pk)

        transaction.on_commit(send)


def rule_evaluate(rule: AlertRule, *, now: datetime | None = None) -> Alert | None:
    """Open an alert when the rule is breached with enough volume, resolve the open one when it no longer is.

    Returns the alert opened or resolved, None when nothing changed.
    """
    now = now or timezone.now()
    value, volume, report = measure(rule, now=now)
    with transaction.atomic():
        AlertRule.objects.filter(pk=rule.pk).update(last_evaluated_at=now)
        current = rule.alerts.exclude(status=AlertStatus.RESOLVED).order_by("-opened_at").first()
        if value is None or volume < rule.min_volume:
            return None
        if _breached(rule, value):
            if current is not None:
                return None
            alert = Alert.objects.create(project_id=rule.project_id, rule=rule, value=value, volume=volume,
                                         message=describe(rule, value, volume), drift_report=report,
                                         opened_at=now)  # fmt: skip
            audit_record(project_id=rule.project_id, actor="system: alerts", action="alert.opened", obj=alert,
                         after={"rule": rule.name, "value": value, "volume": volume})  # fmt: skip
            _notify(alert, WebhookEvent.ALERT_OPENED)
            return alert
        if current is None:
            return None
        return _resolve(current, actor="system: alerts", now=now, value=value)


def _resolve(alert: Alert, *, actor: Any, now: datetime, value: float | None = None) -> Alert:
    before = alert.status
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    alert.save(update_fields=["status", "resolved_at"])
    audit_record(project_id=alert.project_id, actor=actor, action="alert.resolved", obj=alert,
                 before={"status": before}, after={"status": alert.status, "value": value})  # fmt: skip
    _notify(alert, WebhookEvent.ALERT_RESOLVED)
    return alert


def alert_acknowledge(*, alert: Alert, actor: Any) -> Alert:
    if alert.status != AlertStatus.OPEN:
        raise AlertError(f"Only an open alert can be acknowledged; this one is {alert.status}.")
    with transaction.atomic():
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = actor_user(actor)
        alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by"])
        audit_record(project_id=alert.project_id, actor=actor, action="alert.acknowledged", obj=alert,
                     before={"status": "open"}, after={"status": alert.status, "by": actor_repr(actor)})  # fmt: skip
    return alert


def alert_resolve(*, alert: Alert, actor: Any) -> Alert:
    if alert.status == AlertStatus.RESOLVED:
        raise AlertError("This alert is resolved already.")
    with transaction.atomic():
        return _resolve(alert, actor=actor, now=timezone.now())


def rules_evaluate_all(*, now: datetime | None = None) -> int:
    """Evaluate every active rule; one failing rule does not stop the others. Returns how many changed."""
    changed = 0
    for rule in AlertRule.objects.filter(active=True).select_related("prompt", "project"):
        try:
            changed += rule_evaluate(rule, now=now) is not None
        except Exception:
            logger.exception("Alert rule %s could not be evaluated", rule.pk)
    return changed

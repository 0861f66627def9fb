"""REST reads of monitoring: the dashboard's metrics (from the rollups), drift reports, alerts and online
evaluation rules. Any key reads."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from apps.api import serializers as s
from apps.api.errors import ApiError
from apps.monitoring import selectors
from apps.monitoring.models import Alert, AlertStatus, DriftReport

ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Bad input; `detail` names the problem."),
    401: OpenApiResponse(s.ErrorSerializer, description="Missing, invalid or revoked key."),
}


def _figures(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in figures.items()}


def _versions(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"version": v["name"], "total": v["total"], "points": [_figures(p) for p in v["points"]]} for v in versions]


@extend_schema(
    operation_id="metrics_get",
    summary="The dashboard's figures per prompt version and hour or day, from the rollups",
    parameters=[
        OpenApiParameter("prompt", str, description="A prompt name (needed by version and label)."),
        OpenApiParameter("label", str, description="The versions this label has pointed at."),
        OpenApiParameter("version", int),
        OpenApiParameter("model", str),
        OpenApiParameter(
            "range", str, enum=["6h", "24h", "3d", "7d", "30d", "90d", "custom"], description="7d by default."
        ),
        OpenApiParameter("since", str, description="ISO 8601; with until, instead of range."),
        OpenApiParameter("until", str, description="ISO 8601 (default: now)."),
        OpenApiParameter("step", str, enum=["hour", "day"], description="Default: hour up to 3 days."),
    ],
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET"])
def metrics(request: Request) -> Response:
    try:
        f = selectors.filters_from(request.query_params)
        data = selectors.metrics(project_id=request.auth.project_id, f=f)
    except selectors.FilterProblem as exc:
        raise ApiError(400, "invalid_filter", exc.message, field=exc.field) from None
    return Response(
        {
            "since": f.since.isoformat(),
            "until": f.until.isoformat(),
            "step": f.step,
            "overall": data["overall"],
            "versions": _versions(data["versions"]),
            "scores": [
                {"name": sc["name"], "total": sc["total"], "versions": _versions(sc["versions"])}
                for sc in data["scores"]
            ],
        }
    )


def _report(report: DriftReport, *, tests: bool) -> dict[str, Any]:
    document = {
        "id": report.pk,
        "prompt": report.prompt.name,
        "window_start": report.window_start.isoformat(),
        "window_end": report.window_end.isoformat(),
        "reference": report.reference,
        "alpha": report.alpha,
        "finding_count": report.finding_count,
        "findings": [
            {k: t.get(k) for k in ("metric", "test", "effect_name", "effect", "p", "q", "line")}
            for t in report.findings
        ],
        "created_at": report.created_at.isoformat(),
    }
    if tests:
        document["tests"] = [{k: v for k, v in t.items() if k != "shown"} for t in report.tests]
    return document


@extend_schema(
    operation_id="drift_reports_list",
    summary="Drift reports, newest first, with their findings",
    parameters=[OpenApiParameter("prompt", str, description="Only this prompt's reports.")],
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET"])
def drift_reports(request: Request) -> Response:
    qs = DriftReport.objects.filter(project_id=request.auth.project_id).select_related("prompt")
    prompt = request.query_params.get("prompt", "")
    if prompt:
        qs = qs.filter(prompt__name=prompt[:100])
    return Response({"reports": [_report(r, tests=False) for r in qs[:100]]})


@extend_schema(
    operation_id="drift_report_get",
    summary="One drift report with every test (statistic, p, BH q, effect size, plain line)",
    responses={200: OpenApiTypes.OBJECT, **ERRORS, 404: OpenApiResponse(s.ErrorSerializer)},
)
@api_view(["GET"])
def drift_report(request: Request, report_id: int) -> Response:
    report = DriftReport.objects.filter(project_id=request.auth.project_id, pk=report_id).first()
    if report is None:
        raise ApiError(404, "drift_report_not_found", f"No drift report {report_id} in this project.")
    return Response(_report(report, tests=True))


@extend_schema(
    operation_id="alerts_list",
    summary="Alerts, newest first, with their rule",
    parameters=[OpenApiParameter("status", str, enum=["open", "acknowledged", "resolved"])],
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET"])
def alerts(request: Request) -> Response:
    qs = Alert.objects.filter(project_id=request.auth.project_id).select_related("rule", "rule__prompt")
    status = request.query_params.get("status")
    if status is not None:
        if status not in AlertStatus.values:
            raise ApiError(400, "invalid_filter", "status must be open, acknowledged or resolved.", field="status")
        qs = qs.filter(status=status)
    return Response(
        {
            "alerts": [
                {
                    "id": a.pk,
                    "status": a.status,
                    "message": a.message,
                    "value": a.value,
                    "volume": a.volume,
                    "opened_at": a.opened_at.isoformat(),
                    "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None,
                    "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
                    "drift_report": a.drift_report_id,
                    "rule": {
                        "name": a.rule.name,
                        "metric": a.rule.metric,
                        "operator": a.rule.operator,
                        "threshold": a.rule.threshold,
                        "window_hours": a.rule.window_hours,
                        "min_volume": a.rule.min_volume,
                        "prompt": a.rule.prompt.name if a.rule.prompt_id else None,
                    },
                }
                for a in qs[:200]
            ]
        }
    )


def _online_rule(rule, *, summary: dict[str, Any] | None = None) -> dict[str, Any]:
    from apps.monitoring.online import budget_today

    budget = (summary or {}).get("budget") or budget_today(rule)
    return {
        "id": rule.pk,
        "name": rule.name,
        "prompt": rule.prompt.name,
        "label": rule.label or None,
        "version": rule.version_number,
        "sample_rate": rule.sample_rate,
        "active": rule.active,
        "evaluators": [
            {"name": e["name"], "kind": e["kind"], "score_name": rule.score_name(e["name"]), "params": e.get("params")}
            for e in rule.evaluators
        ],
        "budget": {
            "day_utc": timezone.now().date().isoformat(),
            "evaluations": budget["evaluations"],
            "max_evaluations": budget["max_evaluations"],
            "cost": float(budget["cost"]),
            "max_cost": float(budget["max_cost"]) if budget["max_cost"] is not None else None,
            "skipped": budget["skipped"],
        },
    }


@extend_schema(
    operation_id="online_rules_list",
    summary="Online evaluation rules with today's budget use",
    parameters=[OpenApiParameter("prompt", str, description="Only this prompt's rules.")],
    responses={200: OpenApiTypes.OBJECT, **ERRORS},
)
@api_view(["GET"])
def online_rules(request: Request) -> Response:
    from apps.monitoring.models import OnlineEvalRule

    qs = OnlineEvalRule.objects.filter(project_id=request.auth.project_id).select_related("prompt")
    prompt = request.query_params.get("prompt", "")
    if prompt:
        qs = qs.filter(prompt__name=prompt[:100])
    return Response({"rules": [_online_rule(rule) for rule in qs[:200]]})


@extend_schema(
    operation_id="online_rule_get",
    summary="One online evaluation rule: evaluators' pass rates or means, calibration, recent evaluations",
    responses={200: OpenApiTypes.OBJECT, **ERRORS, 404: OpenApiResponse(s.ErrorSerializer)},
)
@api_view(["GET"])
def online_rule(request: Request, rule_id: int) -> Response:
    from apps.monitoring.calibration import rule_calibration
    from apps.monitoring.models import OnlineEvalRule

    rules = OnlineEvalRule.objects.filter(project_id=request.auth.project_id, pk=rule_id)
    rule = rules.select_related("prompt").first()
    if rule is None:
        raise ApiError(404, "online_rule_not_found", f"No online evaluation rule {rule_id} in this project.")
    summary = selectors.online_rule_summary(rule=rule)
    return Response(
        {
            **_online_rule(rule, summary=summary),
            "days": summary["days"],
            "outcomes": summary["outcomes"],
            "scores": summary["evaluators"],
            "calibration": rule_calibration(rule=rule),
            "recent": [
                {
                    "trace_id": e.trace_id,
                    "span_id": e.span_id,
                    "status": e.status,
                    "results": e.results,
                    "error": e.error or None,
                    "cost": float(e.cost) if e.cost is not None else None,
                    "created_at": e.created_at.isoformat(),
                    "finished_at": e.finished_at.isoformat() if e.finished_at else None,
                }
                for e in rule.evaluations.all()[:50]
            ],
        }
    )

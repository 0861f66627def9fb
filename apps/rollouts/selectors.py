"""Reads of canary releases: the arms' traffic from production traces, and the guardrails' verdicts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, FloatField, Q, QuerySet, Sum
from django.db.models.functions import Cast

from apps.rollouts import stats
from apps.rollouts.models import ACTIVE, Rollout
from apps.traces.models import Score, Trace, TraceStatus

# metric -> (label, sign: +1 when larger is worse, default mixing scale tau, tolerance unit)
METRICS: dict[str, tuple[str, int, float, str]] = {
    "error_rate": ("Error rate", 1, 0.02, "points (0.01 = 1 point)"),
    "feedback": ("Feedback (mean score)", -1, 0.1, "score"),
    "score": ("Online evaluator score", -1, 0.1, "score"),
    "latency_p95": ("Latency p95", 1, 0.03, "relative (0.2 = 20% slower)"),
    "cost": ("Cost per call", 1, 0.0, "relative (0.2 = 20% dearer)"),
}
MAX_LATENCIES = 50_000


@dataclass(frozen=True)
class Guardrail:
    metric: str
    label: str
    tolerance: float
    stable_value: float | None
    canary_value: float | None
    stable_n: int
    canary_n: int
    verdict: stats.Verdict

    def as_evidence(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "metric": self.metric,
            "stable": _finite(self.stable_value),
            "canary": _finite(self.canary_value),
            "stable_n": self.stable_n,
            "canary_n": self.canary_n,
            "difference": _finite(v.difference),
            "interval": [_finite(v.low), _finite(v.high)],
            "tolerance": v.tolerance,
            "boundary": _finite(v.boundary),
            "p_value": _finite(v.p_value),
            "harmful": v.harmful,
        }


def _finite(value: float | None) -> float | None:
    return round(value, 6) if value is not None and math.isfinite(value) else None


def active_for(*, project_id: int) -> QuerySet[Rollout]:
    return Rollout.objects.filter(project_id=project_id, status__in=ACTIVE)


def rollouts_of(*, project_id: int) -> QuerySet[Rollout]:
    return Rollout.objects.filter(project_id=project_id).select_related("prompt", "stable_version", "canary_version")


def running_ids() -> list[int]:
    return list(Rollout.objects.filter(status="running").values_list("pk", flat=True))


def arm_traces(rollout: Rollout, version_id: int) -> QuerySet[Trace]:
    return Trace.objects.filter(
        project_id=rollout.project_id,
        prompt_version_id=version_id,
        prompt_label=rollout.label_name,
        start_time__gte=rollout.started_at,
    )


def step_volume(rollout: Rollout) -> int:
    """Canary calls since the current step began."""
    return arm_traces(rollout, rollout.canary_version_id).filter(start_time__gte=rollout.step_started_at).count()


def guardrails(rollout: Rollout) -> list[Guardrail]:
    """Every guardrail of the plan, on all traffic since the canary started (alpha split between them)."""
    specs = rollout.guardrails or []
    alpha = rollout.alpha / max(len(specs), 1)
    arms = {
        "stable": arm_traces(rollout, rollout.stable_version_id),
        "canary": arm_traces(rollout, rollout.canary_version_id),
    }
    return [_guardrail(spec, arms, alpha) for spec in specs]


def _guardrail(spec: dict[str, Any], arms: dict[str, QuerySet[Trace]], alpha: float) -> Guardrail:
    metric = spec["metric"]
    label, sign, tau, _ = METRICS[metric]
    tolerance = float(spec.get("tolerance") or 0.0)
    values: dict[str, tuple[stats.ArmSample, float | None]] = {}
    if metric == "latency_p95":
        durations = {arm: sorted(qs.values_list("duration_ms", flat=True)[:MAX_LATENCIES]) for arm, qs in arms.items()}
        threshold = _quantile(durations["stable"], 0.95)
        slow_at = threshold * (1 + tolerance) if threshold is not None else math.inf
        for arm, series in durations.items():
            slow = sum(1 for d in series if d > slow_at)
            values[arm] = (stats.proportion(slow, len(series)), _quantile(series, 0.95))
        # Under no harm the canary's share above the stable p95 x (1 + tolerance) is at most the stable's.
        test_tolerance = 0.0
    elif metric == "error_rate":
        for arm, qs in arms.items():
            row = qs.aggregate(n=Count("id"), errors=Count("id", filter=Q(status=TraceStatus.ERROR)))
            sample = stats.proportion(row["errors"], row["n"])
            values[arm] = (sample, sample.mean if row["n"] else None)
        test_tolerance = tolerance
    elif metric == "feedback":
        for arm, qs in arms.items():
            row = qs.filter(feedback_count__gt=0).aggregate(
                n=Count("id"), total=Sum("feedback_mean"), squares=Sum(F("feedback_mean") * F("feedback_mean"))
            )
            sample = stats.moments(row["n"], row["total"] or 0.0, row["squares"] or 0.0)
            values[arm] = (sample, sample.mean if row["n"] else None)
        test_tolerance = tolerance
    elif metric == "score":
        name = spec.get("name") or ""
        for arm, qs in arms.items():
            scores = Score.objects.filter(name=name, value__isnull=False, trace_id__in=qs.values("trace_id"))
            row = scores.aggregate(n=Count("id"), total=Sum("value"), squares=Sum(F("value") * F("value")))
            sample = stats.moments(row["n"], row["total"] or 0.0, row["squares"] or 0.0)
            values[arm] = (sample, sample.mean if row["n"] else None)
        test_tolerance = tolerance
    else:  # cost
        for arm, qs in arms.items():
            cost = Cast("cost", FloatField())
            row = qs.filter(cost__isnull=False).aggregate(n=Count("id"), total=Sum(cost), squares=Sum(cost * cost))
            sample = stats.moments(row["n"], row["total"] or 0.0, row["squares"] or 0.0)
            values[arm] = (sample, sample.mean if row["n"] else None)
        base = values["stable"][0].mean
        test_tolerance = tolerance * base
        tau = max(0.1 * base, 1e-9)
    tau = float(spec.get("tau") or max(tau, test_tolerance))
    verdict = stats.verdict(
        stable=values["stable"][0],
        canary=values["canary"][0],
        tolerance=test_tolerance,
        tau=tau,
        alpha=alpha,
        sign=sign,
    )
    return Guardrail(
        metric=metric,
        label=label,
        tolerance=tolerance,
        stable_value=values["stable"][1],
        canary_value=values["canary"][1],
        stable_n=values["stable"][0].n,
        canary_n=values["canary"][0].n,
        verdict=verdict,
    )


def _quantile(series: list[float], q: float) -> float | None:
    if not series:
        return None
    return series[min(len(series) - 1, int(math.ceil(q * len(series))) - 1)]


def rollout_get(*, project_id: int, rollout_id: int) -> Rollout | None:
    return rollouts_of(project_id=project_id).filter(pk=rollout_id).first()


def rollout_document(rollout: Rollout) -> dict[str, Any]:
    """A canary as the REST API answers it: plan, state, the watcher's last evidence and the step history."""
    return {
        "id": rollout.pk,
        "prompt": rollout.prompt.name,
        "label": rollout.label_name,
        "stable_version": rollout.stable_version.number,
        "canary_version": rollout.canary_version.number,
        "status": rollout.status,
        "weight": rollout.weight if rollout.status != "rolled_back" else 0,
        "steps": list(rollout.steps),
        "step_index": rollout.step_index,
        "min_volume": rollout.min_volume,
        "min_minutes": rollout.min_minutes,
        "guardrails": list(rollout.guardrails),
        "alpha": rollout.alpha,
        "review": rollout.review_id,
        "started_at": rollout.started_at.isoformat(),
        "finished_at": rollout.finished_at.isoformat() if rollout.finished_at else None,
        "last_evidence": rollout.last_evidence or None,
        "events": [
            {
                "kind": e.kind,
                "from_weight": e.from_weight,
                "to_weight": e.to_weight,
                "automatic": e.automatic,
                "actor": e.actor_repr,
                "reason": e.reason,
                "at": e.created_at.isoformat(),
            }
            for e in rollout.events.all()
        ],
    }

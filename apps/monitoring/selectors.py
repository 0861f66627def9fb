"""The dashboard's reads: only rollups (never the raw spans), grouped per prompt version and hour or day."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F, Sum
from django.db.models.functions import Substr, TruncDay
from django.utils import timezone

from apps.core.times import as_utc
from apps.monitoring.models import (
    DailyLatencyRollup,
    DailyRollup,
    DailyScoreRollup,
    HourlyRollup,
    LatencyRollup,
    ScoreRollup,
)
from apps.monitoring.rollups import COST_UNIT, day_of, hour_of, percentile
from apps.ratings.stats import Z95

RANGES = {
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "3d": timedelta(days=3),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
DEFAULT_RANGE = "7d"
FEEDBACK_NAMES = ("thumbs", "rating", "feedback", "score")


class FilterProblem(Exception):
    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass
class MetricFilters:
    prompt: str = ""
    label: str = ""
    version: int | None = None
    model: str = ""
    range: str = DEFAULT_RANGE
    since: datetime | None = None
    until: datetime | None = None
    step: str = "hour"
    score: str = ""

    def as_query(self) -> dict[str, str]:
        query = {
            "prompt": self.prompt,
            "label": self.label,
            "version": str(self.version or ""),
            "model": self.model,
            "range": self.range,
            "step": self.step,
            "score": self.score,
        }
        return {k: v for k, v in query.items() if v}


def _parse_time(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FilterProblem(name, f"{name} must be an ISO 8601 time such as 2026-01-31T12:00, not {value!r}.") from None
    try:
        return as_utc(moment)
    except OverflowError:
        raise FilterProblem(name, f"{name} is before the year 1: {value[:40]!r}.") from None


def filters_from(params: Any, *, now: datetime | None = None) -> MetricFilters:
    """MetricFilters from query parameters; FilterProblem names the first bad one."""

    def get(name: str) -> str:
        value = params.get(name)
        return value.strip()[:200] if isinstance(value, str) else ""

    now = now or timezone.now()
    f = MetricFilters(prompt=get("prompt"), label=get("label"), model=get("model"), score=get("score"))
    if get("version"):
        if not get("version").isdigit() or not 1 <= int(get("version")) < 2**31:
            raise FilterProblem("version", f"version must be a positive whole number, not {get('version')!r}.")
        f.version = int(get("version"))
    f.range = get("range") or DEFAULT_RANGE
    if f.range not in RANGES and f.range != "custom":
        raise FilterProblem("range", f"range must be one of {', '.join(RANGES)} or custom, not {f.range!r}.")
    if get("since") or get("until") or f.range == "custom":
        f.range = "custom"
        f.until = _parse_time(get("until"), "until") if get("until") else now
        f.since = _parse_time(get("since"), "since") if get("since") else f.until - RANGES[DEFAULT_RANGE]
        if f.since >= f.until:
            raise FilterProblem("since", "since must be before until.")
        if f.until - f.since > timedelta(days=400):
            raise FilterProblem("since", "A range spans at most 400 days.")
    else:
        f.until = now
        f.since = now - RANGES[f.range]
    step = get("step") or ("hour" if f.until - f.since <= timedelta(days=3) else "day")
    if step not in ("hour", "day"):
        raise FilterProblem("step", f"step must be hour or day, not {step!r}.")
    f.step = step
    if f.version and not f.prompt:
        raise FilterProblem("version", "A version filter needs a prompt.")
    if f.label and not f.prompt:
        raise FilterProblem("label", "A label filter needs a prompt.")
    if not re.fullmatch(r"[\w.:\- ]*", f.score):
        raise FilterProblem("score", "score must be a score name.")
    return f


@dataclass
class Scope:
    """The rows a filter selects: prompt ids and version ids (None: any)."""

    prompt_ids: list[int] | None = None
    version_ids: list[int] | None = None
    names: dict[int, str] = field(default_factory=dict)  # version id -> "greet v2"


def scope_of(project_id: int, f: MetricFilters) -> Scope:
    from apps.prompts.models import Label, LabelMove, Prompt, PromptVersion

    scope = Scope()
    if f.prompt:
        prompt = Prompt.objects.filter(project_id=project_id, name=f.prompt).first()
        if prompt is None:
            raise FilterProblem("prompt", f"This project has no prompt named {f.prompt!r}.")
        scope.prompt_ids = [prompt.pk]
        if f.version:
            version = PromptVersion.objects.filter(prompt=prompt, number=f.version).first()
            if version is None:
                raise FilterProblem("version", f"{f.prompt} has no version {f.version}.")
            scope.version_ids = [version.pk]
        if f.label:
            current = Label.objects.filter(prompt=prompt, name=f.label).values_list("version_id", flat=True).first()
            moved = LabelMove.objects.filter(prompt=prompt, label_name=f.label).values_list("to_version_id", flat=True)
            ids = {v for v in [current, *moved] if v}
            if not ids:
                raise FilterProblem("label", f"{f.prompt} has no label {f.label!r}.")
            scope.version_ids = sorted(ids & set(scope.version_ids)) if scope.version_ids else sorted(ids)
    scope.names = {
        pk: f"{name} v{number}"
        for pk, name, number in PromptVersion.objects.filter(prompt__project_id=project_id).values_list(
            "pk", "prompt__name", "number"
        )
    }
    scope.names[0] = "no prompt version"
    return scope


def _scoped(qs, f: MetricFilters, scope: Scope):
    if scope.prompt_ids is not None:
        qs = qs.filter(prompt_id__in=scope.prompt_ids)
    if scope.version_ids is not None:
        qs = qs.filter(prompt_version_id__in=scope.version_ids)
    if f.model:
        qs = qs.filter(model=f.model)
    return qs


def _rows(hourly_model, daily_model, project_id: int, f: MetricFilters, scope: Scope) -> list:
    """The querysets that cover the range, each with its time bucket as `at`.

    Per hour: the hourly rows. Per day: the daily rows for the whole UTC days inside the range and the
    hourly rows of its ragged edges (the hours before its first midnight and after its last one), so the
    sums are the same as the hourly rows' and a month reads about 30 rows per version, model and bucket
    instead of 720.
    """
    start = hour_of(f.since)

    def hours(since: datetime, until: datetime):
        qs = hourly_model.objects.filter(project_id=project_id, hour__gte=since, hour__lt=until)
        return _scoped(qs, f, scope).annotate(at=_at(f.step))

    if f.step != "day":
        return [hours(start, f.until)]
    first_day = day_of(start)
    if first_day < start:
        first_day += timedelta(days=1)
    last_day = day_of(f.until)
    if first_day >= last_day:
        return [hours(start, f.until)]
    days = daily_model.objects.filter(project_id=project_id, day__gte=first_day, day__lt=last_day)
    parts = [_scoped(days, f, scope).annotate(at=F("day"))]
    if start < first_day:
        parts.append(hours(start, first_day))
    if last_day < f.until:
        parts.append(hours(last_day, f.until))
    return parts


def _at(step: str):
    """The time bucket in SQL: the rollup's hour, or its day (so a month per day reads 24 times fewer rows)."""
    if step != "day":
        return F("hour")
    if connection.vendor == "sqlite":  # Django's TruncDay is a Python function on SQLite: the text's date is native
        return Substr("hour", 1, 10)
    return TruncDay("hour", tzinfo=UTC)


def _bucket(hour: datetime | str, step: str) -> datetime:
    if isinstance(hour, str):
        return datetime.fromisoformat(hour).replace(tzinfo=UTC)
    hour = hour.astimezone(UTC)
    return hour.replace(hour=0) if step == "day" else hour


def _mean_interval(count: int, total: float, total_sq: float) -> dict[str, float | None]:
    """Mean with a normal 95% interval from the sums (a proportion for 0/1 scores reads the same)."""
    if not count:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = total / count
    if count < 2:
        return {"mean": mean, "low": None, "high": None, "n": count}
    variance = max(0.0, (total_sq - count * mean * mean) / (count - 1))
    half = Z95 * math.sqrt(variance / count)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": count}


def _figures(count, errors, latency_sum, tokens_in, tokens_out, cost_units, buckets) -> dict[str, Any]:
    return {
        "volume": count,
        "errors": errors,
        "error_rate": errors / count if count else None,
        "latency_mean": latency_sum / count if count else None,
        "p50": percentile(buckets, 0.5),
        "p95": percentile(buckets, 0.95),
        "p99": percentile(buckets, 0.99),
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cost": float(cost_units / COST_UNIT) if cost_units else 0.0,
        "cost_per_call": float(cost_units / COST_UNIT) / count if count else None,
    }


def metrics(*, project_id: int, f: MetricFilters) -> dict[str, Any]:
    """Totals, per version totals and per version time series of the filtered rollups, plus score means."""
    scope = scope_of(project_id, f)
    sums = ("count", "errors", "latency_ms_sum", "input_tokens", "output_tokens", "cost_units")
    series: dict[int, dict[datetime, list]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0.0, 0, 0, 0]))
    for part in _rows(HourlyRollup, DailyRollup, project_id, f, scope):
        for row in part.values("prompt_version_id", "at").annotate(**{f"s_{k}": Sum(k) for k in sums}):
            cell = series[row["prompt_version_id"]][_bucket(row["at"], f.step)]
            for i, k in enumerate(sums):
                cell[i] += row[f"s_{k}"] or 0
    lat: dict[int, dict[datetime, dict[int, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for part in _rows(LatencyRollup, DailyLatencyRollup, project_id, f, scope):
        for row in part.values("prompt_version_id", "at", "bucket").annotate(n=Sum("count")):
            lat[row["prompt_version_id"]][_bucket(row["at"], f.step)][row["bucket"]] += row["n"]
    scores: dict[str, dict[int, dict[datetime, list]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: [0, 0.0, 0.0]))
    )
    for part in _rows(ScoreRollup, DailyScoreRollup, project_id, f, scope):
        for row in part.values("name", "prompt_version_id", "at").annotate(
            n=Sum("count"), t=Sum("total"), t2=Sum("total_sq")
        ):
            cell = scores[row["name"]][row["prompt_version_id"]][_bucket(row["at"], f.step)]
            cell[0] += row["n"]
            cell[1] += row["t"]
            cell[2] += row["t2"]

    def merged(cells) -> list:
        out = [0, 0, 0.0, 0, 0, 0]
        for cell in cells:
            for i, v in enumerate(cell):
                out[i] += v
        return out

    def merged_buckets(histograms) -> dict[int, int]:
        out: dict[int, int] = defaultdict(int)
        for histogram in histograms:
            for b, n in histogram.items():
                out[b] += n
        return out

    versions = []
    for version_id in sorted(series, key=lambda v: scope.names.get(v, "")):
        points = []
        for moment in sorted(series[version_id]):
            points.append({"at": moment, **_figures(*series[version_id][moment], lat[version_id][moment])})
        total = _figures(*merged(series[version_id].values()), merged_buckets(lat[version_id].values()))
        versions.append(
            {
                "version_id": version_id,
                "name": scope.names.get(version_id, f"version {version_id}"),
                "points": points,
                "total": total,
            }
        )
    overall = _figures(
        *merged(c for v in series.values() for c in v.values()),
        merged_buckets(h for v in lat.values() for h in v.values()),
    )
    score_rows = []
    for name in sorted(scores):
        per_version = []
        for version_id in sorted(scores[name], key=lambda v: scope.names.get(v, "")):
            cells = scores[name][version_id]
            points = [{"at": m, **_mean_interval(*cells[m])} for m in sorted(cells)]
            total = [sum(c[i] for c in cells.values()) for i in range(3)]
            per_version.append(
                {
                    "version_id": version_id,
                    "name": scope.names.get(version_id, ""),
                    "points": points,
                    "total": _mean_interval(*total),
                }
            )
        all_cells = [c for v in scores[name].values() for c in v.values()]
        score_rows.append(
            {
                "name": name,
                "versions": per_version,
                "total": _mean_interval(*[sum(c[i] for c in all_cells) for i in range(3)]),
            }
        )
    return {"overall": overall, "versions": versions, "scores": score_rows, "scope": scope}


def label_moves(*, project_id: int, f: MetricFilters, scope: Scope) -> list[dict[str, Any]]:
    """The label moves inside the range (of the filtered prompt, or of every prompt), oldest first."""
    from apps.prompts.models import LabelMove

    qs = LabelMove.objects.filter(prompt__project_id=project_id, created_at__gte=f.since, created_at__lt=f.until)
    if scope.prompt_ids is not None:
        qs = qs.filter(prompt_id__in=scope.prompt_ids)
    if f.label:
        qs = qs.filter(label_name=f.label)
    return [
        {
            "id": m.pk,
            "at": m.created_at,
            "prompt": m.prompt.name,
            "label": m.label_name,
            "action": m.action,
            "from": m.from_version.number if m.from_version else None,
            "to": m.to_version.number if m.to_version else None,
            "actor": m.actor_repr,
        }
        for m in qs.select_related("prompt", "from_version", "to_version").order_by("created_at")[:200]
    ]


def filter_choices(*, project_id: int) -> dict[str, list]:
    from apps.prompts.models import Label, Prompt

    return {
        "prompts": list(Prompt.objects.filter(project_id=project_id).order_by("name").values_list("name", flat=True)),
        "labels": sorted(set(Label.objects.filter(prompt__project_id=project_id).values_list("name", flat=True))),
        "models": sorted(
            DailyRollup.objects.filter(project_id=project_id)
            .exclude(model="")
            .values_list("model", flat=True)
            .distinct()
            .order_by()
        ),
        "ranges": list(RANGES),
    }


def health(*, project_id: int, now: datetime | None = None) -> dict[str, Any]:
    """The last 24 hours against the 24 before, for the landing page."""
    now = now or timezone.now()
    current = metrics(project_id=project_id, f=MetricFilters(range="24h", since=now - timedelta(hours=24), until=now))
    before = metrics(
        project_id=project_id,
        f=MetricFilters(range="custom", since=now - timedelta(hours=48), until=now - timedelta(hours=24)),
    )
    return {"current": current["overall"], "before": before["overall"], "scores": current["scores"]}


# --- online evaluation ---------------------------------------------------------------------------------


def online_rules(*, project_id: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each online evaluation rule with today's budget use and its last 24 hours' outcomes."""
    from django.db.models import Count

    from apps.monitoring.models import OnlineEvalBudget, OnlineEvalRule, OnlineEvaluation
    from apps.monitoring.online import budget_day

    now = now or timezone.now()
    rules = list(OnlineEvalRule.objects.filter(project_id=project_id).select_related("prompt"))
    budgets = {
        b.rule_id: b for b in OnlineEvalBudget.objects.filter(rule__in=rules, day=budget_day(now)).select_related()
    }
    outcomes: dict[int, dict[str, int]] = defaultdict(dict)
    for row in (
        OnlineEvaluation.objects.filter(rule__in=rules, created_at__gte=now - timedelta(hours=24))
        .values("rule_id", "status")
        .annotate(n=Count("id"))
    ):
        outcomes[row["rule_id"]][row["status"]] = row["n"]
    return [
        {
            "rule": rule,
            "budget": budgets.get(rule.pk),
            "spent": float(budgets[rule.pk].cost_units / COST_UNIT) if rule.pk in budgets else 0.0,
            "outcomes": outcomes.get(rule.pk, {}),
        }
        for rule in rules
    ]


def online_rule_summary(*, rule, days: int = 7, now: datetime | None = None) -> dict[str, Any]:
    """A rule's budget today, its outcomes, and each evaluator's mean (a pass rate for pass/fail evaluators)
    with a 95% interval over the last `days`, from the score rollups."""
    from django.db.models import Count

    from apps.monitoring.models import OnlineEvaluation
    from apps.monitoring.online import MODEL_KINDS, budget_today

    now = now or timezone.now()
    since = now - timedelta(days=days)
    outcomes = dict(
        OnlineEvaluation.objects.filter(rule=rule, created_at__gte=since)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    sums = {
        row["name"]: row
        for row in ScoreRollup.objects.filter(
            project_id=rule.project_id, prompt_id=rule.prompt_id, hour__gte=hour_of(since),
            name__in=[rule.score_name(e["name"]) for e in rule.evaluators],
        )
        .values("name")
        .annotate(n=Sum("count"), t=Sum("total"), t2=Sum("total_sq"))
    }  # fmt: skip
    evaluators = []
    for spec in rule.evaluators:
        name = rule.score_name(spec["name"])
        row = sums.get(name)
        figures = _mean_interval(row["n"], row["t"], row["t2"]) if row else _mean_interval(0, 0.0, 0.0)
        evaluators.append(
            {
                "name": spec["name"],
                "score_name": name,
                "kind": spec["kind"],
                "measure": "mean score (0..1)" if spec["kind"] in MODEL_KINDS else "pass rate",
                **figures,
            }
        )
    return {"budget": budget_today(rule, now=now), "outcomes": outcomes, "evaluators": evaluators, "days": days}


def online_score_names(*, project_id: int) -> set[str]:
    """The score names online evaluation writes in this project (the dashboard shows them apart from feedback)."""
    from apps.monitoring.models import OnlineEvalRule

    names = set()
    for rule_name, specs in OnlineEvalRule.objects.filter(project_id=project_id).values_list("name", "evaluators"):
        for spec in specs or []:
            if isinstance(spec, dict) and spec.get("name"):
                names.add(f"{rule_name}.{spec['name']}")
    return names

"""How far to trust an online evaluator: its pass/fail against the people's feedback on the same generations.

The people's side is the rule's human score (feedback sent to the traces API, e.g. `thumbs` or `rating`; when
the rule names none, the first of the usual feedback names found), on the generation's span or on its whole
trace; a generation passes for the people when the mean of their values is at least the rule's
`human_pass_at`. The evaluator's side is its `passed` (the judge's `pass_at`). Ratings in apps/ratings rate
experiment cells, never production generations, so they cannot be paired with online scores.

Agreement is Cohen's kappa of the two pass/fail columns (apps.ratings.stats.cohen_kappa) with a 95% percentile
bootstrap interval over the generations (2,000 resamples, seeded: the same data gives the same interval).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from apps.monitoring.models import OnlineEvalRule, OnlineEvalStatus, OnlineEvaluation
from apps.ratings.stats import cohen_kappa
from apps.traces.models import Score

FEEDBACK_NAMES = ("thumbs", "rating", "feedback", "score")
RESAMPLES = 2000
MAX_PAIRS = 20_000


def kappa_interval(
    first: list[bool], second: list[bool], *, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float | None, float | None]:
    """95% percentile bootstrap interval of Cohen's kappa for two pass/fail columns (None when undefined)."""
    import numpy as np

    n = len(first)
    if n < 2:
        return None, None
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    rng = np.random.default_rng(seed)
    kappas = []
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        x, y = a[idx], b[idx]
        observed = (x == y).mean(axis=1)
        px, py = x.mean(axis=1), y.mean(axis=1)
        expected = px * py + (1 - px) * (1 - py)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(expected < 1, (observed - expected) / (1 - expected), np.where(observed == 1, 1.0, np.nan))
        kappas.append(k)
    values = np.concatenate(kappas)
    values = values[~np.isnan(values)]
    if not len(values):
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def trust(kappa: float | None, low: float | None, n: int, pass_rate: float | None = None) -> str:
    if kappa is None or n < 10:
        return "too few generations rated by both to tell"
    if pass_rate in (0.0, 1.0):
        return f"it {'passed' if pass_rate else 'failed'} every one of them: kappa cannot tell how far to trust it"
    if low is not None and low >= 0.6:
        return "agrees with people well"
    if kappa >= 0.6:
        return "agrees with people well on these, but the interval is wide: collect more feedback"
    if kappa >= 0.4:
        return "agrees with people moderately"
    return "does not agree with people: do not rely on it alone"


def _human_name(rule: OnlineEvalRule) -> str | None:
    if rule.human_score_name:
        return rule.human_score_name
    names = set(
        Score.objects.filter(project_id=rule.project_id, name__in=FEEDBACK_NAMES)
        .exclude(source="online")
        .values_list("name", flat=True)[:100]
    )
    return next((n for n in FEEDBACK_NAMES if n in names), None)


def rule_calibration(*, rule: OnlineEvalRule) -> dict[str, Any]:
    """Per evaluator of the rule: the generations both scored, raw agreement, kappa with its interval, a verdict."""
    human_name = _human_name(rule)
    evaluations = list(
        OnlineEvaluation.objects.filter(rule=rule, status__in=[OnlineEvalStatus.DONE, OnlineEvalStatus.ERROR])
        .order_by("-id")
        .values_list("trace_id", "span_id", "results")[:MAX_PAIRS]
    )
    result: dict[str, Any] = {"human_score": human_name, "pass_at": rule.human_pass_at, "evaluators": []}
    if human_name is None or not evaluations:
        return result
    people: dict[tuple[str, str], list[float]] = defaultdict(list)
    trace_ids = sorted({e[0] for e in evaluations})
    spans_of: dict[str, set[str]] = defaultdict(set)
    for trace_id, span_id, _ in evaluations:
        spans_of[trace_id].add(span_id)
    for start in range(0, len(trace_ids), 500):
        for trace_id, span_id, value in (
            Score.objects.filter(
                project_id=rule.project_id, trace_id__in=trace_ids[start : start + 500], name=human_name,
                value__isnull=False,
            )
            .exclude(source="online")
            .values_list("trace_id", "span_id", "value")
        ):  # fmt: skip
            for generation in [span_id] if span_id else spans_of[trace_id]:
                people[(trace_id, generation)].append(value)
    for spec in rule.evaluators:
        machine, human = [], []
        for trace_id, span_id, results in evaluations:
            found = next((r for r in results if r.get("evaluator") == spec["name"] and "passed" in r), None)
            values = people.get((trace_id, span_id))
            if found is None or not values:
                continue
            machine.append(bool(found["passed"]))
            human.append(sum(values) / len(values) >= rule.human_pass_at)
        n = len(machine)
        kappa = cohen_kappa(machine, human) if n else None
        low, high = kappa_interval(machine, human) if n else (None, None)
        agree = sum(1 for a, b in zip(machine, human, strict=True) if a == b)
        result["evaluators"].append(
            {
                "evaluator": spec["name"],
                "kind": spec["kind"],
                "n": n,
                "agreement": agree / n if n else None,
                "kappa": kappa,
                "low": low,
                "high": high,
                "judge_pass_rate": sum(machine) / n if n else None,
                "human_pass_rate": sum(human) / n if n else None,
                "trust": trust(kappa, low, n, sum(machine) / n if n else None),
            }
        )
    return result

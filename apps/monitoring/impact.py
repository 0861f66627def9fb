"""A release's impact: the label's version before a move against the version after, over equal windows.

The guardrail metrics with the tests the experiments use: the error rate and
each 0/1 feedback score as proportions (Wilson intervals, chi-square or Fisher
p-value, the difference in points), latency with the Mann-Whitney U test (the
medians and the mean with a normal interval) and cost per call and numeric
feedback with Welch's t-test (means with normal 95% intervals).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta
from typing import Any

from apps.ratings.stats import Z95, wilson
from apps.traces.models import Score, Span

MAX_ROWS = 20_000


def _rows(version_id, start, end) -> list[dict[str, Any]]:
    if version_id is None:
        return []
    return list(
        Span.objects.filter(
            kind="generation", prompt_version_id=version_id, start_time__gte=start, start_time__lt=end
        ).values("project_id", "trace_id", "span_id", "duration_ms", "status", "cost")[:MAX_ROWS]
    )


def _scores(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    if not rows:
        return {}
    by_trace: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_trace[row["trace_id"]].append(row["span_id"])
    found: dict[str, list[float]] = defaultdict(list)
    ids = list(by_trace)
    for start in range(0, len(ids), 500):
        for trace_id, span_id, name, value in Score.objects.filter(
            project_id=rows[0]["project_id"], trace_id__in=ids[start : start + 500], value__isnull=False
        ).values_list("trace_id", "span_id", "name", "value"):
            for gen_span in by_trace[trace_id]:
                if not span_id or span_id == gen_span:
                    found[name].append(value)
    return found


def _mean_interval(values: list[float]) -> dict[str, Any]:
    n = len(values)
    if not n:
        return {"estimate": None, "low": None, "high": None, "n": 0}
    mean = sum(values) / n
    if n < 2:
        return {"estimate": mean, "low": None, "high": None, "n": n}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return {"estimate": mean, "low": mean - Z95 * sd / math.sqrt(n), "high": mean + Z95 * sd / math.sqrt(n), "n": n}


def _proportion(name: str, before: list[bool], after: list[bool], *, higher_is_worse: bool) -> dict[str, Any] | None:
    from scipy.stats import chi2_contingency, fisher_exact

    if not before or not after:
        return None
    a, b = sum(before), sum(after)
    table = [[a, len(before) - a], [b, len(after) - b]]
    if a + b in (0, len(before) + len(after)):
        p = 1.0
    elif min(a + b, len(before) + len(after) - a - b) * min(len(before), len(after)) / (len(before) + len(after)) < 5:
        p = float(fisher_exact(table)[1])
    else:
        p = float(chi2_contingency(table, correction=False)[1])
    return {"metric": name, "kind": "proportion", "before": wilson(a, len(before)).as_dict(),
            "after": wilson(b, len(after)).as_dict(), "effect": b / len(after) - a / len(before),
            "effect_name": "difference", "p": p, "higher_is_worse": higher_is_worse}  # fmt: skip


def _means(name: str, before: list[float], after: list[float], *, test: str, higher_is_worse: bool):
    from scipy.stats import mannwhitneyu, ttest_ind

    if len(before) < 2 or len(after) < 2:
        return None
    if test == "mann-whitney":
        p = float(mannwhitneyu(before, after, alternative="two-sided").pvalue)
    else:
        p = float(ttest_ind(before, after, equal_var=False).pvalue)
        p = 1.0 if math.isnan(p) else p
    b, a = _mean_interval(before), _mean_interval(after)
    return {"metric": name, "kind": "mean", "test": test, "before": b, "after": a,
            "effect": a["estimate"] - b["estimate"], "effect_name": "difference of means", "p": p,
            "higher_is_worse": higher_is_worse}  # fmt: skip


def compare(*, move, hours: int = 24) -> dict[str, Any]:
    at = move.created_at
    before = _rows(move.from_version_id, at - timedelta(hours=hours), at)
    after = _rows(move.to_version_id, at, at + timedelta(hours=hours))
    results = [
        _proportion("Error rate", [r["status"] == "error" for r in before], [r["status"] == "error" for r in after],
                    higher_is_worse=True),
        _means("Latency (ms)", [r["duration_ms"] for r in before], [r["duration_ms"] for r in after],
               test="mann-whitney", higher_is_worse=True),
        _means("Cost per call ($)", [float(r["cost"]) for r in before if r["cost"] is not None],
               [float(r["cost"]) for r in after if r["cost"] is not None], test="welch", higher_is_worse=True),
    ]  # fmt: skip
    scores_before, scores_after = _scores(before), _scores(after)
    for name in sorted(set(scores_before) | set(scores_after)):
        b, a = scores_before.get(name, []), scores_after.get(name, [])
        if set(b + a) <= {0.0, 1.0}:
            results.append(_proportion(f"{name} (share positive)", [v == 1.0 for v in b], [v == 1.0 for v in a],
                                       higher_is_worse=False))  # fmt: skip
        else:
            results.append(_means(f"{name} (mean)", b, a, test="welch", higher_is_worse=False))
    rows = [r for r in results if r is not None]
    for r in rows:
        worse = r["effect"] > 0 if r["higher_is_worse"] else r["effect"] < 0
        r["verdict"] = ("worse" if worse else "better") if r["p"] < 0.05 else "no clear change"
    return {"before_n": len(before), "after_n": len(after), "rows": rows, "hours": hours}

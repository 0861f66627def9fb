"""A candidate against a baseline on an automatic evaluator's scores: the CI gate's win rate.

Humans' win rates come from blind pairwise judgements (`selectors.experiment_rating_summary`).
A CI run has no people, so the gate compares the evaluator's scores row by row
instead: on each dataset row (repeats averaged) the candidate wins when it scores
higher than the baseline, loses when lower, ties when equal. The win rate counts
ties as halves with a Wilson interval, and p is the exact two-sided sign test on
the decisive rows: the same statistics as the human win rate.
"""

from __future__ import annotations

from typing import Any

from apps.experiments.models import Experiment, Score
from apps.ratings import stats

EPSILON = 1e-9


class ScorePairError(ValueError):
    """A variant or evaluator the experiment does not have; the message names it."""


def score_pair(
    *, experiment: Experiment, candidate: str, baseline: str, evaluator: str | None = None
) -> dict[str, Any]:
    names = set(experiment.variants.values_list("name", flat=True))
    for role, name in (("candidate", candidate), ("baseline", baseline)):
        if name not in names:
            raise ScorePairError(f"The experiment has no variant '{name}' ({role}); it has {', '.join(sorted(names))}.")
    if candidate == baseline:
        raise ScorePairError("The candidate and the baseline must be two different variants.")
    evaluators = list(experiment.evaluators.order_by("pk").values_list("name", flat=True))
    if not evaluators:
        raise ScorePairError("The experiment has no evaluator to compare the variants on.")
    evaluator = evaluator or evaluators[0]
    if evaluator not in evaluators:
        raise ScorePairError(f"The experiment has no evaluator '{evaluator}'; it has {', '.join(evaluators)}.")
    per_variant: dict[str, list[tuple[int, float]]] = {candidate: [], baseline: []}
    for variant, position, value in Score.objects.filter(
        cell__experiment=experiment,
        cell__variant__name__in=[candidate, baseline],
        evaluator__name=evaluator,
        error="",
        value__isnull=False,
    ).values_list("cell__variant__name", "cell__position", "value"):
        per_variant[variant].append((position, value))
    ours = stats.average_repeats(per_variant[candidate])
    theirs = stats.average_repeats(per_variant[baseline])
    rows = sorted(set(ours) & set(theirs))
    wins = sum(1 for row in rows if ours[row] > theirs[row] + EPSILON)
    losses = sum(1 for row in rows if ours[row] < theirs[row] - EPSILON)
    pair = stats.pair_result(candidate, baseline, wins=wins, losses=losses, ties=len(rows) - wins - losses)
    return {
        **pair.as_dict(),
        "evaluator": evaluator,
        "candidate_mean": sum(ours[row] for row in rows) / len(rows) if rows else None,
        "baseline_mean": sum(theirs[row] for row in rows) / len(rows) if rows else None,
        "verdict": _verdict(pair, evaluator),
        "method": "per dataset row (repeats averaged), the candidate's score against the baseline's: "
        "(wins + ties/2) / rows with a Wilson 95% interval; p_value: two-sided exact sign test on decisive rows",
    }


def _verdict(pair: stats.PairResult, evaluator: str) -> str:
    if pair.n == 0:
        return f"No row has a '{evaluator}' score for both variants yet."
    p = "p < 0.001" if pair.p_value is not None and pair.p_value < 0.001 else f"p = {pair.p_value:.3f}"
    return (
        f"{pair.variant} scores higher than {pair.against} on '{evaluator}' in {pair.wins} of {pair.n} rows, "
        f"lower in {pair.losses}, equal in {pair.ties}: win rate {pair.win_rate * 100:.0f}% "
        f"(95% CI {pair.ci_low * 100:.0f}-{pair.ci_high * 100:.0f}%, {p})."
    )

"""The rating summary of an experiment: win rates with confidence intervals, mean ratings, rater agreement,
how well each LLM judge agrees with the raters, and paired tests of evaluator scores.

`experiment_rating_summary` is the one place the numbers are computed; the studio's JSON view, the
statistics page, the review evidence and the REST API all call it.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from typing import Any

from django.db.models import Count, Q

from apps.experiments.models import EvaluatorConfig, Experiment, Score
from apps.ratings import stats
from apps.ratings.models import Choice, PairwiseJudgement, Rating


def _outcome_of_high(judgement: PairwiseJudgement, left_variant: str, low: str) -> float:
    """1 when the pair's later-named variant won, 0 when it lost, 0.5 for a tie."""
    if judgement.choice == Choice.TIE:
        return 0.5
    left_won = judgement.choice == Choice.LEFT
    high_on_left = left_variant != low
    return 1.0 if left_won == high_on_left else 0.0


def _judgement_rows(experiment: Experiment) -> list[dict[str, Any]]:
    rows = []
    for j in PairwiseJudgement.objects.filter(experiment=experiment).select_related(
        "left_cell__variant", "right_cell__variant"
    ):
        left, right = j.left_cell.variant.name, j.right_cell.variant.name
        low, high = sorted((left, right))
        rows.append(
            {
                "position": j.position,
                "rater": j.rater_id,
                "low": low,
                "high": high,
                "high_score": _outcome_of_high(j, left, low),
            }
        )
    return rows


def _human_scale(definition: dict) -> tuple[int, int] | None:
    scale = definition.get("scale")
    return (scale["min"], scale["max"]) if scale else None


def experiment_rating_summary(*, experiment: Experiment, focus: tuple[str, str] | None = None) -> dict[str, Any]:
    """The numbers of an experiment's human ratings and judgements, as a plain dict (the API returns it as is).

    - variants: per variant `mean_rating` with a 95% bootstrap CI (`ci_low`, `ci_high`) and `n` ratings,
      the thumbs-up rate and each evaluator's pass rate with Wilson intervals, Bradley-Terry `strength`;
    - pairs: per pair of judged variants, `variant` against `against`: `win_rate` (ties as halves) with a
      Wilson 95% CI, the sign test's `p_value`, `wins`, `losses`, `ties`, `n`, `raters`;
    - agreement: between raters on the same pairs (or ratings), with its `method`;
    - judge_agreement: each LLM-judge evaluator against the human ratings of the same cells;
    - paired_scores: Wilcoxon signed-rank on automatic scores per item (repeats averaged);
    - verdict: one sentence on `focus` (candidate, baseline) or the most judged pair.
    """
    from apps.ratings.services import form_definition

    variants = list(experiment.variants.order_by("name"))
    names = [v.name for v in variants]
    definition = form_definition(experiment)
    ratings = list(
        Rating.objects.filter(cell__experiment=experiment).values(
            "cell_id", "cell__variant__name", "rater_id", "score", "thumb_up"
        )
    )
    scores_by_variant: dict[str, list[int]] = defaultdict(list)
    thumbs: dict[str, list[bool]] = defaultdict(list)
    distribution: dict[str, Counter] = defaultdict(Counter)
    for r in ratings:
        if r["score"] is not None:
            scores_by_variant[r["cell__variant__name"]].append(r["score"])
            distribution[r["cell__variant__name"]][r["score"]] += 1
        if r["thumb_up"] is not None:
            thumbs[r["cell__variant__name"]].append(r["thumb_up"])
    evaluators = list(EvaluatorConfig.objects.filter(experiment=experiment))
    pass_counts = {
        (row["cell__variant__name"], row["evaluator__name"]): row
        for row in Score.objects.filter(cell__experiment=experiment, error="")
        .values("cell__variant__name", "evaluator__name")
        .annotate(n=Count("pk"), passed=Count("pk", filter=Q(passed=True)))
    }

    judgements = _judgement_rows(experiment)
    strengths: dict[str, float] = {}
    judged_variants = {j["low"] for j in judgements} | {j["high"] for j in judgements}
    if len(judged_variants) > 2:
        strengths = stats.bradley_terry([(j["high"], j["low"], j["high_score"]) for j in judgements], prior=0.01)

    variant_rows = []
    for name in names:
        interval = stats.bootstrap_mean(scores_by_variant[name])
        thumb = stats.wilson(sum(thumbs[name]), len(thumbs[name]))
        pass_rates = []
        for evaluator in evaluators:
            row = pass_counts.get((name, evaluator.name), {"n": 0, "passed": 0})
            rate = stats.wilson(row["passed"], row["n"])
            pass_rates.append(
                {
                    "evaluator": evaluator.name,
                    "rate": rate.estimate,
                    "ci_low": rate.low,
                    "ci_high": rate.high,
                    "n": rate.n,
                }
            )
        variant_rows.append(
            {
                "name": name,
                "mean_rating": interval.estimate,
                "ci_low": interval.low,
                "ci_high": interval.high,
                "n": interval.n,
                "distribution": {str(k): v for k, v in sorted(distribution[name].items())},
                "thumbs_up": {"rate": thumb.estimate, "ci_low": thumb.low, "ci_high": thumb.high, "n": thumb.n},
                "pass_rates": pass_rates,
                "strength": strengths.get(name),
            }
        )

    pairs = []
    by_pair: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for j in judgements:
        by_pair[(j["low"], j["high"])].append(j)
    for (low, high), rows in sorted(by_pair.items()):
        wins = sum(1 for j in rows if j["high_score"] == 1.0)
        losses = sum(1 for j in rows if j["high_score"] == 0.0)
        ties = len(rows) - wins - losses
        pairs.append(
            stats.pair_result(high, low, wins=wins, losses=losses, ties=ties, raters=len({j["rater"] for j in rows}))
        )

    pair_units: dict[tuple, dict[int, float]] = defaultdict(dict)
    for j in judgements:
        pair_units[(j["position"], j["low"], j["high"])][j["rater"]] = j["high_score"]
    agreement = stats.agreement(pair_units, level="ordinal")
    rating_units: dict[int, dict[int, int]] = defaultdict(dict)
    for r in ratings:
        if r["score"] is not None:
            rating_units[r["cell_id"]][r["rater_id"]] = r["score"]
    rating_agreement = stats.agreement(rating_units, level="ordinal")

    focus_pair = None
    if focus is not None:
        candidate, baseline = focus
        for pair in pairs:
            if {pair.variant, pair.against} == {candidate, baseline}:
                focus_pair = pair if pair.variant == candidate else _flip(pair)
    elif pairs:
        focus_pair = max(pairs, key=lambda p: p.n)
    main_agreement = agreement or rating_agreement

    return {
        "experiment": {"id": experiment.pk, "name": experiment.name, "status": experiment.status},
        "variants": variant_rows,
        "pairs": [p.as_dict() for p in pairs],
        "agreement": main_agreement.as_dict() if main_agreement else None,
        "rating_agreement": rating_agreement.as_dict() if rating_agreement else None,
        "judge_agreement": _judge_agreement(experiment, evaluators, ratings, definition),
        "paired_scores": _paired_scores(experiment, evaluators, names),
        "ranking": [{"name": k, "strength": v} for k, v in strengths.items()],
        "judgements": len(judgements),
        "ratings": len(ratings),
        "raters": len({j["rater"] for j in judgements} | {r["rater_id"] for r in ratings}),
        "focus": focus_pair.as_dict() if focus_pair else None,
        "verdict": stats.verdict(focus_pair, main_agreement),
        "method": {
            "mean_rating": "mean of the 1..N scale with a 95% percentile bootstrap interval (5000 resamples, seed 0)",
            "win_rate": "(wins + ties/2) / judgements, Wilson 95% interval; p_value: two-sided exact sign test on "
            "decisive judgements (ties reported apart)",
            "agreement": "Cohen's kappa for two raters, Krippendorff's alpha (ordinal) for more",
        },
    }


def _flip(pair: stats.PairResult) -> stats.PairResult:
    return stats.pair_result(
        pair.against, pair.variant, wins=pair.losses, losses=pair.wins, ties=pair.ties, raters=pair.raters
    )


def _judge_agreement(experiment, evaluators, ratings, definition) -> list[dict[str, Any]]:
    """Each LLM judge against the people on the same cells: rank correlation, and pass/fail agreement (kappa)."""
    judges = [e for e in evaluators if e.kind == "llm_judge"]
    if not judges or not ratings:
        return []
    scale = _human_scale(definition)
    human: dict[int, list[float]] = defaultdict(list)
    human_pass: dict[int, list[bool]] = defaultdict(list)
    for r in ratings:
        if r["score"] is not None and scale:
            low, high = scale
            human[r["cell_id"]].append((r["score"] - low) / (high - low))
            human_pass[r["cell_id"]].append(r["score"] >= low + 0.75 * (high - low))
        elif r["thumb_up"] is not None:
            human[r["cell_id"]].append(1.0 if r["thumb_up"] else 0.0)
            human_pass[r["cell_id"]].append(r["thumb_up"])
    found = []
    for judge in judges:
        scores = {
            cell_id: (value, passed)
            for cell_id, value, passed in Score.objects.filter(
                evaluator=judge, error="", cell_id__in=list(human)
            ).values_list("cell_id", "value", "passed")
            if value is not None
        }
        cells = sorted(scores)
        judge_values = [scores[c][0] for c in cells]
        human_values = [sum(human[c]) / len(human[c]) for c in cells]
        rho, p_value, n = stats.spearman(judge_values, human_values)
        judge_pass = [bool(scores[c][1]) for c in cells]
        people_pass = [sum(human_pass[c]) * 2 >= len(human_pass[c]) for c in cells]
        interval = stats.cohen_kappa_interval(judge_pass, people_pass) if cells else None
        kappa = interval.estimate if interval else None
        agree = sum(1 for a, b in zip(judge_pass, people_pass, strict=True) if a == b)
        found.append(
            {
                "evaluator": judge.name,
                "n": n,
                "spearman": rho,
                "spearman_p_value": p_value,
                "pass_agreement": agree / n if n else None,
                "kappa": kappa,
                "kappa_low": interval.low if interval else None,
                "kappa_high": interval.high if interval else None,
                "trust": _trust(kappa, n),
            }
        )
    return found


def judge_agreement(*, experiment: Experiment) -> list[dict[str, Any]]:
    """Each LLM judge of the experiment against the human ratings of the same cells (see _judge_agreement)."""
    from apps.ratings.services import form_definition

    evaluators = list(experiment.evaluators.filter(kind="llm_judge"))
    if not evaluators:
        return []
    ratings = list(Rating.objects.filter(cell__experiment=experiment).values("cell_id", "score", "thumb_up"))
    return _judge_agreement(experiment, evaluators, ratings, form_definition(experiment))


def _trust(kappa: float | None, n: int) -> str:
    if kappa is None or n < 10:
        return "too few cells rated by both to tell"
    if kappa >= 0.6:
        return "agrees with people well"
    if kappa >= 0.4:
        return "agrees with people moderately"
    return "does not agree with people: do not rely on it alone"


def _paired_scores(experiment, evaluators, names) -> list[dict[str, Any]]:
    per: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for variant, evaluator, position, value in Score.objects.filter(
        cell__experiment=experiment, error="", value__isnull=False
    ).values_list("cell__variant__name", "evaluator__name", "cell__position", "value"):
        per[(evaluator, variant)].append((position, value))
    found = []
    for evaluator in evaluators:
        for low, high in itertools.combinations(names, 2):
            a = stats.average_repeats(per[(evaluator.name, low)])
            b = stats.average_repeats(per[(evaluator.name, high)])
            if not a or not b:
                continue
            test = stats.wilcoxon_paired(a, b)
            found.append({"evaluator": evaluator.name, "variant": high, "against": low, **test.as_dict()})
    return found


def judge_score_notes(*, experiment: Experiment) -> dict[str, str]:
    """The experiment page's note next to each LLM judge's scores: its agreement with people, where both exist."""
    notes = {}
    for row in judge_agreement(experiment=experiment):
        if row["kappa"] is None:
            continue
        notes[row["evaluator"]] = (
            f"agreement with people: κ {row['kappa']:.2f} (95% CI {row['kappa_low']:.2f} to {row['kappa_high']:.2f}, "
            f"{row['n']} cells rated by both): {row['trust']}"
        )
    return notes

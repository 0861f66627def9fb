"""What ratings contributes to a review page: the linked experiments' verdicts, charts and the policy's thresholds.

`collect` is registered with `apps.reviews.evidence`, `release_checks` with
`apps.reviews.release_checks`; the reviews app imports nothing from here.

Thresholds live in the release policy's `evidence_rules` (edited on the ratings
thresholds page), for example::

    {"required": true, "min_win_rate": 0.5, "max_p_value": 0.05,
     "min_mean_rating": 4.0, "min_ratings": 30, "min_pass_rate": 0.95, "pass_rate_evaluator": "exact"}

Each rule is met when at least one linked experiment meets it for the review's
candidate variant (against its baseline, for the win rate). A first release (the
label points at no version yet) has nothing to beat: the win-rate rule does not
apply to it, and the other thresholds do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse

from apps.reviews.evidence import EvidenceItem
from apps.reviews.release_checks import CheckResult


@dataclass
class RuleOutcome:
    title: str
    met: bool
    detail: str


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _p(value: float | None) -> str:
    if value is None:
        return "p —"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


FIRST_RELEASE = "first release: there is no current version to beat, so this rule does not apply"


def evaluate_rules(
    rules: dict[str, Any], link, summary: dict[str, Any], *, first_release: bool = False
) -> list[RuleOutcome]:
    """Each threshold of `rules` measured on one linked experiment's summary."""
    outcomes: list[RuleOutcome] = []
    candidate = link.candidate.name
    baseline = link.baseline.name if link.baseline else None
    variant = next((v for v in summary["variants"] if v["name"] == candidate), None)
    if "min_win_rate" in rules or "max_p_value" in rules:
        min_rate = rules.get("min_win_rate", 0.5)
        max_p = rules.get("max_p_value")
        title = f"win rate against the current version >= {min_rate:.0%}" + (f" with p < {max_p:g}" if max_p else "")
        focus = summary.get("focus")
        if first_release:
            outcomes.append(RuleOutcome(title, True, FIRST_RELEASE))
        elif baseline is None or focus is None:
            outcomes.append(
                RuleOutcome(title, False, "no blind pairwise judgements of the candidate against a baseline")
            )
        else:
            met = focus["win_rate"] is not None and focus["win_rate"] >= min_rate
            if max_p is not None:
                met = met and focus["p_value"] is not None and focus["p_value"] < max_p
            outcomes.append(
                RuleOutcome(
                    title,
                    met,
                    f"{candidate} against {baseline}: {_pct(focus['win_rate'])}, {_p(focus['p_value'])}, "
                    f"{focus['n']} judgements ({focus['ties']} ties)",
                )
            )
    if "min_mean_rating" in rules or "min_ratings" in rules:
        minimum = rules.get("min_mean_rating")
        count = rules.get("min_ratings", 0)
        parts = []
        if minimum is not None:
            parts.append(f"mean rating >= {minimum:g}")
        if count:
            parts.append(f"from at least {count} ratings")
        mean, n = (variant["mean_rating"], variant["n"]) if variant else (None, 0)
        met = n >= count and n > 0 and (minimum is None or (mean is not None and mean >= minimum))
        shown = f"{mean:.2f}" if mean is not None else "—"
        outcomes.append(RuleOutcome(" ".join(parts), met, f"{candidate}: mean {shown} from {n} ratings"))
    if "min_pass_rate" in rules:
        name = rules.get("pass_rate_evaluator", "")
        rate = next((p for p in (variant or {}).get("pass_rates", []) if p["evaluator"] == name), None)
        met = rate is not None and rate["rate"] is not None and rate["rate"] >= rules["min_pass_rate"]
        detail = f"{candidate}: {_pct(rate['rate'])} of {rate['n']} scored" if rate else f"no evaluator named {name}"
        outcomes.append(RuleOutcome(f"pass rate of evaluator {name} >= {rules['min_pass_rate']:.0%}", met, detail))
    return outcomes


def _rules(policy) -> dict[str, Any]:
    return dict(policy.evidence_rules or {}) if policy is not None else {}


def _summaries(review) -> list[tuple[Any, dict[str, Any]]]:
    """Each linked experiment's rating summary, computed once per review object (the review page asks for
    them twice: the evidence and the release checks). A release re-reads the review under a lock, so it
    always computes them afresh."""
    from apps.ratings import selectors
    from apps.ratings import summary as rating_summary

    cached = getattr(review, "_rating_summaries", None)
    if cached is not None:
        return cached
    found = []
    for link in selectors.links_for_review(review=review):
        focus = (link.candidate.name, link.baseline.name) if link.baseline else None
        found.append((link, rating_summary.experiment_rating_summary(experiment=link.experiment, focus=focus)))
    review._rating_summaries = found
    return found


def _current(review):
    from apps.prompts import selectors as prompt_selectors

    return prompt_selectors.version_by_label(prompt=review.prompt, label_name=review.label_name)


def collect(*, version, review) -> list[EvidenceItem]:
    from apps.ratings import charts, selectors
    from apps.reviews import selectors as review_selectors

    policy = review_selectors.policy_for_label(project_id=review.project_id, label_name=review.label_name)
    rules = _rules(policy)
    current = _current(review)
    first_release = current is None
    slug = review.project.slug
    items: list[EvidenceItem] = []
    for link, summary in _summaries(review):
        experiment = link.experiment
        figures = charts.all_charts(summary, selectors.cost_per_output(experiment=experiment))
        outcomes = evaluate_rules(rules, link, summary, first_release=first_release)
        html = render_to_string(
            "ratings/_evidence_item.html",
            {
                "link": link,
                "summary": summary,
                "figures": {k: figures[k] for k in ("forest", "distribution", "win_matrix") if k in figures},
                "outcomes": outcomes,
                "stats_url": reverse("ratings:stats", args=[slug, experiment.pk]),
            },
        )
        passed = all(o.met for o in outcomes) if outcomes else None
        items.append(
            EvidenceItem(
                title=f"{experiment.name}: {link.candidate.name} (v{version.number}) against "
                f"{link.baseline.name if link.baseline else 'no baseline'}",
                summary=summary["verdict"],
                url=reverse("ratings:compare", args=[slug, experiment.pk]),
                passed=passed,
                details={"html": html, "verdict": summary["verdict"]},
            )
        )
    linked = {link.experiment_id for link in selectors.links_for_review(review=review)}
    unlinked = [
        e
        for e in selectors.experiments_for_version(version=version).filter(project_id=review.project_id)
        if e.pk not in linked
    ]
    for experiment in unlinked[:5]:
        items.append(
            EvidenceItem(
                title=f"{experiment.name} tested v{version.number}: link it as evidence",
                url=reverse("ratings:link", args=[slug, review.pk]) + f"?experiment={experiment.pk}",
            )
        )
    if review.is_active:
        actions = _evidence_actions(review=review, version=version, current=current, rules=rules)
        items.extend(actions)
    return items


def _evidence_actions(*, review, version, current, rules: dict[str, Any]) -> list[EvidenceItem]:
    """What the reviewer can do from the review page: what the policy asks of this release, start an
    experiment of the candidate (against the current version when there is one), link any experiment."""
    slug = review.project.slug
    start = reverse("experiments:create", args=[slug]) + f"?candidate={version.pk}"
    if current is not None:
        start += f"&baseline={current.pk}"
        start_title = f"Start an experiment of v{version.number} against {review.label_name}'s v{current.number}"
    else:
        start_title = f"Start an experiment of v{version.number}"
    items = []
    if rules:
        needs = "; ".join(_titles(rules, first_release=current is None)) or "no thresholds"
        kind = "A first release" if current is None else "This release"
        required = "required" if rules.get("required") else "shown, not required"
        items.append(
            EvidenceItem(
                action=True,
                title=f"{kind} of {review.label_name} needs: {needs} ({required})",
                summary=(
                    f"{review.label_name} points at no version yet, so there is nothing to win against: "
                    "run the candidate on a dataset, rate its outputs in a rating queue, and link the experiment."
                    if current is None
                    else "Run the candidate against the current version, judge them blind in a pairwise queue "
                    "and rate the outputs, then link the experiment."
                ),
            )
        )
    items.append(
        EvidenceItem(
            action=True,
            title=start_title,
            url=start,
            summary="Opens the experiment builder with the variants filled in.",
        )
    )
    items.append(
        EvidenceItem(
            action=True,
            title="Link an experiment as evidence",
            url=reverse("ratings:link", args=[slug, review.pk]),
            summary="Any experiment of this project with a variant that runs "
            f"v{version.number}; its ratings and judgements count towards the thresholds.",
        )
    )
    return items


def release_checks(*, review, policy) -> list[CheckResult]:
    """The policy's evidence thresholds, met when any linked experiment meets them; blocking when required."""
    rules = _rules(policy)
    if not rules or not policy.protected:
        return []
    required = bool(rules.get("required"))
    first_release = _current(review) is None
    summaries = _summaries(review)
    if not summaries:
        probe = _titles(rules, first_release=first_release)
        return [
            CheckResult(title=t, met=False, blocking=required, detail="no experiment is linked to this review")
            for t in probe
        ]
    results: dict[str, CheckResult] = {}
    for link, summary in summaries:
        for outcome in evaluate_rules(rules, link, summary, first_release=first_release):
            best = results.get(outcome.title)
            if best is None or (outcome.met and not best.met):
                results[outcome.title] = CheckResult(
                    title=outcome.title,
                    met=outcome.met,
                    blocking=required,
                    detail=f"{link.experiment.name}: {outcome.detail}",
                )
    return list(results.values())


def _titles(rules: dict[str, Any], *, first_release: bool = False) -> list[str]:
    """The thresholds a release still has to meet (a first release: all but the win rate)."""

    class _Nothing:
        name = "candidate"

    class _Link:
        candidate = _Nothing()
        baseline = None

    empty = {"variants": [], "focus": None}
    return [o.title for o in evaluate_rules(rules, _Link(), empty, first_release=first_release) if not o.met]

"""The statistics of ratings and judgements: plain functions on plain Python data, no models.

Every result carries `n`, the number of observations it rests on. numpy and scipy
are imported inside the functions (the web process starts without them).

Conventions
- A win rate counts a tie as half a win: (wins + ties / 2) / n, n counting ties,
  with a Wilson 95% interval on that share. The sign test (two-sided, exact
  binomial, p = 0.5) uses the decisive judgements only; ties are reported next
  to it, never dropped silently.
- Bootstrap intervals are percentile intervals with a fixed seed, so a page
  shows the same interval on every load.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Interval:
    estimate: float | None
    low: float | None
    high: float | None
    n: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- means and proportions ---------------------------------------------------------------------


def bootstrap_mean(
    values: Sequence[float], *, confidence: float = 0.95, resamples: int = 5000, seed: int = 0
) -> Interval:
    """Mean with a percentile bootstrap interval (seeded: the same data always gives the same interval)."""
    import numpy as np

    n = len(values)
    if n == 0:
        return Interval(None, None, None, 0)
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if n == 1:
        return Interval(mean, mean, mean, 1)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)  # keep each index matrix to a few MB
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        means[start : start + size] = data[rng.integers(0, n, size=(size, n))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(mean, float(low), float(high), n)


def wilson(successes: float, n: int, *, z: float = Z95) -> Interval:
    """Wilson score interval of a proportion; `successes` may be fractional (ties counted as halves)."""
    if n <= 0:
        return Interval(None, None, None, 0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial (sign) test of wins against losses, p = 0.5. Ties are left out by the caller."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    # With p = 0.5 the distribution is symmetric: twice the smaller tail, at most 1.
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class PairResult:
    variant: str
    against: str
    wins: int
    losses: int
    ties: int
    n: int
    win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    raters: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pair_result(variant: str, against: str, *, wins: int, losses: int, ties: int, raters: int = 0) -> PairResult:
    n = wins + losses + ties
    interval = wilson(wins + ties / 2, n)
    p_value = sign_test(wins, losses) if wins + losses else (1.0 if n else None)
    return PairResult(
        variant, against, wins, losses, ties, n, interval.estimate, interval.low, interval.high, p_value, raters
    )


def judgements_needed(pair: PairResult, *, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """About how many more judgements (ties included) a sign test needs to detect the observed preference.

    Normal approximation for a one-sample binomial test at the observed share of
    wins among decisive judgements, scaled up by the observed share of ties.
    None when no preference is seen at all (more judgements would not find one).
    """
    from scipy.stats import norm

    decisive = pair.wins + pair.losses
    if decisive == 0:
        return None
    share = pair.wins / decisive
    if abs(share - 0.5) < 1e-9:
        return None
    z_alpha, z_beta = norm.ppf(1 - alpha / 2), norm.ppf(power)
    needed_decisive = ((z_alpha * 0.5 + z_beta * math.sqrt(share * (1 - share))) / (share - 0.5)) ** 2
    decisive_share = decisive / pair.n
    needed_total = math.ceil(needed_decisive / decisive_share)
    return max(0, needed_total - pair.n)


# --- paired automatic scores -------------------------------------------------------------------


@dataclass(frozen=True)
class PairedTest:
    statistic: float | None
    p_value: float | None
    n: int
    mean_difference: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def average_repeats(scores: Iterable[tuple[Hashable, float]]) -> dict[Hashable, float]:
    """(item, score) pairs, repeats included, to one mean score per item."""
    sums: dict[Hashable, list[float]] = defaultdict(list)
    for item, value in scores:
        if value is not None:
            sums[item].append(float(value))
    return {item: sum(values) / len(values) for item, values in sums.items()}


def wilcoxon_paired(a: dict[Hashable, float], b: dict[Hashable, float]) -> PairedTest:
    """Wilcoxon signed-rank test of b − a over the items both have (two-sided; zero differences dropped)."""
    from scipy.stats import wilcoxon

    items = sorted(set(a) & set(b), key=str)
    differences = [b[i] - a[i] for i in items]
    n = len(items)
    if n == 0:
        return PairedTest(None, None, 0, None)
    mean_difference = sum(differences) / n
    if all(abs(d) < 1e-12 for d in differences):
        return PairedTest(0.0, 1.0, n, mean_difference)
    result = wilcoxon(differences, zero_method="wilcox", alternative="two-sided")
    return PairedTest(float(result.statistic), float(result.pvalue), n, mean_difference)


# --- ranking -----------------------------------------------------------------------------------


def bradley_terry(
    outcomes: Iterable[tuple[str, str, float]], *, iterations: int = 2000, tolerance: float = 1e-10, prior: float = 0.0
) -> dict[str, float]:
    """Bradley-Terry strengths by Hunter's MM algorithm, normalised to sum to 1.

    `outcomes` are (i, j, score of i): 1 when i won, 0 when j won, 0.5 for a tie.
    A variant that never won gets a strength near zero; one that never lost grows
    until the iteration limit (the MLE does not exist then). `prior` adds that many
    virtual games won and lost against every other variant, which keeps strengths finite.
    """
    wins: dict[str, float] = defaultdict(float)
    games: dict[tuple[str, str], float] = defaultdict(float)
    players: set[str] = set()
    for i, j, score in outcomes:
        players.update((i, j))
        wins[i] += score
        wins[j] += 1 - score
        games[tuple(sorted((i, j)))] += 1
    if not players:
        return {}
    strength = dict.fromkeys(players, 1.0)
    for _ in range(iterations):
        updated = {}
        for i in players:
            denominator = 0.0
            for j in players:
                if i == j:
                    continue
                n_ij = games.get(tuple(sorted((i, j))), 0.0) + 2 * prior
                denominator += n_ij / (strength[i] + strength[j])
            updated[i] = (wins[i] + prior * (len(players) - 1)) / denominator
        total = sum(updated.values())
        updated = {k: v / total for k, v in updated.items()}
        change = max(abs(updated[k] - strength[k]) for k in players)
        strength = updated
        if change < tolerance:
            break
    return dict(sorted(strength.items(), key=lambda kv: -kv[1]))


# --- agreement ---------------------------------------------------------------------------------


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters over the same units (equal-length sequences)."""
    if len(first) != len(second):
        raise ValueError("Cohen's kappa needs both raters' values for the same units.")
    n = len(first)
    if n == 0:
        return None
    observed = sum(1 for a, b in zip(first, second, strict=True) if a == b) / n
    count_a, count_b = Counter(first), Counter(second)
    expected = sum(count_a[c] * count_b[c] for c in set(count_a) | set(count_b)) / (n * n)
    if expected == 1:
        return 1.0 if observed == 1 else None
    return (observed - expected) / (1 - expected)


def cohen_kappa_interval(
    first: Sequence[Hashable],
    second: Sequence[Hashable],
    *,
    confidence: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> Interval:
    """Cohen's kappa with a percentile bootstrap interval, resampling the units (seeded, so the same data always
    gives the same interval).

    A resample in which both raters use one category alone has no kappa (chance agreement is 1) and is left
    out; when every resample is like that, the interval is the estimate itself.
    """
    import numpy as np

    estimate = cohen_kappa(first, second)
    n = len(first)
    if estimate is None or n < 2:
        return Interval(estimate, estimate, estimate, n)
    categories = {value: code for code, value in enumerate(sorted(set(first) | set(second), key=repr))}
    a = np.asarray([categories[v] for v in first])
    b = np.asarray([categories[v] for v in second])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(resamples, n))
    left, right = a[picks], b[picks]
    observed = (left == right).mean(axis=1)
    expected = sum((left == c).mean(axis=1) * (right == c).mean(axis=1) for c in range(len(categories)))
    defined = expected < 1 - 1e-12
    if not defined.any():
        return Interval(estimate, estimate, estimate, n)
    kappas = (observed[defined] - expected[defined]) / (1 - expected[defined])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(kappas, [tail, 100 - tail])
    return Interval(estimate, float(max(low, -1.0)), float(min(high, 1.0)), n)


def krippendorff_alpha(units: dict[Hashable, Sequence[Any]], *, level: str = "nominal") -> float | None:
    """Krippendorff's alpha over units, each with the values its raters gave (None = missing).

    `level`: nominal (any two different values disagree equally), ordinal
    (distance by the ranks of the values in between, on their marginal counts),
    or interval (squared difference). Units with fewer than two values are not pairable
    and are left out, as the coefficient defines.
    """
    pairable = {u: [v for v in values if v is not None] for u, values in units.items()}
    pairable = {u: values for u, values in pairable.items() if len(values) >= 2}
    if not pairable:
        return None
    # The coincidence matrix: each unit with m values adds 1/(m-1) for every ordered pair of its values.
    coincidence: dict[tuple[Any, Any], float] = defaultdict(float)
    for values in pairable.values():
        m = len(values)
        for a_index, a in enumerate(values):
            for b_index, b in enumerate(values):
                if a_index != b_index:
                    coincidence[(a, b)] += 1 / (m - 1)
    categories = sorted({a for a, _ in coincidence})
    marginal = {c: sum(coincidence[(c, k)] for k in categories) for c in categories}
    total = sum(marginal.values())
    if len(categories) == 1:
        return 1.0  # every value the same: no disagreement possible (alpha is undefined; shown as perfect)

    def distance(a: Any, b: Any) -> float:
        if a == b:
            return 0.0
        if level == "nominal":
            return 1.0
        if level == "interval":
            return float(a - b) ** 2
        if level == "ordinal":
            low, high = sorted((categories.index(a), categories.index(b)))
            between = sum(marginal[categories[g]] for g in range(low, high + 1))
            return (between - (marginal[categories[low]] + marginal[categories[high]]) / 2) ** 2
        raise ValueError(f"Unknown level of measurement {level!r}; use nominal, ordinal or interval.")

    observed = sum(coincidence[(a, b)] * distance(a, b) for a in categories for b in categories)
    expected = sum(marginal[a] * marginal[b] * distance(a, b) for a in categories for b in categories) / (total - 1)
    if expected == 0:
        return 1.0
    return 1 - observed / expected


@dataclass(frozen=True)
class Agreement:
    method: str
    value: float | None
    raters: int
    units: int
    level: str = "nominal"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        return "kappa" if self.method == "cohen_kappa" else "alpha"


def agreement(units: dict[Hashable, dict[Hashable, Any]], *, level: str = "nominal") -> Agreement | None:
    """Agreement of raters over units: Cohen's kappa when exactly two raters, Krippendorff's alpha otherwise.

    `units`: unit -> {rater: value}. Only units rated by two raters or more count.
    """
    shared = {u: r for u, r in units.items() if len(r) >= 2}
    raters = sorted({rater for ratings in shared.values() for rater in ratings}, key=str)
    if not shared:
        return None
    if len(raters) == 2:
        first = [shared[u][raters[0]] for u in shared]
        second = [shared[u][raters[1]] for u in shared]
        return Agreement("cohen_kappa", cohen_kappa(first, second), 2, len(shared), "nominal")
    alpha = krippendorff_alpha({u: list(r.values()) for u, r in shared.items()}, level=level)
    return Agreement("krippendorff_alpha", alpha, len(raters), len(shared), level)


def spearman(first: Sequence[float], second: Sequence[float]) -> tuple[float | None, float | None, int]:
    """Spearman's rank correlation and its p-value (None when a side is constant)."""
    from scipy.stats import spearmanr

    n = len(first)
    if n < 3 or len(set(first)) < 2 or len(set(second)) < 2:
        return None, None, n
    result = spearmanr(first, second)
    return float(result.statistic), float(result.pvalue), n


# --- the plain-language verdict ----------------------------------------------------------------


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def verdict(pair: PairResult | None, agreement_result: Agreement | None = None, *, alpha: float = 0.05) -> str:
    """One sentence a reviewer can read: who wins, by how much, how sure, on how much evidence."""
    if pair is None or pair.n == 0:
        return "No pairwise judgements yet: rate some pairs blind to get a verdict."
    evidence = f"{pair.n} judgement{'s' if pair.n != 1 else ''}"
    if pair.raters:
        evidence += f" by {pair.raters} rater{'s' if pair.raters != 1 else ''}"
    if pair.ties:
        evidence += f", {pair.ties} tie{'s' if pair.ties != 1 else ''}"
    if agreement_result is not None and agreement_result.value is not None:
        evidence += f"; agreement {agreement_result.label} = {agreement_result.value:.2f}"
    if pair.p_value is not None and pair.p_value < alpha and pair.win_rate != 0.5:
        winner, loser, rate = (pair.variant, pair.against, pair.win_rate)
        low, high = pair.ci_low, pair.ci_high
        if rate < 0.5:
            winner, loser, rate, low, high = loser, winner, 1 - rate, 1 - high, 1 - low
        return (
            f"{winner} beats {loser} on {_percent(rate)} of items "
            f"(95% CI {low * 100:.0f}-{high * 100:.0f}%, {_p(pair.p_value)}; {evidence})."
        )
    more = judgements_needed(pair, alpha=alpha)
    estimate = (
        f" About {more} more judgement{'s' if more != 1 else ''} would be needed to tell at this rate."
        if more
        else " The two look alike: more judgements are unlikely to separate them."
    )
    return (
        f"No significant difference yet between {pair.variant} and {pair.against}: "
        f"{pair.variant} wins {_percent(pair.win_rate)} (95% CI {pair.ci_low * 100:.0f}-{pair.ci_high * 100:.0f}%, "
        f"{_p(pair.p_value)}; {evidence}).{estimate}"
    )

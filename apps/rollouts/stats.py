"""The sequential test of a canary: a mixture SPRT (mSPRT) with always-valid p-values and intervals.

Why mSPRT and not a group-sequential boundary: the beat task looks at a canary every minute, as often as
it likes, with no number of looks or volume fixed in advance, and a person may look at the page at any
time. A group-sequential design (Pocock, O'Brien-Fleming) spends its alpha over a planned schedule of
looks; the mSPRT (Robbins 1970; Johari, Pekelis and Walsh, "Always valid inference", 2017) bounds the
false-alarm rate at alpha however often and whenever it is looked at, and gives a confidence sequence
(an interval valid at every moment) to draw.

For each guardrail, d = (canary - stable), oriented so that positive is worse, is estimated with variance
V = var_c / n_c + var_s / n_s (normal approximation). Against H0: d = tolerance, with a normal mixture
N(tolerance, tau^2) over the alternative, the likelihood ratio is

    L = sqrt(V / (V + tau^2)) * exp(tau^2 * (d_hat - tolerance)^2 / (2 V (V + tau^2)))

and the canary is rolled back when L >= 1/alpha with d_hat above the tolerance, that is when the lower
end of the confidence sequence d_hat +- h is above the tolerance, with

    h = sqrt(2 V (V + tau^2) / tau^2 * (ln(1/alpha) + ln((V + tau^2) / V) / 2)).

Several guardrails share alpha (Bonferroni: alpha / k each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Below this many calls in an arm the normal approximation is not trusted and nothing is decided.
MIN_ARM_CALLS = 50


@dataclass(frozen=True)
class ArmSample:
    n: int
    mean: float
    variance: float


@dataclass(frozen=True)
class Verdict:
    """One guardrail's state: the worse-is-positive difference, its always-valid interval and the decision."""

    difference: float
    half_width: float
    tolerance: float
    boundary: float  # the difference at which the canary would be rolled back now (tolerance + half width)
    p_value: float  # always valid: 1 / L, capped at 1
    harmful: bool
    enough_data: bool

    @property
    def looks_worse(self) -> bool:
        """The estimate is more than halfway from the tolerance to the rollback boundary: harm is not proven,
        but the watcher does not promote on it and waits for the evidence to settle it either way. (Under no
        harm the estimate is past half the interval's width on few looks, so a good canary is not held up.)"""
        return self.enough_data and self.difference > self.tolerance + self.half_width / 2

    @property
    def low(self) -> float:
        return self.difference - self.half_width

    @property
    def high(self) -> float:
        return self.difference + self.half_width


def half_width(variance: float, tau2: float, alpha: float) -> float:
    """Half width of the (1 - alpha) confidence sequence of a difference whose estimate has this variance."""
    if variance <= 0:
        return 0.0
    return math.sqrt(
        2 * variance * (variance + tau2) / tau2 * (math.log(1 / alpha) + 0.5 * math.log((variance + tau2) / variance))
    )


def verdict(
    *, stable: ArmSample, canary: ArmSample, tolerance: float, tau: float, alpha: float, sign: int = 1
) -> Verdict:
    """sign=+1 when a larger canary value is worse (errors, cost, slow calls), -1 when smaller is (feedback)."""
    enough = min(stable.n, canary.n) >= MIN_ARM_CALLS
    difference = sign * (canary.mean - stable.mean)
    if not enough:
        return Verdict(difference, math.inf, tolerance, math.inf, 1.0, False, False)
    variance = max(canary.variance / canary.n + stable.variance / stable.n, 1e-12)
    tau2 = tau * tau
    h = half_width(variance, tau2, alpha)
    log_l = 0.5 * math.log(variance / (variance + tau2)) + tau2 * (difference - tolerance) ** 2 / (
        2 * variance * (variance + tau2)
    )
    p_value = min(1.0, math.exp(-log_l)) if log_l > -700 else 1.0
    harmful = difference - h > tolerance
    return Verdict(difference, h, tolerance, tolerance + h, p_value, harmful, True)


def proportion(successes: int, n: int) -> ArmSample:
    """A 0/1 metric (an error, a slow call); the variance is smoothed so 0 of n still has some."""
    p = (successes + 0.5) / (n + 1) if n else 0.0
    return ArmSample(n=n, mean=successes / n if n else 0.0, variance=p * (1 - p))


def moments(n: int, total: float, total_squares: float) -> ArmSample:
    if n == 0:
        return ArmSample(0, 0.0, 0.0)
    mean = total / n
    return ArmSample(n=n, mean=mean, variance=max(total_squares / n - mean * mean, 0.0) * n / max(n - 1, 1))

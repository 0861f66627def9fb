"""The sequential test by simulation: watched after every batch, it keeps its false-rollback rate and finds harm.

Each simulated canary sends batches of 500 calls split 90/10 and runs the watcher's own verdict
(apps.rollouts.stats, as selectors.guardrails calls it for the error rate with tolerance 0) after every
batch, up to 100 batches (5,000 canary calls). Seeds are fixed, so the figures printed are repeatable.
"""

from __future__ import annotations

import numpy as np

from apps.rollouts import stats
from apps.rollouts.selectors import METRICS

ALPHA = 0.05
CANARIES = 500
BATCHES, BATCH, SHARE = 100, 500, 0.10
TAU = METRICS["error_rate"][2]


def _watch(p_stable: float, p_canary: float, seed: int) -> list[int | None]:
    """Per canary: the canary calls seen when it was rolled back, or None if it never was."""
    rng = np.random.default_rng(seed)
    outcome: list[int | None] = []
    for _ in range(CANARIES):
        canary_calls = rng.binomial(BATCH, SHARE, size=BATCHES)
        stable_calls = BATCH - canary_calls
        canary_errors = np.cumsum(rng.binomial(canary_calls, p_canary))
        stable_errors = np.cumsum(rng.binomial(stable_calls, p_stable))
        canary_n, stable_n = np.cumsum(canary_calls), np.cumsum(stable_calls)
        rolled_back = None
        for look in range(BATCHES):
            verdict = stats.verdict(
                stable=stats.proportion(int(stable_errors[look]), int(stable_n[look])),
                canary=stats.proportion(int(canary_errors[look]), int(canary_n[look])),
                tolerance=0.0,
                tau=TAU,
                alpha=ALPHA,
            )
            if verdict.harmful:
                rolled_back = int(canary_n[look])
                break
        outcome.append(rolled_back)
    return outcome


def test_on_500_a_a_canaries_watched_after_every_batch_rollbacks_stay_under_the_nominal_rate():
    outcome = _watch(0.05, 0.05, seed=15)
    rate = sum(v is not None for v in outcome) / CANARIES
    print(f"A/A false rollback rate: {rate:.3f} (nominal {ALPHA}) over {CANARIES} canaries, {BATCHES} looks each")
    assert rate <= ALPHA


def test_a_3_point_error_rate_increase_is_rolled_back_within_the_expected_volume():
    outcome = _watch(0.05, 0.08, seed=16)
    volumes = [v for v in outcome if v is not None]
    median = float(np.median(volumes))
    print(f"3-point increase (5% -> 8%): rolled back {len(volumes)}/{CANARIES}, median canary calls {median:.0f}")
    assert len(volumes) / CANARIES >= 0.95  # power within 5,000 canary calls
    # A fixed-horizon one-sided z-test at 5% with 80% power needs about 700 calls per arm for 5% vs 8%;
    # always-valid tests pay for unlimited looks with some more volume, but not several times as much.
    assert median <= 2000


def test_the_interval_always_covers_the_true_difference_at_the_nominal_rate():
    """The confidence sequence drawn on the page: over 500 A/A canaries it excludes 0 at some look rarely."""
    rng = np.random.default_rng(17)
    excluded = 0
    for _ in range(CANARIES):
        n = np.cumsum(rng.binomial(BATCH, SHARE, size=40))
        errors = np.cumsum(rng.binomial(np.diff(n, prepend=0), 0.05))
        stable_n = np.cumsum(np.full(40, BATCH)) - n
        stable_errors = np.cumsum(rng.binomial(np.diff(stable_n, prepend=0), 0.05))
        for look in range(40):
            v = stats.verdict(
                stable=stats.proportion(int(stable_errors[look]), int(stable_n[look])),
                canary=stats.proportion(int(errors[look]), int(n[look])),
                tolerance=0.0,
                tau=TAU,
                alpha=ALPHA,
            )
            if v.enough_data and not v.low <= 0 <= v.high:
                excluded += 1
                break
    assert excluded / CANARIES <= ALPHA

"""Cohen's kappa with its bootstrap interval, against the textbook example and the large-sample formula."""

import math

import pytest

from apps.ratings import stats

# The textbook table (Wikipedia, "Cohen's kappa"): 50 units; both yes 20, yes/no 5, no/yes 10, both no 15.
FIRST = ["yes"] * 25 + ["no"] * 25
SECOND = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15


def _analytic(first, second, z=stats.Z95):
    """Cohen's (1960) large-sample interval: kappa ± z·sqrt(po(1−po) / (n(1−pe)²))."""
    n = len(first)
    po = sum(a == b for a, b in zip(first, second, strict=True)) / n
    pe = sum(first.count(c) * second.count(c) for c in set(first) | set(second)) / n / n
    kappa = (po - pe) / (1 - pe)
    half = z * math.sqrt(po * (1 - po) / (n * (1 - pe) ** 2))
    return kappa - half, kappa + half


def test_the_estimate_is_cohens_kappa_and_the_interval_matches_the_large_sample_formula():
    interval = stats.cohen_kappa_interval(FIRST, SECOND)
    assert interval.estimate == pytest.approx(0.4) and interval.n == 50
    low, high = _analytic(FIRST, SECOND)  # 0.146 .. 0.654
    assert interval.low == pytest.approx(low, abs=0.04) and interval.high == pytest.approx(high, abs=0.04)
    assert interval.low < interval.estimate < interval.high


def test_ten_times_the_units_give_an_interval_about_three_times_narrower():
    small = stats.cohen_kappa_interval(FIRST, SECOND)
    large = stats.cohen_kappa_interval(FIRST * 10, SECOND * 10)
    assert large.estimate == pytest.approx(small.estimate)
    ratio = (small.high - small.low) / (large.high - large.low)
    assert 2.5 < ratio < 3.9  # sqrt(10) = 3.16
    low, high = _analytic(FIRST * 10, SECOND * 10)
    assert large.low == pytest.approx(low, abs=0.015) and large.high == pytest.approx(high, abs=0.015)


def test_it_is_repeatable_and_does_not_depend_on_the_order_of_the_units():
    pairs = list(zip(FIRST, SECOND, strict=True))
    shuffled = pairs[1::2] + pairs[::2]
    again = stats.cohen_kappa_interval([a for a, _ in shuffled], [b for _, b in shuffled])
    assert stats.cohen_kappa_interval(FIRST, SECOND) == stats.cohen_kappa_interval(FIRST, SECOND)
    assert again.estimate == pytest.approx(0.4)


def test_perfect_agreement_chance_level_and_no_units():
    perfect = stats.cohen_kappa_interval([True, False] * 10, [True, False] * 10)
    assert (perfect.estimate, perfect.low, perfect.high) == (1.0, 1.0, 1.0)
    chance = stats.cohen_kappa_interval([True, True, False, False] * 10, [True, False] * 20)
    assert chance.estimate == pytest.approx(0.0) and chance.low < 0 < chance.high
    assert stats.cohen_kappa_interval([], []) == stats.Interval(None, None, None, 0)
    with pytest.raises(ValueError):
        stats.cohen_kappa_interval([True], [True, False])

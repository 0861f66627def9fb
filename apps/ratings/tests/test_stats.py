"""Every statistic against hand-worked cases and against scipy's own functions."""

import math

import numpy as np
import pytest

from apps.ratings import stats

# scipy is the independent reference here (imported lazily in the app itself).
scipy_stats = pytest.importorskip("scipy.stats")

# --- bootstrap ---------------------------------------------------------------------------------


def test_it_bootstraps_a_constant_sample_to_a_point():
    interval = stats.bootstrap_mean([4, 4, 4, 4])
    assert (interval.estimate, interval.low, interval.high, interval.n) == (4, 4, 4, 4)


def test_it_bootstraps_two_values_within_their_range_and_reports_n():
    # Resampling {1, 5} twice gives means 1, 3 or 5 with chances 1/4, 1/2, 1/4: the 95% interval is [1, 5].
    interval = stats.bootstrap_mean([1, 5], resamples=20000)
    assert interval.estimate == 3 and interval.low == 1 and interval.high == 5 and interval.n == 2


def test_it_is_seeded_so_the_same_data_gives_the_same_interval():
    data = [1, 2, 2, 3, 4, 5, 5, 5, 3, 4]
    assert stats.bootstrap_mean(data) == stats.bootstrap_mean(data)


def test_its_bootstrap_matches_scipys_percentile_bootstrap():
    rng = np.random.default_rng(7)
    data = rng.integers(1, 6, size=60).tolist()
    ours = stats.bootstrap_mean(data, resamples=20000)
    theirs = scipy_stats.bootstrap(
        (np.asarray(data, dtype=float),), np.mean, n_resamples=20000, method="percentile", random_state=1
    ).confidence_interval
    assert ours.estimate == pytest.approx(np.mean(data))
    assert ours.low == pytest.approx(theirs.low, abs=0.04)
    assert ours.high == pytest.approx(theirs.high, abs=0.04)


def test_it_has_no_interval_without_data():
    assert stats.bootstrap_mean([]) == stats.Interval(None, None, None, 0)


# --- Wilson, sign test, win rate -----------------------------------------------------------------


def test_it_computes_a_wilson_interval_by_hand():
    # 8 of 10, z = 1.96: centre (0.8 + 0.19208) / 1.38416 = 0.71674, half-width 0.24710 / 1.38416 ... by the formula.
    interval = stats.wilson(8, 10)
    z = stats.Z95
    centre = (0.8 + z * z / 20) / (1 + z * z / 10)
    half = z * math.sqrt(0.8 * 0.2 / 10 + z * z / 400) / (1 + z * z / 10)
    assert interval.low == pytest.approx(centre - half) and interval.high == pytest.approx(centre + half)
    assert interval.low == pytest.approx(0.4902, abs=1e-4) and interval.high == pytest.approx(0.9433, abs=1e-4)


@pytest.mark.parametrize(("k", "n"), [(0, 5), (3, 10), (7, 10), (10, 10), (62, 100), (1, 180)])
def test_its_wilson_interval_matches_scipy(k, n):
    ours = stats.wilson(k, n)
    theirs = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert ours.low == pytest.approx(theirs.low, abs=1e-9) and ours.high == pytest.approx(theirs.high, abs=1e-9)


def test_it_computes_the_sign_test_by_hand():
    # 5 wins, 0 losses: P(X = 0) + P(X = 5) = 2/32.
    assert stats.sign_test(5, 0) == pytest.approx(0.0625)
    # 2 wins, 2 losses: no evidence either way.
    assert stats.sign_test(2, 2) == 1.0
    # 9 wins, 1 loss: 2 * (1 + 10) / 1024.
    assert stats.sign_test(9, 1) == pytest.approx(22 / 1024)


@pytest.mark.parametrize(("wins", "losses"), [(7, 3), (62, 38), (100, 80), (0, 12), (30, 31), (112, 68)])
def test_its_sign_test_matches_scipys_binomial_test(wins, losses):
    assert stats.sign_test(wins, losses) == pytest.approx(scipy_stats.binomtest(wins, wins + losses, 0.5).pvalue)


def test_a_pair_reports_its_ties_and_counts_them_as_halves():
    pair = stats.pair_result("B", "A", wins=6, losses=2, ties=2)
    assert pair.n == 10 and pair.ties == 2
    assert pair.win_rate == pytest.approx(0.7)  # (6 + 1) / 10
    assert pair.p_value == pytest.approx(scipy_stats.binomtest(6, 8).pvalue)  # ties left out of the test only
    assert pair.ci_low == pytest.approx(stats.wilson(7, 10).low)


def test_the_verdict_names_the_winner_with_its_interval_p_value_and_evidence():
    pair = stats.pair_result("B", "A", wins=112, losses=68, ties=0, raters=3)
    agreement = stats.Agreement("krippendorff_alpha", 0.61, 3, 60, "ordinal")
    text = stats.verdict(pair, agreement)
    assert text.startswith("B beats A on 62% of items (95% CI 55-69%, p = 0.001")
    assert "180 judgements by 3 raters" in text and "agreement alpha = 0.61" in text


def test_the_verdict_turns_round_when_the_baseline_wins():
    text = stats.verdict(stats.pair_result("B", "A", wins=10, losses=40, ties=0))
    assert text.startswith("A beats B on 80% of items")


def test_without_significance_the_verdict_estimates_the_judgements_needed():
    pair = stats.pair_result("B", "A", wins=12, losses=8, ties=0, raters=2)
    text = stats.verdict(pair)
    assert text.startswith("No significant difference yet between B and A")
    needed = stats.judgements_needed(pair)
    # Normal approximation for p = 0.6: ((1.96 * 0.5 + 0.8416 * sqrt(0.24)) / 0.1)^2 = 193.8 -> 194 in all.
    assert needed == 194 - 20 and f"About {needed} more judgements" in text


def test_no_preference_at_all_needs_no_estimate():
    pair = stats.pair_result("B", "A", wins=5, losses=5, ties=3)
    assert stats.judgements_needed(pair) is None
    assert "unlikely to separate them" in stats.verdict(pair)


# --- Wilcoxon ------------------------------------------------------------------------------------


def test_it_averages_repeats_per_item_before_pairing():
    a = stats.average_repeats([(1, 0.0), (1, 1.0), (2, 0.5), (3, 0.25)])
    assert a == {1: 0.5, 2: 0.5, 3: 0.25}


def test_its_wilcoxon_matches_a_hand_worked_exact_case():
    # Five items, b better on all: W = 0 (sum of negative ranks), exact two-sided p = 2 / 2^5.
    a = {i: 0.1 * i for i in range(5)}
    b = {i: 0.1 * i + 0.05 * (i + 1) for i in range(5)}
    test = stats.wilcoxon_paired(a, b)
    assert test.statistic == 0 and test.p_value == pytest.approx(0.0625) and test.n == 5
    assert test.mean_difference == pytest.approx(0.15)


def test_its_wilcoxon_matches_scipy_on_paired_items_only():
    rng = np.random.default_rng(3)
    a = {i: float(x) for i, x in enumerate(rng.random(30))}
    b = {i: float(x) + 0.1 for i, x in enumerate(rng.random(35))}
    test = stats.wilcoxon_paired(a, b)
    differences = [b[i] - a[i] for i in range(30)]
    expected = scipy_stats.wilcoxon(differences)
    assert test.n == 30 and test.p_value == pytest.approx(expected.pvalue) and test.statistic == expected.statistic


def test_identical_scores_give_no_difference():
    assert stats.wilcoxon_paired({1: 0.5, 2: 1.0}, {1: 0.5, 2: 1.0}).p_value == 1.0


# --- Bradley-Terry -------------------------------------------------------------------------------


def test_bradley_terry_of_two_is_the_share_of_wins():
    strengths = stats.bradley_terry([("A", "B", 1)] * 3 + [("A", "B", 0)])
    assert strengths["A"] == pytest.approx(0.75) and strengths["B"] == pytest.approx(0.25)


def test_bradley_terry_matches_the_maximum_likelihood_found_by_scipy():
    from scipy.optimize import minimize

    games = {("A", "B"): (7, 3), ("B", "C"): (6, 4), ("A", "C"): (8, 2), ("C", "D"): (5, 5), ("B", "D"): (7, 3)}
    outcomes = []
    for (i, j), (wins_i, wins_j) in games.items():
        outcomes += [(i, j, 1.0)] * wins_i + [(i, j, 0.0)] * wins_j
    ours = stats.bradley_terry(outcomes)
    players = ["A", "B", "C", "D"]

    def negative_log_likelihood(theta):
        strength = dict(zip(players, [0.0, *theta], strict=True))
        total = 0.0
        for (i, j), (wins_i, wins_j) in games.items():
            pi = 1 / (1 + math.exp(strength[j] - strength[i]))
            total -= wins_i * math.log(pi) + wins_j * math.log(1 - pi)
        return total

    fit = minimize(negative_log_likelihood, [0.0, 0.0, 0.0], method="BFGS")
    theirs = np.exp([0.0, *fit.x])
    theirs = theirs / theirs.sum()
    for player, value in zip(players, theirs, strict=True):
        assert ours[player] == pytest.approx(value, abs=1e-4)
    assert list(ours) == ["A", "B", "D", "C"] or list(ours)[0] == "A"


# --- agreement -----------------------------------------------------------------------------------


def test_cohens_kappa_by_hand():
    # The textbook table: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no. p_o = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5.
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert stats.cohen_kappa(first, second) == pytest.approx(0.4)


def test_cohens_kappa_of_perfect_and_of_chance_agreement():
    assert stats.cohen_kappa([1, 2, 3, 1], [1, 2, 3, 1]) == pytest.approx(1.0)
    assert stats.cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == pytest.approx(0.0)


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the worked example with missing values:
# 4 observers, 12 units; published alpha: nominal 0.743, ordinal 0.815, interval 0.849.
_ = None
KRIPPENDORFF_EXAMPLE = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
]


@pytest.mark.parametrize(("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorffs_alpha_matches_the_published_worked_example(level, published):
    units = {u: [row[u] for row in KRIPPENDORFF_EXAMPLE] for u in range(12)}
    assert stats.krippendorff_alpha(units, level=level) == pytest.approx(published, abs=0.0005)


def test_krippendorffs_alpha_by_hand_for_two_coders():
    # Units (a,a), (a,b), (b,b): coincidences o_aa = 2, o_ab = o_ba = 1, o_bb = 2; n_a = n_b = 3, n = 6.
    # D_o = 2 / 6; D_e = 2 * 3 * 3 / (6 * 5) = 0.6; alpha = 1 - (1/3) / 0.6 = 4/9.
    units = {1: ["a", "a"], 2: ["a", "b"], 3: ["b", "b"]}
    assert stats.krippendorff_alpha(units) == pytest.approx(4 / 9)


def test_krippendorffs_alpha_leaves_out_units_with_one_value():
    units = {1: ["a", "a"], 2: ["a", "b"], 3: ["b", "b"], 4: ["a", None, None]}
    assert stats.krippendorff_alpha(units) == pytest.approx(4 / 9)


def test_agreement_chooses_kappa_for_two_raters_and_alpha_for_more():
    two = stats.agreement({1: {"x": 1, "y": 1}, 2: {"x": 0, "y": 1}, 3: {"x": 0, "y": 0}})
    assert two.method == "cohen_kappa" and two.raters == 2 and two.units == 3
    assert two.value == pytest.approx(stats.cohen_kappa([1, 0, 0], [1, 1, 0]))
    three = stats.agreement({u: {"x": v, "y": v, "z": v} for u, v in enumerate([0, 1, 0.5, 1])}, level="ordinal")
    assert three.method == "krippendorff_alpha" and three.value == pytest.approx(1.0) and three.raters == 3


def test_spearman_matches_scipy():
    rho, p, n = stats.spearman([0.1, 0.4, 0.35, 0.8, 0.9], [1, 3, 2, 4, 5])
    expected = scipy_stats.spearmanr([0.1, 0.4, 0.35, 0.8, 0.9], [1, 3, 2, 4, 5])
    assert rho == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue) and n == 5

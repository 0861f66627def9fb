from __future__ import annotations

import random

import pytest

from apps.monitoring import drift
from apps.monitoring.drift import Sample


def _sample(rng, n, *, de_share=0.04, length_mean=300.0, latency_mu=6.5, error_rate=0.03):
    variables, outputs, latency, errors, costs = [], [], [], [], []
    for _ in range(n):
        language = "de" if rng.random() < de_share else rng.choice(["en", "en", "en", "fr", "es"])
        question = "x" * max(1, int(rng.gauss(length_mean, 60)))
        variables.append({"language": language, "question": question, "tier": rng.randrange(1, 4),
                          "amount": rng.lognormvariate(3, 1)})  # fmt: skip
        outputs.append("" if rng.random() < 0.02 else "y" * rng.randrange(50, 400))
        latency.append(rng.lognormvariate(latency_mu, 0.4))
        errors.append(rng.random() < error_rate)
        costs.append(rng.random() / 1000)
    return Sample(variables=variables, outputs=outputs, latency_ms=latency, errors=errors, costs=costs)


def test_a_known_shift_is_found_with_a_plain_line():
    rng = random.Random(5)
    reference, window = _sample(rng, 400), _sample(rng, 400, de_share=0.31)
    tests = drift.compare(reference, window, against="the dataset it was tested on")
    findings = [t for t in tests if t["finding"]]
    assert [t["metric"] for t in findings] == ["language"]
    line = findings[0]["line"]
    assert line.startswith("`language` shifted: ") and "`de` now against" in line and line.endswith("tested on.")
    assert findings[0]["effect_name"] == "PSI" and findings[0]["effect"] > 0.1
    assert all("q" in t and t["q"] >= t["p"] for t in tests)


def test_shifts_in_length_latency_and_errors_are_found():
    rng = random.Random(9)
    reference = _sample(rng, 500)
    window = _sample(rng, 500, length_mean=420, latency_mu=6.9, error_rate=0.12)
    found = {t["metric"] for t in drift.compare(reference, window, against="the 24 hours before") if t["finding"]}
    assert {"Length of `question`", "Latency", "Error rate"} <= found
    assert "language" not in found


def test_false_finding_rate_on_200_same_distribution_pairs_is_within_nominal():
    rng = random.Random(2026)
    alpha = 0.05
    pairs_with_a_finding = 0
    tests_run = 0
    for _ in range(200):
        tests = drift.compare(_sample(rng, 200), _sample(rng, 200), against="reference", alpha=alpha)
        tests_run += len(tests)
        pairs_with_a_finding += any(t["finding"] for t in tests)
    rate = pairs_with_a_finding / 200
    print(f"drift false-finding rate: {rate:.3f} of 200 pairs ({tests_run / 200:.0f} tests a pair), alpha {alpha}")
    # BH under the global null keeps P(any finding) <= alpha; 200 pairs give a binomial sd of about 1.5 points.
    assert rate <= alpha + 2 * (alpha * (1 - alpha) / 200) ** 0.5


def test_benjamini_hochberg_matches_the_textbook():
    # sorted 0.01, 0.03, 0.04, 0.2 with m = 4: 0.04, 0.06, 0.0533, 0.2, then the running minimum from the top
    assert drift.benjamini_hochberg([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])

"""Drift: a recent window of a prompt's generations against a reference, with honest statistics.

Each input variable is tested by its kind: categorical values (at most
MAX_CATEGORIES distinct) with Pearson's chi-square on the contingency table
(categories rarer than 5 expected rows pooled into "(other)") and the
Population Stability Index as the effect size; numbers, and the length of
free text, with the two-sample Kolmogorov-Smirnov test (effect: the statistic D).
The output is tested on its length (KS), its empty-or-refusal rate and its JSON
validity (two proportions: chi-square on the 2x2 table, effect: the difference
in points); operations on latency and cost per call (KS) and the error rate.
The p-values of all tests of one report are corrected together with
Benjamini-Hochberg; a finding is a test whose adjusted q is below `alpha`.
Under no drift at all, BH keeps the chance of any finding in a report at or
below `alpha` (tests/test_drift.py measures it on 200 window pairs).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

MAX_CATEGORIES = 20
MIN_ROWS = 20  # fewer rows on either side: the test is not run
REFUSAL = re.compile(r"^\s*(i'?m sorry|i am sorry|i can(no|')t|i am unable|i'?m unable|as an ai)\b", re.I)


@dataclass
class Sample:
    """What drift compares, for one side: one dict of variables, output text, latency, error, cost per generation."""

    variables: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[str] | None = None
    latency_ms: list[float] | None = None
    errors: list[bool] | None = None
    costs: list[float] | None = None
    embeddings: list[list[float]] | None = None  # of the outputs (or, against a dataset, the inputs)

    @property
    def size(self) -> int:
        return len(self.variables)


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Adjusted q-values (step-up), in the input order."""
    m = len(p_values)
    if not m:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = running
    return q


def psi(reference: list[float], window: list[float]) -> float:
    """Population Stability Index of two share vectors (shares floored at 1e-4)."""
    total = 0.0
    for r, w in zip(reference, window, strict=True):
        r, w = max(r, 1e-4), max(w, 1e-4)
        total += (w - r) * math.log(w / r)
    return total


def _percent(x: float) -> str:
    return f"{x * 100:.0f}%"


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def categorical_test(name: str, reference: list[str], window: list[str], against: str) -> dict[str, Any] | None:
    from scipy.stats import chi2_contingency

    if len(reference) < MIN_ROWS or len(window) < MIN_ROWS:
        return None
    ref, win = Counter(reference), Counter(window)
    n_ref, n_win = len(reference), len(window)
    categories = sorted(set(ref) | set(win), key=lambda c: -(ref[c] + win[c]))
    total = n_ref + n_win
    kept, pooled = [], []
    for c in categories:
        expected_min = (ref[c] + win[c]) * min(n_ref, n_win) / total
        (kept if expected_min >= 5 else pooled).append(c)
    table = [[ref[c] for c in kept], [win[c] for c in kept]]
    if pooled:
        table[0].append(sum(ref[c] for c in pooled))
        table[1].append(sum(win[c] for c in pooled))
    labels = kept + (["(other)"] if pooled else [])
    if len(labels) < 2:
        return None
    chi2, p, dof, _ = chi2_contingency(table, correction=False)
    ref_share = [x / n_ref for x in table[0]]
    win_share = [x / n_win for x in table[1]]
    stability = psi(ref_share, win_share)
    cramers_v = math.sqrt(chi2 / (total * (min(2, len(labels)) - 1)))
    moved = max(
        range(len(labels)), key=lambda i: (round(abs(win_share[i] - ref_share[i]), 9), win_share[i] - ref_share[i])
    )
    line = (
        f"`{name}` shifted: {_percent(win_share[moved])} `{labels[moved]}` now against "
        f"{_percent(ref_share[moved])} in {against}."
    )
    return {
        "metric": name,
        "group": "input",
        "test": "chi-square",
        "statistic": chi2,
        "p": float(p),
        "effect": stability,
        "effect_name": "PSI",
        "cramers_v": cramers_v,
        "line": line,
        "n_reference": n_ref,
        "n_window": n_win,
        "shown": {"kind": "categories", "categories": labels, "reference": ref_share, "window": win_share},
    }


def numeric_test(
    name: str, reference: list[float], window: list[float], against: str, *, group: str = "input", unit: str = ""
) -> dict[str, Any] | None:
    import numpy as np
    from scipy.stats import ks_2samp

    if len(reference) < MIN_ROWS or len(window) < MIN_ROWS:
        return None
    with warnings.catch_warnings():  # "exact calculation unsuccessful, switching to asymp": expected with ties
        warnings.simplefilter("ignore", RuntimeWarning)
        result = ks_2samp(reference, window)
    ref_median, win_median = float(np.median(reference)), float(np.median(window))
    direction = "rose" if win_median > ref_median else "fell" if win_median < ref_median else "changed shape"
    line = f"{name} {direction}: median {_fmt(win_median)}{unit} now against {_fmt(ref_median)}{unit} " f"in {against}."
    quantiles = [0.05, 0.25, 0.5, 0.75, 0.95]
    return {
        "metric": name,
        "group": group,
        "test": "Kolmogorov-Smirnov",
        "statistic": float(result.statistic),
        "p": float(result.pvalue),
        "effect": float(result.statistic),
        "effect_name": "D",
        "line": line,
        "n_reference": len(reference),
        "n_window": len(window),
        "shown": {
            "kind": "quantiles",
            "quantiles": quantiles,
            "reference": [float(x) for x in np.quantile(reference, quantiles)],
            "window": [float(x) for x in np.quantile(window, quantiles)],
        },
    }


def proportion_test(
    name: str, reference: list[bool], window: list[bool], against: str, *, group: str
) -> dict[str, Any] | None:
    from scipy.stats import chi2_contingency, fisher_exact

    if len(reference) < MIN_ROWS or len(window) < MIN_ROWS:
        return None
    a, b = sum(reference), sum(window)
    n_ref, n_win = len(reference), len(window)
    if a + b == 0 or a + b == n_ref + n_win:
        return None
    table = [[a, n_ref - a], [b, n_win - b]]
    if min(a + b, n_ref + n_win - a - b) * min(n_ref, n_win) / (n_ref + n_win) < 5:
        _, p = fisher_exact(table)
        statistic, test = None, "Fisher exact"
    else:
        statistic, p, _, _ = chi2_contingency(table, correction=False)
        test = "chi-square"
    r, w = a / n_ref, b / n_win
    h = 2 * math.asin(math.sqrt(w)) - 2 * math.asin(math.sqrt(r))
    direction = "rose" if w > r else "fell"
    line = f"{name} {direction}: {_percent(w)} now against {_percent(r)} in {against}."
    return {
        "metric": name,
        "group": group,
        "test": test,
        "statistic": statistic,
        "p": float(p),
        "effect": w - r,
        "effect_name": "difference",
        "cohens_h": h,
        "line": line,
        "n_reference": n_ref,
        "n_window": n_win,
        "shown": {"kind": "categories", "categories": ["yes", "no"], "reference": [r, 1 - r], "window": [w, 1 - w]},
    }


EMBED_MAX = 300  # texts embedded per side
PERMUTATIONS = 2000


def centroid_distance(a, b) -> float:
    """Cosine distance between the centroids of two sets of vectors (0: same direction)."""
    import numpy as np

    ca, cb = a.mean(axis=0), b.mean(axis=0)
    norm = float(np.linalg.norm(ca) * np.linalg.norm(cb))
    return 1.0 - float(ca @ cb) / norm if norm else 0.0


def embedding_test(
    name: str, reference: list[list[float]], window: list[list[float]], against: str, *, seed: int = 0
) -> dict[str, Any] | None:
    """Distance between the two windows' embedding centroids, with a permutation test of it (seeded).

    Under no drift the two sides are exchangeable: the p-value is the share of random relabellings of the pooled
    vectors whose centroids are at least as far apart, (1 + count) / (1 + PERMUTATIONS).
    """
    import numpy as np

    if len(reference) < MIN_ROWS or len(window) < MIN_ROWS:
        return None
    ref, win = np.asarray(reference, dtype=float), np.asarray(window, dtype=float)
    if ref.shape[1:] != win.shape[1:]:
        return None
    observed = centroid_distance(ref, win)
    pooled = np.vstack([ref, win])
    n_ref = len(ref)
    rng = np.random.default_rng(seed)
    at_least = 0
    for _ in range(PERMUTATIONS):
        order = rng.permutation(len(pooled))
        at_least += centroid_distance(pooled[order[:n_ref]], pooled[order[n_ref:]]) >= observed - 1e-12
    p = (1 + at_least) / (1 + PERMUTATIONS)
    line = (
        f"{name} moved: the centroids are {observed:.3f} apart (cosine distance) against {against}; "
        f"{p:.3g} of random splits of the same texts are as far apart."
    )
    return {
        "metric": name,
        "group": "output" if name.startswith("Output") else "input",
        "test": "permutation (centroid distance)",
        "statistic": observed,
        "p": float(p),
        "effect": observed,
        "effect_name": "cosine distance",
        "line": line,
        "n_reference": len(reference),
        "n_window": len(window),
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _json_valid(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def compare(reference: Sample, window: Sample, *, against: str, alpha: float = 0.05) -> list[dict[str, Any]]:
    """Every test that has enough rows, with BH-adjusted q-values and `finding` set where q < alpha."""
    tests: list[dict[str, Any] | None] = []
    names = sorted({k for row in reference.variables + window.variables for k in row})
    for name in names:
        ref_values = [row[name] for row in reference.variables if row.get(name) is not None]
        win_values = [row[name] for row in window.variables if row.get(name) is not None]
        both = ref_values + win_values
        if both and all(_is_number(v) for v in both):
            tests.append(
                numeric_test(f"`{name}`", [float(v) for v in ref_values], [float(v) for v in win_values], against)
            )
            continue
        as_text = [v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in both]
        if len(set(as_text)) <= MAX_CATEGORIES:
            tests.append(categorical_test(name, as_text[: len(ref_values)], as_text[len(ref_values) :], against))
        else:
            tests.append(
                numeric_test(
                    f"Length of `{name}`",
                    [len(v) for v in as_text[: len(ref_values)]],
                    [len(v) for v in as_text[len(ref_values) :]],
                    against,
                    unit=" characters",
                )
            )
    if reference.outputs is not None and window.outputs is not None:
        tests.append(
            numeric_test(
                "Output length",
                [len(o) for o in reference.outputs],
                [len(o) for o in window.outputs],
                against,
                group="output",
                unit=" characters",
            )
        )

        def refused(o: str) -> bool:
            return not o.strip() or bool(REFUSAL.match(o))

        tests.append(
            proportion_test(
                "Empty or refusal rate",
                [refused(o) for o in reference.outputs],
                [refused(o) for o in window.outputs],
                against,
                group="output",
            )
        )
        if any(o.lstrip()[:1] in "{[" and o.strip() for o in reference.outputs + window.outputs):
            tests.append(
                proportion_test(
                    "JSON validity",
                    [_json_valid(o) for o in reference.outputs],
                    [_json_valid(o) for o in window.outputs],
                    against,
                    group="output",
                )
            )
    if reference.latency_ms is not None and window.latency_ms is not None:
        tests.append(
            numeric_test("Latency", reference.latency_ms, window.latency_ms, against, group="operations", unit=" ms")
        )
    if reference.errors is not None and window.errors is not None:
        tests.append(proportion_test("Error rate", reference.errors, window.errors, against, group="operations"))
    if reference.costs is not None and window.costs is not None:
        tests.append(
            numeric_test("Cost per call", reference.costs, window.costs, against, group="operations", unit=" $")
        )
    if reference.embeddings is not None and window.embeddings is not None:
        name = "Output meaning (embeddings)" if reference.outputs is not None else "Input meaning (embeddings)"
        tests.append(embedding_test(name, reference.embeddings, window.embeddings, against))
    done = [t for t in tests if t is not None]
    for test, q in zip(done, benjamini_hochberg([t["p"] for t in done]), strict=True):
        test["q"] = q
        test["finding"] = q < alpha
    done.sort(key=lambda t: (not t["finding"], t["q"]))
    return done


# --- samples from the database ---------------------------------------------------------------------

MAX_ROWS = 5000  # per side: the newest rows of the window


def window_sample(*, project_id: int, prompt_id: int, start: datetime, end: datetime) -> Sample:
    from apps.traces.models import Span

    rows = list(
        Span.objects.filter(
            project_id=project_id,
            kind="generation",
            prompt_version__prompt_id=prompt_id,
            start_time__gte=start,
            start_time__lt=end,
        )
        .order_by("-start_time")
        .values_list("variables", "output_text", "duration_ms", "status", "cost")[:MAX_ROWS]
    )
    return Sample(
        variables=[r[0] or {} for r in rows],
        outputs=[r[1] or "" for r in rows],
        latency_ms=[r[2] or 0.0 for r in rows],
        errors=[r[3] == "error" for r in rows],
        costs=[float(r[4]) for r in rows if r[4] is not None] or None,
    )


def dataset_sample(*, dataset_version) -> Sample:
    rows = dataset_version.rows.select_related("item").order_by("position")[:MAX_ROWS]
    return Sample(variables=[r.item.input if isinstance(r.item.input, dict) else {} for r in rows])


def embed_samples(endpoint, reference: Sample, window: Sample) -> str:
    """Set both samples' embeddings through the gateway (the outputs, or the inputs against a dataset, at most
    EMBED_MAX each); returns the problem in words when the endpoint could not embed them, else ''."""
    from apps.providers import gateway

    def texts(sample: Sample, use_outputs: bool) -> list[str]:
        if use_outputs:
            return [o for o in sample.outputs or [] if o.strip()][:EMBED_MAX]
        return [json.dumps(v, sort_keys=True, ensure_ascii=False) for v in sample.variables if v][:EMBED_MAX]

    use_outputs = reference.outputs is not None and window.outputs is not None
    try:
        target = gateway.Target.from_endpoint(endpoint)
        for sample in (reference, window):
            found: list[list[float]] = []
            batch = texts(sample, use_outputs)
            for start in range(0, len(batch), 64):
                found += gateway.embed(target, batch[start : start + 64]).vectors
            sample.embeddings = found
    except gateway.GatewayError as exc:
        reference.embeddings = window.embeddings = None
        return f"{exc.label}: {exc.message}"
    return ""


def report_create(
    *, prompt, window_hours: int = 24, dataset_version=None, alpha: float = 0.05, now=None, embed_endpoint=None
):
    """Compare the last `window_hours` of a prompt's generations with the window before (or a dataset version);
    with `embed_endpoint`, also the meaning of the texts (embedding centroids, permutation test)."""
    from django.utils import timezone

    from apps.monitoring.models import DriftReport

    now = now or timezone.now()
    start = now - timedelta(hours=window_hours)
    window = window_sample(project_id=prompt.project_id, prompt_id=prompt.pk, start=start, end=now)
    if dataset_version is not None:
        reference = dataset_sample(dataset_version=dataset_version)
        against = f"dataset {dataset_version.dataset.name} v{dataset_version.number}"
        window = Sample(variables=window.variables)
        ref_start = ref_end = None
    else:
        ref_start, ref_end = start - timedelta(hours=window_hours), start
        reference = window_sample(project_id=prompt.project_id, prompt_id=prompt.pk, start=ref_start, end=ref_end)
        against = f"the {window_hours} hours before"
    described = against
    if embed_endpoint is not None:
        problem = embed_samples(embed_endpoint, reference, window)
        if problem:
            described = f"{against} (embedding drift not run: {problem})"[:200]
    tests = compare(reference, window, against=against, alpha=alpha)
    return DriftReport.objects.create(
        project_id=prompt.project_id,
        prompt=prompt,
        window_start=start,
        window_end=now,
        reference=described,
        reference_start=ref_start,
        reference_end=ref_end,
        alpha=alpha,
        tests=tests,
        finding_count=sum(1 for t in tests if t["finding"]),
    )

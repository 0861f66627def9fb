"""Embedding drift: the distance between two windows' embedding centroids with a permutation test, embedded through
the gateway (the local test server's embeddings: hashed bags of words, so texts on one topic are close)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from apps.monitoring import drift
from apps.traces import ingest
from apps.traces.records import native_batch
from apps.traces.tests.factories import generation, new_id

pytestmark = pytest.mark.django_db(transaction=True)

# Words of one length, so the outputs' lengths do not move, only their words.
SHIPPING = [f"ship{i:02d}" for i in range(8)]
REFUNDS = [f"cash{i:02d}" for i in range(8)]


def _send(project, start, words, rng, n=40):
    items = []
    for i in range(n):
        output = " ".join(rng.choice(words) for _ in range(8))
        items.append(generation(new_id(), start=start + timedelta(minutes=i), prompt={"name": "greet", "version": 1},
                                variables={"name": "Ada"}, output=output))  # fmt: skip
    spans, traces, scores = native_batch({"generations": items})
    batch = ingest.batch_accept(project_id=project.pk, source="native", spans=spans, traces=traces, scores=scores)
    ingest.batch_expand(batch_id=batch.pk)


def test_a_change_of_topic_is_found_in_the_outputs_meaning(released, simulated_endpoint, sim_server):
    rng = random.Random(3)
    now = datetime.now(UTC)
    _send(released.project, now - timedelta(hours=40), SHIPPING, rng)
    _send(released.project, now - timedelta(hours=10), SHIPPING[:4] + REFUNDS[:4], rng)
    embedder = simulated_endpoint("Embedder", "openai/echo")
    report = drift.report_create(prompt=released, window_hours=24, embed_endpoint=embedder, now=now)
    found = {t["metric"]: t for t in report.findings}
    meaning = found["Output meaning (embeddings)"]
    assert meaning["test"] == "permutation (centroid distance)" and meaning["q"] < 0.05
    assert meaning["effect"] > 0.1 and "centroids are" in meaning["line"]
    assert len(sim_server.requests("/embeddings")) == 2  # 40 texts a side, one call each
    assert "Output length" not in found  # same length: only the meaning moved

    same = drift.report_create(prompt=released, window_hours=24, embed_endpoint=embedder,
                               now=now - timedelta(hours=30) + timedelta(minutes=20))  # fmt: skip
    assert not same.findings or "Output meaning (embeddings)" not in {t["metric"] for t in same.findings}


def test_an_embedding_endpoint_that_fails_is_said_in_the_report(released, simulated_endpoint, sim_server):
    rng = random.Random(4)
    now = datetime.now(UTC)
    _send(released.project, now - timedelta(hours=40), SHIPPING, rng)
    _send(released.project, now - timedelta(hours=10), REFUNDS, rng)
    sim_server.configure(fail_500=1.0)
    embedder = simulated_endpoint("Embedder", "openai/echo", max_retries=0)
    report = drift.report_create(prompt=released, window_hours=24, now=now, embed_endpoint=embedder)
    assert "embedding drift not run: Provider error" in report.reference
    assert all(t["test"] != "permutation (centroid distance)" for t in report.tests)


def test_the_permutation_tests_false_finding_rate_is_within_nominal():
    import numpy as np

    rng = np.random.default_rng(11)
    rejections = 0
    pairs = 100
    for seed in range(pairs):
        pool = rng.normal(size=(60, 16)) + 1.0
        test = drift.embedding_test("Output meaning", pool[:30].tolist(), pool[30:].tolist(), "before", seed=seed)
        rejections += test["p"] < 0.05
    print(f"embedding drift: {rejections} of {pairs} same-distribution pairs had p < 0.05")
    assert rejections <= 11  # nominal 5 of 100; P(more than 11 | 5%) < 0.005
    reference, window = rng.normal(size=(30, 16)) + 1.0, rng.normal(size=(30, 16)) + 1.0
    window[:, :4] += 1.0  # the window leans towards four of the directions
    moved = drift.embedding_test("Output meaning", reference.tolist(), window.tolist(), "before")
    assert moved["p"] < 0.01

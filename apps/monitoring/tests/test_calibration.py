"""Judge calibration: the judge's pass/fail against the people's thumbs on the same production generations."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.monitoring import calibration, online
from apps.monitoring.models import OnlineEvaluation
from apps.monitoring.tests.test_online import _ingest, _rule, _traffic
from apps.traces.tests.factories import new_id

pytestmark = pytest.mark.django_db(transaction=True)


def _thumbs(project, keys, ups):
    """Thumbs on the generations: half on the span, half on the whole trace (both pair with the generation)."""
    scores = []
    for index, ((trace_id, span_id), up) in enumerate(zip(keys, ups, strict=True)):
        score = {"id": new_id(), "trace_id": trace_id, "name": "thumbs", "value": up}
        if index % 2:
            score["span_id"] = span_id
        scores.append(score)
    _ingest(project, [], scores)


def test_the_rule_page_shows_the_judges_kappa_against_the_peoples_thumbs(
    project, released, simulated_endpoint, sim_server, client_for, editor
):
    judge = simulated_endpoint("Judge", "openai/echo")
    rule = _rule(project, released, judge, sample_rate=1.0, human_score_name="thumbs")
    keys = _traffic(project, 60)  # the judge grades 1..5 in turn; it passes 3 and above
    online.evaluations_run(ids=list(OnlineEvaluation.objects.filter(rule=rule).values_list("pk", flat=True)))
    rated, grades = keys[:50], [1 + i % 5 for i in range(50)]
    ups = [grade >= 3 for grade in grades]
    flipped = [i for i, grade in enumerate(grades) if grade == 5][:5]
    for i in flipped:  # people disagree with the judge on five of its passes
        ups[i] = False
    _thumbs(project, rated, ups)

    found = calibration.rule_calibration(rule=rule)
    judged = next(e for e in found["evaluators"] if e["evaluator"] == "judge")
    # By hand: 25 both pass, 5 judge-only, 20 both fail: observed 0.9, expected 0.6*0.5 + 0.4*0.5 = 0.5.
    assert judged["n"] == 50
    assert judged["agreement"] == pytest.approx(0.9)
    assert judged["kappa"] == pytest.approx(0.8)
    assert 0.55 < judged["low"] < 0.8 < judged["high"] <= 1.0
    regex = next(e for e in found["evaluators"] if e["evaluator"] == "greets")
    assert regex["kappa"] == pytest.approx(0.0)  # always passes: no better than chance

    page = client_for(editor).get(reverse("monitoring:online_detail", args=[project.slug, rule.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'class="text-end kappa">0.80<' in html and "agrees with people" in html


def test_with_no_feedback_the_page_says_so(project, released, simulated_endpoint, sim_server, client_for, editor):
    judge = simulated_endpoint("Judge", "openai/echo")
    rule = _rule(project, released, judge, sample_rate=1.0)
    _traffic(project, 5)
    online.evaluations_run(ids=list(OnlineEvaluation.objects.filter(rule=rule).values_list("pk", flat=True)))
    assert calibration.rule_calibration(rule=rule)["human_score"] is None
    page = client_for(editor).get(reverse("monitoring:online_detail", args=[project.slug, rule.pk]))
    assert "No human feedback in this project yet" in page.content.decode()


def test_kappa_interval_is_undefined_for_one_generation_and_narrows_with_more():
    assert calibration.kappa_interval([True], [True]) == (None, None)
    small = calibration.kappa_interval([True, False] * 10, [True, False] * 9 + [False, True])
    large = calibration.kappa_interval([True, False] * 200, [True, False] * 180 + [False, True] * 20)
    assert small[1] - small[0] > large[1] - large[0] > 0

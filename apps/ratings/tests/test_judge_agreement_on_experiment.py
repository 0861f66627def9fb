"""Where an experiment has both an LLM judge and human ratings, its page shows the judge's agreement with people
next to the scores: Cohen's kappa with its 95% interval (the ratings app fills the experiments page's hook)."""

import re

import pytest

from apps.ratings import services, stats
from apps.ratings.summary import experiment_rating_summary
from apps.ratings.tests.factories import make_experiment

pytestmark = pytest.mark.django_db


def _rate(experiment, rater, *, disagree_at=()):
    """People rate as the judge scored (factories.default_score), except on the given rows of variant B."""
    judge, people = [], []
    for cell in experiment.cells.order_by("pk"):
        good = cell.variant.name != "A" or cell.position % 3 == 0
        said = (not good) if (cell.variant.name == "B" and cell.position in disagree_at) else good
        services.rating_submit(cell=cell, rater=rater, data={"score": "5" if said else "1"})
        judge.append(good)
        people.append(said)
    return judge, people


def test_the_page_shows_kappa_with_its_interval_next_to_the_judges_scores(client_for, project, editor, raters):
    experiment = make_experiment(project, editor, rows=12)
    judge, people = _rate(experiment, raters[0], disagree_at=(1, 5))
    expected = stats.cohen_kappa_interval(judge, people)
    (row,) = experiment_rating_summary(experiment=experiment)["judge_agreement"]
    assert row["n"] == 24 and row["kappa"] == pytest.approx(expected.estimate)
    assert (row["kappa_low"], row["kappa_high"]) == pytest.approx((expected.low, expected.high))
    assert row["kappa_low"] < row["kappa"] < row["kappa_high"] <= 1

    page = client_for(editor).get(f"/p/acme/experiments/{experiment.pk}/").content.decode()
    note = re.search(r'<ul[^>]*id="score-notes"[^>]*>(.*?)</ul>', page, re.S).group(1)
    assert "<strong>quality</strong>" in note
    interval = f"{expected.low:.2f} to {expected.high:.2f}"
    assert f"κ {expected.estimate:.2f} (95% CI {interval}, 24 cells rated by both)" in note


def test_without_human_ratings_there_is_no_note(client_for, project, editor):
    experiment = make_experiment(project, editor, rows=4)
    page = client_for(editor).get(f"/p/acme/experiments/{experiment.pk}/").content.decode()
    assert 'id="summary"' in page and 'id="score-notes"' not in page

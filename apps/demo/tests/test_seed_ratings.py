import pytest
from django.core.management import call_command

from apps.demo.ratings import EXPERIMENT_NAME
from apps.experiments.models import Experiment
from apps.ratings.models import Assignment, ExperimentLink
from apps.ratings.summary import experiment_rating_summary
from apps.reviews.models import ReleasePolicy

pytestmark = pytest.mark.django_db


def test_the_demo_has_a_rated_experiment_with_a_verdict_linked_to_the_open_review(settings):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    experiment = Experiment.objects.get(project__slug="demo", name=EXPERIMENT_NAME)
    summary = experiment_rating_summary(experiment=experiment, focus=("B", "A"))
    assert summary["verdict"].startswith(
        "B beats A on 60% of items (95% CI 51-68%, p = 0.018; 120 judgements by 3 raters"
    )
    assert summary["agreement"]["method"] == "krippendorff_alpha" and summary["judge_agreement"]
    link = ExperimentLink.objects.get(experiment=experiment)
    assert link.review.status == "open" and (link.candidate.name, link.baseline.name) == ("B", "A")
    assert ReleasePolicy.objects.get(project__slug="demo", label_name="production").evidence_rules["required"]
    assert Assignment.objects.filter(rater__username="demo", status="pending").count() == 40
    b = next(v for v in summary["variants"] if v["name"] == "B")
    assert b["n"] >= 30 and b["mean_rating"] >= 4.0

"""A first release under an evidence policy like the demo's `production`: no current version to beat, so the
win-rate rule does not apply and the ratings do; the review page says so and offers the experiment."""

import pytest
from django.core.management import call_command

from apps.demo.ratings import EXPERIMENT_NAME
from apps.experiments.models import Cell, Experiment
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.ratings import services
from apps.ratings.tests.factories import make_experiment
from apps.reviews import services as review_services
from apps.reviews.tests.factories import ReleasePolicyFactory

pytestmark = pytest.mark.django_db

RULES = {"required": True, "min_win_rate": 0.5, "max_p_value": 0.05, "min_mean_rating": 4.0, "min_ratings": 10}


@pytest.fixture
def first(project, member):
    author, reviewer, admin = member("editor", "alice"), member("reviewer", "rita"), member("admin", "adam")
    policy = ReleasePolicyFactory(project=project, label_name="production", required_approvals=1)
    services.evidence_rules_save(policy=policy, rules=RULES, actor=admin)
    prompt = PromptFactory(project=project, name="fresh")
    v1 = make_version(prompt, "Hello {{ question }}", actor=author, samples={"question": "x"})
    review = review_services.review_request_create(version=v1, label_name="production", actor=author)
    review_services.review_approve(review=review, actor=reviewer)
    return review, author, reviewer


def test_a_first_release_needs_the_ratings_but_no_win_rate(first, project, raters):
    review, author, reviewer = first
    with pytest.raises(review_services.ReviewError, match="mean rating >= 4 from at least 10 ratings"):
        review_services.review_release(review=review, actor=author, expected_current_version_id=None)
    experiment = make_experiment(project, author, rows=12, variant_names=("A",), versions=[review.version])
    services.experiment_link_create(review=review, experiment=experiment, actor=reviewer)
    for cell in experiment.cells.all():
        services.rating_submit(cell=cell, rater=raters[0], data={"score": "5"})
    review_services.review_release(review=review, actor=author, expected_current_version_id=None)
    review.refresh_from_db()
    assert review.status == "released"


def test_the_review_page_says_what_a_first_release_needs_and_offers_the_experiment(first, client_for):
    review, _, reviewer = first
    html = client_for(reviewer).get(f"/p/acme/reviews/{review.pk}/").content.decode()
    assert "A first release of production needs: mean rating &gt;= 4 from at least 10 ratings (required)" in html
    assert "win rate" not in html[html.index('id="release-checks"') :]
    start = f"/p/acme/experiments/new/?candidate={review.version_id}"
    assert f'href="{start}"' in html and f'href="/p/acme/ratings/reviews/{review.pk}/link/"' in html
    builder = client_for(reviewer).get(start).content.decode()
    chosen = builder[builder.index('name="variant-0-prompt_version"') :]
    assert f'<option value="{review.version_id}" selected>fresh v1</option>' in chosen[: chosen.index("</select>")]
    assert 'name="variant-TOTAL_FORMS" value="1"' in builder


def test_a_later_release_still_needs_the_win_rate(first, client_for, project):
    review, author, reviewer = first
    experiment = make_experiment(project, author, rows=12, variant_names=("A",), versions=[review.version])
    services.experiment_link_create(review=review, experiment=experiment, actor=reviewer)
    for cell in experiment.cells.all():
        services.rating_submit(cell=cell, rater=author, data={"score": "5"})
    review_services.review_release(review=review, actor=author, expected_current_version_id=None)
    v2 = make_version(review.prompt, "Hi {{ question }}", actor=author, samples={"question": "x"})
    second = review_services.review_request_create(version=v2, label_name="production", actor=author)
    html = client_for(reviewer).get(f"/p/acme/reviews/{second.pk}/").content.decode()
    assert "This release of production needs: win rate against the current version &gt;= 50%" in html
    assert f"candidate={v2.pk}&amp;baseline={review.version_id}" in html


def test_the_demo_experiment_on_the_free_local_model_costs_nothing(settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    experiment = Experiment.objects.get(project__slug="demo", name=EXPERIMENT_NAME)
    assert {v.endpoint.price_output_per_mtok for v in experiment.variants.all()} == {0}
    assert experiment.total_cost == 0
    assert not Cell.objects.filter(experiment=experiment, cost__gt=0).exists()

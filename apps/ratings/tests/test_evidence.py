"""Evidence on the review page, and the policy's thresholds blocking a release until they are met."""

import pytest

from apps.accounts.permissions import Forbidden
from apps.prompts.models import Label
from apps.prompts.tests.factories import PromptFactory, make_version
from apps.ratings import services, summary
from apps.ratings.models import ExperimentLink
from apps.ratings.tests.factories import judge_all, make_experiment
from apps.reviews import services as review_services
from apps.reviews.tests.factories import ReleasePolicyFactory, label_version_id, release

pytestmark = pytest.mark.django_db

RULES = {"required": True, "min_win_rate": 0.5, "max_p_value": 0.05, "min_mean_rating": 4.0, "min_ratings": 10}


@pytest.fixture
def cast(member):
    class Cast:
        author = member("editor", "alice")
        reviewer = member("reviewer", "rita")
        admin = member("admin", "adam")

    return Cast


@pytest.fixture
def setting(project, cast, raters):
    policy = ReleasePolicyFactory(project=project, label_name="production", required_approvals=1)
    prompt = PromptFactory(project=project, name="greet")
    v1 = make_version(prompt, "Hello {{ question }}", actor=cast.author, samples={"question": "x"})
    v2 = make_version(prompt, "Hi there, {{ question }}!", actor=cast.author, samples={"question": "x"})
    release(v1, requester=cast.author, approver=cast.admin)
    experiment = make_experiment(project, cast.author, rows=12, versions=[v1, v2])
    review = review_services.review_request_create(version=v2, label_name="production", actor=cast.author)
    review_services.review_approve(review=review, actor=cast.reviewer)
    return policy, prompt, experiment, review


def _release(review, cast):
    return review_services.review_release(
        review=review, actor=cast.author, expected_current_version_id=label_version_id(review.prompt)
    )


def _evidence_of_b(experiment, cast, raters):
    queue = services.queue_create(
        experiment=experiment, name="blind", kind="pairwise",
        variant_ids=list(experiment.variants.values_list("pk", flat=True)),
        raters_per_item=3, rater_ids=[r.pk for r in raters], actor=cast.author,
    )  # fmt: skip
    judge_all(queue, raters, lambda rater, p: "B" if p < 11 else "A")
    for cell in experiment.cells.filter(variant__name="B"):
        services.rating_submit(cell=cell, rater=raters[0], data={"score": "5" if cell.position % 4 else "4"})


def test_linking_finds_the_candidate_and_the_current_version_by_themselves(setting, cast):
    _, _, experiment, review = setting
    link = services.experiment_link_create(review=review, experiment=experiment, actor=cast.author)
    assert (link.candidate.name, link.baseline.name) == ("B", "A")
    with pytest.raises(services.RatingError, match="already linked"):
        services.experiment_link_create(review=review, experiment=experiment, actor=cast.author)


def test_thresholds_block_the_release_until_they_are_met(setting, cast, raters):
    policy, prompt, experiment, review = setting
    services.evidence_rules_save(policy=policy, rules=RULES, actor=cast.admin)
    with pytest.raises(review_services.ReviewError, match="requires evidence"):
        _release(review, cast)  # nothing linked yet
    services.experiment_link_create(review=review, experiment=experiment, actor=cast.author)
    with pytest.raises(review_services.ReviewError, match=r"win rate against the current version >= 50% with p < 0.05"):
        _release(review, cast)
    assert Label.objects.get(prompt=prompt, name="production").version.number == 1
    _evidence_of_b(experiment, cast, raters)
    _release(review, cast)
    assert Label.objects.get(prompt=prompt, name="production").version.number == 2


def test_thresholds_that_are_not_required_are_shown_but_do_not_block(setting, cast):
    policy, prompt, experiment, review = setting
    services.evidence_rules_save(policy=policy, rules={**RULES, "required": False}, actor=cast.admin)
    services.experiment_link_create(review=review, experiment=experiment, actor=cast.author)
    _release(review, cast)
    assert Label.objects.get(prompt=prompt, name="production").version.number == 2


def test_only_an_admin_sets_thresholds_and_bad_ones_are_named(setting, cast):
    policy, *_ = setting
    with pytest.raises(Forbidden):
        services.evidence_rules_save(policy=policy, rules=RULES, actor=cast.author)
    with pytest.raises(services.RatingError, match="Name the evaluator"):
        services.evidence_rules_save(policy=policy, rules={"min_pass_rate": 0.9}, actor=cast.admin)
    with pytest.raises(services.RatingError, match="Set at least one threshold"):
        services.evidence_rules_save(policy=policy, rules={"required": True}, actor=cast.admin)


def test_the_review_page_shows_the_verdict_charts_and_each_threshold_met_or_not(setting, cast, raters, client_for):
    policy, _, experiment, review = setting
    services.evidence_rules_save(
        policy=policy, rules={**RULES, "min_pass_rate": 0.95, "pass_rate_evaluator": "quality"}, actor=cast.admin
    )
    services.experiment_link_create(review=review, experiment=experiment, actor=cast.author)
    client = client_for(cast.reviewer)
    html = client.get(f"/p/acme/reviews/{review.pk}/").content.decode()
    assert "No pairwise judgements yet" in html and "✖ not met" in html
    assert 'id="release-form"' not in html and "Release is blocked" in html
    _evidence_of_b(experiment, cast, raters)
    html = client.get(f"/p/acme/reviews/{review.pk}/").content.decode()
    assert "B beats A on 92% of items" in html and "36 judgements by 3 raters" in html
    assert "✔ met: win rate against the current version &gt;= 50% with p &lt; 0.05" in html
    assert "✔ met: mean rating &gt;= 4 from at least 10 ratings" in html
    assert "✔ met: pass rate of evaluator quality &gt;= 95%" in html
    assert 'data-figure="' in html and "plotly-cartesian.min.js" in html
    author_html = client_for(cast.author).get(f"/p/acme/reviews/{review.pk}/").content.decode()
    assert 'id="release-form"' in author_html


def test_the_review_page_computes_each_summary_once(setting, cast, client_for, monkeypatch):
    policy, _, experiment, review = setting
    services.evidence_rules_save(policy=policy, rules=RULES, actor=cast.admin)
    services.experiment_link_create(review=review, experiment=experiment, actor=cast.author)
    calls = []
    real = summary.experiment_rating_summary
    monkeypatch.setattr(summary, "experiment_rating_summary", lambda **kw: calls.append(kw) or real(**kw))
    html = client_for(cast.reviewer).get(f"/p/acme/reviews/{review.pk}/").content.decode()
    assert "✖ not met" in html  # the checks ran, on the same summary as the evidence
    assert len(calls) == 1


def test_an_unlinked_experiment_of_the_version_is_offered_for_linking(setting, cast, client_for):
    _, _, experiment, review = setting
    html = client_for(cast.author).get(f"/p/acme/reviews/{review.pk}/").content.decode()
    assert f"{experiment.name} tested v2: link it as evidence" in html
    response = client_for(cast.author).post(f"/p/acme/ratings/reviews/{review.pk}/link/", {"experiment": experiment.pk})
    assert response.status_code == 302 and ExperimentLink.objects.filter(review=review).count() == 1


def test_the_policy_page_links_each_protected_label_to_its_evidence_thresholds(setting, cast, client_for):
    client = client_for(cast.admin)
    html = client.get("/p/acme/reviews/policies/").content.decode()
    assert 'href="/p/acme/ratings/policies/production/thresholds/"' in html
    assert client.get("/p/acme/ratings/policies/production/thresholds/").status_code == 200

"""A rater works a blind queue by keyboard; a reviewer reads the evidence next to the diff."""

import pytest

from apps.prompts.tests.factories import PromptFactory, make_version
from apps.ratings import services
from apps.ratings.models import PairwiseJudgement, Rating
from apps.ratings.tests.factories import judge_all, make_experiment
from apps.reviews import services as review_services
from apps.reviews.tests.factories import ReleasePolicyFactory, release

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_rater_works_a_blind_queue_by_keyboard(page, login_page, project, editor, raters):
    experiment = make_experiment(
        project, editor, rows=4, variant_names=("HIDDEN-ONE", "HIDDEN-TWO"),
        output=lambda v, p, r, item: f"reply {p} " + ("short" if v.endswith("ONE") else "long and kind"),
    )  # fmt: skip
    services.queue_create(
        experiment=experiment, name="Blind review", kind="pairwise",
        variant_ids=list(experiment.variants.values_list("pk", flat=True)),
        raters_per_item=1, rater_ids=[raters[0].pk], actor=editor,
    )  # fmt: skip
    login_page(raters[0])
    page.goto("/p/acme/ratings/")
    page.locator("#queues").get_by_role("link", name="Rate", exact=True).click()
    # The keys work once the page's deferred script has run: a key pressed before it would be lost (seen on a
    # busy CI machine, where the queue showed before its script ran).
    page.wait_for_load_state("load")
    bar = page.get_by_role("progressbar", name="Your progress")
    assert bar.get_attribute("aria-valuenow") == "0"
    assert "HIDDEN" not in page.content()
    page.get_by_text("1 left, 2 right, 3 tie", exact=False).wait_for()
    for key, done in (("1", "25"), ("2", "50"), ("3", "75")):
        page.keyboard.press(key)
        page.locator(f'[aria-label="Your progress"][aria-valuenow="{done}"]').wait_for()
        assert "HIDDEN" not in page.content()
    page.keyboard.press("r")
    page.keyboard.type("clearer answer")
    page.locator("#judge-form button[data-key='1']").focus()
    page.keyboard.press("1")
    page.locator("#queue-done").wait_for()
    assert bar.get_attribute("aria-valuenow") == "100"
    choices = sorted(PairwiseJudgement.objects.values_list("choice", flat=True))
    assert choices == ["left", "left", "right", "tie"]
    assert PairwiseJudgement.objects.filter(reason="clearer answer").count() == 1


def test_an_editor_rates_outputs_on_the_comparison_page_by_keyboard(page, login_page, project, editor):
    experiment = make_experiment(project, editor, rows=3)
    login_page(editor)
    page.goto(f"/p/acme/ratings/experiments/{experiment.pk}/compare/")
    page.keyboard.press("j")
    page.keyboard.press("4")
    page.locator(".my-rating").first.wait_for()
    page.keyboard.press("l")
    page.keyboard.press("2")
    page.locator(".my-rating").nth(1).wait_for()
    page.keyboard.press("j")
    page.keyboard.press("5")
    page.locator(".my-rating").nth(2).wait_for()
    scores = {(r.cell.position, r.cell.variant.name): r.score for r in Rating.objects.select_related("cell__variant")}
    assert scores == {(0, "A"): 4, (0, "B"): 2, (1, "A"): 5}


def test_a_reviewer_reads_the_evidence_next_to_the_diff(page, login_page, project, member, raters):
    author, reviewer, admin = member("editor", "alice"), member("reviewer", "rita"), member("admin", "adam")
    policy = ReleasePolicyFactory(project=project, label_name="production", required_approvals=1)
    prompt = PromptFactory(project=project, name="greet")
    v1 = make_version(prompt, "Hello {{ question }}", actor=author, samples={"question": "x"})
    v2 = make_version(prompt, "Hi there, {{ question }}!", actor=author, samples={"question": "x"})
    release(v1, requester=author, approver=admin)
    experiment = make_experiment(project, author, rows=12, versions=[v1, v2])
    review = review_services.review_request_create(version=v2, label_name="production", actor=author)
    services.evidence_rules_save(
        policy=policy, rules={"required": True, "min_win_rate": 0.5, "max_p_value": 0.05}, actor=admin
    )
    services.experiment_link_create(review=review, experiment=experiment, actor=author)
    queue = services.queue_create(
        experiment=experiment, name="blind", kind="pairwise",
        variant_ids=list(experiment.variants.values_list("pk", flat=True)),
        raters_per_item=3, rater_ids=[r.pk for r in raters], actor=author,
    )  # fmt: skip
    judge_all(queue, raters, lambda rater, p: "B" if p < 10 else "tie")

    login_page(reviewer)
    page.goto(f"/p/acme/reviews/{review.pk}/")
    evidence = page.locator("#evidence")
    evidence.get_by_text("B beats A on 92% of items").wait_for()
    assert "36 judgements by 3 raters" in evidence.inner_text()
    assert "✔ met: win rate against the current version >= 50% with p < 0.05" in evidence.inner_text()
    assert "Hi there" in page.locator("#diff").inner_text()
    evidence.locator(".js-plotly-plot").first.wait_for()  # the charts were drawn by the vendored plotly
    page.locator("#release-checks").get_by_text("met", exact=False).first.wait_for()
    page.get_by_role("link", name="All statistics").click()
    page.locator("#verdict").get_by_text("B beats A").wait_for()

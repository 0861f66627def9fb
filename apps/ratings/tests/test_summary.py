"""The summary the studio, the review evidence and the REST API read: built from real judgements and ratings."""

import pytest

from apps.ratings import services, stats
from apps.ratings.summary import experiment_rating_summary
from apps.ratings.tests.factories import judge_all, make_experiment

# scipy is the independent reference here (imported lazily in the app itself).
scipy_stats = pytest.importorskip("scipy.stats")

pytestmark = pytest.mark.django_db


def _queue(experiment, editor, raters, n=None, names=("A", "B")):
    return services.queue_create(
        experiment=experiment, name="blind", kind="pairwise",
        variant_ids=list(experiment.variants.filter(name__in=names).values_list("pk", flat=True)),
        raters_per_item=n or len(raters), rater_ids=[r.pk for r in raters], actor=editor,
    )  # fmt: skip


def test_the_summary_counts_wins_losses_and_ties_whatever_side_they_were_shown_on(project, editor, raters):
    experiment = make_experiment(project, editor, rows=20)
    queue = _queue(experiment, editor, raters)
    # B wins rows 0-11, A wins rows 12-15, rows 16-19 are ties; all three raters agree.
    judge_all(queue, raters, lambda rater, p: "B" if p < 12 else ("A" if p < 16 else "tie"))
    summary = experiment_rating_summary(experiment=experiment)
    (pair,) = summary["pairs"]
    assert (pair["variant"], pair["against"]) == ("B", "A")
    assert (pair["wins"], pair["losses"], pair["ties"], pair["n"], pair["raters"]) == (36, 12, 12, 60, 3)
    assert pair["win_rate"] == pytest.approx((36 + 6) / 60)
    assert pair["p_value"] == pytest.approx(scipy_stats.binomtest(36, 48).pvalue)
    ci = scipy_stats.binomtest(42, 60).proportion_ci(method="wilson")
    assert pair["ci_low"] == pytest.approx(ci.low) and pair["ci_high"] == pytest.approx(ci.high)
    assert summary["agreement"]["method"] == "krippendorff_alpha" and summary["agreement"]["value"] == pytest.approx(
        1.0
    )
    assert summary["verdict"].startswith("B beats A on 70% of items (95% CI")
    assert "60 judgements by 3 raters, 12 ties" in summary["verdict"]


def test_two_raters_are_measured_with_cohens_kappa(project, editor, raters):
    experiment = make_experiment(project, editor, rows=8)
    queue = _queue(experiment, editor, raters[:2])
    judge_all(queue, raters[:2], lambda rater, p: "B" if (p < 4 or rater == raters[0]) else "A")
    agreement = experiment_rating_summary(experiment=experiment)["agreement"]
    first = [1.0] * 8
    second = [1.0] * 4 + [0.0] * 4
    assert agreement["method"] == "cohen_kappa" and agreement["raters"] == 2 and agreement["units"] == 8
    assert agreement["value"] == pytest.approx(stats.cohen_kappa(first, second))


def test_mean_ratings_have_bootstrap_intervals_and_n(project, editor, raters):
    experiment = make_experiment(project, editor, rows=5)
    for position in range(5):
        for rater, score in zip(raters, (4, 5, 4), strict=True):
            cell = experiment.cells.get(variant__name="B", position=position)
            services.rating_submit(cell=cell, rater=rater, data={"score": str(score)})
    summary = experiment_rating_summary(experiment=experiment)
    b = next(v for v in summary["variants"] if v["name"] == "B")
    expected = stats.bootstrap_mean([4, 5, 4] * 5)
    assert (b["mean_rating"], b["ci_low"], b["ci_high"], b["n"]) == (
        pytest.approx(13 / 3), expected.low, expected.high, 15,
    )  # fmt: skip
    assert b["distribution"] == {"4": 10, "5": 5}
    a = next(v for v in summary["variants"] if v["name"] == "A")
    assert a["n"] == 0 and a["mean_rating"] is None
    pass_rate = b["pass_rates"][0]
    assert pass_rate["evaluator"] == "quality" and pass_rate["rate"] == 1.0 and pass_rate["n"] == 5
    assert summary["rating_agreement"]["method"] == "krippendorff_alpha"


def test_more_than_two_variants_are_ranked_by_bradley_terry(project, editor, raters):
    experiment = make_experiment(project, editor, rows=6, variant_names=("A", "B", "C"))
    queue = _queue(experiment, editor, raters[:1], names=("A", "B", "C"))
    ranks = {"C": 3, "B": 2, "A": 1}

    from apps.ratings.models import Assignment

    for assignment in Assignment.objects.filter(item__queue=queue).select_related(
        "left_cell__variant", "right_cell__variant"
    ):
        left, right = assignment.left_cell.variant.name, assignment.right_cell.variant.name
        # The better-ranked variant wins 5 rows of 6.
        better = left if ranks[left] > ranks[right] else right
        worse = right if better == left else left
        winner = better if assignment.item.position != 0 else worse
        services.judgement_submit(
            queue=queue, token=assignment.token, rater=raters[0], choice="left" if winner == left else "right"
        )
    summary = experiment_rating_summary(experiment=experiment)
    assert [r["name"] for r in summary["ranking"]] == ["C", "B", "A"]
    assert len(summary["pairs"]) == 3


def test_the_llm_judge_is_compared_with_the_people(project, editor, raters):
    experiment = make_experiment(project, editor, rows=12)
    for cell in experiment.cells.all():
        good = cell.variant.name != "A" or cell.position % 3 == 0  # what the judge said (factories.default_score)
        services.rating_submit(cell=cell, rater=raters[0], data={"score": "5" if good else "1"})
    (judge,) = experiment_rating_summary(experiment=experiment)["judge_agreement"]
    assert judge["evaluator"] == "quality" and judge["n"] == 24
    assert judge["kappa"] == pytest.approx(1.0) and judge["pass_agreement"] == 1.0
    assert judge["spearman"] == pytest.approx(1.0) and judge["trust"] == "agrees with people well"


def test_paired_automatic_scores_use_wilcoxon_over_items_with_repeats_averaged(project, editor):
    experiment = make_experiment(project, editor, rows=9, repeats=2)
    (test,) = experiment_rating_summary(experiment=experiment)["paired_scores"]
    # Per row, A scores 0.9 on rows 0, 3, 6 and 0.2 elsewhere; B always 0.9: six rows differ by +0.7.
    expected = scipy_stats.wilcoxon([0.0, 0.7, 0.7] * 3, zero_method="wilcox")
    assert test["n"] == 9 and test["p_value"] == pytest.approx(expected.pvalue)
    assert test["mean_difference"] == pytest.approx(0.7 * 6 / 9)


def test_without_judgements_the_verdict_says_so(experiment):
    summary = experiment_rating_summary(experiment=experiment)
    assert summary["pairs"] == [] and summary["agreement"] is None
    assert summary["verdict"].startswith("No pairwise judgements yet")

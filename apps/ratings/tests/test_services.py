"""Rating forms, ratings, annotation queues: assignment, blind order, submission, others' answers hidden."""

import pytest

from apps.accounts.permissions import Forbidden
from apps.audit.models import AuditEvent
from apps.ratings import selectors, services
from apps.ratings.models import Assignment, AssignmentStatus, PairwiseJudgement, QueueItem, Rating
from apps.ratings.tests.factories import make_experiment

pytestmark = pytest.mark.django_db


def _variant_ids(experiment, names=("A", "B")):
    return list(experiment.variants.filter(name__in=names).values_list("pk", flat=True))


def test_it_saves_a_rating_form_and_refuses_a_form_without_questions(experiment, editor):
    form = services.rating_form_save(
        experiment=experiment,
        definition={"thumbs": False, "scale": {"min": 1, "max": 5}, "labels": "correct, wrong", "criteria": ["tone"]},
        actor=editor,
    )
    assert form.definition["labels"] == ["correct", "wrong"] and form.definition["criteria"] == ["tone"]
    assert AuditEvent.objects.filter(action="rating_form.saved").exists()
    with pytest.raises(services.RatingError, match="at least one question"):
        services.rating_form_save(experiment=experiment, definition={"thumbs": False, "scale": None}, actor=editor)
    with pytest.raises(services.RatingError, match="Unknown rating form field 'stars'"):
        services.form_definition_clean({"stars": 5})


def test_a_rating_is_checked_against_the_form_and_replaced_not_duplicated(experiment, editor):
    cell = experiment.cells.get(variant__name="A", position=0)
    services.rating_submit(cell=cell, rater=editor, data={"score": "4", "thumb": "up"}, comment="fine")
    services.rating_submit(cell=cell, rater=editor, data={"score": "2"})
    rating = Rating.objects.get(cell=cell, rater=editor)
    assert rating.score == 2 and rating.thumb_up is None and Rating.objects.filter(cell=cell).count() == 1
    with pytest.raises(services.RatingError, match="Score must be from 1 to 5, not 9"):
        services.rating_submit(cell=cell, rater=editor, data={"score": "9"})
    with pytest.raises(services.RatingError, match="Give at least one answer"):
        services.rating_submit(cell=cell, rater=editor, data={})


def test_a_viewer_cannot_rate(experiment, member):
    viewer = member("viewer", "vera")
    with pytest.raises(Forbidden):
        services.rating_submit(cell=experiment.cells.first(), rater=viewer, data={"score": "3"})


def test_a_queue_gives_every_item_n_distinct_raters_in_fair_shares(experiment, editor, raters):
    queue = services.queue_create(
        experiment=experiment, name="blind", kind="pairwise", variant_ids=_variant_ids(experiment),
        raters_per_item=2, rater_ids=[r.pk for r in raters], actor=editor,
    )  # fmt: skip
    items = list(queue.items.all())
    assert len(items) == 6
    for item in items:
        assert item.assignments.count() == 2 and item.assigned_count == 2
        assert len({a.rater_id for a in item.assignments.all()}) == 2
    shares = [Assignment.objects.filter(rater=r).count() for r in raters]
    assert sum(shares) == 12 and max(shares) - min(shares) <= 1
    with pytest.raises(services.RatingError, match="4 raters per item needs at least 4 raters"):
        services.queue_create(
            experiment=experiment, name="x", kind="pairwise", variant_ids=_variant_ids(experiment),
            raters_per_item=4, rater_ids=[r.pk for r in raters], actor=editor,
        )  # fmt: skip


def test_a_pair_stores_its_order_and_the_judgement_keeps_it(experiment, editor, raters):
    queue = services.queue_create(
        experiment=experiment, name="blind", kind="pairwise", variant_ids=_variant_ids(experiment),
        raters_per_item=1, rater_ids=[raters[0].pk], actor=editor,
    )  # fmt: skip
    assignment = selectors.next_assignment(queue=queue, rater=raters[0])
    judgement = services.judgement_submit(queue=queue, token=assignment.token, rater=raters[0], choice="left")
    assert (judgement.left_cell_id, judgement.right_cell_id) == (assignment.left_cell_id, assignment.right_cell_id)
    assert judgement.left_cell.position == judgement.right_cell.position == assignment.item.position
    assert {judgement.left_cell.variant.name, judgement.right_cell.variant.name} == {"A", "B"}


def test_left_and_right_are_balanced_over_many_items(project, editor, raters):
    experiment = make_experiment(project, editor, rows=200)
    queue = services.queue_create(
        experiment=experiment, name="blind", kind="pairwise", variant_ids=_variant_ids(experiment),
        raters_per_item=1, rater_ids=[raters[0].pk], actor=editor,
    )  # fmt: skip
    assignments = Assignment.objects.filter(item__queue=queue).select_related("left_cell__variant")
    a_on_left = sum(1 for a in assignments if a.left_cell.variant.name == "A")
    assert len(assignments) == 200 and 80 <= a_on_left <= 120
    # Not simply alternating by row either: the order follows no pattern a rater could learn.
    by_row = [a.left_cell.variant.name for a in sorted(assignments, key=lambda a: a.item.position)]
    assert by_row != ["A", "B"] * 100 and by_row != ["B", "A"] * 100


def test_a_double_submission_records_one_judgement(experiment, editor, raters):
    queue = services.queue_create(
        experiment=experiment, name="blind", kind="pairwise", variant_ids=_variant_ids(experiment),
        raters_per_item=1, rater_ids=[raters[0].pk], actor=editor,
    )  # fmt: skip
    token = selectors.next_assignment(queue=queue, rater=raters[0]).token
    services.judgement_submit(queue=queue, token=token, rater=raters[0], choice="tie")
    with pytest.raises(services.RatingError, match="already submitted"):
        services.judgement_submit(queue=queue, token=token, rater=raters[0], choice="left")
    assert PairwiseJudgement.objects.count() == 1 and PairwiseJudgement.objects.get().choice == "tie"


def test_a_rater_cannot_submit_another_raters_item(experiment, editor, raters):
    queue = services.queue_create(
        experiment=experiment, name="blind", kind="pairwise", variant_ids=_variant_ids(experiment),
        raters_per_item=1, rater_ids=[raters[0].pk], actor=editor,
    )  # fmt: skip
    token = selectors.next_assignment(queue=queue, rater=raters[0]).token
    with pytest.raises(services.RatingError, match="not in your queue"):
        services.judgement_submit(queue=queue, token=token, rater=raters[1], choice="left")
    assert not PairwiseJudgement.objects.exists()


def test_an_open_queue_is_claimed_without_exceeding_n_raters(experiment, editor, raters):
    queue = services.queue_create(
        experiment=experiment, name="open", kind="pairwise", variant_ids=_variant_ids(experiment),
        raters_per_item=2, rater_ids=[], actor=editor,
    )  # fmt: skip
    assert services.queue_claim(queue=queue, rater=raters[0], count=4) == 4
    assert services.queue_claim(queue=queue, rater=raters[0], count=10) == 2  # the rest, never twice the same
    assert services.queue_claim(queue=queue, rater=raters[1], count=10) == 6
    assert services.queue_claim(queue=queue, rater=raters[2], count=10) == 0  # every item has its 2 raters
    assert set(QueueItem.objects.filter(queue=queue).values_list("assigned_count", flat=True)) == {2}


def test_a_rating_queue_rates_single_outputs_with_the_form(experiment, editor, raters):
    queue = services.queue_create(
        experiment=experiment, name="rate A", kind="rating", variant_ids=_variant_ids(experiment, ["A"]),
        raters_per_item=1, rater_ids=[raters[0].pk], actor=editor,
    )  # fmt: skip
    assignment = selectors.next_assignment(queue=queue, rater=raters[0])
    rating = services.queue_rating_submit(queue=queue, token=assignment.token, rater=raters[0], data={"score": "5"})
    assert rating.cell_id == assignment.item.cell_id and rating.score == 5
    assert Assignment.objects.get(pk=assignment.pk).status == AssignmentStatus.DONE


def test_others_answers_are_hidden_until_the_rater_has_answered(experiment, editor, raters):
    first, second = raters[0], raters[1]
    cell = experiment.cells.get(variant__name="B", position=0)
    services.rating_submit(cell=cell, rater=first, data={"score": "5"})
    rows, _ = selectors.comparison_rows(experiment=experiment, user=second)
    view = next(c for c in rows[0].variants["B"] if c.cell.pk == cell.pk)
    assert view.my_rating is None and view.others == []
    services.rating_submit(cell=cell, rater=second, data={"score": "3"})
    rows, _ = selectors.comparison_rows(experiment=experiment, user=second)
    view = next(c for c in rows[0].variants["B"] if c.cell.pk == cell.pk)
    assert [r.score for r in view.others] == [5]


def test_comparison_filters_find_failed_low_unrated_and_disagreeing_items(project, editor):
    experiment = make_experiment(
        project,
        editor,
        rows=4,
        output=lambda v, p, r, item: "same" if p == 3 else f"{v} {p}",
        failed=lambda v, p, r: v == "B" and p == 1,
    )
    assert [r.position for r in selectors.comparison_rows(experiment=experiment, user=editor, only="failed")[0]] == [1]
    low = [r.position for r in selectors.comparison_rows(experiment=experiment, user=editor, only="low")[0]]
    assert low == [1, 2]  # A fails its judge off every third row; B's row 1 failed outright
    disagree = [r.position for r in selectors.comparison_rows(experiment=experiment, user=editor, only="disagree")[0]]
    assert 3 not in disagree and 0 in disagree
    services.rating_submit(cell=experiment.cells.get(variant__name="A", position=0), rater=editor, data={"score": "3"})
    unrated = [r.position for r in selectors.comparison_rows(experiment=experiment, user=editor, only="unrated")[0]]
    assert unrated == [1, 2, 3]
    by_score = [
        r.position for r in selectors.comparison_rows(experiment=experiment, user=editor, sort="score:quality")[0]
    ]
    assert by_score[:2] == [1, 2]


def test_repeats_are_shown_together_and_differences_highlighted(project, editor):
    experiment = make_experiment(project, editor, rows=2, repeats=2)
    rows, _ = selectors.comparison_rows(experiment=experiment, user=editor)
    assert [c.cell.repeat for c in rows[0].variants["B"]] == [0, 1]
    assert "diff-ins" in rows[0].variants["B"][0].diff_html and "politely" in rows[0].variants["B"][0].diff_html

"""Raters working at the same moment, in threads with their own database connections."""

import threading

import pytest
from django.db import connection

from apps.ratings import selectors, services
from apps.ratings.models import Assignment, PairwiseJudgement, QueueItem
from apps.ratings.tests.factories import make_experiment

pytestmark = pytest.mark.django_db(transaction=True)


def _in_threads(functions):
    barrier = threading.Barrier(len(functions))
    errors, results = [], []

    def run(function):
        try:
            barrier.wait()
            results.append(function())
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(f,)) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results, errors


def test_concurrent_raters_never_push_an_item_past_its_raters_nor_take_it_twice(project, editor, member):
    experiment = make_experiment(project, editor, rows=30)
    queue = services.queue_create(
        experiment=experiment, name="open", kind="pairwise",
        variant_ids=list(experiment.variants.values_list("pk", flat=True)),
        raters_per_item=2, rater_ids=[], actor=editor,
    )  # fmt: skip
    raters = [member("editor", f"fast{i}") for i in range(5)]

    # Each rater claims from two tabs at once, again and again, until nothing is left.
    def claim_all(rater):
        def claim():
            taken = 0
            while (more := services.queue_claim(queue=queue, rater=rater, count=3)) or (
                selectors.rater_progress(queue=queue, rater=rater).claimable and taken < 100
            ):
                taken += more
            return taken

        return claim

    results, errors = _in_threads([claim_all(r) for r in raters for _ in range(2)])
    assert errors == []
    assert Assignment.objects.filter(item__queue=queue).count() == 60 == sum(results)
    for item in QueueItem.objects.filter(queue=queue):
        raters_of_item = list(item.assignments.values_list("rater_id", flat=True))
        assert len(raters_of_item) == item.assigned_count == 2 and len(set(raters_of_item)) == 2


def test_the_same_judgement_sent_twice_at_once_is_recorded_once(project, editor, member):
    experiment = make_experiment(project, editor, rows=3)
    rater = member("editor", "twotabs")
    queue = services.queue_create(
        experiment=experiment, name="blind", kind="pairwise",
        variant_ids=list(experiment.variants.values_list("pk", flat=True)),
        raters_per_item=1, rater_ids=[rater.pk], actor=editor,
    )  # fmt: skip
    token = selectors.next_assignment(queue=queue, rater=rater).token

    def submit(choice):
        return lambda: services.judgement_submit(queue=queue, token=token, rater=rater, choice=choice)

    results, errors = _in_threads([submit("left"), submit("right"), submit("tie"), submit("left")])
    assert len(results) == 1 and len(errors) == 3
    assert all(isinstance(e, services.RatingError) and "already submitted" in str(e) for e in errors)
    assert PairwiseJudgement.objects.count() == 1


def test_many_raters_judging_their_queues_at_once_lose_nothing(project, editor, member):
    experiment = make_experiment(project, editor, rows=15)
    raters = [member("editor", f"busy{i}") for i in range(3)]
    queue = services.queue_create(
        experiment=experiment, name="blind", kind="pairwise",
        variant_ids=list(experiment.variants.values_list("pk", flat=True)),
        raters_per_item=3, rater_ids=[r.pk for r in raters], actor=editor,
    )  # fmt: skip

    def work(rater):
        def run():
            count = 0
            while (assignment := selectors.next_assignment(queue=queue, rater=rater)) is not None:
                services.judgement_submit(queue=queue, token=assignment.token, rater=rater, choice="right")
                count += 1
            return count

        return run

    results, errors = _in_threads([work(r) for r in raters])
    assert errors == [] and sorted(results) == [15, 15, 15]
    assert PairwiseJudgement.objects.filter(experiment=experiment).count() == 45

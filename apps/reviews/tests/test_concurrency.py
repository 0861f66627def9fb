"""Two releases of different versions to one label at the same moment: exactly one wins."""

import threading

import pytest
from django.db import close_old_connections, connection

from apps.audit.models import AuditEvent
from apps.prompts.models import LabelMove
from apps.reviews import services
from apps.reviews.tests.conftest import version
from apps.reviews.tests.factories import approved, label_version_id, release


@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_one_of_two_concurrent_releases_win(prompt, policy, cast):
    release(version(prompt, 1), requester=cast.author, approver=cast.reviewer)
    first = approved(version(prompt, 2), requester=cast.author, approver=cast.reviewer)
    second = approved(version(prompt, 3), requester=cast.author, approver=cast.admin)
    expected = label_version_id(prompt)  # both releasers looked at the diff against v1
    barrier = threading.Barrier(2)
    outcomes: dict[int, object] = {}

    def run(review):
        try:
            barrier.wait(timeout=10)
            services.review_release(review=review, actor=cast.author, expected_current_version_id=expected)
            outcomes[review.pk] = "released"
        except Exception as exc:  # the loser's error is what we check
            outcomes[review.pk] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(review,)) for review in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    winners = [pk for pk, outcome in outcomes.items() if outcome == "released"]
    losers = [outcome for outcome in outcomes.values() if outcome != "released"]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1 and isinstance(losers[0], services.ReleaseConflict), outcomes
    assert "moved to v" in str(losers[0]) and "nothing was released" in str(losers[0])

    winner = first if winners[0] == first.pk else second
    assert label_version_id(prompt) == winner.version_id
    moves_after_v1 = LabelMove.objects.filter(label_name="production", from_version=version(prompt, 1))
    assert moves_after_v1.count() == 1
    audit_moves = AuditEvent.objects.filter(action="label.moved", object_repr="greet@production")
    assert audit_moves.count() == 1
    assert AuditEvent.objects.filter(action="review.released").count() == 2  # v1 in the setup, then the winner

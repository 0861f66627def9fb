"""A canary of an unreviewed version on a protected label is refused through the UI, the API and the shell;
with the approved review it starts, and every weight change is a label move in the history and the audit."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditEvent
from apps.prompts import services as prompt_services
from apps.prompts.models import Label, LabelMove
from apps.reviews.tests.conftest import cast, policy, prompt  # noqa: F401 - shared fixtures
from apps.reviews.tests.factories import approved, release
from apps.rollouts import services
from apps.rollouts.models import Rollout

pytestmark = pytest.mark.django_db


@pytest.fixture
def released_v1(prompt, policy, cast):  # noqa: F811 - fixtures
    release(prompt.versions.get(number=1), requester=cast.author, approver=cast.reviewer)
    return prompt


def _production(prompt):  # noqa: F811
    return Label.objects.get(prompt=prompt, name="production")


def _unchanged(prompt):  # noqa: F811
    label = _production(prompt)
    assert (label.version.number, label.canary_version_id, label.canary_weight) == (1, None, 0)
    assert not Rollout.objects.exists()


def test_the_canary_page_refuses_an_unreviewed_version(released_v1, cast, client):  # noqa: F811
    client.force_login(cast.author)
    response = client.post(
        f"/p/{released_v1.project.slug}/canaries/",
        {
            "prompt": "greet",
            "label": "production",
            "version": 2,
            "steps": "5, 25, 50, 100",
            "min_volume": 100,
            "min_minutes": 0,
            "error_rate": 0,
        },
    )
    assert response.status_code == 400
    assert "a review is required" in response.content.decode()
    _unchanged(released_v1)


def test_the_api_refuses_an_unreviewed_canary_both_ways(released_v1, make_key, api):
    client = api(make_key("write"))
    response = client.post("/api/v1/canaries", {"prompt": "greet", "label": "production", "version": 2})
    assert response.status_code == 403 and response.json()["code"] == "review_required", response.json()
    by_hand = client.post(
        "/api/v1/prompts/greet/labels/production", {"version": 1, "canary": {"version": 2, "weight": 1000}}
    )
    assert by_hand.status_code == 403 and "a review is required" in by_hand.json()["detail"]
    _unchanged(released_v1)


def test_the_shell_and_the_database_refuse_an_unreviewed_canary(released_v1):
    code = (
        "from apps.prompts.models import Prompt; from apps.rollouts import services as s; "
        "p = Prompt.objects.get(name='greet'); "
        "s.rollout_start(prompt=p, label_name='production', canary_version=p.versions.get(number=2), "
        "actor='manage.py shell')"
    )
    with pytest.raises(prompt_services.LabelMoveRefused, match="a review is required"):
        call_command("shell", command=code)
    v2 = released_v1.versions.get(number=2)
    with pytest.raises(prompt_services.LabelMoveRefused, match="a review is required"):
        prompt_services.label_set(
            prompt=released_v1,
            label_name="production",
            version=released_v1.versions.get(number=1),
            canary_version=v2,
            canary_weight=500,
            actor="shell",
        )
    with pytest.raises(DatabaseError, match="release gate"), transaction.atomic():
        Label.objects.filter(prompt=released_v1, name="production").update(canary_version=v2, canary_weight=500)
    with pytest.raises(DatabaseError, match="release gate"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE prompts_label SET canary_version_id = %s, canary_weight = 500", [v2.pk])
    _unchanged(released_v1)


def test_with_the_approved_review_the_canary_steps_to_100_percent_as_audited_label_moves(released_v1, cast):  # noqa: F811
    v2 = released_v1.versions.get(number=2)
    approved(v2, requester=cast.author, approver=cast.reviewer)
    rollout = services.rollout_start(
        prompt=released_v1, label_name="production", canary_version=v2, actor=cast.author, steps=[1000, 2500, 10_000]
    )
    label = _production(released_v1)
    assert (label.version.number, label.canary_version, label.canary_weight) == (1, v2, 1000)
    services.rollout_promote(rollout_id=rollout.pk, actor=cast.author)
    assert _production(released_v1).canary_weight == 2500
    services.rollout_promote(rollout_id=rollout.pk, actor=cast.author)
    label = _production(released_v1)
    assert (label.version, label.canary_version, label.canary_weight) == (v2, None, 0)
    moves = list(LabelMove.objects.filter(prompt=released_v1, label_name="production").order_by("id"))
    assert [(m.action, m.to_canary_weight) for m in moves[-3:]] == [("split", 1000), ("split", 2500), ("moved", 0)]
    actions = list(
        AuditEvent.objects.filter(action__startswith="canary.").order_by("id").values_list("action", flat=True)
    )
    assert actions == ["canary.started", "canary.stepped", "canary.promoted"]
    rollout.refresh_from_db()
    assert rollout.status == "promoted"


def test_a_rollback_is_always_allowed_and_undoes_the_split(released_v1, cast):  # noqa: F811
    v2 = released_v1.versions.get(number=2)
    approved(v2, requester=cast.author, approver=cast.reviewer)
    rollout = services.rollout_start(prompt=released_v1, label_name="production", canary_version=v2, actor=cast.author)
    services.rollout_rollback(rollout_id=rollout.pk, actor=cast.author)
    _label = _production(released_v1)
    assert (_label.version.number, _label.canary_version_id, _label.canary_weight) == (1, None, 0)
    last = LabelMove.objects.filter(prompt=released_v1).first()
    assert (last.action, last.from_canary_version, last.from_canary_weight) == ("rolled_back", v2, 500)


def test_a_label_moved_by_hand_ends_the_canary_and_the_watcher_leaves_it_alone(released_v1, cast):  # noqa: F811
    v2 = released_v1.versions.get(number=2)
    approved(v2, requester=cast.author, approver=cast.reviewer)
    rollout = services.rollout_start(prompt=released_v1, label_name="production", canary_version=v2, actor=cast.author)
    # Undo from the label history: point production back at v1 alone (a rollback to a released version).
    prompt_services.label_move(prompt=released_v1, label_name="production", version=released_v1.versions.get(number=1),
                               actor=cast.admin, rollback=True)  # fmt: skip
    assert services.rollout_evaluate(rollout_id=rollout.pk) == "abandoned"
    rollout.refresh_from_db()
    assert rollout.status == "rolled_back" and "moved outside the canary" in rollout.events.last().reason
    _unchanged_label = _production(released_v1)
    assert (_unchanged_label.version.number, _unchanged_label.canary_version_id) == (1, None)

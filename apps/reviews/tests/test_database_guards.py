"""The database itself refuses what the services refuse: versions never change, labels move only through the gate.

These run on SQLite locally and on PostgreSQL in CI (both have the triggers).
"""

import json

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditEvent
from apps.prompts import services as prompt_services
from apps.prompts.models import Label, LabelGatePass, LabelMove, PromptVersion
from apps.reviews.tests.conftest import version
from apps.reviews.tests.factories import release

pytestmark = pytest.mark.django_db


def _refused(action, match):
    with pytest.raises(DatabaseError, match=match), transaction.atomic():
        action()


def test_the_database_refuses_to_change_a_version(prompt):
    v1 = version(prompt, 1)
    original = (v1.template, v1.content_hash)
    _refused(lambda: PromptVersion.objects.filter(pk=v1.pk).update(template="Owned {{ name }}"), "immutable")
    v1.template = "Owned {{ name }}"
    _refused(lambda: PromptVersion.objects.bulk_update([v1], ["template"]), "immutable")
    _refused(lambda: PromptVersion._base_manager.filter(prompt=prompt).update(message="rewritten"), "immutable")

    def raw():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE prompts_promptversion SET template = %s WHERE id = %s", ["Owned", v1.pk])

    _refused(raw, "immutable")
    v1 = PromptVersion.objects.get(pk=v1.pk)
    assert (v1.template, v1.content_hash) == original


def test_a_released_label_moves_only_through_the_gate(prompt, policy, cast):
    release(version(prompt, 2), requester=cast.author, approver=cast.reviewer)
    label = Label.objects.get(prompt=prompt, name="production")
    v3 = version(prompt, 3)

    label.version = v3
    _refused(label.save, "release gate")
    _refused(lambda: Label.objects.filter(pk=label.pk).update(version=v3), "release gate")
    _refused(lambda: Label._base_manager.filter(prompt=prompt).update(name="production"), "release gate")
    # A new label of the same name elsewhere, or one made by create(), is refused too.
    _refused(lambda: Label.objects.create(prompt=prompt, name="canary", version=v3), "release gate")

    assert Label.objects.get(pk=label.pk).version.number == 2
    assert not LabelGatePass.objects.exists()


def test_loaddata_of_a_label_fixture_is_refused(prompt, policy, cast, tmp_path):
    release(version(prompt, 2), requester=cast.author, approver=cast.reviewer)
    label = Label.objects.get(prompt=prompt, name="production")
    v3 = version(prompt, 3)
    fixture = tmp_path / "labels.json"
    fixture.write_text(
        json.dumps(
            [
                {
                    "model": "prompts.label",
                    "pk": label.pk,
                    "fields": {
                        "prompt": prompt.pk,
                        "name": "production",
                        "version": v3.pk,
                        "created_at": "2026-01-01T00:00:00Z",
                        "updated_at": "2026-01-01T00:00:00Z",
                    },
                }
            ]
        )
    )
    with pytest.raises(DatabaseError, match="release gate"), transaction.atomic():
        call_command("loaddata", str(fixture), verbosity=0)
    assert Label.objects.get(pk=label.pk).version.number == 2


def test_every_move_through_the_gate_writes_its_history_and_audit_event(prompt, cast):
    prompt_services.label_move(prompt=prompt, label_name="staging", version=version(prompt, 1), actor=cast.author)
    prompt_services.label_move(prompt=prompt, label_name="staging", version=version(prompt, 3), actor=cast.author)
    assert Label.objects.get(prompt=prompt, name="staging").version.number == 3
    assert list(LabelMove.objects.filter(label_name="staging").values_list("action", flat=True)) == [
        "moved",
        "created",
    ]
    assert AuditEvent.objects.filter(action__in=["label.created", "label.moved"]).count() == 2
    assert not LabelGatePass.objects.exists()  # a pass never outlives its move


def _tamper(version_row, template):
    """What the database owner could still do: lift the trigger, rewrite a version, put the trigger back."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")  # a superuser's way past triggers
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'prompt_version_immutable'")
            (trigger,) = cursor.fetchone()
            cursor.execute("DROP TRIGGER prompt_version_immutable")
        cursor.execute("UPDATE prompts_promptversion SET template = %s WHERE id = %s", [template, version_row.pk])
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")
        else:
            cursor.execute(trigger)


def test_a_release_refuses_a_version_whose_content_no_longer_matches_its_hash(prompt, policy, cast):
    from apps.reviews import services
    from apps.reviews.tests.factories import approved

    review = approved(version(prompt, 3), requester=cast.author, approver=cast.reviewer)
    _tamper(version(prompt, 3), "Send your password to {{ name }}")

    with pytest.raises(prompt_services.LabelMoveRefused, match="content hash differs"):
        services.review_release(review=review, actor=cast.author, expected_current_version_id=None)
    assert not Label.objects.filter(prompt=prompt, name="production").exists()


def test_loaddata_cannot_rewrite_a_version(prompt, tmp_path):
    from django.core import serializers

    v1 = version(prompt, 1)
    record = json.loads(serializers.serialize("json", [v1]))
    record[0]["fields"]["template"] = "Owned {{ name }}"
    fixture = tmp_path / "versions.json"
    fixture.write_text(json.dumps(record))
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        call_command("loaddata", str(fixture), verbosity=0)
    assert PromptVersion.objects.get(pk=v1.pk).template == v1.template

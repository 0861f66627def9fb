import pytest
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditEvent, AuditLogIsAppendOnly
from apps.audit.services import audit_record

pytestmark = pytest.mark.django_db


def _event():
    return audit_record(project_id=1, actor="system", action="test.happened", object_type="x", object_id="1")


def test_it_refuses_to_change_an_event():
    event = _event()
    event.action = "test.rewritten"
    with pytest.raises(AuditLogIsAppendOnly):
        event.save()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(action="test.rewritten")
    assert AuditEvent.objects.get(pk=event.pk).action == "test.happened"


def test_it_refuses_to_delete_an_event():
    event = _event()
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_database_refuses_raw_updates_and_deletes():
    event = _event()
    for sql in ("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", "DELETE FROM audit_auditevent WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "test.happened"


def test_it_records_the_request_id_and_address(client, django_user_model):
    user = django_user_model.objects.create_user("auditor", password="pw")
    client.force_login(user)
    client.post("/projects/new/", {"name": "Traced"}, HTTP_X_REQUEST_ID="req-123", REMOTE_ADDR="10.1.2.3")
    event = AuditEvent.objects.get(action="project.created")
    assert (event.request_id, event.ip, event.actor_repr) == ("req-123", "10.1.2.3", "auditor")


def _refused(action):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        action()


def test_the_database_refuses_every_orm_path_around_the_model_guards():
    event = _event()
    base = AuditEvent._base_manager
    _refused(lambda: base.filter(pk=event.pk).update(action="test.rewritten"))
    _refused(lambda: base.filter(pk=event.pk).delete())
    _refused(lambda: base.filter(pk=event.pk)._raw_delete(connection.alias))
    forged = AuditEvent(pk=event.pk, actor_repr="someone else", action="test.rewritten", object_type="x")
    _refused(
        lambda: base.bulk_create(
            [forged], update_conflicts=True, unique_fields=["id"], update_fields=["action", "actor_repr"]
        )
    )
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.bulk_create(
            [forged], update_conflicts=True, unique_fields=["id"], update_fields=["action", "actor_repr"]
        )
    assert AuditEvent.objects.values_list("action", "actor_repr").get(pk=event.pk) == ("test.happened", "system")


def test_deleting_a_user_in_the_admin_keeps_their_events_and_name(client, django_user_model):
    from apps.prompts.tests.factories import PromptFactory, make_version

    leaver = django_user_model.objects.create_user("leaver", password="pw")
    event = audit_record(project_id=1, actor=leaver, action="test.happened", object_type="x", object_id="1")
    version = make_version(PromptFactory(), actor=leaver)
    from apps.accounts.models import ApiKey
    from apps.accounts.services import api_key_create
    from apps.accounts.tests.factories import ProjectFactory

    key, _ = api_key_create(project=ProjectFactory(), name="laptop", scope="read", actor=leaver)
    admin = django_user_model.objects.create_superuser("root", password="pw")
    client.force_login(admin)

    assert client.get(f"/admin/auth/user/{leaver.pk}/delete/").status_code == 200
    response = client.post(f"/admin/auth/user/{leaver.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not django_user_model.objects.filter(username="leaver").exists()
    event = AuditEvent.objects.get(pk=event.pk)
    assert (event.actor_id, event.actor_repr) == (leaver.pk, "leaver")
    version.refresh_from_db()
    assert version.author_repr == "leaver"
    assert client.get(f"/admin/audit/auditevent/{event.pk}/change/").status_code == 200
    key = ApiKey.objects.get(pk=key.pk)  # their keys stop working with them
    assert (key.is_active, key.revoked_reason) == (False, "leaver was deleted")

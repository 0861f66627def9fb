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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's (CI runs it there)")
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

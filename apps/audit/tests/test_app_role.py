"""On PostgreSQL the studio runs as a role that owns nothing: it cannot lift the triggers that guard the audit log,
the versions and the labels. CI runs this on PostgreSQL; SQLite has no roles."""

import secrets

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.prompts.tests.factories import PromptFactory, make_version

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="roles are PostgreSQL's (CI runs this there)"),
]

OWNER_ONLY = [
    "TRUNCATE audit_auditevent",
    "TRUNCATE prompts_promptversion CASCADE",
    "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only",
    "ALTER TABLE prompts_promptversion DISABLE TRIGGER ALL",
    "ALTER TABLE prompts_label DISABLE TRIGGER label_gate",
    "DROP TRIGGER audit_event_append_only ON audit_auditevent",
    "DROP TRIGGER prompt_version_immutable ON prompts_promptversion",
    "DROP TRIGGER label_gate ON prompts_label",
    "CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$ BEGIN RETURN NEW; END $$ "
    "LANGUAGE plpgsql",
    "SET session_replication_role = replica",
    "CREATE TABLE escape_hatch (id int)",
]


@pytest.fixture
def app_role():
    """A fresh app role, granted by the command docker-compose runs; created in the test's transaction, so it goes
    away with it."""
    role = f"ps_gate_app_{secrets.token_hex(4)}"
    call_command("db_app_role", role, verbosity=0)
    yield role
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")


def _as(role, statement, params=None):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{role}"')
        cursor.execute(statement, params)


def test_the_app_role_cannot_truncate_disable_or_drop_the_guards(app_role):
    event = audit_record(project_id=1, actor="system", action="test.happened", object_type="x", object_id="1")
    for statement in OWNER_ONLY:
        with pytest.raises(DatabaseError, match="must be owner|permission denied"):
            _as(app_role, statement)
    with pytest.raises(DatabaseError, match="permission denied"):
        _as(app_role, "DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O' ORDER BY tgname")
        triggers = [row[0] for row in cursor.fetchall()]
    assert triggers == ["audit_event_append_only", "include_pin_immutable", "label_gate", "prompt_version_immutable"]


def test_the_app_role_runs_the_studio(app_role):
    """The grants are enough for the app's own writes: a version saved, a label moved, audit rows appended."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{app_role}"')
        prompt = PromptFactory()
        version = make_version(prompt, "Hello {{ name }}")
        from apps.prompts import services

        services.label_move(prompt=prompt, label_name="staging", version=version, actor="system")
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == app_role
    assert AuditEvent.objects.filter(action__in=["prompt.version_saved", "label.created"]).count() == 2

"""The database itself keeps versions immutable and labels behind the gate, on SQLite and PostgreSQL.

- prompts_promptversion: every UPDATE is refused (update(), bulk_update, raw SQL).
- prompts_label: an INSERT or UPDATE is refused unless a LabelGatePass row for
  the same prompt, label and version exists, which only `services.label_move`
  writes (and removes) inside the move's transaction.

A later migration that must rewrite these tables drops and re-creates the
triggers itself. On SQLite a table rebuild (some AlterField operations) drops
its triggers: re-create them in the same migration (the tests fail otherwise).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

VERSION_MESSAGE = "prompt versions are immutable: UPDATE refused; save a new version instead"
LABEL_MESSAGE = "labels move only through the release gate (prompts.services.label_move)"
PERMIT_EXISTS = """EXISTS (SELECT 1 FROM prompts_labelgatepass g
    WHERE g.prompt_id = NEW.prompt_id AND g.label_name = NEW.name AND g.version_id = NEW.version_id)"""

SQLITE = [
    f"""CREATE TRIGGER IF NOT EXISTS prompt_version_immutable BEFORE UPDATE ON prompts_promptversion
    BEGIN SELECT RAISE(ABORT, '{VERSION_MESSAGE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS label_gate_insert BEFORE INSERT ON prompts_label WHEN NOT {PERMIT_EXISTS}
    BEGIN SELECT RAISE(ABORT, '{LABEL_MESSAGE}: INSERT refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS label_gate_update BEFORE UPDATE ON prompts_label WHEN NOT {PERMIT_EXISTS}
    BEGIN SELECT RAISE(ABORT, '{LABEL_MESSAGE}: UPDATE refused'); END""",
]

POSTGRESQL = f"""
CREATE OR REPLACE FUNCTION prompt_version_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{VERSION_MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS prompt_version_immutable ON prompts_promptversion;
CREATE TRIGGER prompt_version_immutable BEFORE UPDATE ON prompts_promptversion
    FOR EACH ROW EXECUTE FUNCTION prompt_version_immutable();

CREATE OR REPLACE FUNCTION label_gate() RETURNS trigger AS $$
BEGIN
    IF NOT {PERMIT_EXISTS} THEN
        RAISE EXCEPTION '{LABEL_MESSAGE}: % refused', TG_OP USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS label_gate ON prompts_label;
CREATE TRIGGER label_gate BEFORE INSERT OR UPDATE ON prompts_label
    FOR EACH ROW EXECUTE FUNCTION label_gate();
"""

POSTGRESQL_DROP = """
DROP TRIGGER IF EXISTS prompt_version_immutable ON prompts_promptversion;
DROP FUNCTION IF EXISTS prompt_version_immutable();
DROP TRIGGER IF EXISTS label_gate ON prompts_label;
DROP FUNCTION IF EXISTS label_gate();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in SQLITE:
            schema_editor.execute(sql, params=None)
    elif schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for name in ("prompt_version_immutable", "label_gate_insert", "label_gate_update"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
    elif schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("prompts", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="promptversion",
            name="author",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.CreateModel(
            name="LabelGatePass",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("prompt_id", models.BigIntegerField()),
                ("label_name", models.CharField(max_length=50)),
                ("version_id", models.BigIntegerField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("prompt_id", "label_name", "version_id"), name="label_gate_pass_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]

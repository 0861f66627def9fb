"""Give the PostgreSQL role the studio runs as exactly what it needs, and nothing that lifts a guard.

Run by the database owner after every `migrate` (docker-compose's `migrate`
service does): the app role may read and write rows and use sequences, but owns
nothing, so it cannot TRUNCATE, ALTER TABLE ... DISABLE TRIGGER, DROP TRIGGER,
replace a trigger function or create objects. Those need the owner, whose
password the web, worker and beat processes never see.

    python manage.py db_app_role studio_app --password-env APP_DB_PASSWORD
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from psycopg import sql


class Command(BaseCommand):
    help = "Create (if missing) and grant the PostgreSQL role the studio connects as: rows yes, ownership no."

    def add_arguments(self, parser):
        parser.add_argument("role", help="The app role, e.g. studio_app.")
        parser.add_argument(
            "--password-env",
            default="",
            help="Name of the environment variable holding the role's password; sets it (and LOGIN) when given.",
        )

    def handle(self, *args, role: str, password_env: str, **options):
        if connection.vendor != "postgresql":
            raise CommandError("db_app_role is for PostgreSQL; SQLite has no roles.")
        password = ""
        if password_env:
            password = os.environ.get(password_env, "")
            if not password:
                raise CommandError(f"The environment variable {password_env} is empty or not set.")
        with transaction.atomic(), connection.cursor() as cursor:
            if role == connection.settings_dict["USER"]:
                raise CommandError("The app role must not be the owner that runs migrations.")
            name = sql.Identifier(role)
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(name))
            cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
            if any(cursor.fetchone()):
                raise CommandError(f"{role} is a superuser or bypasses row security; use an ordinary role.")
            if password:
                cursor.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(name, sql.Literal(password)))
            database = sql.Identifier(connection.settings_dict["NAME"])
            for statement in (
                "GRANT CONNECT ON DATABASE {database} TO {role}",
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
                "REVOKE ALL ON SCHEMA public FROM {role}",
                "GRANT USAGE ON SCHEMA public TO {role}",
                "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
                "REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}",
                "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
                # Belt and braces beside the triggers: the append-only log is insert-only for the app.
                "REVOKE UPDATE, DELETE ON audit_auditevent FROM {role}",
            ):
                cursor.execute(sql.SQL(statement).format(database=database, role=name))
            cursor.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                "WHERE r.rolname = %s AND c.relkind IN ('r', 'p', 'S', 'v', 'm')",
                [role],
            )
            owned = cursor.fetchone()[0]
            if owned:
                raise CommandError(f"{role} owns {owned} table(s) or sequence(s); make the migrating role own them.")
        self.stdout.write(f"{role}: may read and write rows; owns nothing, so it cannot lift the triggers.")

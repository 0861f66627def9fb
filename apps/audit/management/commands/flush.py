"""`manage.py flush` that also works while SQLite's append-only triggers stand.

Django flushes SQLite with DELETE statements, which the audit table's triggers
refuse. Emptying the whole database is the owner's operation (PostgreSQL does it
with TRUNCATE, which row triggers do not see and the app role is not granted),
so on SQLite this command lifts every trigger, flushes, and puts each back, all in
one transaction: if anything fails the triggers stay as they were. Test runs
(TransactionTestCase, live_server) use this command between tests.
"""

from __future__ import annotations

from django.core.management.commands import flush
from django.db import DEFAULT_DB_ALIAS, connections, transaction


class Command(flush.Command):
    def handle(self, **options):
        connection = connections[options.get("database") or DEFAULT_DB_ALIAS]
        if connection.vendor != "sqlite":
            return super().handle(**options)
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
                triggers = cursor.fetchall()
                for name, _sql in triggers:
                    cursor.execute(f'DROP TRIGGER "{name}"')
            super().handle(**options)
            with connection.cursor() as cursor:
                for _name, sql in triggers:
                    cursor.execute(sql)

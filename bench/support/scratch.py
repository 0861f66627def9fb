"""The database a benchmark runs on: the configured one, made fresh and thrown away afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scratch_database() -> Iterator[None]:
    """On PostgreSQL a test database beside the configured one (created, then dropped); on SQLite the
    benchmark's temporary file, migrated. Call after django.setup()."""
    from django.core.management import call_command
    from django.db import connection

    external = connection.vendor != "sqlite"
    old_name = None
    if external:
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    else:
        call_command("migrate", verbosity=0, interactive=False)
    try:
        yield
    finally:
        connection.close()
        if external:
            connection.creation.destroy_test_db(old_name, verbosity=0)

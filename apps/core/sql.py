"""Small raw-SQL reads shared by the hot paths that skip the ORM."""

from __future__ import annotations

from typing import Any

from django.db import connection

IN_CHUNK = 500  # ids per statement on SQLite (its bound-parameter limit is far above; statements stay short)


def select_in(sql: str, params: list[Any], ids: list[Any]) -> list[tuple[Any, ...]]:
    """Rows of `sql` (ending in `IN`) for `ids` on a bare cursor: one array parameter on PostgreSQL, IN lists of
    IN_CHUNK elsewhere. For reads run per ingest batch with hundreds of ids, where building the ORM's IN lookup
    (and psycopg's client-side binding of hundreds of parameters) costs more than the query."""
    if not sql.endswith("IN"):
        raise ValueError("select_in needs a statement ending in IN")
    found: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one array parameter: no query text built per id
            cursor.execute(f"{sql[: -len('IN')]}= ANY(%s)", [*params, list(ids)])
            return cursor.fetchall()
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
            cursor.execute(f"{sql} ({', '.join(['%s'] * len(chunk))})", [*params, *chunk])
            found += cursor.fetchall()
    return found

"""Times that people and apps type, made safe for the database."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC (a naive one is taken as UTC); OverflowError when that falls before the year 1.

    ISO 8601 allows offsets up to 23:59 and PostgreSQL only up to 15:59: a time sent on as typed could be
    refused by the database, which spoils the transaction it ran in. In UTC it never is.
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)

"""Times as the store writes and reads them: always UTC, whatever the database hands back."""

from __future__ import annotations

from datetime import UTC, datetime


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def utc(value: datetime) -> datetime:
    """UTC, for writing and for comparing with stored values (SQLite compares their text)."""
    return aware(value).astimezone(UTC)

"""Engines for the two supported databases: an SQLite file (default) and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic_core import to_json
from sqlalchemy import DateTime, Dialect, Engine, Table, create_engine, event


class JsonText(str):
    """A JSON column's value already serialized (a pydantic model's ``model_dump_json()``)."""


def _json_text(value: Any) -> str:
    """JSON columns written by pydantic's serializer (Rust): what ``json.dumps`` would write,
    compact and several times faster; :class:`JsonText` goes in as it is."""
    if type(value) is JsonText:
        return value
    return to_json(value).decode()


def bind_processors(table: Table, dialect: Dialect) -> dict[str, Any]:
    """What SQLAlchemy applies to each column's value before the driver sees it (None: nothing),
    for statements run on the driver's cursor (``SqlStore._save_direct``).

    On SQLite a datetime is written as ``YYYY-MM-DD HH:MM:SS.ffffff``, its offset dropped;
    SQLAlchemy's processor builds a dict and formats it (about 2 µs, ten times per message),
    ``isoformat`` writes the same text in a tenth of that. Anything else, or another dialect,
    keeps SQLAlchemy's processor."""
    processors = {c.key: c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.c}
    if dialect.name == "sqlite":
        for column in table.c:
            if isinstance(column.type, DateTime) and processors[column.key] is not None:
                processors[column.key] = _sqlite_datetime(processors[column.key])
    return processors


def _sqlite_datetime(fallback: Any) -> Any:
    def process(value: Any) -> Any:
        if value.__class__ is datetime:  # 26 characters: without the "+00:00" of an aware time
            return value.isoformat(" ", "microseconds")[:26]
        return fallback(value)

    return process


def make_engine(url: str) -> Engine:
    """An engine tuned for durable commits: WAL + synchronous=FULL on SQLite."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        return create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=10, json_serializer=_json_text
        )
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, json_serializer=_json_text
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # a 202 means the message is on disk
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine

"""The intake's transaction on SQLite as one statement: an INSERT into a view of the
connection's own (``TEMP``) whose trigger writes every row of the message.

Why: under load the intake threads queue on the store's write lock, and the one that holds it
lets the GIL go at each step of the driver, then waits to take it back from a thread that is
mapping the next message. With one INSERT per table, the audit record and the commit, that is
eight waits per message while the lock is held. One statement, run in autocommit mode, is one
step: SQLite runs the trigger and commits (``synchronous=FULL``: the WAL is synced) before the
driver takes the GIL back.

What the trigger writes is what :meth:`gateway.store.repository.SqlStore._save` writes through
SQLAlchemy, row for row (tests/test_hot_paths.py compares them): the columns are the tables'
own, the values go through SQLAlchemy's bind processors before they are bound, and the rows
of variable number (events, error codes) go in as a JSON array of strings and numbers, which
``json_extract`` gives back unchanged. The audit record is sealed in Python after the head this
process last wrote; the trigger moves the head on condition that it is still that one, and
aborts the whole statement (nothing written) when it is not, so that the caller can take the
head and write the message the long way.
"""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Dialect, Table

from gateway.audit import AuditRecord
from gateway.store.audit import record_row
from gateway.store.engine import bind_processors
from gateway.store.tables import (
    audit_head,
    audit_records,
    cases,
    deliveries,
    events,
    message_error_codes,
    messages,
)

VIEW = "saisine_intake"
HEAD_MOVED = "saisine: audit head moved"

# (table, prefix of its columns in the view); message_pk comes from the message's new row
_ONE_ROW = ((messages, "m"), (cases, "c"), (deliveries, "d"), (audit_records, "a"))
_MANY_ROWS = ((events, "events"), (message_error_codes, "codes"))

# The SQL below is assembled from the names of our own tables and columns (tables.py) and
# these constants, never from a value: every value is a bound parameter (S608 does not apply).


@functools.cache
def available() -> bool:
    """Whether this SQLite has what the trigger uses (JSON functions, built in since 3.38 and
    compiled in by most distributions before); without them the intake goes the long way."""
    try:
        with sqlite3.connect(":memory:") as db:
            row = db.execute("SELECT json_extract(value, '$[0]') FROM json_each('[[\"x\"]]')").fetchone()
        return bool(row == ("x",))
    except sqlite3.Error:
        return False


def _columns(table: Table) -> list[str]:
    return [c.key for c in table.c if c.key not in ("id", "message_pk")]


class OneStatement:
    """The view, its trigger and the parameters of one message's INSERT into it."""

    def __init__(self, dialect: Dialect, head_id: int) -> None:
        tables = [table for table, _ in (*_ONE_ROW, *_MANY_ROWS)]
        self._columns = {table.name: _columns(table) for table in tables}
        self._processors = {table.name: bind_processors(table, dialect) for table in tables}
        view_columns = [f"{p}_{c}" for table, p in _ONE_ROW for c in self._columns[table.name]]
        view_columns += [name for _, name in _MANY_ROWS] + ["has_case", "old_seq", "old_hash"]
        marks = ", ".join("?" * len(view_columns))
        self.insert_sql = f"INSERT INTO temp.{VIEW} ({', '.join(view_columns)}) VALUES ({marks})"  # noqa: S608
        nulls = ", ".join(f"NULL AS {name}" for name in view_columns)
        self.ddl = [f"CREATE TEMP VIEW IF NOT EXISTS {VIEW} AS SELECT {nulls}", self._trigger(head_id)]

    def _trigger(self, head_id: int) -> str:
        # the new message's id: by its receipt id (unique), since last_insert_rowid() moves on
        # with each INSERT of the trigger
        pk = f"(SELECT id FROM main.{messages.name} WHERE receipt_id = NEW.m_receipt_id)"  # noqa: S608

        def one(table: Table, prefix: str, with_pk: bool, when: str = "") -> str:
            cols = self._columns[table.name]
            names = ["message_pk", *cols] if with_pk else cols
            values = ([pk] if with_pk else []) + [f"NEW.{prefix}_{col}" for col in cols]
            return f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(values)}{when};"

        def many(table: Table, name: str) -> str:
            cols = self._columns[table.name]
            values = ", ".join(f"json_extract(e.value, '$[{i}]')" for i in range(len(cols)))
            head = f"INSERT INTO {table.name} (message_pk, {', '.join(cols)})"
            return f"{head} SELECT {pk}, {values} FROM json_each(NEW.{name}) AS e ORDER BY e.key;"  # noqa: S608

        return "\n".join(
            [
                f"CREATE TEMP TRIGGER IF NOT EXISTS {VIEW}_insert INSTEAD OF INSERT ON {VIEW} BEGIN",
                one(messages, "m", with_pk=False),
                one(cases, "c", with_pk=True, when=" WHERE NEW.has_case"),
                one(deliveries, "d", with_pk=True, when=" WHERE NEW.has_case"),
                *(many(table, name) for table, name in _MANY_ROWS),
                f"UPDATE {audit_head.name} SET seq = NEW.a_seq, hash = NEW.a_hash WHERE id = {int(head_id)}"  # noqa: S608
                " AND seq = NEW.old_seq AND hash = NEW.old_hash;",
                f"SELECT RAISE(ABORT, '{HEAD_MOVED}') WHERE changes() = 0;",
                one(audit_records, "a", with_pk=False),
                "END",
            ]
        )

    def install(self, connection: sqlite3.Connection) -> None:
        """Create the view and its trigger on ``connection`` (they live as long as it does)."""
        for statement in self.ddl:
            connection.execute(statement)

    def _row(self, table: Table, row: dict[str, Any] | None) -> list[Any]:
        """``row``'s values in column order, as SQLAlchemy binds them; a column it does not
        name is NULL, as in an INSERT that leaves it out."""
        processors = self._processors[table.name]
        values: list[Any] = []
        for col in self._columns[table.name]:
            if row is None or col not in row:
                values.append(None)
                continue
            process = processors[col]
            values.append(row[col] if process is None else process(row[col]))
        return values

    def rows(
        self,
        message: dict[str, Any],
        case: dict[str, Any] | None,
        delivery: dict[str, Any] | None,
        event_rows: list[dict[str, Any]],
        code_rows: list[dict[str, Any]],
    ) -> tuple[list[Any], list[Any]]:
        """The values of the INSERT into the view before and after the audit record's, bound
        before the write lock is taken (the record is sealed under it)."""
        before = self._row(messages, message) + self._row(cases, case) + self._row(deliveries, delivery)
        after = [
            to_json([self._row(events, e) for e in event_rows]).decode(),
            to_json([self._row(message_error_codes, r) for r in code_rows]).decode(),
            case is not None,
        ]
        return before, after

    def parameters(
        self, rows: tuple[list[Any], list[Any]], record: AuditRecord, old: tuple[int, str]
    ) -> list[Any]:
        """The values of the INSERT into the view, in :attr:`view_columns` order: ``rows`` with
        the audit record sealed after the head ``old``."""
        before, after = rows
        return [*before, *self._row(audit_records, record_row(record)), *after, old[0], old[1]]

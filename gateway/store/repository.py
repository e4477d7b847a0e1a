"""The message store on SQLAlchemy: one transaction per received message."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Row, Table, bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import PoolProxiedConnection

from gateway.audit import Entry, message_entry
from gateway.errors import ErrorDetail
from gateway.ports import DuplicateAccepted, Event, NewMessage, Receipt, Status
from gateway.store.audit import HEAD_ID
from gateway.store.deliveries import SqlDeliveryStore
from gateway.store.engine import JsonText
from gateway.store.onestatement import HEAD_MOVED, OneStatement
from gateway.store.onestatement import available as one_statement_available
from gateway.store.sealing import PayloadCipher
from gateway.store.tables import ACCEPTED, cases, deliveries, events, message_error_codes, messages
from gateway.store.times import aware, utc

# Statements built once: building ``insert(table).values(row)`` per message costs more
# than executing it (coercion of every value, a fresh cache key).
_INSERT_EVENT = insert(events)


class _Insert:
    """One of the intake's INSERTs through SQLAlchemy (PostgreSQL, compléments on SQLite, and the
    first message of a process on SQLite: see :meth:`SqlStore._save_direct`)."""

    def __init__(self, table: Table, returning: bool = False) -> None:
        self.returning = returning
        self.statement = insert(table).returning(table.c.id) if returning else insert(table)

    def one(self, conn: Connection, row: dict[str, Any]) -> Any:
        """Insert ``row``; its new id when the statement returns it."""
        result = conn.execute(self.statement, row)
        return result.scalar_one() if self.returning else None

    def many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` (all with the same keys)."""
        conn.execute(self.statement, rows)


class _Rows(NamedTuple):
    """One message's rows, built before the write lock is taken."""

    message: dict[str, Any]
    case: dict[str, Any] | None
    delivery: dict[str, Any] | None
    events: list[dict[str, Any]]
    codes: list[dict[str, Any]]  # the message's error codes, one row each
    audited: Entry


# What a receipt needs, not the raw bytes; ACCEPTED repeats the partial index's predicate
# word for word so that SQLite searches the index instead of scanning the table.
_FIND_ACCEPTED = select(
    messages.c.receipt_id,
    messages.c.status,
    messages.c.received_at,
    messages.c.sha256,
    messages.c.message_id,
    messages.c.format,
    messages.c.errors,
    messages.c.warnings,
    messages.c.numero_parquet,
).where(
    messages.c.sender == bindparam("sender"),
    messages.c.message_id == bindparam("message_id"),
    ACCEPTED,
)


class SqlStore:
    """:class:`gateway.ports.MessageStore` over SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, cipher: PayloadCipher | None = None) -> None:
        self.engine = engine
        self.cipher = cipher or PayloadCipher()  # raw payloads sealed at rest when keys are set
        # SQLite has one writer at a time: queue writers here rather than on its lock.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        self.deliveries = SqlDeliveryStore(engine, self._write_lock)
        dialect = engine.dialect
        self._insert_message = _Insert(messages, returning=True)
        self._insert_case = _Insert(cases)
        self._insert_delivery = _Insert(deliveries)
        self._insert_events = _Insert(events)
        self._insert_error_codes = _Insert(message_error_codes)
        self.audit = self.deliveries.audit  # the audit chain's writer (gateway.store.audit)
        # SQLite: the intake's transactions run as one statement on a connection of their own
        # (see _save_direct); ``direct = False`` takes SQLAlchemy's way, as on PostgreSQL.
        self.direct = dialect.name == "sqlite" and dialect.paramstyle == "qmark" and one_statement_available()
        self._writer: PoolProxiedConnection | None = None
        self._one = OneStatement(dialect, HEAD_ID)

    def close(self) -> None:
        """Close the intake's own connection (SQLite); the engine is disposed by its owner. It
        is not given back to the pool: it is in autocommit mode, with objects of its own."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.invalidate()
                self._writer = None

    def save(self, message: NewMessage) -> Receipt:
        accepted = message.status == Status.ACCEPTED
        row = self._message_row(message, accepted)
        if self.cipher.enabled:
            row["raw"] = self.cipher.seal(message.raw)
        case_row = delivery_row = None
        if message.case is not None:
            case_row = self._case_row(message)
            delivery_row = self._delivery_row(message)
        event_rows = [{"at": utc(e.at), "kind": e.kind, "detail": e.detail} for e in message.events]
        at = row["received_at"]
        codes = [{"code": c, "received_at": at} for c in sorted({e.code for e in message.errors})]
        audited = message_entry(message)
        rows = _Rows(row, case_row, delivery_row, event_rows, codes, audited)
        try:
            if self.direct and (delivery_row is None or delivery_row["kind"] == "initiale"):
                self._save_direct(rows)
            else:
                self._save(rows)
        except (IntegrityError, sqlite3.IntegrityError) as exc:  # the latter from the driver
            if accepted:
                raise DuplicateAccepted(message.message_id) from exc
            raise
        return self._to_receipt(row, [])

    def _save(self, rows: _Rows) -> None:
        """One message's transaction through SQLAlchemy (PostgreSQL, and compléments on SQLite)."""
        # rows are built before: the lock covers only the statements and the commit
        row, case_row, delivery_row, event_rows, codes, audited = rows
        with self._write_lock, self.engine.begin() as conn:
            pk = self._insert_message.one(conn, row)
            if case_row is not None and delivery_row is not None:
                self._insert_case.one(conn, {**case_row, "message_pk": pk})
                self._insert_delivery.one(conn, {**delivery_row, "message_pk": pk})
                if delivery_row["kind"] != "initiale":
                    # a complément accepted behind a dead letter is held from the start
                    key, at = delivery_row["procedure_key"], delivery_row["created_at"]
                    self.deliveries.refresh_holds(conn, key, at)
            if event_rows:
                self._insert_events.many(conn, [{**e, "message_pk": pk} for e in event_rows])
            if codes:  # what the operators' list filters on (gateway.store.queries)
                self._insert_error_codes.many(conn, [{**c, "message_pk": pk} for c in codes])
            self.audit.append(conn, audited)  # last: the chain's head is locked until the commit

    def _save_direct(self, rows: _Rows) -> None:
        """:meth:`_save` as one statement on SQLite's own connection (:mod:`.onestatement`):
        the same rows, one transaction and one commit (``synchronous=FULL``).

        The connection is one of the engine's (same pragmas), checked out once, in autocommit
        mode, and used only under the write lock. When the audit head is not the one this
        process last wrote (another process wrote since, or nothing was written yet), the
        statement writes nothing and the message goes the long way, which takes the head.
        """
        row, case_row, delivery_row, event_rows, codes, audited = rows
        bound = self._one.rows(row, case_row, delivery_row, event_rows, codes)
        with self._write_lock:
            if self._write_one(bound, audited):
                return
        self._save(rows)  # the long way, which takes the head

    def _write_one(self, bound: tuple[list[Any], list[Any]], audited: Entry) -> bool:
        """The one statement, under the write lock; False when it wrote nothing because the
        audit head was not the one this process last wrote."""
        sealed = self.audit.seal_after_guess(audited)
        if sealed is None:
            return False
        (record,), old = sealed
        values = self._one.parameters(bound, record, old)
        if self._writer is None:
            writer = self.engine.raw_connection()
            driver = writer.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            driver.isolation_level = None  # autocommit: the one statement is the transaction
            self._one.install(driver)
            self._writer = writer
        driver = self._writer.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        try:
            driver.execute(self._one.insert_sql, values)
        except sqlite3.IntegrityError as exc:  # nothing written; the connection is as good as before
            if str(exc) != HEAD_MOVED:
                raise  # a repeat
            self.audit.forget_guess()
            return False
        except BaseException:
            # anything else (I/O, a full disk, a bug): the connection is closed and the next
            # message gets a fresh one
            writer, self._writer = self._writer, None
            writer.invalidate()
            raise
        self.audit.moved([record])
        return True

    @staticmethod
    def _message_row(message: NewMessage, accepted: bool) -> dict[str, Any]:
        received_at = utc(message.received_at)
        return {
            "receipt_id": message.receipt_id,
            "agency": message.agency,
            "sender": message.sender,
            "transport": message.transport,
            "format": message.format,
            "schema_version": message.schema_version,
            "mapping_version": message.mapping_version,
            "message_id": message.message_id,
            "message_kind": message.message_kind,
            "unit_code": message.unit_code,
            "procedure_number": message.procedure_number,
            "tribunal_code": message.tribunal_code,
            "status": message.status,
            "http_status": message.http_status,
            "accepted": accepted,
            "sha256": message.sha256,
            "size": message.size,
            "raw": message.raw,
            "errors": [e.as_dict() for e in message.errors],
            "warnings": list(message.warnings),
            "received_at": received_at,
            "updated_at": received_at,
        }

    @staticmethod
    def _case_row(message: NewMessage) -> dict[str, Any]:
        return {
            "revision": 1,
            "schema_version": message.schema_version,
            "mapping_version": message.mapping_version or "",
            "affaire": JsonText(message.case.model_dump_json()) if message.case else None,
            "created_at": utc(message.received_at),
        }

    @staticmethod
    def _delivery_row(message: NewMessage) -> dict[str, Any]:
        """The outbox row, written in the acceptance transaction: nothing accepted can be forgotten."""
        kind = message.case.kind.value if message.case else "initiale"
        now = utc(message.received_at)
        return {
            "procedure_key": f"{message.agency}:{message.unit_code}:{message.procedure_number}",
            "kind": kind,
            "order_rank": 0 if kind == "initiale" else 1,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }

    def find_accepted(self, sender: str, message_id: str) -> Receipt | None:
        with self.engine.connect() as conn:
            row = conn.execute(_FIND_ACCEPTED, {"sender": sender, "message_id": message_id}).first()
        return None if row is None else self._to_receipt(row._mapping, [])

    def add_event(self, receipt_id: str, event: Event) -> None:
        with self._write_lock, self.engine.begin() as conn:
            pk = conn.execute(select(messages.c.id).where(messages.c.receipt_id == receipt_id)).scalar_one()
            row = {"message_pk": pk, "at": utc(event.at), "kind": event.kind, "detail": event.detail}
            conn.execute(_INSERT_EVENT, [row])
            conn.execute(update(messages).where(messages.c.id == pk).values(updated_at=utc(event.at)))

    def receipt(self, receipt_id: str) -> Receipt | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(messages).where(messages.c.receipt_id == receipt_id)).first()
            if row is None:
                return None
            history = conn.execute(
                select(events).where(events.c.message_pk == row.id).order_by(events.c.id)
            ).all()
        return self._to_receipt(row._mapping, history)

    def case(self, receipt_id: str) -> dict[str, Any] | None:
        """The latest mapped case of a message, as stored (JSON)."""
        query = (
            select(cases.c.affaire)
            .join(messages, messages.c.id == cases.c.message_pk)
            .where(messages.c.receipt_id == receipt_id)
            .order_by(cases.c.revision.desc())
        )
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return dict(value) if value is not None else None

    def raw(self, receipt_id: str) -> bytes | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(messages.c.raw).where(messages.c.receipt_id == receipt_id)).scalar()
        return self.cipher.open(bytes(value)) if value is not None else None

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction, queued behind the other writers of this process on SQLite."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @staticmethod
    def _to_receipt(row: Any, history: Sequence[Row[Any]]) -> Receipt:
        return Receipt(
            receipt_id=row["receipt_id"],
            status=row["status"],
            received_at=aware(row["received_at"]),
            sha256=row["sha256"],
            message_id=row["message_id"],
            format=row["format"],
            errors=[ErrorDetail.from_dict(e) for e in row["errors"]],
            warnings=list(row["warnings"]),
            numero_parquet=row.get("numero_parquet"),
            history=[Event(aware(h.at), h.kind, dict(h.detail)) for h in history],
            unit_code=row.get("unit_code"),
        )

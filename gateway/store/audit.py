"""The audit chain on SQLAlchemy: appending inside a business transaction, reading in order.

The rules are in :mod:`gateway.audit`. Here: ``audit_head`` is one row (``id`` 1) holding the
last ``seq`` and ``hash``. An append moves the head and inserts the records, in the caller's
transaction, as its *last* statements: the head's row lock (PostgreSQL) is then held only
until the commit, which serializes the appends of every instance without deadlock. On
SQLite the store's write lock already serializes writers, and the head update takes the
database's write lock if the transaction did not have it yet.

The cost on the intake's path is one UPDATE and one INSERT: each :class:`AuditLog` keeps the
head it last wrote and moves the head *on condition* that it is still that one. When another
instance (or a transaction rolled back) moved it meanwhile, the UPDATE changes no row, and
the head is taken (locked and read: ``UPDATE ... RETURNING``) and moved: one statement more.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from gateway.audit import GENESIS, Anchor, AuditRecord, Entry, Verdict, seal, verify
from gateway.store.tables import audit_head, audit_records
from gateway.store.times import aware, utc

HEAD_ID = 1
_INSERT = insert(audit_records)
_READ_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == HEAD_ID)
# "take the head": an UPDATE that changes nothing, so that SQLite takes its write lock before
# reading (a deferred transaction that read first could not write after another process did),
# and PostgreSQL locks the row and answers with its latest committed version
_LOCK_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == HEAD_ID)
    .values(seq=audit_head.c.seq)
    .returning(audit_head.c.seq, audit_head.c.hash)
)
_MOVE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == HEAD_ID)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_MOVE_HEAD_FROM = _MOVE_HEAD.where(
    audit_head.c.seq == bindparam("old_seq"), audit_head.c.hash == bindparam("old_hash")
)
_CREATE_HEAD = insert(audit_head).values(id=HEAD_ID, seq=0, hash=GENESIS)
_RECORDS = (
    audit_records.select().where(audit_records.c.seq > bindparam("after")).order_by(audit_records.c.seq)
)


class AuditLog:
    """Appends to the chain of one database; ``write_lock`` is the store's (SQLite: one writer)."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self.engine = engine
        self._write_lock = write_lock if write_lock is not None else nullcontext()
        self._guess: tuple[int, str] | None = None  # the head this process last wrote
        self._guess_lock = threading.Lock()

    def append(self, conn: Connection, *entries: Entry) -> list[AuditRecord]:
        """Chain ``entries`` in ``conn``'s transaction; call it last in the transaction."""
        return self._append(_OnConnection(conn), entries)

    def seal_after_guess(self, *entries: Entry) -> tuple[list[AuditRecord], tuple[int, str]] | None:
        """``entries`` sealed after the head this process last wrote, and that head (None when
        it has written none). The caller moves the head on condition that it is still that
        one, then says so (:meth:`moved`) or, if it was not, :meth:`forget_guess`."""
        with self._guess_lock:
            guess = self._guess
        return None if guess is None else (seal(entries, *guess), guess)

    def moved(self, records: list[AuditRecord]) -> None:
        with self._guess_lock:
            self._guess = (records[-1].seq, records[-1].hash)

    def forget_guess(self) -> None:
        with self._guess_lock:
            self._guess = None

    def _append(self, head: _OnConnection, entries: tuple[Entry, ...]) -> list[AuditRecord]:
        """Seal after the head this process last wrote and move it on condition that it is still
        that one; otherwise take the head (locked and read) and move it."""
        if not entries:
            return []
        sealed = self.seal_after_guess(*entries)
        records = sealed[0] if sealed is not None and head.move_from(*sealed) else None
        if records is None:
            records = seal(entries, *head.take())
            head.move(records)
        head.insert(records)
        self.moved(records)
        return records

    def record(self, *entries: Entry) -> list[AuditRecord]:
        """Append ``entries`` in a transaction of their own (a consultation: nothing else changes)."""
        with self._write_lock, self.engine.begin() as conn:
            return self.append(conn, *entries)


class _OnConnection:
    """The statements of an append through SQLAlchemy, in ``conn``'s transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def move_from(self, records: list[AuditRecord], old: tuple[int, str]) -> bool:
        moved = self.conn.execute(_MOVE_HEAD_FROM, {**_move(records), "old_seq": old[0], "old_hash": old[1]})
        return bool(moved.rowcount == 1)

    def take(self) -> tuple[int, str]:
        row = self.conn.execute(_LOCK_HEAD).first()
        if row is None:  # a schema made without the migration that creates the head
            self.conn.execute(_CREATE_HEAD)
            return 0, GENESIS
        return int(row.seq), str(row.hash)

    def move(self, records: list[AuditRecord]) -> None:
        self.conn.execute(_MOVE_HEAD, _move(records))

    def insert(self, records: list[AuditRecord]) -> None:
        self.conn.execute(_INSERT, [record_row(r) for r in records])


def append(conn: Connection, *entries: Entry) -> list[AuditRecord]:
    """Chain ``entries`` in ``conn``'s transaction without a guessed head (the head is locked
    first): for writers outside the intake's path, such as a replay. Call it last in the
    transaction, holding the store's write lock as for any write (SQLite: one writer).
    ``SqlStore.audit.append`` does the same, with one statement less in the usual case."""
    head = _OnConnection(conn)
    records = seal(entries, *head.take())
    if records:
        head.move(records)
        head.insert(records)
    return records


def _move(records: list[AuditRecord]) -> dict[str, Any]:
    return {"new_seq": records[-1].seq, "new_hash": records[-1].hash}


def record_row(r: AuditRecord) -> dict[str, Any]:
    """The ``audit_records`` row of ``r`` (also bound by :mod:`gateway.store.onestatement`)."""
    return {
        "seq": r.seq,
        "at": utc(r.at),
        "kind": r.kind,
        "actor": r.actor,
        "subject": r.subject,
        "detail": r.detail,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    }


# ------------------------------------------------------------------ reading


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection that sees one state of the database from its first read to the
    end, while appends go on: the head and the records read in it agree."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield conn
        return
    with engine.connect() as conn:
        # pysqlite opens no transaction for reads: without one, each statement has its own snapshot
        conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()


def read_head(conn: Connection) -> tuple[int, str] | None:
    row = conn.execute(_READ_HEAD).first()
    return None if row is None else (int(row.seq), str(row.hash))


def records(conn: Connection, after: int = 0, batch: int = 5000) -> Generator[AuditRecord, None, None]:
    """The records after ``after`` in ``seq`` order, streamed ``batch`` rows at a time."""
    result = conn.execution_options(yield_per=batch).execute(_RECORDS, {"after": after})
    try:
        for r in result:
            yield AuditRecord(
                r.seq, aware(r.at), r.kind, r.actor, r.subject, dict(r.detail), r.prev_hash, r.hash
            )
    finally:
        result.close()  # a verification that stops early closes the server-side cursor now


def hash_at(conn: Connection, seq: int) -> str | None:
    """The stored hash of record ``seq`` (None if there is none)."""
    query = select(audit_records.c.hash).where(audit_records.c.seq == seq)
    value = conn.execute(query).scalar()
    return None if value is None else str(value)


def verify_chain(engine: Engine, anchor: Anchor | None = None) -> Verdict:
    """Walk the whole chain in order (streamed), against the stored head and ``anchor``."""
    with snapshot(engine) as conn:
        head = read_head(conn)
        with closing(records(conn)) as stream:
            return verify(stream, head=head, anchor=anchor)


def export(engine: Engine, write: Callable[[str], object], after: int = 0) -> Anchor:
    """Write the records after ``after`` as JSON lines, then a last line with the head, which is
    what an external timestamping or archive service keeps; returns that head."""
    with snapshot(engine) as conn:
        seq, digest = read_head(conn) or (0, GENESIS)
        count = 0
        for record in records(conn, after):
            write(json.dumps(record.as_json(), ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    head = Anchor(seq, digest)
    write(json.dumps({"head": str(head), "after": after, "records": count}) + "\n")
    return head

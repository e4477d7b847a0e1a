"""The outbox on SQLAlchemy: claiming due deliveries in procedure order, recording outcomes.

Ordering: within a procedure (agency, unit, numéro de procédure), deliveries go by
``(order_rank, id)``: the initial procedure first, then compléments in the order
they were accepted. A delivery is claimable only when every predecessor is
registered (and, for a complément, its initial procedure is registered, which
gives the numéro parquet). Successors of a dead letter are marked *held*; they
go back to pending by themselves when it is registered after a replay.

On PostgreSQL, several workers claim with ``FOR UPDATE SKIP LOCKED`` and a lease;
a worker that dies leaves a lease that expires, and the delivery is claimed again
(same idempotency key: the registry answers with the same numéro parquet).

The same key makes every write here replayable, so these commits do not wait for
the disk (``synchronous=NORMAL`` on the SQLite connection for the length of the
transaction, ``synchronous_commit`` off on PostgreSQL): a process that dies
loses nothing, a power cut may lose the last claims and outcomes, and those
deliveries are simply made again and answered with the same numéro parquet. What
must survive a power cut, an accepted message and its delivery order, is written
by the intake with a full sync. On a disk that is slow to sync, waiting for it
at every commit would set the pace of delivery.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from gateway.audit import DELIVERY, Entry
from gateway.ports import DeliveryOutcome, DeliveryTask, Status
from gateway.store.audit import AuditLog
from gateway.store.outcomes import DEAD, HELD, PENDING, REGISTERED, effect_of
from gateway.store.tables import cases, deliveries, delivery_attempts, events, messages
from gateway.store.times import aware, utc

_NO_SYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


def _synchronous(conn: Connection, level: str) -> None:
    """Set SQLite's ``synchronous`` on the DBAPI connection itself: outside any transaction, and
    without SQLAlchemy beginning one."""
    dbapi: Any = conn.connection.dbapi_connection
    dbapi.execute(f"PRAGMA synchronous={level}")


def _audit_entry(outcome: DeliveryOutcome, result: str, applied: bool) -> Entry:
    """The audit record of a call to the registry: its outcome, never the case or the reason text."""
    task, answer = outcome.task, outcome.registration
    detail: dict[str, Any] = {
        "outcome": result,
        "attempt": task.attempts + 1,
        "delivery_id": task.delivery_id,
    }
    if answer is not None:
        detail |= {"numero_parquet": answer.numero_parquet, "repeat": answer.repeat}
    if outcome.code:
        detail["code"] = outcome.code
    if not applied:  # the lease was lost: the attempt is recorded, the message left as it was
        detail["lease_lost"] = True
    return Entry(DELIVERY, task.lease_owner or "worker", task.receipt_id, outcome.at, detail)


def _unleased(now: datetime) -> dict[str, Any]:
    return {"lease_owner": None, "lease_expires_at": None, "updated_at": now}


def _before(pred: Any, d: Any) -> ColumnElement[bool]:
    """``pred`` comes before ``d`` in the same procedure."""
    return and_(
        pred.c.procedure_key == d.c.procedure_key,
        or_(
            pred.c.order_rank < d.c.order_rank,
            and_(pred.c.order_rank == d.c.order_rank, pred.c.id < d.c.id),
        ),
    )


# Statements built once, values bound at each call: building a statement (aliases above all)
# costs more than running it. An UPDATE executed with column names as parameters sets those
# columns; its own parameters are prefixed ``b_`` so as not to collide with them.
_D, _PRED, _INITIAL = deliveries.alias("d"), deliveries.alias("pred"), deliveries.alias("initial")
_LATEST = cases.alias("latest")


def _claimable() -> Select[Any]:
    """Due, unleased deliveries whose predecessors are all registered (and, for a complément,
    whose initial procedure is registered), oldest first."""
    d, pred, initial = _D, _PRED, _INITIAL
    blocked = exists().where(_before(pred, d), pred.c.status != REGISTERED)
    has_initial = exists().where(
        initial.c.procedure_key == d.c.procedure_key,
        initial.c.kind == "initiale",
        initial.c.status == REGISTERED,
    )
    now = bindparam("now", type_=deliveries.c.next_attempt_at.type)
    return (
        select(d.c.id)
        .where(
            d.c.status == PENDING,
            d.c.next_attempt_at <= now,
            or_(d.c.lease_expires_at.is_(None), d.c.lease_expires_at < now),
            ~blocked,
            or_(d.c.kind == "initiale", has_initial),
        )
        .order_by(d.c.next_attempt_at, d.c.id)
        .limit(bindparam("limit"))
    )


def _lease(claimable: Select[Any]) -> Any:
    """Lease the ``claimable`` deliveries in one statement. They are chosen in a CTE, which
    PostgreSQL runs once: with ``LIMIT ... FOR UPDATE SKIP LOCKED`` in a plain ``IN``
    subquery it may run it again and lease more than the limit under concurrency."""
    chosen = claimable.cte("chosen")
    return update(deliveries).where(deliveries.c.id.in_(select(chosen.c.id))).returning(deliveries.c.id)


_LEASE = _lease(_claimable())
# with SKIP LOCKED, several workers never wait for each other nor lease the same delivery
_LEASE_SKIP_LOCKED = _lease(_claimable().with_for_update(skip_locked=True, of=_D))

# each claimed delivery with its message and the latest revision of its case, in one query
_CLAIMED = (
    select(
        deliveries.c.id,
        deliveries.c.message_pk,
        deliveries.c.procedure_key,
        deliveries.c.kind,
        deliveries.c.attempts,
        deliveries.c.created_at,
        messages.c.receipt_id,
        messages.c.message_id,
        messages.c.status.label("mstatus"),
        cases.c.affaire,
        cases.c.revision,
    )
    .join(messages, messages.c.id == deliveries.c.message_pk)
    .join(cases, cases.c.message_pk == deliveries.c.message_pk)
    .where(
        deliveries.c.id.in_(bindparam("ids", expanding=True)),
        cases.c.revision
        == select(func.max(_LATEST.c.revision))
        .where(_LATEST.c.message_pk == deliveries.c.message_pk)
        .scalar_subquery(),
    )
    .order_by(deliveries.c.id)
)
_PARQUETS = (
    select(deliveries.c.procedure_key, deliveries.c.numero_parquet)
    .where(
        deliveries.c.procedure_key.in_(bindparam("keys", expanding=True)),
        deliveries.c.kind == "initiale",
        deliveries.c.status == REGISTERED,
    )
    .order_by(deliveries.c.id.desc())
)
# the lease check: a worker that lost its lease changes nothing (the message pk says it did)
_FINISH = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"), deliveries.c.lease_owner == bindparam("b_owner"))
    .returning(deliveries.c.message_pk)
)
_UPDATE_MESSAGE = update(messages).where(messages.c.id == bindparam("b_pk"))
_INSERT_ATTEMPT = insert(delivery_attempts)
_INSERT_EVENT = insert(events)
# the procedures among ``keys`` with something held or a dead letter: only there can holds change
_HOLDS_MAY_CHANGE = (
    select(deliveries.c.procedure_key)
    .where(
        deliveries.c.procedure_key.in_(bindparam("keys", expanding=True)),
        deliveries.c.status.in_([HELD, DEAD]),
    )
    .distinct()
)


class SqlDeliveryStore:
    """:class:`gateway.ports.DeliveryStore` over SQLite (one process) or PostgreSQL (many)."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self.engine = engine
        self._write_lock = write_lock or threading.Lock()
        self._skip_locked = engine.dialect.name == "postgresql"
        self._sqlite = engine.dialect.name == "sqlite"
        self._lease = _LEASE_SKIP_LOCKED if self._skip_locked else _LEASE
        self.audit = AuditLog(engine, self._write_lock)  # the chain's writer, shared with the intake

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A write transaction whose commit does not wait for the disk (see the module docstring)."""
        with self._write_lock, self.engine.connect() as conn:
            if self._sqlite:
                _synchronous(conn, "NORMAL")
            try:
                with conn.begin():
                    if not self._sqlite:
                        conn.execute(_NO_SYNC_COMMIT)
                    yield conn
            finally:
                if self._sqlite:
                    try:
                        _synchronous(conn, "FULL")  # the pooled connection serves the intake too
                    except BaseException:
                        conn.invalidate()
                        raise

    # ------------------------------------------------------------ claiming

    def claim(self, owner: str, limit: int, lease_seconds: float, now: datetime) -> list[DeliveryTask]:
        with self._transaction() as conn:
            return self._claim(conn, owner, limit, lease_seconds, utc(now))

    def settle(
        self,
        outcomes: Sequence[DeliveryOutcome],
        owner: str,
        limit: int,
        lease_seconds: float,
        now: datetime,
    ) -> list[DeliveryTask]:
        """Record ``outcomes``, then lease up to ``limit`` due deliveries, in one transaction: one
        commit (one disk sync) for several deliveries, and what follows a delivery just registered
        in its procedure can be claimed at once."""
        with self._transaction() as conn:
            audited = self._record(conn, outcomes)
            tasks = self._claim(conn, owner, limit, lease_seconds, utc(now)) if limit > 0 else []
            self.audit.append(conn, *audited)  # last: the chain's head is locked until the commit
            return tasks

    def _claim(
        self, conn: Connection, owner: str, limit: int, lease_seconds: float, now: datetime
    ) -> list[DeliveryTask]:
        lease = {"lease_owner": owner, "lease_expires_at": now + timedelta(seconds=lease_seconds)}
        ids = list(
            conn.execute(self._lease, {"now": now, "limit": limit, **lease, "updated_at": now}).scalars()
        )
        if not ids:
            return []
        rows = conn.execute(_CLAIMED, {"ids": ids}).all()
        parquets = self._parquets(conn, rows)
        tasks = [self._task(row, owner, parquets.get(row.procedure_key)) for row in rows]
        first = [row.message_pk for row in rows if row.mstatus != Status.DELIVERING]
        if first:
            conn.execute(
                _UPDATE_MESSAGE,
                [{"b_pk": pk, "status": Status.DELIVERING, "updated_at": now} for pk in first],
            )
            conn.execute(
                _INSERT_EVENT,
                [{"message_pk": pk, "at": now, "kind": "delivering", "detail": {}} for pk in first],
            )
        return tasks

    @staticmethod
    def _parquets(conn: Connection, rows: Any) -> dict[str, str]:
        """The numéro parquet of the registered initial procedure of each complément's procedure."""
        keys = sorted({row.procedure_key for row in rows if row.kind == "complement"})
        if not keys:
            return {}
        # oldest last, so that the first registered initial procedure wins
        return {key: parquet for key, parquet in conn.execute(_PARQUETS, {"keys": keys})}

    @staticmethod
    def _task(row: Any, owner: str, parquet: str | None) -> DeliveryTask:
        return DeliveryTask(
            delivery_id=row.id,
            receipt_id=row.receipt_id,
            message_id=row.message_id,
            kind=row.kind,
            procedure_key=row.procedure_key,
            attempts=row.attempts,
            created_at=aware(row.created_at),
            affaire=row.affaire,
            numero_parquet=parquet if row.kind == "complement" else None,
            revision=row.revision,
            lease_owner=owner,
        )

    # ------------------------------------------------------------ outcomes

    def _record(self, conn: Connection, outcomes: Sequence[DeliveryOutcome]) -> list[Entry]:
        """Each delivery updated if this worker still holds its lease; then the attempts, the
        messages and their events written with one statement per table, and the holds of the
        procedures concerned brought up to date. Returns the audit entries of the attempts."""
        attempts: list[dict[str, Any]] = []
        audited: list[Entry] = []
        changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # message rows, by columns set
        new_events: list[dict[str, Any]] = []
        settled: dict[str, tuple[str, datetime]] = {}  # procedure -> (delivery status, time)
        for outcome in outcomes:
            task, effect, now = outcome.task, effect_of(outcome), utc(outcome.at)
            lease = {"b_id": task.delivery_id, "b_owner": task.lease_owner}
            pk = conn.execute(_FINISH, {**lease, **_unleased(now), **effect.delivery}).scalar()
            if effect.attempt is None:
                continue
            attempt = {"outcome": effect.attempt, "duration_ms": outcome.duration_ms, "detail": effect.detail}
            attempts.append({"delivery_id": task.delivery_id, "at": now, **attempt})
            audited.append(_audit_entry(outcome, effect.attempt, applied=pk is not None))
            if pk is None:  # the lease was lost (expired, taken by another worker): the attempt only
                continue
            row = {"b_pk": pk, "status": effect.status, "updated_at": now, **effect.message}
            changes.setdefault(tuple(row), []).append(row)
            new_events.append({"message_pk": pk, "at": now, "kind": effect.event, "detail": effect.detail})
            if "status" in effect.delivery:
                settled[task.procedure_key] = (effect.delivery["status"], now)
        if attempts:
            conn.execute(_INSERT_ATTEMPT, attempts)
        for rows in changes.values():
            conn.execute(_UPDATE_MESSAGE, rows)
        if new_events:
            conn.execute(_INSERT_EVENT, new_events)
        self._refresh_settled(conn, settled)
        return audited

    def _refresh_settled(self, conn: Connection, settled: dict[str, tuple[str, datetime]]) -> None:
        """Holds change behind a dead letter, and behind a delivery registered in a procedure that
        has something held or dead (a replay): only those procedures are looked at."""
        registered = [key for key, (status, _) in settled.items() if status == REGISTERED]
        troubled = (
            set(conn.execute(_HOLDS_MAY_CHANGE, {"keys": registered}).scalars()) if registered else set()
        )
        for key, (status, now) in settled.items():
            if status == DEAD or key in troubled:
                self.refresh_holds(conn, key, now)

    def refresh_holds(self, conn: Connection, key: str, now: datetime) -> None:
        """Hold what stands behind a dead letter; release what no longer does."""
        d, pred = _D, _PRED
        behind_dead = exists().where(_before(pred, d), pred.c.status == DEAD)
        changes = (
            (PENDING, HELD, Status.HELD, "held", behind_dead),
            (HELD, PENDING, Status.ACCEPTED, "released", ~behind_dead),
        )
        for old, new, message_status, kind, condition in changes:
            pks = list(
                conn.execute(
                    select(d.c.id, d.c.message_pk).where(
                        d.c.procedure_key == key, d.c.status == old, condition
                    )
                ).all()
            )
            if not pks:
                continue
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_([p.id for p in pks]))
                .values(status=new, updated_at=now)
            )
            message_pks = [p.message_pk for p in pks]
            conn.execute(
                update(messages)
                .where(messages.c.id.in_(message_pks))
                .values(status=message_status, updated_at=now)
            )
            conn.execute(
                insert(events),
                [{"message_pk": pk, "at": now, "kind": kind, "detail": {}} for pk in message_pks],
            )

    # ------------------------------------------------------------ reading

    def queue_depth(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status)).all()
        return {status: int(count) for status, count in rows}

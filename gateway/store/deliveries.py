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
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, insert, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from gateway.ports import DeliveryTask, Registration, Status
from gateway.store.tables import cases, deliveries, delivery_attempts, events, messages

PENDING, HELD, REGISTERED, DEAD = "pending", "held", "registered", "dead_letter"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _before(pred: Any, d: Any) -> ColumnElement[bool]:
    """``pred`` comes before ``d`` in the same procedure."""
    return and_(
        pred.c.procedure_key == d.c.procedure_key,
        or_(
            pred.c.order_rank < d.c.order_rank,
            and_(pred.c.order_rank == d.c.order_rank, pred.c.id < d.c.id),
        ),
    )


class SqlDeliveryStore:
    """:class:`gateway.ports.DeliveryStore` over SQLite (one process) or PostgreSQL (many)."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self.engine = engine
        self._write_lock = write_lock or threading.Lock()
        self._skip_locked = engine.dialect.name == "postgresql"

    # ------------------------------------------------------------ claiming

    def _claimable(self, now: datetime, limit: int) -> Any:
        d = deliveries.alias("d")
        pred = deliveries.alias("pred")
        initial = deliveries.alias("initial")
        blocked = exists().where(_before(pred, d), pred.c.status != REGISTERED)
        has_initial = exists().where(
            initial.c.procedure_key == d.c.procedure_key,
            initial.c.kind == "initiale",
            initial.c.status == REGISTERED,
        )
        query = (
            select(d.c.id)
            .where(
                d.c.status == PENDING,
                d.c.next_attempt_at <= now,
                or_(d.c.lease_expires_at.is_(None), d.c.lease_expires_at < now),
                ~blocked,
                or_(d.c.kind == "initiale", has_initial),
            )
            .order_by(d.c.next_attempt_at, d.c.id)
            .limit(limit)
        )
        return query.with_for_update(skip_locked=True, of=d) if self._skip_locked else query

    def claim(self, owner: str, limit: int, lease_seconds: float, now: datetime) -> list[DeliveryTask]:
        now = _utc(now)
        with self._write_lock, self.engine.begin() as conn:
            ids = list(conn.execute(self._claimable(now, limit)).scalars())
            if not ids:
                return []
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(ids))
                .values(
                    lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now
                )
            )
            rows = conn.execute(
                select(
                    deliveries,
                    messages.c.receipt_id,
                    messages.c.message_id,
                    messages.c.status.label("mstatus"),
                )
                .join(messages, messages.c.id == deliveries.c.message_pk)
                .where(deliveries.c.id.in_(ids))
                .order_by(deliveries.c.id)
            ).all()
            tasks = [self._task(conn, row, owner) for row in rows]
            first = [row.message_pk for row in rows if row.mstatus != Status.DELIVERING]
            if first:
                conn.execute(
                    update(messages)
                    .where(messages.c.id.in_(first))
                    .values(status=Status.DELIVERING, updated_at=now)
                )
                conn.execute(
                    insert(events),
                    [{"message_pk": pk, "at": now, "kind": "delivering", "detail": {}} for pk in first],
                )
        return tasks

    def _task(self, conn: Connection, row: Any, owner: str) -> DeliveryTask:
        affaire, revision = conn.execute(
            select(cases.c.affaire, cases.c.revision)
            .where(cases.c.message_pk == row.message_pk)
            .order_by(cases.c.revision.desc())
            .limit(1)
        ).one()
        parquet = None
        if row.kind == "complement":
            parquet = conn.execute(
                select(deliveries.c.numero_parquet)
                .where(
                    deliveries.c.procedure_key == row.procedure_key,
                    deliveries.c.kind == "initiale",
                    deliveries.c.status == REGISTERED,
                )
                .order_by(deliveries.c.id)
                .limit(1)
            ).scalar()
        return DeliveryTask(
            delivery_id=row.id,
            receipt_id=row.receipt_id,
            message_id=row.message_id,
            kind=row.kind,
            procedure_key=row.procedure_key,
            attempts=row.attempts,
            created_at=_aware(row.created_at),
            affaire=dict(affaire),
            numero_parquet=parquet,
            revision=revision,
            lease_owner=owner,
        )

    # ------------------------------------------------------------ outcomes

    def _finish(
        self,
        conn: Connection,
        task: DeliveryTask,
        values: dict[str, Any],
        outcome: str,
        duration_ms: int,
        now: datetime,
        detail: dict[str, Any],
    ) -> bool:
        """Update the delivery if this worker still holds its lease; log the attempt either way."""
        done = conn.execute(
            update(deliveries)
            .where(deliveries.c.id == task.delivery_id, deliveries.c.lease_owner == task.lease_owner)
            .values(lease_owner=None, lease_expires_at=None, updated_at=now, **values)
        ).rowcount
        conn.execute(
            insert(delivery_attempts).values(
                delivery_id=task.delivery_id, at=now, outcome=outcome, duration_ms=duration_ms, detail=detail
            )
        )
        return bool(done)

    def _message(
        self,
        conn: Connection,
        task: DeliveryTask,
        now: datetime,
        status: str,
        kind: str,
        detail: dict[str, Any],
        **extra: Any,
    ) -> None:
        pk = conn.execute(
            select(deliveries.c.message_pk).where(deliveries.c.id == task.delivery_id)
        ).scalar_one()
        conn.execute(
            update(messages).where(messages.c.id == pk).values(status=status, updated_at=now, **extra)
        )
        conn.execute(insert(events).values(message_pk=pk, at=now, kind=kind, detail=detail))

    def record_registered(
        self, task: DeliveryTask, answer: Registration, duration_ms: int, now: datetime
    ) -> None:
        now = _utc(now)
        detail = {
            "numero_parquet": answer.numero_parquet,
            "repeat": answer.repeat,
            "duration_ms": duration_ms,
        }
        with self._write_lock, self.engine.begin() as conn:
            values = {
                "status": REGISTERED,
                "attempts": task.attempts + 1,
                "numero_parquet": answer.numero_parquet,
                "registered_at": _utc(answer.registered_at),
                "last_error": None,
            }
            if self._finish(conn, task, values, "registered", duration_ms, now, detail):
                self._message(
                    conn,
                    task,
                    now,
                    Status.REGISTERED,
                    "registered",
                    detail,
                    numero_parquet=answer.numero_parquet,
                )
                self._refresh_holds(conn, task.procedure_key, now)

    def record_retry(
        self, task: DeliveryTask, reason: str, next_attempt_at: datetime, duration_ms: int, now: datetime
    ) -> None:
        now = _utc(now)
        detail = {
            "reason": reason,
            "attempt": task.attempts + 1,
            "next_attempt_at": _utc(next_attempt_at).isoformat(),
        }
        with self._write_lock, self.engine.begin() as conn:
            values = {
                "attempts": task.attempts + 1,
                "next_attempt_at": _utc(next_attempt_at),
                "last_error": reason[:500],
            }
            if self._finish(conn, task, values, "retriable", duration_ms, now, detail):
                self._message(conn, task, now, Status.DELIVERING, "delivery_failed", detail)

    def record_dead_letter(
        self, task: DeliveryTask, code: str, reason: str, duration_ms: int, now: datetime
    ) -> None:
        now = _utc(now)
        detail = {"code": code, "reason": reason, "attempt": task.attempts + 1}
        with self._write_lock, self.engine.begin() as conn:
            values = {"status": DEAD, "attempts": task.attempts + 1, "last_error": f"{code}: {reason}"[:500]}
            if self._finish(conn, task, values, "fatal", duration_ms, now, detail):
                self._message(conn, task, now, Status.DEAD_LETTER, "dead_letter", detail)
                self._refresh_holds(conn, task.procedure_key, now)

    def release(self, task: DeliveryTask, next_attempt_at: datetime, now: datetime) -> None:
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == task.delivery_id, deliveries.c.lease_owner == task.lease_owner)
                .values(
                    lease_owner=None,
                    lease_expires_at=None,
                    next_attempt_at=_utc(next_attempt_at),
                    updated_at=_utc(now),
                )
            )

    def _refresh_holds(self, conn: Connection, key: str, now: datetime) -> None:
        """Hold what stands behind a dead letter; release what no longer does."""
        d = deliveries.alias("d")
        pred = deliveries.alias("pred")
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

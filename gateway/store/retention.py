"""Keeping personal data no longer than needed: the purge, and legal holds that stop it.

A message's raw bytes and mapped case carry personal data; its hashes and metadata (receipt,
sender, unit, numéro de procédure and parquet, status, timeline) do not, and stay: the chain
can still be checked and the exchange explained. What is purged, and when:

- a registered message, ``retention_days`` after its registration;
- a rejected (or failed) message, ``rejected_retention_days`` after it was received: it never
  reached the court, and its sender was told why at once. Its error texts, which may quote a
  value of the message, are purged with it (codes, lines and paths stay).

A procedure under a legal hold (agency, unit, numéro de procédure) is not purged while the hold
lasts. Each purged message is an audit record (kind ``purge``) in the purge's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, insert, or_, select, update

from gateway.audit import PURGE, Entry
from gateway.ports import Clock, Status
from gateway.store.audit import AuditLog
from gateway.store.tables import cases, deliveries, legal_holds, messages
from gateway.store.times import aware, utc

_BATCH = 500
PURGED_TEXT = "(purged)"


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    agency: str
    unit_code: str
    procedure_number: str
    reason: str
    placed_by: str
    placed_at: datetime
    released_by: str | None
    released_at: datetime | None


@dataclass
class PurgeReport:
    purged: int = 0
    held: int = 0  # due by age, kept for a legal hold
    receipt_ids: list[str] = field(default_factory=list)  # the first ones, for the operator


def _hold(row: Any) -> Hold:
    return Hold(
        id=row.id,
        agency=row.agency,
        unit_code=row.unit_code,
        procedure_number=row.procedure_number,
        reason=row.reason,
        placed_by=row.placed_by,
        placed_at=aware(row.placed_at),
        released_by=row.released_by,
        released_at=aware(row.released_at) if row.released_at is not None else None,
    )


class HoldError(ValueError):
    """A hold request that cannot be carried out."""


class Retention:
    def __init__(
        self,
        engine: Engine,
        writing: Callable[[], AbstractContextManager[Connection]],
        audit: AuditLog,
        clock: Clock,
        retention_days: float,
        rejected_retention_days: float,
    ) -> None:
        self.engine = engine
        self._writing = writing
        self.audit = audit
        self.clock = clock
        self.retention = timedelta(days=retention_days)
        self.rejected_retention = timedelta(days=rejected_retention_days)

    # ------------------------------------------------------------ legal holds

    def place_hold(self, agency: str, unit_code: str, procedure_number: str, reason: str, by: str) -> Hold:
        if not reason.strip():
            raise HoldError("A legal hold needs its reason (a judge's order, a request's reference).")
        now = utc(self.clock())
        row = {
            "agency": agency,
            "unit_code": unit_code.strip(),
            "procedure_number": procedure_number.strip(),
            "reason": reason.strip()[:500],
            "placed_by": by[:128],
            "placed_at": now,
        }
        with self._writing() as conn:
            hold_id = conn.execute(insert(legal_holds).returning(legal_holds.c.id), row).scalar_one()
            subject = f"hold:{hold_id}"
            detail = {"action": "hold_placed", "agency": agency, "unit": row["unit_code"]}
            detail["procedure_number"] = row["procedure_number"]
            self.audit.append(conn, Entry(PURGE, by, subject, now, detail))
        return self.hold(hold_id)

    def release_hold(self, hold_id: int, by: str) -> Hold:
        now = utc(self.clock())
        with self._writing() as conn:
            done = conn.execute(
                update(legal_holds)
                .where(legal_holds.c.id == hold_id, legal_holds.c.released_at.is_(None))
                .values(released_by=by[:128], released_at=now)
            ).rowcount
            if not done:
                raise HoldError(f"No legal hold {hold_id} in force.")
            self.audit.append(conn, Entry(PURGE, by, f"hold:{hold_id}", now, {"action": "hold_released"}))
        return self.hold(hold_id)

    def hold(self, hold_id: int) -> Hold:
        with self.engine.connect() as conn:
            row = conn.execute(select(legal_holds).where(legal_holds.c.id == hold_id)).first()
        if row is None:
            raise HoldError(f"No legal hold {hold_id}.")
        return _hold(row)

    def holds(self, in_force_only: bool = True) -> list[Hold]:
        query = select(legal_holds).order_by(legal_holds.c.placed_at, legal_holds.c.id)
        if in_force_only:
            query = query.where(legal_holds.c.released_at.is_(None))
        with self.engine.connect() as conn:
            return [_hold(row) for row in conn.execute(query)]

    # ------------------------------------------------------------ the purge

    def _due(self, now: datetime) -> Any:
        """Messages whose payload is due for purging by age (held or not)."""
        registered = and_(
            messages.c.status == Status.REGISTERED,
            exists().where(
                deliveries.c.message_pk == messages.c.id,
                deliveries.c.registered_at < now - self.retention,
            ),
        )
        refused = and_(
            messages.c.status.in_([Status.REJECTED, Status.FAILED]),
            messages.c.received_at < now - self.rejected_retention,
        )
        return and_(messages.c.purged_at.is_(None), or_(registered, refused))

    @staticmethod
    def _held() -> Any:
        return exists().where(
            legal_holds.c.released_at.is_(None),
            legal_holds.c.agency == messages.c.agency,
            legal_holds.c.unit_code == messages.c.unit_code,
            legal_holds.c.procedure_number == messages.c.procedure_number,
        )

    def purge(self, by: str, dry_run: bool = False) -> PurgeReport:
        """Purge what is due and not held; ``dry_run`` counts without changing anything."""
        now = utc(self.clock())
        report = PurgeReport()
        due = self._due(now)
        counted = select(func.count()).select_from(messages).where(due)
        with self.engine.connect() as conn:
            report.held = int(conn.execute(counted.where(self._held())).scalar_one())
            if dry_run:
                report.purged = int(conn.execute(counted.where(~self._held())).scalar_one())
                ids = conn.execute(
                    select(messages.c.receipt_id).where(due, ~self._held()).limit(20)
                ).scalars()
                report.receipt_ids = list(ids)
                return report
        for batch in self._batches(due):
            with self._writing() as conn:
                self._purge_batch(conn, batch, by, now, report)
        return report

    def _batches(self, due: Any) -> Iterator[list[Any]]:
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(
                        messages.c.id,
                        messages.c.receipt_id,
                        messages.c.sha256,
                        messages.c.status,
                        messages.c.errors,
                    )
                    .where(due, ~self._held())
                    .order_by(messages.c.id)
                    .limit(_BATCH)
                ).all()
            if not rows:
                return
            yield list(rows)

    def _purge_batch(
        self, conn: Connection, rows: list[Any], by: str, now: datetime, report: PurgeReport
    ) -> None:
        pks = [row.id for row in rows]
        conn.execute(
            update(messages).where(messages.c.id.in_(pks)).values(raw=None, purged_at=now, updated_at=now)
        )
        conn.execute(update(cases).where(cases.c.message_pk.in_(pks)).values(affaire={"purged": True}))
        for row in rows:
            if row.errors:
                errors = [{**e, "message": PURGED_TEXT} for e in row.errors]
                conn.execute(update(messages).where(messages.c.id == row.id).values(errors=errors))
        self.audit.append(
            conn,
            *(
                Entry(
                    PURGE,
                    by,
                    row.receipt_id,
                    now,
                    {"action": "payload_purged", "sha256": row.sha256, "status": row.status},
                )
                for row in rows
            ),
        )
        report.purged += len(rows)
        report.receipt_ids.extend(row.receipt_id for row in rows[: max(0, 20 - len(report.receipt_ids))])

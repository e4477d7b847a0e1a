"""Replaying messages: preview, start, pause, resume, cancel, and carrying replays out at their
rate limit (see :mod:`replay.model` for the words).

How a replay goes:

- **Choosing.** The messages are chosen when the replay starts (by receipt ids, or by the
  message list's filters) and recorded with it as items, in procedure order: by procedure
  (agency, unit, numéro de procédure), the initial procedure first, then in the order received.
  A replay never grows or shrinks behind the operator's back.
- **Planning.** What to do with a message is decided by one function (:meth:`_plan`) for the
  preview and for the run alike; the run decides again at the moment it reaches the message, so
  what happened meanwhile (registered by the worker, replayed by someone else) is respected.
- **Applying.** One transaction per message: the message's new state, its event on the timeline
  (``replayed``, with the replay id: the lineage of the attempts that follow), and the item's
  outcome. A crash between two messages loses nothing: the items not done are still pending,
  and the runner that takes the lease over goes on from there.
- **Pace.** A token bucket at the replay's rate (messages per second), with a burst of a tenth
  of a second's worth: the registry sees at most the rate, plus that burst, from a replay.
  The delivery worker sends what a replay requeued in procedure order, as it does everything.
- **No duplicate.** The registry's idempotency key stays the message id; a redelivered case that
  was registered meanwhile is skipped; a reprocessed case that changed goes as a new *revision*
  of the same key, which the registry takes as an update of the same affaire (same numéro).
  Running the same replay twice therefore sends nothing twice.
- A requeued delivery starts a fresh retry budget (attempts and age): a dead letter of last week
  would otherwise be out of time at its first failure.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.audit import REPLAY, Entry
from gateway.intake import Checker, Evaluation
from gateway.ports import Clock, Status
from gateway.store.engine import JsonText
from gateway.store.outcomes import DEAD, HELD, PENDING, REGISTERED
from gateway.store.queries import MessageFilter, matching_messages
from gateway.store.repository import SqlStore
from gateway.store.sealing import PayloadUnreadable
from gateway.store.tables import (
    cases,
    deliveries,
    delivery_attempts,
    events,
    message_error_codes,
    messages,
    replay_items,
    replays,
)
from gateway.store.times import aware, utc
from replay.diff import diff
from replay.model import (
    Action,
    Change,
    ItemState,
    Mode,
    NothingSelected,
    PlannedItem,
    Preview,
    ReasonRequired,
    ReplayError,
    ReplayItem,
    ReplayStateConflict,
    ReplayStatus,
    ReplaySummary,
    ReplayUnknown,
    Selection,
)

log = structlog.get_logger("saisine.replay")

MAX_SELECTION = 50_000  # messages in one replay; more is a sign the filter is wrong
LEASE_SECONDS = 30.0
_CHUNK = 200  # messages read at a time while planning


@dataclass(frozen=True, slots=True)
class _Message:
    """What planning needs to know about one message."""

    pk: int
    receipt_id: str
    message_id: str | None
    agency: str
    sender: str
    status: str
    accepted: bool
    procedure_key: str | None
    raw: bytes | None
    errors: list[dict[str, Any]]
    delivery_id: int | None
    delivery_status: str | None
    leased: bool
    numero_parquet: str | None
    last_error: str | None
    revision: int | None
    affaire: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class _Plan:
    item: PlannedItem
    evaluation: Evaluation | None = None
    new_case: dict[str, Any] | None = None


class _Bucket:
    """A token bucket: ``rate`` tokens a second, at most a tenth of a second's worth at once
    (at least one), starting with one."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate / 10)
        self.tokens = 1.0
        self.at = now

    def take(self, now: float, wanted: int) -> int:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted

    def wait(self) -> float:
        """Seconds until the next token."""
        return max(0.0, (1.0 - self.tokens) / self.rate)


def procedure_key(agency: str, unit: str | None, procedure: str | None) -> str:
    """As the outbox writes it (gateway.store.repository)."""
    return f"{agency}:{unit}:{procedure}"


class ReplayService:
    """Everything operators do with replays; the API, the CLI and the console call this."""

    def __init__(self, store: SqlStore, checker: Checker, clock: Clock, rate_per_second: float) -> None:
        self.store = store
        self.engine = store.engine
        self.checker = checker
        self.clock = clock
        self.rate_per_second = rate_per_second
        self._buckets: dict[str, _Bucket] = {}  # the runner's pace, per replay
        self._renew_at: dict[tuple[str, str], float] = {}  # (replay, owner) -> when to renew the lease
        self._lock = threading.Lock()

    # ------------------------------------------------------------ choosing

    def _selected(self, conn: Connection, selection: Selection) -> list[int]:
        """The message pks of ``selection``, in procedure order."""
        if selection.receipt_ids and selection.filter is not None:
            raise ReplayError("Choose messages by receipt ids or by filters, not both.")
        columns = select(
            messages.c.id,
            messages.c.receipt_id,
            messages.c.agency,
            messages.c.unit_code,
            messages.c.procedure_number,
            messages.c.message_kind,
        )
        if selection.receipt_ids:
            wanted = list(dict.fromkeys(selection.receipt_ids))
            rows = conn.execute(columns.where(messages.c.receipt_id.in_(wanted))).all()
            unknown = sorted(set(wanted) - {row.receipt_id for row in rows})
            if unknown:
                raise ReplayError(f"Unknown receipt ids: {', '.join(unknown[:10])}.")
        elif selection.filter is not None:
            if all(getattr(selection.filter, f.name) is None for f in fields(selection.filter)):
                raise ReplayError("A filter with no criterion would choose every message; name at least one.")
            rows = conn.execute(matching_messages(columns, selection.filter).limit(MAX_SELECTION + 1)).all()
        else:
            raise NothingSelected("Choose messages by receipt ids or by filters.")
        if not rows:
            raise NothingSelected("No message matches the selection.")
        if len(rows) > MAX_SELECTION:
            raise ReplayError(f"More than {MAX_SELECTION} messages match; narrow the selection.")

        def order(row: Any) -> tuple[str, int, int]:
            rank = 0 if row.message_kind in (None, "initiale") else 1
            return procedure_key(row.agency, row.unit_code, row.procedure_number), rank, row.id

        return [row.id for row in sorted(rows, key=order)]

    def _load(self, conn: Connection, pks: Sequence[int], with_raw: bool) -> list[_Message]:
        """The messages with their delivery and the latest revision of their case, in ``pks`` order."""
        latest = (
            select(cases.c.message_pk, func.max(cases.c.revision).label("revision"))
            .where(cases.c.message_pk.in_(pks))
            .group_by(cases.c.message_pk)
            .subquery()
        )
        query = (
            select(
                messages.c.id,
                messages.c.receipt_id,
                messages.c.message_id,
                messages.c.agency,
                messages.c.sender,
                messages.c.status,
                messages.c.accepted,
                messages.c.unit_code,
                messages.c.procedure_number,
                messages.c.errors,
                (messages.c.raw if with_raw else messages.c.sha256).label("raw"),
                deliveries.c.id.label("delivery_id"),
                deliveries.c.status.label("delivery_status"),
                deliveries.c.procedure_key,
                deliveries.c.lease_expires_at,
                deliveries.c.numero_parquet,
                deliveries.c.last_error,
                cases.c.revision,
                cases.c.affaire,
            )
            .select_from(
                messages.outerjoin(deliveries, deliveries.c.message_pk == messages.c.id)
                .outerjoin(latest, latest.c.message_pk == messages.c.id)
                .outerjoin(
                    cases,
                    and_(cases.c.message_pk == messages.c.id, cases.c.revision == latest.c.revision),
                )
            )
            .where(messages.c.id.in_(pks))
        )
        now = utc(self.clock())
        found = {}
        for row in conn.execute(query):
            lease = row.lease_expires_at
            found[row.id] = _Message(
                pk=row.id,
                receipt_id=row.receipt_id,
                message_id=row.message_id,
                agency=row.agency,
                sender=row.sender,
                status=row.status,
                accepted=bool(row.accepted),
                procedure_key=row.procedure_key
                or procedure_key(row.agency, row.unit_code, row.procedure_number),
                raw=self._open(row.raw) if with_raw and row.raw is not None else None,
                errors=list(row.errors or []),
                delivery_id=row.delivery_id,
                delivery_status=row.delivery_status,
                leased=lease is not None and utc(aware(lease)) > now,
                numero_parquet=row.numero_parquet,
                last_error=row.last_error,
                revision=row.revision,
                affaire=dict(row.affaire) if row.affaire is not None else None,
            )
        return [found[pk] for pk in pks if pk in found]

    def _open(self, stored: bytes) -> bytes | None:
        """The raw bytes, unsealed; None when no configured key opens them (nothing to reprocess)."""
        try:
            return self.store.cipher.open(bytes(stored))
        except PayloadUnreadable:
            return None

    # ------------------------------------------------------------ planning

    def _plan(self, message: _Message, mode: str) -> _Plan:
        """What ``mode`` does to ``message`` now (the preview's answer and the run's decision)."""
        if mode == Mode.REDELIVER:
            return _Plan(self._plan_redeliver(message))
        return self._plan_reprocess(message)

    @staticmethod
    def _item(message: _Message, action: str, reason: str, **extra: Any) -> PlannedItem:
        return PlannedItem(
            receipt_id=message.receipt_id,
            message_id=message.message_id,
            procedure_key=message.procedure_key,
            status=message.status,
            action=action,
            reason=reason,
            **extra,
        )

    def _plan_redeliver(self, m: _Message) -> PlannedItem:
        skip = Action.SKIP
        if m.delivery_status is None:
            return self._item(m, skip, "Never accepted: nothing to deliver (reprocess it instead).")
        if m.delivery_status == DEAD:
            return self._item(m, Action.REQUEUE, f"Dead letter ({m.last_error or 'refused'}): sent again.")
        if m.delivery_status == REGISTERED:
            return self._item(m, skip, f"Already registered as {m.numero_parquet}.")
        if m.delivery_status == HELD:
            return self._item(
                m,
                skip,
                "Held behind a dead letter of its procedure: goes on by itself once it is registered.",
            )
        return self._item(m, skip, "On its way to the registry already.")

    def _plan_reprocess(self, m: _Message) -> _Plan:
        if m.raw is None:
            return _Plan(self._item(m, Action.SKIP, "Its raw bytes are not kept: nothing to reprocess."))
        evaluation = self.checker.evaluate(m.raw, m.agency)
        new_errors = [e.as_dict() for e in evaluation.errors]
        codes = ", ".join(evaluation.codes)
        if not m.accepted:
            if evaluation.case is None:
                return _Plan(
                    self._item(m, Action.STILL_REJECTED, f"Rejected again: {codes}.", errors=new_errors),
                    evaluation,
                )
            new_case = _as_json(evaluation)
            return _Plan(
                self._item(
                    m,
                    Action.ACCEPT,
                    "Passes today's checks: accepted and delivered.",
                    changes=diff({}, new_case),
                    revision=1,
                ),
                evaluation,
                new_case,
            )
        if evaluation.case is None:
            return _Plan(
                self._item(
                    m,
                    Action.REFUSED,
                    f"Would be rejected today ({codes}): the accepted case is left as it is.",
                    errors=new_errors,
                ),
                evaluation,
            )
        new_case = _as_json(evaluation)
        changes = diff(m.affaire, new_case)
        if changes:
            if m.leased:
                return _Plan(
                    self._item(m, Action.SKIP, "Being delivered right now: replay it again once it settles.")
                )
            revision = (m.revision or 0) + 1
            return _Plan(
                self._item(
                    m,
                    Action.REVISE,
                    f"The case changes ({len(changes)} difference{'s' if len(changes) > 1 else ''}): "
                    f"revision {revision}, delivered again.",
                    changes=changes,
                    revision=revision,
                ),
                evaluation,
                new_case,
            )
        if m.delivery_status == DEAD:
            return _Plan(
                self._item(m, Action.REQUEUE, "The case is unchanged; the dead letter is sent again.")
            )
        return _Plan(self._item(m, Action.SKIP, "The case is unchanged: nothing to do."))

    # ------------------------------------------------------------ preview and start

    def preview(self, mode: str, selection: Selection, limit: int = 1000) -> Preview:
        """What a replay of ``selection`` in ``mode`` would do to each message; changes nothing.
        Raises NothingSelected, ReplayError (unknown mode, both ids and filters)."""
        _check_mode(mode)
        with self.engine.connect() as conn:
            pks = self._selected(conn, selection)
            counts: dict[str, int] = {}
            items: list[PlannedItem] = []
            for chunk in _chunks(pks, _CHUNK):
                for message in self._load(conn, chunk, with_raw=mode == Mode.REPROCESS):
                    planned = self._plan(message, mode).item
                    counts[planned.action] = counts.get(planned.action, 0) + 1
                    if len(items) < limit:
                        items.append(planned)
        return Preview(mode, len(pks), counts, items, truncated=len(pks) > len(items))

    def start(
        self,
        mode: str,
        selection: Selection,
        reason: str,
        requested_by: str,
        rate_per_second: float | None = None,
    ) -> ReplaySummary:
        """Record a replay and its messages (chosen now, in procedure order) and set it running;
        the runner carries it out. Raises ReasonRequired, NothingSelected, ReplayError."""
        _check_mode(mode)
        reason, requested_by = reason.strip(), requested_by.strip()
        if not reason:
            raise ReasonRequired("A replay needs a reason: it is recorded with it.")
        if not requested_by:
            raise ReplayError("A replay needs the name of who asks for it.")
        rate = rate_per_second if rate_per_second is not None else self.rate_per_second
        if not 0 < rate <= 10_000:
            raise ReplayError("The rate must be between 0 (excluded) and 10000 messages a second.")
        now = utc(self.clock())
        replay_id = str(uuid.uuid4())
        with self.store.writing() as conn:
            pks = self._selected(conn, selection)
            conn.execute(
                insert(replays),
                {
                    "id": replay_id,
                    "mode": mode,
                    "reason": reason[:1000],
                    "requested_by": requested_by[:128],
                    "status": ReplayStatus.RUNNING,
                    "selection": selection.as_dict(),
                    "rate_per_second": rate,
                    "total": len(pks),
                    "controls": [],
                    "created_at": now,
                    "updated_at": now,
                },
            )
            conn.execute(
                insert(replay_items),
                [
                    {
                        "replay_id": replay_id,
                        "position": position,
                        "message_pk": pk,
                        "state": ItemState.PENDING,
                        "reason": "",
                        "detail": {},
                    }
                    for position, pk in enumerate(pks, start=1)
                ],
            )
            detail = {"action": "started", "mode": mode, "reason": reason[:500], "total": len(pks)}
            detail["selection"] = (
                selection.as_dict() if not selection.receipt_ids else {"receipt_ids": len(pks)}
            )
            self.store.audit.append(conn, Entry(REPLAY, requested_by[:128], replay_id, now, detail))
        log.info("replay_started", replay_id=replay_id, mode=mode, total=len(pks), rate=rate)
        return self.get(replay_id)

    # ------------------------------------------------------------ reading

    def get(self, replay_id: str) -> ReplaySummary:
        """A replay with its progress. Raises ReplayUnknown."""
        with self.engine.connect() as conn:
            row = conn.execute(select(replays).where(replays.c.id == replay_id)).first()
            if row is None:
                raise ReplayUnknown(f"No replay {replay_id}.")
            return self._summary(conn, row)

    def _summary(self, conn: Connection, row: Row[Any]) -> ReplaySummary:
        counts: dict[str, int] = {}
        by_state = (
            select(replay_items.c.state, replay_items.c.action, func.count())
            .where(replay_items.c.replay_id == row.id)
            .group_by(replay_items.c.state, replay_items.c.action)
        )
        for state, action, count in conn.execute(by_state):
            counts[state] = counts.get(state, 0) + count
            if action:
                counts[action] = counts.get(action, 0) + count
        sent = (
            select(deliveries.c.status, func.count())
            .select_from(replay_items.join(deliveries, deliveries.c.message_pk == replay_items.c.message_pk))
            .where(replay_items.c.replay_id == row.id, replay_items.c.action.in_(Action.CHANGING))
            .group_by(deliveries.c.status)
        )
        delivered = {status: int(count) for status, count in conn.execute(sent)}
        return ReplaySummary(
            replay_id=row.id,
            mode=row.mode,
            reason=row.reason,
            requested_by=row.requested_by,
            created_at=aware(row.created_at),
            status=row.status,
            selection=dict(row.selection),
            rate_per_second=row.rate_per_second,
            total=row.total,
            counts=counts,
            deliveries=delivered,
            updated_at=aware(row.updated_at),
            finished_at=aware(row.finished_at) if row.finished_at is not None else None,
            events=list(row.controls),
        )

    def items(self, replay_id: str, limit: int = 500, offset: int = 0) -> list[ReplayItem]:
        """A replay's messages in the order it takes them, with what came of each."""
        query = (
            select(
                replay_items.c.position,
                replay_items.c.state,
                replay_items.c.action,
                replay_items.c.reason,
                replay_items.c.at,
                messages.c.receipt_id,
                deliveries.c.status.label("delivery_status"),
            )
            .select_from(
                replay_items.join(messages, messages.c.id == replay_items.c.message_pk).outerjoin(
                    deliveries, deliveries.c.message_pk == replay_items.c.message_pk
                )
            )
            .where(replay_items.c.replay_id == replay_id)
            .order_by(replay_items.c.position)
            .limit(max(1, min(limit, 5000)))
            .offset(max(0, offset))
        )
        with self.engine.connect() as conn:
            if conn.execute(select(replays.c.id).where(replays.c.id == replay_id)).first() is None:
                raise ReplayUnknown(f"No replay {replay_id}.")
            rows = conn.execute(query).all()
        return [
            ReplayItem(
                position=row.position,
                receipt_id=row.receipt_id,
                state=row.state,
                action=row.action,
                reason=row.reason,
                at=aware(row.at) if row.at is not None else None,
                delivery_status=row.delivery_status if row.action in Action.CHANGING else None,
            )
            for row in rows
        ]

    def history(self, limit: int = 50) -> list[ReplaySummary]:
        """Replays, newest first."""
        query = select(replays).order_by(replays.c.created_at.desc(), replays.c.id).limit(max(1, limit))
        with self.engine.connect() as conn:
            return [self._summary(conn, row) for row in conn.execute(query).all()]

    def of_message(self, receipt_id: str) -> list[dict[str, Any]]:
        """The replays that took this message, oldest first, with what each did to it."""
        query = (
            select(
                replays.c.id,
                replays.c.mode,
                replays.c.reason,
                replays.c.requested_by,
                replays.c.created_at,
                replay_items.c.state,
                replay_items.c.action,
                replay_items.c.reason.label("outcome"),
                replay_items.c.at,
            )
            .select_from(
                replay_items.join(replays, replays.c.id == replay_items.c.replay_id).join(
                    messages, messages.c.id == replay_items.c.message_pk
                )
            )
            .where(messages.c.receipt_id == receipt_id)
            .order_by(replays.c.created_at)
        )
        with self.engine.connect() as conn:
            return [
                {
                    "replay_id": row.id,
                    "mode": row.mode,
                    "reason": row.reason,
                    "requested_by": row.requested_by,
                    "created_at": aware(row.created_at),
                    "state": row.state,
                    "action": row.action,
                    "outcome": row.outcome,
                    "at": aware(row.at) if row.at is not None else None,
                }
                for row in conn.execute(query)
            ]

    # ------------------------------------------------------------ control

    def pause(self, replay_id: str, by: str) -> ReplaySummary:
        return self._control(replay_id, by, "paused", (ReplayStatus.RUNNING,), ReplayStatus.PAUSED)

    def resume(self, replay_id: str, by: str) -> ReplaySummary:
        return self._control(replay_id, by, "resumed", (ReplayStatus.PAUSED,), ReplayStatus.RUNNING)

    def cancel(self, replay_id: str, by: str) -> ReplaySummary:
        return self._control(
            replay_id, by, "cancelled", (ReplayStatus.RUNNING, ReplayStatus.PAUSED), ReplayStatus.CANCELLED
        )

    def _control(
        self, replay_id: str, by: str, kind: str, allowed: tuple[str, ...], new: str
    ) -> ReplaySummary:
        now = utc(self.clock())
        with self.store.writing() as conn:
            row = conn.execute(
                select(replays.c.status, replays.c.controls).where(replays.c.id == replay_id)
            ).first()
            if row is None:
                raise ReplayUnknown(f"No replay {replay_id}.")
            if row.status not in allowed:
                raise ReplayStateConflict(f"The replay is {row.status}: it cannot be {kind}.")
            controls = [
                *row.controls,
                {"kind": kind, "by": by.strip()[:128] or "unknown", "at": now.isoformat()},
            ]
            values: dict[str, Any] = {"status": new, "controls": controls, "updated_at": now}
            if new == ReplayStatus.CANCELLED:
                values["finished_at"] = now
                conn.execute(
                    update(replay_items)
                    .where(replay_items.c.replay_id == replay_id, replay_items.c.state == ItemState.PENDING)
                    .values(state=ItemState.CANCELLED, reason="Cancelled before it was reached.", at=now)
                )
            conn.execute(update(replays).where(replays.c.id == replay_id).values(**values))
            self.store.audit.append(conn, Entry(REPLAY, controls[-1]["by"], replay_id, now, {"action": kind}))
        log.info("replay_" + kind, replay_id=replay_id)
        return self.get(replay_id)

    # ------------------------------------------------------------ carrying out

    def run(
        self,
        replay_id: str,
        owner: str,
        on_progress: Callable[[ReplaySummary], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> ReplaySummary:
        """Carry one replay out in this thread, at its rate, until no item is left, it is paused
        or cancelled, or ``should_stop()``; used by the CLI. Returns the replay as it stands."""
        summary = self.get(replay_id)
        bucket = _Bucket(summary.rate_per_second, time.monotonic())
        last_report = 0.0
        while summary.status == ReplayStatus.RUNNING and not (should_stop and should_stop()):
            if not self._hold(replay_id, owner):
                time.sleep(0.5)  # another runner has it: wait for it to finish or give it up
                summary = self.get(replay_id)
                continue
            granted = bucket.take(time.monotonic(), _CHUNK)
            finished = bool(granted) and self._advance(replay_id, granted)
            now = time.monotonic()
            if finished or now - last_report >= 0.2:  # the status too: paused or cancelled meanwhile
                summary = self.get(replay_id)
                last_report = now
                if on_progress:
                    on_progress(summary)
            if not finished:
                time.sleep(min(0.2, max(bucket.wait(), 0.001)))
        self._release(replay_id, owner)
        return self.get(replay_id)

    def step(self, owner: str) -> int:
        """Apply the items due now of every running replay (the runner's loop calls this);
        returns how many were applied."""
        with self.engine.connect() as conn:
            running = list(
                conn.execute(
                    select(replays.c.id, replays.c.rate_per_second)
                    .where(replays.c.status == ReplayStatus.RUNNING)
                    .order_by(replays.c.created_at)
                ).all()
            )
        applied = 0
        for replay_id, rate in running:
            with self._lock:
                bucket = self._buckets.setdefault(replay_id, _Bucket(rate, time.monotonic()))
            granted = bucket.take(time.monotonic(), _CHUNK)
            if not granted or not self._hold(replay_id, owner):
                continue
            before = self._pending(replay_id)
            if self._advance(replay_id, granted):
                self._release(replay_id, owner)
                with self._lock:
                    self._buckets.pop(replay_id, None)
            applied += before - self._pending(replay_id)
        return applied

    def _pending(self, replay_id: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        replay_items.c.replay_id == replay_id, replay_items.c.state == ItemState.PENDING
                    )
                ).scalar_one()
            )

    def _hold(self, replay_id: str, owner: str) -> bool:
        """Whether ``owner`` holds the replay's lease, taking or renewing it in the database
        only when half of it has run out (not at every tick of the pace)."""
        key, now = (replay_id, owner), time.monotonic()
        with self._lock:
            if now < self._renew_at.get(key, 0.0):
                return True
        held = self._lease(replay_id, owner)
        with self._lock:
            if held:
                self._renew_at[key] = now + LEASE_SECONDS / 2
            else:
                self._renew_at.pop(key, None)
        return held

    def _lease(self, replay_id: str, owner: str) -> bool:
        """Take or renew the replay's lease; False if another runner holds it."""
        now = utc(self.clock())
        with self.store.writing() as conn:
            taken = conn.execute(
                update(replays)
                .where(
                    replays.c.id == replay_id,
                    replays.c.status == ReplayStatus.RUNNING,
                    or_(
                        replays.c.runner_owner.is_(None),
                        replays.c.runner_owner == owner,
                        replays.c.runner_lease_expires_at < now,
                    ),
                )
                .values(runner_owner=owner, runner_lease_expires_at=now + timedelta(seconds=LEASE_SECONDS))
            ).rowcount
        return bool(taken)

    def _release(self, replay_id: str, owner: str) -> None:
        with self._lock:
            self._renew_at.pop((replay_id, owner), None)
        with self.store.writing() as conn:
            conn.execute(
                update(replays)
                .where(replays.c.id == replay_id, replays.c.runner_owner == owner)
                .values(runner_owner=None, runner_lease_expires_at=None)
            )

    def _complete(self, replay_id: str) -> None:
        now = utc(self.clock())
        with self.store.writing() as conn:
            done = conn.execute(
                update(replays)
                .where(replays.c.id == replay_id, replays.c.status == ReplayStatus.RUNNING)
                .values(status=ReplayStatus.COMPLETED, finished_at=now, updated_at=now)
            ).rowcount
        if done:
            log.info("replay_completed", replay_id=replay_id)

    def _advance(self, replay_id: str, count: int) -> bool:
        """Apply up to ``count`` pending items, in order, while the replay runs; True when it
        has none left (it is then completed)."""
        for _ in range(count):
            with self.engine.connect() as conn:
                head = conn.execute(
                    select(replays.c.mode, replays.c.status, replays.c.requested_by).where(
                        replays.c.id == replay_id
                    )
                ).first()
                item = conn.execute(
                    select(replay_items.c.id, replay_items.c.message_pk)
                    .where(replay_items.c.replay_id == replay_id, replay_items.c.state == ItemState.PENDING)
                    .order_by(replay_items.c.position)
                    .limit(1)
                ).first()
            if head is None or head.status != ReplayStatus.RUNNING:
                return False
            if item is None:
                self._complete(replay_id)
                return True
            self._apply_one(replay_id, head.mode, head.requested_by, item.id, item.message_pk)
        if self._pending(replay_id) == 0:
            self._complete(replay_id)
            return True
        return False

    def _apply_one(self, replay_id: str, mode: str, by: str, item_id: int, message_pk: int) -> None:
        """Decide and apply what the replay does to one message, in one transaction."""
        try:
            with self.store.writing() as conn:
                self._apply_in(conn, replay_id, mode, by, item_id, message_pk)
        except IntegrityError:
            # an accepted twin (same sender and message id) was stored meanwhile: the reprocessed
            # message stays as it was
            with self.store.writing() as conn:
                self._finish_item(
                    conn,
                    item_id,
                    Action.SKIP,
                    "Its message id was accepted meanwhile under another receipt: left as it was.",
                    {},
                )

    def _apply_in(
        self, conn: Connection, replay_id: str, mode: str, by: str, item_id: int, message_pk: int
    ) -> None:
        running = select(replays.c.id).where(replays.c.status == ReplayStatus.RUNNING)
        claimed = conn.execute(  # the item's row, locked until the commit: it is applied once
            update(replay_items)
            .where(
                replay_items.c.id == item_id,
                replay_items.c.state == ItemState.PENDING,
                replay_items.c.replay_id.in_(running),
            )
            .values(state=ItemState.DONE)
        ).rowcount
        if not claimed:
            return  # paused or cancelled meanwhile, or applied by another runner
        [message] = self._load(conn, [message_pk], with_raw=mode == Mode.REPROCESS)
        plan = self._plan(message, mode)
        item, now = plan.item, utc(self.clock())
        if item.action == Action.REQUEUE:
            self._requeue(conn, message, now)
        elif item.action == Action.REVISE:
            assert plan.evaluation is not None and plan.new_case is not None
            self._revise(conn, message, plan, now)
        elif item.action == Action.ACCEPT:
            assert plan.evaluation is not None and plan.new_case is not None
            self._accept(conn, message, plan, now)
        elif item.action == Action.STILL_REJECTED and plan.evaluation is not None:
            self._still_rejected(conn, message, plan.evaluation, now)
        if item.action != Action.SKIP:
            detail: dict[str, Any] = {"replay_id": replay_id, "mode": mode, "action": item.action, "by": by}
            if item.revision is not None and item.action != Action.STILL_REJECTED:
                detail["revision"] = item.revision
            if item.action in Action.CHANGING:  # the attempts after this many are this replay's
                detail["after_attempt"] = self._attempts(conn, message.delivery_id)
            conn.execute(
                insert(events), [{"message_pk": message.pk, "at": now, "kind": "replayed", "detail": detail}]
            )
        detail_out: dict[str, Any] = {}
        if item.changes:
            detail_out["changes"] = [asdict(c) for c in item.changes[:200]]
        if item.errors:
            detail_out["errors"] = item.errors[:50]
        if item.revision is not None:
            detail_out["revision"] = item.revision
        self._finish_item(conn, item_id, item.action, item.reason, detail_out)
        if item.action != Action.SKIP:  # what a replay changed, message by message
            record: dict[str, Any] = {"replay_id": replay_id, "mode": mode, "action": item.action}
            if item.revision is not None:
                record["revision"] = item.revision
            self.store.audit.append(conn, Entry(REPLAY, by, message.receipt_id, now, record))

    @staticmethod
    def _attempts(conn: Connection, delivery_id: int | None) -> int:
        if delivery_id is None:
            return 0
        query = select(func.count()).where(delivery_attempts.c.delivery_id == delivery_id)
        return int(conn.execute(query).scalar_one())

    def _finish_item(
        self, conn: Connection, item_id: int, action: str, reason: str, detail: dict[str, Any]
    ) -> None:
        conn.execute(
            update(replay_items)
            .where(replay_items.c.id == item_id)
            .values(
                state=ItemState.DONE, action=action, reason=reason[:500], detail=detail, at=utc(self.clock())
            )
        )

    # ------------------------------------------------------------ the actions

    @staticmethod
    def _requeue(conn: Connection, m: _Message, now: datetime) -> None:
        """Back to the outbox with a fresh retry budget; the worker takes it in procedure order."""
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == m.delivery_id)
            .values(
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                lease_owner=None,
                lease_expires_at=None,
                last_error=None,
                updated_at=now,
            )
        )
        conn.execute(
            update(messages).where(messages.c.id == m.pk).values(status=Status.ACCEPTED, updated_at=now)
        )

    def _revise(self, conn: Connection, m: _Message, plan: _Plan, now: datetime) -> None:
        """A new revision of the case; sent again if it had been registered or was dead, otherwise
        the worker sends the latest revision when its turn comes."""
        evaluation = plan.evaluation
        assert evaluation is not None and evaluation.fmt is not None and plan.item.revision is not None
        conn.execute(
            insert(cases),
            {
                "message_pk": m.pk,
                "revision": plan.item.revision,
                "schema_version": evaluation.schema_version,
                "mapping_version": evaluation.fmt.mapping_version,
                "affaire": JsonText(json.dumps(plan.new_case, ensure_ascii=False)),
                "created_at": now,
            },
        )
        conn.execute(
            update(messages)
            .where(messages.c.id == m.pk)
            .values(mapping_version=evaluation.fmt.mapping_version, updated_at=now)
        )
        if m.delivery_status in (REGISTERED, DEAD):
            self._requeue(conn, m, now)

    def _accept(self, conn: Connection, m: _Message, plan: _Plan, now: datetime) -> None:
        """A rejected message that passes today: accepted as if received now, with its outbox
        order (the unique index on accepted (sender, message id) still guards against a twin)."""
        evaluation = plan.evaluation
        assert evaluation is not None and evaluation.fmt is not None and evaluation.case is not None
        header = evaluation.header
        unit = header.unit_code
        key = procedure_key(m.agency, unit, header.procedure_number)
        kind = evaluation.case.kind.value
        conn.execute(
            update(messages)
            .where(messages.c.id == m.pk)
            .values(
                status=Status.ACCEPTED,
                accepted=True,
                http_status=202,
                sender=f"{m.agency}:{unit or 'unknown'}",
                format=evaluation.fmt.name,
                schema_version=evaluation.schema_version,
                mapping_version=evaluation.fmt.mapping_version,
                message_id=header.message_id.lower() if header.message_id else None,
                message_kind=header.kind,
                unit_code=unit,
                procedure_number=header.procedure_number,
                tribunal_code=header.tribunal_code,
                errors=[],
                warnings=evaluation.warnings,
                updated_at=now,
            )
        )
        conn.execute(delete(message_error_codes).where(message_error_codes.c.message_pk == m.pk))
        conn.execute(
            insert(cases),
            {
                "message_pk": m.pk,
                "revision": 1,
                "schema_version": evaluation.schema_version,
                "mapping_version": evaluation.fmt.mapping_version,
                "affaire": JsonText(json.dumps(plan.new_case, ensure_ascii=False)),
                "created_at": now,
            },
        )
        conn.execute(
            insert(deliveries),
            {
                "message_pk": m.pk,
                "procedure_key": key,
                "kind": kind,
                "order_rank": 0 if kind == "initiale" else 1,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            },
        )
        if kind != "initiale":
            self.store.deliveries.refresh_holds(conn, key, now)
        conn.execute(
            insert(events),
            [{"message_pk": m.pk, "at": now, "kind": "accepted", "detail": {"format": evaluation.fmt.name}}],
        )

    @staticmethod
    def _still_rejected(conn: Connection, m: _Message, evaluation: Evaluation, now: datetime) -> None:
        """The errors brought up to date (the old ones stay in the item's record)."""
        errors = [e.as_dict() for e in evaluation.errors]
        if errors == m.errors:
            return
        conn.execute(update(messages).where(messages.c.id == m.pk).values(errors=errors, updated_at=now))
        conn.execute(delete(message_error_codes).where(message_error_codes.c.message_pk == m.pk))
        received = conn.execute(select(messages.c.received_at).where(messages.c.id == m.pk)).scalar_one()
        codes = sorted({e["code"] for e in errors})
        if codes:
            conn.execute(
                insert(message_error_codes),
                [{"message_pk": m.pk, "code": c, "received_at": received} for c in codes],
            )


def _as_json(evaluation: Evaluation) -> dict[str, Any]:
    """The case as the store writes it (pydantic's JSON), read back."""
    assert evaluation.case is not None
    value: dict[str, Any] = json.loads(evaluation.case.model_dump_json())
    return value


def _check_mode(mode: str) -> None:
    if mode not in Mode.ALL:
        raise ReplayError(f"Unknown mode {mode!r}: {' or '.join(Mode.ALL)}.")


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ReplayRunner:
    """Carries out running replays inside ``saisine serve`` (beside the delivery worker)."""

    def __init__(self, service: ReplayService, owner: str | None = None, poll_seconds: float = 0.05) -> None:
        self.service = service
        self.owner = owner or f"replay-{uuid.uuid4().hex[:12]}"
        self.poll_seconds = poll_seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.service.step(self.owner)
            except Exception as exc:  # the runner must outlive a bad moment of the database
                log.error("replay_runner_failed", error_type=type(exc).__name__)
                self.stopping.wait(1.0)
            self.stopping.wait(self.poll_seconds)

    def stop(self) -> None:
        self.stopping.set()


__all__ = ["Change", "MessageFilter", "ReplayRunner", "ReplayService"]

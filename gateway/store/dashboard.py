"""Reading the store for the operator console: counts by status per hour, dead letters by
reason, and the message list narrowed to the dead letters of one reason.

A dead letter's reason is the code the delivery recorded (``deliveries.last_error`` reads
``CODE: text``); it is not one of the message's own error codes, so the message list's
``error_code`` filter does not find it and the console filters on it here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, func, or_, select

from gateway.ports import Status
from gateway.store.queries import (
    _SUMMARY,
    MAX_LIMIT,
    Cursor,
    MessageFilter,
    MessagePage,
    _conditions,
    page_of,
)
from gateway.store.tables import deliveries, messages
from gateway.store.times import utc

DEAD = "dead_letter"
STATUSES = tuple(value for name, value in vars(Status).items() if name.isupper() and isinstance(value, str))
MAX_SELECTED = 10_000  # messages a console replay by dead-letter reason may take at once


@dataclass(frozen=True, slots=True)
class HourCounts:
    """Messages received in one hour (UTC), by their status now."""

    start: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=1)


def _hour_of(engine: Engine) -> ColumnElement[str]:
    """The reception hour as text 'YYYY-MM-DD HH' (UTC), on either database."""
    if engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", messages.c.received_at), "YYYY-MM-DD HH24")
    # SQLite keeps datetimes as text 'YYYY-MM-DD HH:MM:SS.ffffff', written in UTC
    return func.substr(messages.c.received_at, 1, 13)


def counts_by_hour(engine: Engine, now: datetime, hours: int = 24) -> list[HourCounts]:
    """The last ``hours`` hours (the current one included), oldest first: one query, grouped."""
    current = utc(now).replace(minute=0, second=0, microsecond=0)
    start = current - timedelta(hours=hours - 1)
    hour = _hour_of(engine).label("hour")
    # naming every status lets both databases read the (status, received_at) index alone,
    # rather than each row of the period from the table
    query = (
        select(hour, messages.c.status, func.count())
        .where(messages.c.status.in_(STATUSES), messages.c.received_at >= start)
        .group_by(hour, messages.c.status)
    )
    found: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for key, status, count in conn.execute(query):
            found.setdefault(str(key), {})[status] = int(count)
    slots = [start + timedelta(hours=n) for n in range(hours)]
    return [HourCounts(at, found.get(at.strftime("%Y-%m-%d %H"), {})) for at in slots]


def queue_counts(engine: Engine) -> dict[str, int]:
    """Deliveries waiting, held and dead, by status: read from the status index, without
    counting the (many) registered ones."""
    waiting = ("pending", "held", DEAD)
    query = (
        select(deliveries.c.status, func.count())
        .where(deliveries.c.status.in_(waiting))
        .group_by(deliveries.c.status)
    )
    with engine.connect() as conn:
        found = {status: int(count) for status, count in conn.execute(query)}
    return {status: found.get(status, 0) for status in waiting}


def reason_code(last_error: str | None) -> str:
    """The code of a delivery's last error ('RETRIES_EXHAUSTED: ...' -> 'RETRIES_EXHAUSTED')."""
    if not last_error:
        return "UNKNOWN"
    return last_error.split(":", 1)[0].strip() or "UNKNOWN"


def dead_letters_by_reason(engine: Engine) -> list[tuple[str, int]]:
    """Dead letters now, by reason code, most frequent first."""
    query = (
        select(deliveries.c.last_error, func.count())
        .where(deliveries.c.status == DEAD)
        .group_by(deliveries.c.last_error)
    )
    counts: Counter[str] = Counter()
    with engine.connect() as conn:
        for last_error, count in conn.execute(query):
            counts[reason_code(last_error)] += int(count)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _with_reason(reason: str) -> list[ColumnElement[bool]]:
    return [
        deliveries.c.status == DEAD,
        or_(
            deliveries.c.last_error.startswith(f"{reason}:", autoescape=True),
            deliveries.c.last_error == reason,
        ),
    ]


def list_dead_letters(
    engine: Engine, reason: str, where: MessageFilter, limit: int = 50, after: Cursor | None = None
) -> MessagePage:
    """The message list (as :func:`gateway.store.queries.list_messages`, same order and cursor)
    of the dead letters whose reason is ``reason``; ``where.error_code`` is not applied."""
    limit = max(1, min(limit, MAX_LIMIT))
    at, pk = messages.c.received_at, messages.c.id
    query = (
        select(*_SUMMARY)
        .select_from(messages.join(deliveries, deliveries.c.message_pk == messages.c.id))
        .where(*_with_reason(reason), *_conditions(where, at))
    )
    return page_of(engine, query, at, pk, limit, after)


def dead_letter_receipts(
    engine: Engine, reason: str, where: MessageFilter, limit: int = MAX_SELECTED
) -> list[str]:
    """Receipt ids of the dead letters with this reason (for a replay of them), oldest first."""
    query = (
        select(messages.c.receipt_id)
        .select_from(messages.join(deliveries, deliveries.c.message_pk == messages.c.id))
        .where(*_with_reason(reason), *_conditions(where, messages.c.received_at))
        .order_by(messages.c.received_at, messages.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def delivery_reasons(engine: Engine, receipt_ids: list[str]) -> dict[str, str]:
    """For the dead letters among ``receipt_ids``: receipt id -> reason code (one query)."""
    if not receipt_ids:
        return {}
    query = (
        select(messages.c.receipt_id, deliveries.c.last_error)
        .select_from(messages.join(deliveries, deliveries.c.message_pk == messages.c.id))
        .where(messages.c.receipt_id.in_(receipt_ids), deliveries.c.status == DEAD)
    )
    with engine.connect() as conn:
        return {receipt: reason_code(error) for receipt, error in conn.execute(query)}

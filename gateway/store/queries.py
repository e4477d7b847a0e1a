"""Reading the store for operators: the message list (filters, newest first, by cursor) and
one message in full (raw bytes, errors, case, timeline, delivery state).

The list is ordered by (received_at, id), both descending; a cursor is that pair for the last
item of a page, so a page never repeats or skips a message even while new ones arrive.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, and_, or_, select

from gateway.store.sealing import PayloadCipher, PayloadUnreadable
from gateway.store.tables import cases, deliveries, delivery_attempts, events, message_error_codes, messages
from gateway.store.times import aware, utc

MAX_LIMIT = 500

_SUMMARY = (
    messages.c.id,
    messages.c.receipt_id,
    messages.c.message_id,
    messages.c.agency,
    messages.c.sender,
    messages.c.transport,
    messages.c.format,
    messages.c.schema_version,
    messages.c.message_kind,
    messages.c.unit_code,
    messages.c.procedure_number,
    messages.c.tribunal_code,
    messages.c.status,
    messages.c.http_status,
    messages.c.numero_parquet,
    messages.c.received_at,
    messages.c.updated_at,
)

# filter field -> column compared for equality
_EQUAL = {
    "status": messages.c.status,
    "agency": messages.c.agency,
    "unit_code": messages.c.unit_code,
    "format": messages.c.format,
    "schema_version": messages.c.schema_version,
    "tribunal_code": messages.c.tribunal_code,
    "procedure_number": messages.c.procedure_number,
    "numero_parquet": messages.c.numero_parquet,
}


class InvalidCursor(ValueError):
    """The cursor was not produced by this API (or was altered)."""


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What the operator is looking for; ``None`` means any. received_to is exclusive."""

    status: str | None = None
    agency: str | None = None
    unit_code: str | None = None
    format: str | None = None
    schema_version: str | None = None
    error_code: str | None = None
    tribunal_code: str | None = None
    procedure_number: str | None = None
    numero_parquet: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after which the next page starts: (received_at, id) of the last item."""

    received_at: datetime
    id: int

    def encode(self) -> str:
        raw = json.dumps([utc(self.received_at).isoformat(), self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            at, pk = json.loads(raw)
            if not isinstance(pk, int) or isinstance(pk, bool):
                raise TypeError("id")
            return cls(utc(datetime.fromisoformat(at)), pk)
        except (binascii.Error, UnicodeDecodeError, TypeError, ValueError) as exc:
            raise InvalidCursor(token) from exc


@dataclass(frozen=True, slots=True)
class MessagePage:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _conditions(where: MessageFilter, at: Any) -> list[ColumnElement[bool]]:
    found = [
        _EQUAL[f.name] == value
        for f in fields(where)
        if f.name in _EQUAL and (value := getattr(where, f.name)) is not None
    ]
    if where.received_from is not None:
        found.append(at >= utc(where.received_from))
    if where.received_to is not None:
        found.append(at < utc(where.received_to))
    return found


def matching_messages(query: Select[Any], where: MessageFilter) -> Select[Any]:
    """``query`` (over ``messages``) narrowed to the messages ``where`` chooses, oldest first."""
    at: Any = messages.c.received_at
    if where.error_code is not None:
        codes = message_error_codes
        at = codes.c.received_at
        query = query.join_from(messages, codes, messages.c.id == codes.c.message_pk)
        query = query.where(codes.c.code == where.error_code)
    return query.where(*_conditions(where, at)).order_by(at, messages.c.id)


def list_messages(
    engine: Engine, where: MessageFilter, limit: int = 50, after: Cursor | None = None
) -> MessagePage:
    """One page of message summaries, newest first, and the cursor of the next page (or None)."""
    limit = max(1, min(limit, MAX_LIMIT))
    query = select(*_SUMMARY)
    at, pk = messages.c.received_at, messages.c.id
    if where.error_code is not None:
        # read the side table's (code, received_at) index in order, and join each message
        codes = message_error_codes
        at, pk = codes.c.received_at, codes.c.message_pk
        query = query.select_from(codes.join(messages, messages.c.id == codes.c.message_pk))
        query = query.where(codes.c.code == where.error_code)
    return page_of(engine, query.where(*_conditions(where, at)), at, pk, limit, after)


def page_of(
    engine: Engine, query: Select[Any], at: Any, pk: Any, limit: int, after: Cursor | None
) -> MessagePage:
    """One page of ``query`` (message summaries) newest first by (``at``, ``pk``), after the
    cursor, with each message's error codes and the cursor of the next page."""
    if after is not None:
        when = utc(after.received_at)
        query = query.where(or_(at < when, and_(at == when, pk < after.id)))
    query = query.order_by(at.desc(), pk.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        page = rows[:limit]
        codes_of = _error_codes(conn, [row.id for row in page if row.status != "accepted"])
    items = [_summary(row._mapping, codes_of.get(row.id, [])) for row in page]
    last = page[-1] if len(rows) > limit else None
    return MessagePage(items, Cursor(aware(last.received_at), last.id).encode() if last else None)


def _error_codes(conn: Connection, pks: list[int]) -> dict[int, list[str]]:
    if not pks:
        return {}
    found: dict[int, list[str]] = {}
    query = select(message_error_codes.c.message_pk, message_error_codes.c.code).where(
        message_error_codes.c.message_pk.in_(pks)
    )
    for pk, code in conn.execute(query.order_by(message_error_codes.c.code)):
        found.setdefault(pk, []).append(code)
    return found


def _summary(row: Any, codes: list[str]) -> dict[str, Any]:
    item = {key: value for key, value in row.items() if key != "id"}
    item["received_at"] = aware(row["received_at"])
    item["updated_at"] = aware(row["updated_at"])
    item["error_codes"] = codes
    return item


def message_detail(
    engine: Engine, receipt_id: str, cipher: PayloadCipher | None = None
) -> dict[str, Any] | None:
    """Everything stored about one message, or None if the receipt id is unknown; the raw bytes
    opened with ``cipher`` when they were stored sealed (``raw_unreadable`` when no key opens them)."""
    with engine.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.receipt_id == receipt_id)).first()
        if row is None:
            return None
        message = dict(row._mapping)
        case = conn.execute(
            select(cases).where(cases.c.message_pk == row.id).order_by(cases.c.revision.desc()).limit(1)
        ).first()
        delivery = conn.execute(select(deliveries).where(deliveries.c.message_pk == row.id)).first()
        timeline = _timeline(conn, row.id, delivery.id if delivery is not None else None)
    message["raw_unreadable"] = False
    if message["raw"] is not None:
        try:
            message["raw"] = (cipher or PayloadCipher()).open(bytes(message["raw"]))
        except PayloadUnreadable:
            message["raw"], message["raw_unreadable"] = None, True
    message["received_at"] = aware(row.received_at)
    message["updated_at"] = aware(row.updated_at)
    message["case"] = dict(case._mapping) if case is not None else None
    message["delivery"] = _delivery(delivery._mapping) if delivery is not None else None
    message["timeline"] = timeline
    return message


WITHHELD = "(withheld: state a purpose to see it)"


def without_personal_data(detail: dict[str, Any]) -> dict[str, Any]:
    """A :func:`message_detail` without what carries personal data: the raw message, the mapped
    case, and the errors' texts (which may quote a value); codes, lines and paths stay."""
    errors = [{**e, "message": WITHHELD} for e in detail["errors"]]
    return {**detail, "raw": None, "case": None, "errors": errors}


def _delivery(row: Any) -> dict[str, Any]:
    keep = ("status", "kind", "attempts", "numero_parquet", "last_error")
    state: dict[str, Any] = {key: row[key] for key in keep}
    for key in ("next_attempt_at", "registered_at", "created_at", "updated_at"):
        state[key] = aware(row[key]) if row[key] is not None else None
    return state


def _timeline(conn: Connection, message_pk: int, delivery_id: int | None) -> list[dict[str, Any]]:
    """Events and delivery attempts, oldest first; at equal times an attempt precedes its event."""
    entries = [
        {"at": aware(e.at), "source": "event", "kind": e.kind, "detail": dict(e.detail), "_order": (1, e.id)}
        for e in conn.execute(select(events).where(events.c.message_pk == message_pk).order_by(events.c.id))
    ]
    if delivery_id is not None:
        attempts = select(delivery_attempts).where(delivery_attempts.c.delivery_id == delivery_id)
        for n, a in enumerate(conn.execute(attempts.order_by(delivery_attempts.c.id)), start=1):
            entries.append(
                {
                    "at": aware(a.at),
                    "source": "attempt",
                    "kind": "delivery_attempt",
                    "attempt": n,
                    "outcome": a.outcome,
                    "duration_ms": a.duration_ms,
                    "detail": dict(a.detail),
                    "_order": (0, a.id),
                }
            )
    entries.sort(key=lambda e: (e["at"], e["_order"]))
    # lineage: a replay notes how many attempts came before it; those after are its own
    replayed = [
        (e["detail"]["after_attempt"], e["detail"].get("replay_id"))
        for e in entries
        if e["kind"] == "replayed" and "after_attempt" in e["detail"]
    ]
    for entry in entries:
        del entry["_order"]
        if entry["source"] == "attempt":
            owners = [replay for after, replay in replayed if after < entry["attempt"]]
            if owners:
                entry["replay_id"] = owners[-1]
    return entries

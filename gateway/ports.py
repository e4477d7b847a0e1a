"""The ports the core needs, and the records that cross them.

The core (intake pipeline) talks to storage only through :class:`MessageStore`;
``gateway.store`` implements it with SQLAlchemy, ``tests/fakes.py`` in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gateway.errors import ErrorDetail

Clock = Callable[[], datetime]


class Status:
    """Status words of a message, as senders and operators read them."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"  # our fault (mapping crashed): kept for reprocessing
    DELIVERING = "delivering"
    REGISTERED = "registered"
    HELD = "held"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """Everything stored about one received message, in one transaction."""

    receipt_id: str
    agency: str
    sender: str
    transport: str
    status: str
    http_status: int
    raw: bytes | None
    sha256: str
    size: int
    received_at: datetime
    errors: list[ErrorDetail]
    events: list[Event]
    format: str | None = None
    schema_version: str | None = None
    mapping_version: str | None = None
    message_id: str | None = None
    message_kind: str | None = None
    unit_code: str | None = None
    procedure_number: str | None = None
    tribunal_code: str | None = None
    case: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the sender is told about a message, now and later."""

    receipt_id: str
    status: str
    received_at: datetime
    sha256: str
    message_id: str | None = None
    format: str | None = None
    errors: list[ErrorDetail] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    numero_parquet: str | None = None
    history: list[Event] = field(default_factory=list)


class DuplicateAccepted(Exception):
    """Another accepted message already holds this (sender, message id)."""


class MessageStore(Protocol):
    def find_accepted(self, sender: str, message_id: str) -> Receipt | None:
        """The accepted message holding this (sender, message id), if any."""

    def save(self, message: NewMessage) -> Receipt:
        """Store the message, its case and its events in one durable transaction."""

    def add_event(self, receipt_id: str, event: Event) -> None:
        """Append to a message's history (a repeat, a conflict)."""

    def receipt(self, receipt_id: str) -> Receipt | None:
        """The receipt with its history, or None."""

    def ping(self) -> None:
        """Raise if the store cannot be reached."""

"""The ports the core needs, and the records that cross them.

The core (intake pipeline) talks to storage only through :class:`MessageStore`;
``gateway.store`` implements it with SQLAlchemy, ``tests/fakes.py`` in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gateway.errors import ErrorDetail
from gateway.model import Affaire

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
    case: Affaire | None = None  # the store writes it as JSON (one serialization, in the store)
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
    unit_code: str | None = None  # whose it is: a unit reads its own receipts only

    def _last(self, kind: str) -> Event | None:
        return next((e for e in reversed(self.history) if e.kind == kind), None)

    @property
    def registered_at(self) -> datetime | None:
        """When the court registry gave the numéro parquet (the last registration on record)."""
        event = self._last("registered") if self.status == Status.REGISTERED else None
        return event.at if event else None

    @property
    def reason(self) -> tuple[str, str] | None:
        """Why the message stands still, as (code, text): a dead letter's or a hold's reason."""
        if self.status == Status.DEAD_LETTER:
            event = self._last("dead_letter")
            detail = event.detail if event else {}
            return str(detail.get("code", "DEAD_LETTER")), str(detail.get("reason", ""))
        if self.status == Status.HELD:
            return (
                "PREDECESSOR_DEAD_LETTER",
                "An earlier message of the same procedure is a dead letter; this one goes on "
                "by itself once that one is replayed and registered.",
            )
        return None


class IntakeObserver(Protocol):
    def message(self, agency: str, transport: str, accepted: bool, codes: list[str]) -> None:
        """Count a received message and its outcome (metrics)."""


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


# ---------------------------------------------------------------- delivery


@dataclass(frozen=True, slots=True)
class DeliveryTask:
    """One claimed delivery: what to send to the registry, under which key."""

    delivery_id: int
    receipt_id: str
    message_id: str
    kind: str  # "initiale" or "complement"
    procedure_key: str
    attempts: int
    created_at: datetime
    affaire: dict[str, Any]
    numero_parquet: str | None = None  # for a complément: its initial procedure's
    revision: int = 1
    lease_owner: str = ""


@dataclass(frozen=True, slots=True)
class Registration:
    numero_parquet: str
    registered_at: datetime
    repeat: bool = False


class OutcomeKind:
    """What an attempt came to (:class:`DeliveryOutcome`)."""

    REGISTERED = "registered"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    RELEASED = "released"  # the lease given back without a call


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one attempt came to, for the store to record (several may share a transaction).

    ``kind`` is ``registered`` (with the registry's ``registration``), ``retry`` (a ``reason``
    and ``next_attempt_at``), ``dead_letter`` (a ``code`` and ``reason``) or ``released`` (the
    lease given back without a call, to try again at ``next_attempt_at``).
    """

    task: DeliveryTask
    kind: str
    at: datetime
    duration_ms: int = 0
    registration: Registration | None = None
    code: str = ""
    reason: str = ""
    next_attempt_at: datetime | None = None


class CourtRegistry(Protocol):
    """The court registry, as the delivery worker sees it."""

    endpoint: str

    def register(self, task: DeliveryTask) -> Registration:
        """Register the affaire (or add the complément); raise Retriable or Fatal."""


class DeliveryStore(Protocol):
    def claim(self, owner: str, limit: int, lease_seconds: float, now: datetime) -> list[DeliveryTask]:
        """Lease up to ``limit`` due deliveries whose predecessors are all registered."""

    def settle(
        self,
        outcomes: Sequence[DeliveryOutcome],
        owner: str,
        limit: int,
        lease_seconds: float,
        now: datetime,
    ) -> list[DeliveryTask]:
        """Record ``outcomes``, then lease up to ``limit`` due deliveries, in one transaction.

        An outcome is recorded only if its task's lease is still this worker's: a registration,
        a retry at ``next_attempt_at``, a dead letter, or a lease given back unused."""

    def queue_depth(self) -> dict[str, int]:
        """Deliveries by status, for metrics and readiness."""

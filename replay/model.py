"""The words and records of a replay, shared by the API, the CLI and the console.

A replay takes messages chosen by receipt ids or by the message list's filters, and either
*redelivers* their stored case as it is (the registry was at fault) or *reprocesses* their raw
bytes with today's schemas, rules and mappings (our side was at fault). A preview says, per
message, what would happen, and for reprocess shows the difference between the stored case and
the new one. A replay that runs is recorded (who, when, why, which messages, what came of each)
and goes at a rate limit, procedure by procedure in order; it can be paused, resumed, cancelled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from gateway.store.queries import MessageFilter


class Mode:
    REDELIVER = "redeliver"
    REPROCESS = "reprocess"
    ALL = (REDELIVER, REPROCESS)


class ReplayStatus:
    """Status words of a replay."""

    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FINISHED = (CANCELLED, COMPLETED)


class Action:
    """What a replay does (or, in a preview, would do) to one message."""

    REQUEUE = "requeue"  # the stored case goes to the registry again (a dead letter)
    REVISE = "revise"  # reprocess: the new case differs; stored as a new revision, delivered again
    ACCEPT = "accept"  # reprocess: a rejected (or failed) message now passes: accepted, delivered
    STILL_REJECTED = "still_rejected"  # reprocess: rejected again (its errors are brought up to date)
    REFUSED = "refused"  # reprocess: an accepted message would now be rejected: left as it is
    SKIP = "skip"  # nothing to do; ``reason`` says why (registered and unchanged, held, ...)
    CHANGING = (REQUEUE, REVISE, ACCEPT)


class ItemState:
    """Where one message of a running replay stands."""

    PENDING = "pending"  # not reached yet
    DONE = "done"  # its action was applied (``action`` says which)
    CANCELLED = "cancelled"  # the replay was cancelled before reaching it


@dataclass(frozen=True, slots=True)
class Selection:
    """Which messages: by receipt ids, or by the message list's filters (not both)."""

    receipt_ids: tuple[str, ...] = ()
    filter: MessageFilter | None = None

    def as_dict(self) -> dict[str, Any]:
        """As recorded with the replay (JSON)."""
        if self.receipt_ids:
            return {"receipt_ids": list(self.receipt_ids)}
        chosen = {} if self.filter is None else asdict(self.filter)
        return {
            "filter": {
                key: value.isoformat() if isinstance(value, datetime) else value
                for key, value in chosen.items()
                if value is not None
            }
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between the stored case and the reprocessed one (JSON Pointer path)."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """What a replay does (did, would do) to one message."""

    receipt_id: str
    message_id: str | None
    procedure_key: str | None
    status: str  # the message's status when planned
    action: str  # an :class:`Action` word
    reason: str = ""  # for people: why this action
    errors: list[dict[str, Any]] = field(default_factory=list)  # reprocess: the new errors
    changes: list[Change] = field(default_factory=list)  # reprocess: stored case -> new case
    revision: int | None = None  # reprocess: the case revision it creates


@dataclass(frozen=True, slots=True)
class Preview:
    mode: str
    total: int  # messages selected
    counts: dict[str, int]  # action -> number of messages
    items: list[PlannedItem]  # in the order the replay would take them (per procedure, in order)
    truncated: bool = False  # items were cut at the limit asked for; counts cover all


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    replay_id: str
    mode: str
    reason: str
    requested_by: str
    created_at: datetime
    status: str  # a :class:`ReplayStatus` word
    selection: dict[str, Any]
    rate_per_second: float
    total: int
    counts: dict[str, int]  # item state or action -> number ("pending", "requeue", "skip", ...)
    # what became of the messages it sent to the registry: delivery status -> number
    deliveries: dict[str, int]
    updated_at: datetime
    finished_at: datetime | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # paused/resumed/cancelled: by whom, when

    @property
    def done(self) -> int:
        return self.total - self.counts.get(ItemState.PENDING, 0)


@dataclass(frozen=True, slots=True)
class ReplayItem:
    position: int
    receipt_id: str
    state: str  # an :class:`ItemState` word
    action: str | None
    reason: str
    at: datetime | None
    delivery_status: str | None  # now, for the messages it sent


class ReplayError(Exception):
    """A replay request that cannot be carried out; ``code`` is in docs/error-codes.md."""

    code = "REPLAY_INVALID"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ReasonRequired(ReplayError):
    code = "REPLAY_REASON_REQUIRED"


class NothingSelected(ReplayError):
    code = "REPLAY_NOTHING_SELECTED"


class ReplayUnknown(ReplayError):
    code = "REPLAY_UNKNOWN"


class ReplayStateConflict(ReplayError):
    """Pause what is not running, resume what is not paused, cancel what is finished."""

    code = "REPLAY_STATE_CONFLICT"

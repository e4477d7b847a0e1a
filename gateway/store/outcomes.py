"""What each delivery outcome writes: the delivery row, the attempt, the message and its event.

Pure functions from a :class:`gateway.ports.DeliveryOutcome` to the rows to write, so that the
store can write the outcomes of several deliveries with one statement per table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.ports import DeliveryOutcome, OutcomeKind, Status
from gateway.store.times import utc

PENDING, HELD, REGISTERED, DEAD = "pending", "held", "registered", "dead_letter"


@dataclass(frozen=True, slots=True)
class Effect:
    """The columns an outcome sets: on its delivery, then (if an attempt was made) the attempt's
    outcome and detail, the message's new status, other message columns and the event's kind."""

    delivery: dict[str, Any]
    attempt: str | None = None  # None: no call was made (lease released), nothing else to write
    detail: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    message: dict[str, Any] = field(default_factory=dict)
    event: str = ""


def effect_of(outcome: DeliveryOutcome) -> Effect:
    """The rows an outcome changes; ValueError for an outcome that lacks its data."""
    attempts = outcome.task.attempts + 1
    answer, later = outcome.registration, outcome.next_attempt_at
    if outcome.kind == OutcomeKind.REGISTERED and answer is not None:
        parquet = answer.numero_parquet
        detail = {"numero_parquet": parquet, "repeat": answer.repeat, "duration_ms": outcome.duration_ms}
        delivery = {
            "status": REGISTERED,
            "attempts": attempts,
            "numero_parquet": parquet,
            "registered_at": utc(answer.registered_at),
            "last_error": None,
        }
        return Effect(
            delivery, "registered", detail, Status.REGISTERED, {"numero_parquet": parquet}, "registered"
        )
    if outcome.kind == OutcomeKind.RETRY and later is not None:
        detail = {"reason": outcome.reason, "attempt": attempts, "next_attempt_at": utc(later).isoformat()}
        delivery = {"attempts": attempts, "next_attempt_at": utc(later), "last_error": outcome.reason[:500]}
        return Effect(delivery, "retriable", detail, Status.DELIVERING, {}, "delivery_failed")
    if outcome.kind == OutcomeKind.DEAD_LETTER:
        detail = {"code": outcome.code, "reason": outcome.reason, "attempt": attempts}
        error = f"{outcome.code}: {outcome.reason}"[:500]
        delivery = {"status": DEAD, "attempts": attempts, "last_error": error}
        return Effect(delivery, "fatal", detail, Status.DEAD_LETTER, {}, "dead_letter")
    if outcome.kind == OutcomeKind.RELEASED and later is not None:
        return Effect({"next_attempt_at": utc(later)})
    raise ValueError(f"incomplete delivery outcome: {outcome.kind}")

"""Delivery with an in-process registry, on SQLite and PostgreSQL: outbox, retries, dead
letters, per-procedure order, holds, leases and the circuit breaker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.composition import Container, build
from gateway.delivery.breaker import CLOSED, OPEN, CircuitBreaker
from gateway.delivery.policy import RetryPolicy
from gateway.errors import Fatal, Retriable
from gateway.http.views import receipt_out
from gateway.ports import DeliveryOutcome, OutcomeKind, Registration
from gateway.settings import Settings
from tests.conftest import GENDARMERIE_V1, with_new_id
from tests.fakes import FakeRegistry

SAMPLES = sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))


class FakeClock:
    def __init__(self) -> None:
        # A minute ahead of the wall clock that stamps acceptances: what is accepted is due at once.
        self.now = datetime.now(UTC) + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def initial(index: int = 0, procedure: str | None = None) -> bytes:
    """A valid initial procedure under a new message id (and, if given, procedure number)."""
    data = with_new_id(_initials()[index].read_bytes())
    if procedure:
        text = data.decode()
        start = text.index("<ProcedureNumber>") + len("<ProcedureNumber>")
        data = (text[:start] + procedure + text[start + 10 :]).encode()
    return data


def _initials() -> list[Path]:
    return [p for p in SAMPLES if b"PROCEDURE_INITIALE" in p.read_bytes()]


def complement_of(data: bytes) -> bytes:
    """A complément of the same procedure (same unit and numéro), under a new message id."""
    return with_new_id(data.replace(b"PROCEDURE_INITIALE", b"COMPLEMENT", 1))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def wired(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'delivery.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    container = build(Settings(database_url=url, retry_max_attempts=3, breaker_threshold=100))
    container.registry = FakeRegistry()
    container.clock = FakeClock()
    yield container
    container.close()


def registry(container: Container) -> FakeRegistry:
    assert isinstance(container.registry, FakeRegistry)
    return container.registry


def clock(container: Container) -> FakeClock:
    assert isinstance(container.clock, FakeClock)
    return container.clock


def accept(container: Container, data: bytes) -> str:
    outcome = container.intake.submit("gendarmerie", data, "rest")
    assert outcome.http_status == 202, outcome.receipt.errors
    return outcome.receipt.receipt_id


def status(container: Container, receipt_id: str) -> str:
    receipt = container.store.receipt(receipt_id)
    assert receipt is not None
    return receipt.status


def test_acceptance_creates_its_delivery_order(wired: Container) -> None:
    """The outbox row is written with the message: one pending delivery per accepted message."""
    before = wired.store.deliveries.queue_depth().get("pending", 0)
    accept(wired, initial())
    assert wired.store.deliveries.queue_depth()["pending"] == before + 1


def test_registered_with_numero_parquet(wired: Container) -> None:
    """A delivered case: status registered, numéro parquet on the receipt, idempotency key = message id."""
    data = initial()
    receipt_id = accept(wired, data)
    wired.worker().run_until_idle()
    receipt = wired.store.receipt(receipt_id)
    assert receipt is not None and receipt.status == "registered"
    assert receipt.numero_parquet and receipt.numero_parquet.startswith("TJ")
    assert registry(wired).keys() == [receipt.message_id]
    assert [e.kind for e in receipt.history][-2:] == ["delivering", "registered"]
    shown = receipt_out(receipt)  # what GET /api/v1/receipts/{id} answers
    assert shown["numero_parquet"] == receipt.numero_parquet
    assert shown["registered_at"] == receipt.history[-1].at.isoformat() and shown["reason"] is None


def test_retriable_failure_is_retried_later_then_dead_lettered(wired: Container) -> None:
    """Retriable failures wait for their persisted next attempt; after max attempts, a dead letter."""
    receipt_id = accept(wired, initial())
    fake = registry(wired)
    fake.script = [Retriable("HTTP 503", retry_after=120)] * 3
    worker = wired.worker()
    worker.run_until_idle()
    assert status(wired, receipt_id) == "delivering" and len(fake.calls) == 1
    worker.run_until_idle()
    assert len(fake.calls) == 1, "not due yet: Retry-After is honoured"
    clock(wired).advance(121)
    worker.run_until_idle()
    assert len(fake.calls) == 2
    clock(wired).advance(3600)
    worker.run_until_idle()
    assert status(wired, receipt_id) == "dead_letter"
    receipt = wired.store.receipt(receipt_id)
    assert receipt is not None and receipt.history[-1].detail["code"] == "RETRIES_EXHAUSTED"


def test_fatal_answer_is_a_dead_letter_at_once(wired: Container) -> None:
    """A Client fault: dead letter with the registry's reason, no retry."""
    receipt_id = accept(wired, initial())
    registry(wired).script = [Fatal("UNKNOWN_TRIBUNAL", "tribunal inconnu")]
    wired.worker().run_until_idle()
    clock(wired).advance(3600)
    wired.worker().run_until_idle()
    assert status(wired, receipt_id) == "dead_letter"
    assert len(registry(wired).calls) == 1
    receipt = wired.store.receipt(receipt_id)
    assert receipt is not None and receipt.history[-1].detail == {
        "code": "UNKNOWN_TRIBUNAL",
        "reason": "tribunal inconnu",
        "attempt": 1,
    }


def test_complement_goes_after_its_initial_with_its_numero(wired: Container) -> None:
    """A complément accepted before its initial procedure is still delivered after it."""
    first = initial(procedure=f"{uuid.uuid4().int % 100000:05d}/2026")
    complement_id = accept(wired, complement_of(first))
    initial_id = accept(wired, first)
    wired.worker().run_until_idle()
    calls = registry(wired).calls
    assert [c.kind for c in calls] == ["initiale", "complement"]
    initial_receipt = wired.store.receipt(initial_id)
    assert initial_receipt is not None
    assert calls[1].numero_parquet == initial_receipt.numero_parquet
    assert status(wired, complement_id) == "registered"


def test_complement_waits_while_initial_is_retrying(wired: Container) -> None:
    """While the initial procedure fails, its complément is not sent."""
    first = initial(procedure=f"{uuid.uuid4().int % 100000:05d}/2026")
    accept(wired, first)
    complement_id = accept(wired, complement_of(first))
    registry(wired).script = [Retriable("timeout")]
    wired.worker().run_until_idle()
    assert [c.kind for c in registry(wired).calls] == ["initiale"]
    assert status(wired, complement_id) == "accepted"


def test_behind_a_dead_letter_messages_are_held_then_go_on(wired: Container) -> None:
    """Held, not failed; once the initial is registered after a replay, the complément goes by itself."""
    first = initial(procedure=f"{uuid.uuid4().int % 100000:05d}/2026")
    initial_id = accept(wired, first)
    complement_id = accept(wired, complement_of(first))
    registry(wired).script = [Fatal("INVALID_AFFAIRE", "refused")]
    wired.worker().run_until_idle()
    assert status(wired, initial_id) == "dead_letter"
    assert status(wired, complement_id) == "held"
    dead, held = wired.store.receipt(initial_id), wired.store.receipt(complement_id)
    assert dead is not None and receipt_out(dead)["reason"] == {
        "code": "INVALID_AFFAIRE",
        "message": "refused",
    }
    assert held is not None and receipt_out(held)["reason"]["code"] == "PREDECESSOR_DEAD_LETTER"
    _redeliver(wired, initial_id)  # what a replay does (issue "Replay and the operator console")
    wired.worker().run_until_idle()
    wired.worker().run_until_idle()
    assert status(wired, initial_id) == "registered"
    assert status(wired, complement_id) == "registered"


def _redeliver(container: Container, receipt_id: str) -> None:
    from sqlalchemy import select, update

    from gateway.store.tables import deliveries, messages

    with container.engine.begin() as conn:
        pk = conn.execute(select(messages.c.id).where(messages.c.receipt_id == receipt_id)).scalar_one()
        conn.execute(
            update(deliveries).where(deliveries.c.message_pk == pk).values(status="pending", attempts=0)
        )


def test_other_procedures_are_not_blocked(wired: Container) -> None:
    """A stuck procedure holds only its own messages."""
    stuck = initial(procedure=f"{uuid.uuid4().int % 100000:05d}/2026")
    stuck_id = accept(wired, stuck)
    accept(wired, complement_of(stuck))
    registry(wired).script = [Fatal("INVALID_AFFAIRE", "refused")]
    wired.worker().run_until_idle()
    assert status(wired, stuck_id) == "dead_letter"
    others = [accept(wired, initial(procedure=f"{uuid.uuid4().int % 100000:05d}/2026")) for _ in range(3)]
    wired.worker().run_until_idle()
    assert [status(wired, r) for r in others] == ["registered"] * 3


def test_expired_lease_is_claimed_again(wired: Container) -> None:
    """A worker that dies after claiming leaves a lease that expires; another takes the delivery."""
    accept(wired, initial())
    store = wired.store.deliveries
    now = clock(wired)()
    claimed = store.claim("dead-worker", 10, 30, now)
    assert len(claimed) == 1
    assert store.claim("other", 10, 30, now + timedelta(seconds=10)) == []
    again = store.claim("other", 10, 30, now + timedelta(seconds=31))
    assert [t.delivery_id for t in again] == [claimed[0].delivery_id]
    late = Registration("TJ75056-2026-0000001", datetime.now(UTC))
    at = now + timedelta(seconds=32)
    store.settle(
        [DeliveryOutcome(claimed[0], OutcomeKind.REGISTERED, at, 5, registration=late)], "", 0, 0, at
    )
    assert store.queue_depth().get("registered", 0) == 0, "the late worker lost its lease: ignored"


def test_breaker_opens_after_consecutive_failures_and_probes() -> None:
    """closed -> open after the threshold; one probe after the cooldown; closed on success."""
    now = [0.0]
    breaker = CircuitBreaker("x", threshold=3, cooldown=10, monotonic=lambda: now[0])
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == OPEN and not breaker.allow()
    now[0] = 10.5
    assert breaker.allow() and not breaker.allow(), "one probe at a time"
    breaker.success()
    assert breaker.state == CLOSED


def test_open_breaker_stops_calls(wired: Container) -> None:
    """With the breaker open, the worker claims nothing and calls nothing."""
    accept(wired, initial())
    wired.breaker = CircuitBreaker("x", threshold=1, cooldown=60)
    wired.breaker.failure()
    wired.worker().run_until_idle()
    assert registry(wired).calls == []


def test_backoff_grows_and_honours_retry_after() -> None:
    """Exponential with jitter, capped; never shorter than Retry-After."""
    policy = RetryPolicy()
    assert policy.delay(1) < policy.delay(6)
    assert policy.delay(30) <= 301
    assert policy.delay(1, retry_after=90) >= 90


def test_worker_id_fits_the_lease_owner_column(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host name of the longest allowed length still gives an owner PostgreSQL can store."""
    from gateway.delivery.worker import worker_id
    from gateway.store.tables import deliveries

    monkeypatch.setattr("socket.gethostname", lambda: "h" * 64)
    assert len(worker_id()) <= deliveries.c.lease_owner.type.length


def test_one_settle_records_an_outcome_and_claims_what_it_frees(wired: Container) -> None:
    """Recording a registration and claiming in one transaction hands out the complément at once."""
    from gateway.ports import DeliveryOutcome, OutcomeKind

    first = initial(procedure=f"{uuid.uuid4().int % 100000:05d}/2026")
    accept(wired, first)
    accept(wired, complement_of(first))
    store, now = wired.store.deliveries, clock(wired)()
    [task] = [t for t in store.claim("w", 10, 60, now) if t.procedure_key.endswith(first_procedure(first))]
    answer = Registration("TJ75056-2026-0000042", datetime.now(UTC))
    done = DeliveryOutcome(task, OutcomeKind.REGISTERED, now, 5, registration=answer)
    claimed = store.settle([done], "w", 10, 60, now)
    assert [(t.kind, t.numero_parquet) for t in claimed] == [("complement", "TJ75056-2026-0000042")]


def first_procedure(data: bytes) -> str:
    """The numéro de procédure of a message (``NNNNN/YYYY``)."""
    text = data.decode()
    start = text.index("<ProcedureNumber>") + len("<ProcedureNumber>")
    return text[start : start + 10]


def test_delivery_commits_leave_the_intake_fully_synced(tmp_path: Path) -> None:
    """The store's connections go back to the pool with synchronous=FULL: a 202 stays on disk."""
    container = build(Settings(database_url=f"sqlite:///{tmp_path / 'sync.db'}"))
    try:
        accept(container, initial())
        container.store.deliveries.claim("w", 10, 60, datetime.now(UTC) + timedelta(minutes=1))
        with container.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        container.close()

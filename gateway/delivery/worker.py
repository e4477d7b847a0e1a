"""The delivery worker: claims due deliveries, calls the registry, records each outcome.

Runs in the ``saisine serve`` process by default, or alone (``saisine worker``);
several may run against one PostgreSQL. Each of its lanes delivers one case at
a time; the outcomes of finished calls and the next claims go in one
transaction. A stop signal lets in-flight calls finish (they are bounded by
the client's timeouts), records them and claims nothing new; a
worker killed outright leaves leases that expire, and another worker (or the
restarted one) takes those deliveries again under the same idempotency key.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import structlog

from gateway.delivery.breaker import CircuitBreaker
from gateway.delivery.policy import RetryPolicy
from gateway.errors import Fatal, Retriable
from gateway.ports import (
    Clock,
    CourtRegistry,
    DeliveryOutcome,
    DeliveryStore,
    DeliveryTask,
    OutcomeKind,
    Registration,
)

log = structlog.get_logger("saisine.delivery")


class DeliveryObserver(Protocol):
    def delivered(self, outcome: str, seconds: float) -> None: ...

    def dead_letter(self, code: str) -> None: ...


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 8
    lease_seconds: float = 60.0
    poll_interval: float = 0.2


@dataclass(eq=False)
class _Turn:
    """A lane's turn at the store: the outcome to record, whether it wants a next delivery, and
    (once served) that delivery."""

    outcome: DeliveryOutcome | None
    wants: bool
    task: DeliveryTask | None = None
    served: bool = False


def worker_id() -> str:
    """``host:pid:random``, short enough for the lease_owner column (64) whatever the host name."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class DeliveryWorker:
    def __init__(
        self,
        store: DeliveryStore,
        registry: CourtRegistry,
        breaker: CircuitBreaker,
        clock: Clock,
        policy: RetryPolicy | None = None,
        settings: WorkerSettings | None = None,
        observer: DeliveryObserver | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.breaker = breaker
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.settings = settings or WorkerSettings()
        self.observer = observer
        self.owner = worker_id()
        self.stopping = threading.Event()
        self._turns: list[_Turn] = []
        self._turns_lock = threading.Lock()
        self._writing = threading.Lock()  # whose turn it is to write for the lanes
        self._parked = threading.Condition()
        self._polling = False

    # ------------------------------------------------------------ lanes

    def run(self) -> None:
        """Deliver until :meth:`stop`; then let in-flight calls finish and record them.

        ``concurrency`` lanes deliver one case at a time each. A lane that finishes a call
        records its outcome and leases its next delivery in one transaction, which it makes for
        every lane that finished meanwhile too (group commit): under load several deliveries
        share a commit, and no dispatcher stands between a finished call and the next one.
        """
        log.info("worker_started", owner=self.owner, concurrency=self.settings.concurrency)
        with ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="delivery") as pool:
            lanes = [pool.submit(self._lane) for _ in range(self.settings.concurrency)]
            for lane in lanes:
                lane.result()
        log.info("worker_stopped", owner=self.owner)

    def stop(self) -> None:
        self.stopping.set()
        with self._parked:
            self._parked.notify_all()

    def _lane(self) -> None:
        outcome: DeliveryOutcome | None = None
        while True:
            wants = not self.stopping.is_set()
            task = self._take_turn(outcome, wants)
            outcome = self.attempt(task) if task is not None else None
            if task is None:
                if not wants:
                    return
                self._idle()

    def _take_turn(self, outcome: DeliveryOutcome | None, wants: bool) -> DeliveryTask | None:
        """Record ``outcome`` and lease a delivery if the lane ``wants`` one. Whichever lane gets
        the turn writes for all the lanes waiting for it, in one transaction."""
        turn = _Turn(outcome, wants)
        with self._turns_lock:
            self._turns.append(turn)
        with self._writing:
            if not turn.served:
                with self._turns_lock:
                    turns, self._turns = self._turns, []
                self._serve(turns)
        return turn.task

    def _serve(self, turns: list[_Turn]) -> None:
        wanting = [turn for turn in turns if turn.wants]
        finished = [turn.outcome for turn in turns if turn.outcome is not None]
        tasks = self._settle(finished, self._room(len(wanting)))
        for turn, task in zip(wanting, tasks, strict=False):
            turn.task = task
        for turn in turns:
            turn.served = True
        if tasks and len(tasks) == len(wanting):  # there may be more: wake the parked lanes
            with self._parked:
                self._parked.notify_all()

    def _idle(self) -> None:
        """Nothing was due for this lane. One idle lane polls every poll interval; the others
        park until a poll finds work, so that an idle worker makes one query per interval."""
        with self._parked:
            if self._polling:
                self._parked.wait(self.settings.poll_interval * 5)
                return
            self._polling = True
        try:
            self.stopping.wait(self.settings.poll_interval)
        finally:
            with self._parked:
                self._polling = False

    def run_until_idle(self, timeout: float = 30.0) -> None:
        """Deliver what is due now, then return (tests, one-shot runs)."""
        deadline = time.monotonic() + timeout
        finished: list[DeliveryOutcome] = []
        with ThreadPoolExecutor(self.settings.concurrency) as pool:
            while time.monotonic() < deadline:
                tasks = self._settle(finished, self._room(self.settings.concurrency))
                if not tasks:
                    break
                finished = list(pool.map(self.attempt, tasks))
        self._settle(finished, 0)

    def _room(self, free: int) -> int:
        """How many deliveries to lease now: none while the breaker rests, one probe half-open."""
        if free <= 0 or self.breaker.retry_in() > 0:  # the registry is resting: do not even claim
            return 0
        return free if self.breaker.state == "closed" else 1

    def _settle(self, finished: list[DeliveryOutcome], limit: int) -> list[DeliveryTask]:
        """Record ``finished`` (emptying it) and lease up to ``limit`` deliveries, in one transaction."""
        if not finished and limit <= 0:
            return []
        try:
            tasks = self.store.settle(finished, self.owner, limit, self.settings.lease_seconds, self.clock())
        except Exception as exc:  # the store is unwell: never die
            log.error("settle_failed", error_type=type(exc).__name__, outcomes=len(finished))
            self._settle_one_by_one(finished)
            self.stopping.wait(1.0)
            return []
        finished.clear()
        return tasks

    def _settle_one_by_one(self, finished: list[DeliveryOutcome]) -> None:
        """Record each outcome alone, so that one that cannot be recorded does not hold up the
        others. One not recorded is dropped: its lease expires and the delivery is tried again
        under the same idempotency key (the registry answers with the same numéro parquet)."""
        for outcome in finished:
            try:
                self.store.settle([outcome], self.owner, 0, self.settings.lease_seconds, self.clock())
            except Exception as exc:
                log.error(
                    "delivery_outcome_lost",
                    delivery_id=outcome.task.delivery_id,
                    outcome=outcome.kind,
                    error_type=type(exc).__name__,
                )
        finished.clear()

    # ------------------------------------------------------------ one delivery

    def attempt(self, task: DeliveryTask) -> DeliveryOutcome:
        """One call to the registry and what it came to; records nothing, never raises."""
        with structlog.contextvars.bound_contextvars(
            receipt_id=task.receipt_id, message_id=task.message_id, delivery_id=task.delivery_id
        ):
            if not self.breaker.allow():
                now = self.clock()
                later = now + timedelta(seconds=max(self.breaker.retry_in(), 0.5))
                return DeliveryOutcome(task, OutcomeKind.RELEASED, now, next_attempt_at=later)
            started = time.monotonic()
            try:
                answer = self.registry.register(task)
            except Retriable as exc:
                self.breaker.failure()
                return self._retriable(task, exc, _ms(started))
            except Fatal as exc:
                self.breaker.success()  # the registry answered: it is up
                return self._dead(task, exc.code, exc.reason, _ms(started))
            except Exception as exc:  # unexpected (a bug of ours): keep the delivery, retry later
                log.exception("delivery_crashed", error_type=type(exc).__name__)
                return self._retriable(task, Retriable(f"internal error: {type(exc).__name__}"), _ms(started))
            self.breaker.success()
            return self._registered(task, answer, _ms(started))

    def _registered(self, task: DeliveryTask, answer: Registration, duration_ms: int) -> DeliveryOutcome:
        log.info(
            "delivery_registered",
            numero_parquet=answer.numero_parquet,
            repeat=answer.repeat,
            duration_ms=duration_ms,
        )
        if self.observer:
            self.observer.delivered("registered", duration_ms / 1000)
        return DeliveryOutcome(task, OutcomeKind.REGISTERED, self.clock(), duration_ms, registration=answer)

    def _retriable(self, task: DeliveryTask, exc: Retriable, duration_ms: int) -> DeliveryOutcome:
        now = self.clock()
        attempts = task.attempts + 1
        if self.policy.exhausted(attempts, task.created_at, now):
            return self._dead(
                task, "RETRIES_EXHAUSTED", f"{attempts} attempts, last: {exc.reason}", duration_ms
            )
        delay = self.policy.delay(attempts, exc.retry_after)
        log.warning("delivery_retry", reason=exc.reason, attempt=attempts, delay_s=round(delay, 2))
        if self.observer:
            self.observer.delivered("retriable", duration_ms / 1000)
        later = now + timedelta(seconds=delay)
        return DeliveryOutcome(
            task, OutcomeKind.RETRY, now, duration_ms, reason=exc.reason, next_attempt_at=later
        )

    def _dead(self, task: DeliveryTask, code: str, reason: str, duration_ms: int) -> DeliveryOutcome:
        log.warning("delivery_dead_letter", code=code, attempt=task.attempts + 1)
        if self.observer:
            self.observer.delivered("fatal", duration_ms / 1000)
            self.observer.dead_letter(code)
        return DeliveryOutcome(
            task, OutcomeKind.DEAD_LETTER, self.clock(), duration_ms, code=code, reason=reason
        )


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)

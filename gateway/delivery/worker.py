"""The delivery worker: claims due deliveries, calls the registry, records each outcome.

Runs in the ``saisine serve`` process by default, or alone (``saisine worker``);
several may run against one PostgreSQL. A stop signal lets in-flight calls
finish (they are bounded by the client's timeouts) and claims nothing new; a
worker killed outright leaves leases that expire, and another worker (or the
restarted one) takes those deliveries again under the same idempotency key.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import structlog

from gateway.delivery.breaker import CircuitBreaker
from gateway.delivery.policy import RetryPolicy
from gateway.errors import Fatal, Retriable
from gateway.ports import Clock, CourtRegistry, DeliveryStore, DeliveryTask, Registration

log = structlog.get_logger("saisine.delivery")


class DeliveryObserver(Protocol):
    def delivered(self, outcome: str, seconds: float) -> None: ...

    def dead_letter(self, code: str) -> None: ...


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 8
    lease_seconds: float = 60.0
    poll_interval: float = 0.2


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


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

    # ------------------------------------------------------------ loop

    def run(self) -> None:
        """Deliver until :meth:`stop`; then let in-flight calls finish."""
        log.info("worker_started", owner=self.owner, concurrency=self.settings.concurrency)
        inflight: set[Future[None]] = set()
        with ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="delivery") as pool:
            while not self.stopping.is_set():
                inflight = {f for f in inflight if not f.done()}
                tasks = self._claim(self.settings.concurrency - len(inflight))
                inflight |= {pool.submit(self.deliver, task) for task in tasks}
                if not tasks:
                    if inflight:
                        wait(inflight, timeout=self.settings.poll_interval, return_when=FIRST_COMPLETED)
                    else:
                        self.stopping.wait(self.settings.poll_interval)
            wait(inflight)
        log.info("worker_stopped", owner=self.owner)

    def stop(self) -> None:
        self.stopping.set()

    def _claim(self, free: int) -> list[DeliveryTask]:
        if free <= 0:
            return []
        pause = self.breaker.retry_in()
        if pause > 0:  # the registry is resting: do not even claim
            self.stopping.wait(min(pause, 1.0))
            return []
        if self.breaker.state != "closed":
            free = 1  # half-open: one probe
        try:
            return self.store.claim(self.owner, free, self.settings.lease_seconds, self.clock())
        except Exception as exc:  # the store is unwell: wait and try again, never die
            log.error("claim_failed", error_type=type(exc).__name__)
            self.stopping.wait(1.0)
            return []

    def run_until_idle(self, timeout: float = 30.0) -> None:
        """Deliver what is due now, then return (tests, one-shot runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tasks = self._claim(self.settings.concurrency)
            if not tasks:
                return
            with ThreadPoolExecutor(self.settings.concurrency) as pool:
                list(pool.map(self.deliver, tasks))

    # ------------------------------------------------------------ one delivery

    def deliver(self, task: DeliveryTask) -> None:
        """One attempt: registered, retried later, or dead letter; never raises."""
        with structlog.contextvars.bound_contextvars(
            receipt_id=task.receipt_id, message_id=task.message_id, delivery_id=task.delivery_id
        ):
            if not self.breaker.allow():
                wait_s = max(self.breaker.retry_in(), 0.5)
                self.store.release(task, self.clock() + timedelta(seconds=wait_s), self.clock())
                return
            started = time.monotonic()
            try:
                answer = self.registry.register(task)
            except Retriable as exc:
                self.breaker.failure()
                self._retriable(task, exc, _ms(started))
            except Fatal as exc:
                self.breaker.success()  # the registry answered: it is up
                self._dead(task, exc.code, exc.reason, _ms(started))
            except Exception as exc:  # unexpected (a bug of ours): keep the delivery, retry later
                log.exception("delivery_crashed", error_type=type(exc).__name__)
                self._retriable(task, Retriable(f"internal error: {type(exc).__name__}"), _ms(started))
            else:
                self.breaker.success()
                self._registered(task, answer, _ms(started))

    def _registered(self, task: DeliveryTask, answer: Registration, duration_ms: int) -> None:
        self.store.record_registered(task, answer, duration_ms, self.clock())
        log.info(
            "delivery_registered",
            numero_parquet=answer.numero_parquet,
            repeat=answer.repeat,
            duration_ms=duration_ms,
        )
        if self.observer:
            self.observer.delivered("registered", duration_ms / 1000)

    def _retriable(self, task: DeliveryTask, exc: Retriable, duration_ms: int) -> None:
        now = self.clock()
        attempts = task.attempts + 1
        if self.policy.exhausted(attempts, task.created_at, now):
            self._dead(task, "RETRIES_EXHAUSTED", f"{attempts} attempts, last: {exc.reason}", duration_ms)
            return
        delay = self.policy.delay(attempts, exc.retry_after)
        self.store.record_retry(task, exc.reason, now + timedelta(seconds=delay), duration_ms, now)
        log.warning("delivery_retry", reason=exc.reason, attempt=attempts, delay_s=round(delay, 2))
        if self.observer:
            self.observer.delivered("retriable", duration_ms / 1000)

    def _dead(self, task: DeliveryTask, code: str, reason: str, duration_ms: int) -> None:
        self.store.record_dead_letter(task, code, reason, duration_ms, self.clock())
        log.warning("delivery_dead_letter", code=code, attempt=task.attempts + 1)
        if self.observer:
            self.observer.delivered("fatal", duration_ms / 1000)
            self.observer.dead_letter(code)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)

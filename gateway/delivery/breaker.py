"""A circuit breaker per registry endpoint: stop calling a registry that keeps failing.

closed --(threshold consecutive retriable failures)--> open --(cooldown)--> half_open
half_open --(the one probe succeeds)--> closed;  --(the probe fails)--> open again.
A fatal answer (the registry refused a case) proves the registry is up: it counts as success.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("saisine.breaker")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class CircuitBreaker:
    def __init__(
        self,
        endpoint: str,
        threshold: int = 5,
        cooldown: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.threshold = threshold
        self.cooldown = cooldown
        self._now = monotonic
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_out = False

    @property
    def state(self) -> str:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def retry_in(self) -> float:
        """Seconds until a call may be tried again (0 when one may go now)."""
        with self._lock:
            self._maybe_half_open()
            if self._state == OPEN:
                return max(0.0, self._opened_at + self.cooldown - self._now())
            return 1.0 if self._state == HALF_OPEN and self._probe_out else 0.0

    def allow(self) -> bool:
        """May a call go now? In half-open state, only one probe at a time."""
        with self._lock:
            self._maybe_half_open()
            if self._state == CLOSED:
                return True
            if self._state == HALF_OPEN and not self._probe_out:
                self._probe_out = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._probe_out = False
            self._set(CLOSED)

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._probe_out = False
            if self._state == HALF_OPEN or self._failures >= self.threshold:
                self._opened_at = self._now()
                self._set(OPEN)

    def _maybe_half_open(self) -> None:
        if self._state == OPEN and self._now() - self._opened_at >= self.cooldown:
            self._set(HALF_OPEN)

    def _set(self, state: str) -> None:
        if state == self._state:
            return
        previous, self._state = self._state, state
        log.warning("circuit_state_changed", endpoint=self.endpoint, previous=previous, state=state)
        if self._on_change:
            self._on_change(self.endpoint, state)

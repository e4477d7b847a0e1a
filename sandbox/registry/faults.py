"""Fault injection: make the reference registry misbehave the way real registries do.

Modes: ``unavailable`` (HTTP 503 with ``Retry-After``), ``timeout`` (the case is
registered but the answer is held back longer than any client waits),
``server_fault`` (SOAP Server fault), ``close`` (the connection is dropped
without an answer), ``slow`` (a delay, then a normal answer). A fault lasts
``duration_s`` seconds or the next ``count`` SOAP requests, whichever ends
first; with neither it lasts until cleared. Only ``POST /soap/registry`` is
affected: the WSDL, the clerk's page and the admin endpoints keep working.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class FaultMode(StrEnum):
    NONE = "none"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    SERVER_FAULT = "server_fault"
    CLOSE = "close"
    SLOW = "slow"


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to do, for how long, with the knobs of each mode."""

    mode: FaultMode
    duration_s: float | None = None
    count: int | None = None
    delay_ms: int = 200  # slow: added before answering
    retry_after_s: int = 5  # unavailable: the Retry-After header
    timeout_s: float = 30.0  # timeout: how long the answer is held back

    def __post_init__(self) -> None:
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError("duration_s must be positive")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.delay_ms < 0 or self.retry_after_s < 0 or self.timeout_s <= 0:
            raise ValueError("delay_ms and retry_after_s must be >= 0, timeout_s > 0")


def parse_mode(value: str) -> FaultMode:
    """A mode from its name, or ``ValueError`` listing the valid ones."""
    try:
        return FaultMode(value.strip().lower())
    except ValueError:
        valid = ", ".join(mode.value for mode in FaultMode)
        raise ValueError(f"unknown fault mode {value!r}; expected one of: {valid}") from None


class FaultInjector:
    """The current fault, consumed one SOAP request at a time (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._plan: FaultPlan | None = None
        self._until: float | None = None
        self._remaining: int | None = None

    def set(self, plan: FaultPlan) -> None:
        """Start ``plan`` now (mode ``none`` clears)."""
        with self._lock:
            if plan.mode is FaultMode.NONE:
                self._plan = None
                return
            self._plan = plan
            self._until = None if plan.duration_s is None else self._clock() + plan.duration_s
            self._remaining = plan.count

    def clear(self) -> None:
        self.set(FaultPlan(FaultMode.NONE))

    def take(self) -> FaultPlan | None:
        """The fault to apply to this request, if one is active; counts it against ``count``."""
        with self._lock:
            if not self._active():
                return None
            if self._remaining is not None:
                self._remaining -= 1
            return self._plan

    def status(self) -> dict[str, Any]:
        """The current fault as JSON: mode, knobs, and what is left of it."""
        with self._lock:
            if not self._active() or self._plan is None:
                return {"mode": FaultMode.NONE.value}
            left = None if self._until is None else round(max(0.0, self._until - self._clock()), 3)
            data = asdict(self._plan)
            data.update(mode=self._plan.mode.value, remaining_s=left, remaining_count=self._remaining)
            return data

    def _active(self) -> bool:
        if self._plan is None:
            return False
        expired = self._until is not None and self._clock() >= self._until
        if expired or (self._remaining is not None and self._remaining <= 0):
            self._plan = None
            return False
        return True

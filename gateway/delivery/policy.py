"""When to try again, and when to give up (tenacity's wait strategies, persisted schedule)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tenacity import RetryCallState, Retrying, wait_exponential_jitter
from tenacity.wait import wait_base


def _default_wait() -> wait_base:
    return wait_exponential_jitter(multiplier=1, max=300, exp_base=2, jitter=1)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; a dead letter after ``max_attempts`` or ``max_age``."""

    max_attempts: int = 12
    max_age: timedelta = timedelta(hours=24)
    wait: wait_base = field(default_factory=_default_wait)

    def delay(self, attempt_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempt_number``-th failure; at least ``Retry-After``."""
        state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
        state.attempt_number = attempt_number
        computed = float(self.wait(state))
        return max(computed, retry_after or 0.0)

    def exhausted(self, attempts: int, created_at: datetime, now: datetime) -> bool:
        return attempts >= self.max_attempts or now - created_at >= self.max_age

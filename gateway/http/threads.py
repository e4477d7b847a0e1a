"""The few threads that REST and SOAP submissions run on (``settings.intake_threads``).

A message is parsed, checked, mapped and stored holding the GIL but for libxml2's work and
SQLite's, so threads beyond two only contend for it (docs/benchmarks.md). The hand-off from the
event loop is the standard library's ``run_in_executor``: about half the Python work of
``anyio.to_thread.run_sync`` with a capacity limiter (its cancel scopes, run-vars and
per-thread queues), for the same effect here, since a submission is never abandoned once it
has started: a client that goes away leaves its message stored, and the executor finishes it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class IntakeThreads:
    """Run blocking intake work on ``count`` threads; the rest waits its turn in the queue."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="intake")

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` on one of the threads (keyword arguments: bind them with a partial),
        in a copy of the caller's context, as anyio does: what the request bound for its log
        lines (structlog's context variables) is bound there too."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._pool, context.run, func, *args)

    def close(self) -> None:
        """Let the submissions in progress finish and stop the threads (at the server's shutdown).

        A fresh pool takes its place (it starts no thread until used): an application served
        again, as tests do, still has its threads."""
        done, self._pool = self._pool, ThreadPoolExecutor(max_workers=self.count, thread_name_prefix="intake")
        done.shutdown(wait=True)

"""structlog set-up: JSON when not on a terminal, readable otherwise.

Log lines carry identifiers and outcomes (message id, receipt, sender, codes),
never a payload or a person's data: tests/test_logs.py scans every fixture's logs.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
import time

import structlog

_STOP = object()


class BackgroundWriter:
    """Log lines written to ``sys.stderr`` by a thread of their own, in batches.

    A server's threads only queue the line they rendered. Writing it themselves cost a system
    call per line, and each let the GIL go and then waited to take it back from the threads
    mapping other messages: with two lines per message, about a tenth of the intake's rate
    (docs/benchmarks.md). The writer waits for a line, lets ``linger`` seconds go by, then
    writes all the lines queued by then in one call and flushes. Lines keep the order in which
    they were logged; :meth:`close` (also run at exit) writes what is left. A process killed
    outright loses at most the last ``linger`` seconds of log lines, never a message: the
    message is in the database before the answer is sent.
    """

    def __init__(self, linger: float = 0.01) -> None:
        self.linger = linger
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def msg(self, message: str) -> None:
        self._queue.put(message)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = failure = msg

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            time.sleep(self.linger)
            lines = [first]
            while True:
                try:
                    lines.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in lines
            text = "".join(f"{line}\n" for line in lines if line is not _STOP)
            if text:
                try:
                    stream = sys.stderr
                    stream.write(text)
                    stream.flush()
                except (OSError, ValueError):  # stderr closed or gone: these lines are lost, not the writer
                    pass
            if stop:
                return

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued and stop (idempotent)."""
        atexit.unregister(self.close)
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)


_background: BackgroundWriter | None = None


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    """Write to whatever ``sys.stderr`` is *now* (it may be swapped after start-up, as pytest does)."""
    return structlog.PrintLogger(file=sys.stderr)


def _background_logger(*_args: object) -> BackgroundWriter:
    assert _background is not None
    return _background


def configure_logging(level: str = "INFO", json: bool | None = None, background: bool = False) -> None:
    """Configure structlog and the standard library's root logger once, at start-up.

    ``background``: lines are written by a thread of their own (:class:`BackgroundWriter`),
    for the long-running server and worker; otherwise each call writes its line."""
    global _background
    if _background is not None:
        _background.close()
        _background = None
    if background:
        _background = BackgroundWriter()
    as_json = (not sys.stderr.isatty()) if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=_background_logger if background else _stderr_logger,
        cache_logger_on_first_use=False,
    )

"""The server's log lines go out through a writer thread (gateway.logs.BackgroundWriter)."""

from __future__ import annotations

import io
import json
import sys
import threading
import time

import pytest
import structlog

from gateway.logs import BackgroundWriter, configure_logging


def test_the_writer_keeps_every_line_in_order_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    writer = BackgroundWriter(linger=0.001)

    def send(prefix: str) -> None:
        for i in range(500):
            writer.info(f"{prefix}{i}")

    threads = [threading.Thread(target=send, args=(p,)) for p in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    lines = out.getvalue().splitlines()
    assert sorted(lines) == sorted(f"{p}{i}" for p in "ab" for i in range(500))
    for prefix in "ab":  # each thread's lines in the order it logged them
        assert [line for line in lines if line[0] == prefix] == [f"{prefix}{i}" for i in range(500)]
    writer.close()  # again: nothing more, no error
    assert not writer._thread.is_alive()


def test_configured_in_the_background_lines_are_json_and_written_by_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    try:
        configure_logging("INFO", json=True, background=True)
        log = structlog.get_logger("saisine.test")
        with structlog.contextvars.bound_contextvars(receipt_id="r-1"):
            log.info("message_received", size=12)
        log.debug("not at this level")
    finally:
        configure_logging("INFO", json=True)  # closes the writer: what it queued is written
    (line,) = out.getvalue().splitlines()
    event = json.loads(line)
    assert (event["event"], event["receipt_id"], event["size"], event["level"]) == (
        "message_received",
        "r-1",
        12,
        "info",
    )


class _Closed(io.StringIO):
    def write(self, text: str) -> int:
        raise ValueError("I/O operation on closed file.")


def test_a_failed_write_loses_its_lines_not_the_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", _Closed())
    writer = BackgroundWriter(linger=0.001)
    writer.info("lost")
    deadline = time.monotonic() + 5
    while not writer._queue.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert writer._thread.is_alive()
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    writer.info("kept")
    writer.close()
    assert out.getvalue() == "kept\n"

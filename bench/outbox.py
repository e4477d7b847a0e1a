"""The outbox of the delivery benchmark: filled through the real intake, copied for each worker
run, and read back (statuses, event times, attempts) with the gateway's own tables."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from bench.messages import PROJECT_ROOT, split_at_message_id, with_procedure_number
from bench.stats import summarize
from gateway.store.tables import cases, deliveries, delivery_attempts, events, messages

FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "gendarmerie" / "v1" / "valid"


def initial_fixtures() -> list[bytes]:
    """The valid initial procedures among the fixtures (compléments need their affaire first)."""
    files = sorted(FIXTURES.glob("*.xml"))
    return [data for data in (f.read_bytes() for f in files) if b"PROCEDURE_INITIALE" in data]


def preload(database_url: str, count: int) -> dict[str, Any]:
    """``count`` accepted messages, through the intake the HTTP and SOAP services call."""
    from gateway.composition import build
    from gateway.logs import configure_logging
    from gateway.settings import Settings

    configure_logging("WARNING", json=True)
    container = build(Settings(database_url=database_url, worker_enabled=False))
    templates = [split_at_message_id(data, "fixture") for data in initial_fixtures()]
    sizes, started = [], time.perf_counter()
    try:
        for index in range(count):
            data = with_procedure_number(templates[index % len(templates)].with_id(), index + 1)
            outcome = container.intake.submit("gendarmerie", data, "rest")
            if outcome.http_status != 202:
                codes = sorted({e.code for e in outcome.receipt.errors})
                raise SystemExit(f"preload: message {index} answered {outcome.http_status} {codes}")
            sizes.append(len(data))
    finally:
        container.close()
    return {
        "messages": count,
        "fixtures": len(templates),
        "mean_bytes": round(sum(sizes) / len(sizes)),
        "seconds": round(time.perf_counter() - started, 1),
    }


def export_tasks(engine: Engine, path: Path) -> int:
    """The pending deliveries as the worker's claim builds them, for the direct clients."""
    query = (
        select(
            deliveries.c.id,
            deliveries.c.kind,
            deliveries.c.procedure_key,
            deliveries.c.created_at,
            messages.c.receipt_id,
            messages.c.message_id,
            cases.c.affaire,
            cases.c.revision,
        )
        .join(messages, messages.c.id == deliveries.c.message_pk)
        .join(cases, cases.c.message_pk == deliveries.c.message_pk)
        .order_by(deliveries.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    tasks = [
        {
            "delivery_id": row.id,
            "receipt_id": row.receipt_id,
            "message_id": row.message_id,
            "kind": row.kind,
            "procedure_key": row.procedure_key,
            "attempts": 0,
            "created_at": row.created_at.replace(tzinfo=UTC).isoformat(),
            "affaire": row.affaire,
            "revision": row.revision,
        }
        for row in rows
    ]
    path.write_text(json.dumps(tasks, ensure_ascii=False))
    return len(tasks)


def wait_registered(engine: Engine, expected: int, timeout: float) -> dict[str, int]:
    """Poll the outbox until ``expected`` deliveries are registered or nothing can move any more."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status))
            counts = {status: int(n) for status, n in rows}
        if (
            counts.get("registered", 0) >= expected
            or counts.get("dead_letter")
            or time.monotonic() > deadline
        ):
            return counts
        time.sleep(0.1)


def event_times(engine: Engine, kind: str, after_pk: int = 0) -> dict[int, datetime]:
    """message pk -> time of its first ``kind`` event."""
    query = (
        select(events.c.message_pk, func.min(events.c.at))
        .where(events.c.kind == kind, events.c.message_pk > after_pk)
        .group_by(events.c.message_pk)
    )
    with engine.connect() as conn:
        return {pk: at.replace(tzinfo=at.tzinfo or UTC) for pk, at in conn.execute(query)}


def attempts_summary(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(delivery_attempts.c.outcome, delivery_attempts.c.duration_ms)).all()
    outcomes: dict[str, int] = {}
    for outcome, _ in rows:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    durations = [float(ms) for outcome, ms in rows if outcome == "registered"]
    return {"outcomes": outcomes, "call_ms": summarize(durations)}


def fresh_outbox(template: Path, target: Path) -> str:
    """A copy of the preloaded outbox (SQLite's backup: consistent, WAL included); its URL."""
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return f"sqlite:///{target}"

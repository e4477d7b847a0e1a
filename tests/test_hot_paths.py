"""The intake's shortcuts change nothing but their cost: the XML endpoints answered in front of
FastAPI's routing, and the intake's INSERTs run on SQLite's own cursor."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite as sqlite_dialect

from gateway.composition import Container, build
from gateway.http.app import create_app
from gateway.http.direct import DirectRoutes
from gateway.ports import NewMessage
from gateway.settings import Settings
from gateway.store.engine import bind_processors
from gateway.store.tables import messages
from tests.conftest import GENDARMERIE_V1

TYPICAL = (GENDARMERIE_V1 / "valid" / "03-typical.xml").read_bytes()
XML = {"Content-Type": "application/xml"}


def _without_direct_routes(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not DirectRoutes]
    return app


def _answer(response: httpx.Response) -> tuple[int, Any]:
    payload = response.json()
    for volatile in ("receipt_id", "received_at", "links"):
        if isinstance(payload, dict):
            payload.pop(volatile, None)
    return response.status_code, (response.headers["content-type"], payload)


def _requests() -> list[tuple[str, bytes, dict[str, str]]]:
    invalid = (GENDARMERIE_V1 / "invalid" / "date-faits-after-saisine.xml").read_bytes()
    return [
        ("/api/v1/gendarmerie/procedures", TYPICAL, XML),
        ("/api/v1/gendarmerie/procedures", TYPICAL, XML),  # the repeat: 200
        ("/api/v1/gendarmerie/procedures", invalid, XML),
        ("/api/v1/gendarmerie/procedures", b"<not-closed>", XML),
        ("/api/v1/gendarmerie/procedures", TYPICAL, {"Content-Type": "application/json"}),
        ("/api/v1/gendarmerie/procedures/validate", TYPICAL, XML),
        ("/api/v1/gendarmerie/procedures/validate", invalid, XML),
    ]


async def _exchange(app: FastAPI) -> tuple[list[tuple[int, Any]], Any]:
    """Every request of :func:`_requests` in turn, then the OpenAPI document."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answers = [_answer(await client.post(p, content=b, headers=h)) for p, b, h in _requests()]
        return answers, (await client.get("/openapi.json")).json()


def _statuses(app: FastAPI, *requests: tuple[str, str]) -> list[int]:
    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return [
                (await client.request(m, p, content=TYPICAL, headers=XML)).status_code for m, p in requests
            ]

    return asyncio.run(run())


@pytest.mark.parametrize("sender_auth", ["none", "token"])
def test_xml_endpoints_answer_as_fastapi_routes_would(tmp_path: Path, sender_auth: str) -> None:
    """Each answer of the direct path equals FastAPI's to the same request; the contract is unchanged."""
    answers = []
    for name, direct in (("direct", True), ("routed", False)):
        settings = Settings(database_url=f"sqlite:///{tmp_path / name}.db", sender_auth=sender_auth)
        container = build(settings)
        try:
            app = create_app(container)
            answers += asyncio.run(_exchange(app if direct else _without_direct_routes(app)))
        finally:
            container.close()
    direct_answers, direct_openapi, routed_answers, routed_openapi = answers
    expected = [202, 200, 422, 400, 415, 200, 422] if sender_auth == "none" else [401] * 7  # no token sent
    assert [status for status, _ in direct_answers] == expected
    assert direct_answers == routed_answers
    assert direct_openapi == routed_openapi
    assert "/api/v1/gendarmerie/procedures" in direct_openapi["paths"]


def test_direct_routes_leave_other_methods_and_paths_to_the_router(container: Container) -> None:
    """A GET on an XML endpoint still gets FastAPI's 405, an unknown path its 404."""
    app = create_app(container)
    assert _statuses(app, ("GET", "/api/v1/gendarmerie/procedures"), ("POST", "/api/v1/gendarmerie/x")) == [
        405,
        404,
    ]


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    tables = ("messages", "cases", "deliveries", "events", "message_error_codes", "audit_records")
    with sqlite3.connect(path) as db:
        return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in tables}


def _message(container: Container, data: bytes, number: int = 1) -> NewMessage:
    """What the intake stores for ``data`` (its evaluation, events, errors), under a fixed receipt id."""
    result = container.intake.checker.evaluate(data, "gendarmerie")
    sender = f"gendarmerie:{result.header.unit_code or 'unknown'}"
    sha = hashlib.sha256(data).hexdigest()
    receipt_id = f"0b6f3c8e-3f7d-4c59-9d43-4c8a7c1b2f1{number}"
    return container.intake._record("gendarmerie", sender, "rest", data, sha, result, receipt_id)


@pytest.mark.parametrize("kind", ["accepted", "rejected"])
def test_intake_inserts_on_the_driver_write_what_sqlalchemy_writes(tmp_path: Path, kind: str) -> None:
    """The same messages saved as one statement on SQLite's own connection (gateway.store.
    onestatement) and through Connection.execute: the same rows in every table."""
    data = TYPICAL if kind == "accepted" else TYPICAL.replace(b"<Natinf>", b"<Natinf>9", 1)
    # a first message (the process's first write takes the head the long way), then the one compared
    first = re.sub(rb"<MessageId>[^<]*<", b"<MessageId>7d5e2b1a-4c3f-4e8a-9b6d-0f1e2d3c4b5a<", TYPICAL)
    stored = {}
    messages: list[NewMessage] = []
    for name, direct in (("driver", True), ("sqlalchemy", False)):
        container = build(Settings(database_url=f"sqlite:///{tmp_path / name}.db"))
        try:
            assert container.store.direct  # on by default on SQLite
            container.store.direct = direct
            messages = messages or [_message(container, first, 1), _message(container, data, 2)]
            assert (messages[1].status == "accepted") == (kind == "accepted")
            assert messages[1].errors or kind == "accepted"
            written = []
            real = container.store._write_one

            def spy(*args: Any, real: Any = real, written: list[bool] = written) -> bool:
                written.append(real(*args))
                return written[-1]

            container.store._write_one = spy  # type: ignore[method-assign]
            for message in messages:
                container.store.save(message)
            assert written == ([False, True] if direct else [])
        finally:
            container.close()
        stored[name] = _rows(tmp_path / f"{name}.db")
    assert stored["driver"] == stored["sqlalchemy"]
    assert len(stored["driver"]["messages"]) == 2 and stored["driver"]["events"]
    assert len(stored["driver"]["message_error_codes"]) == (0 if kind == "accepted" else 1)


def test_a_second_accepted_id_refused_through_the_driver_is_a_repeat(container: Container) -> None:
    """SQLite's refusal of a second accepted (sender, message id), raised by the driver, is still a repeat."""
    first = container.intake.submit("gendarmerie", TYPICAL, "rest")
    again = container.intake.submit("gendarmerie", TYPICAL, "rest")
    assert (first.http_status, again.http_status, again.repeat) == (202, 200, True)
    assert again.receipt.receipt_id == first.receipt.receipt_id


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 123),
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-2))),
        None,
    ],
)
def test_the_driver_writes_datetimes_as_sqlalchemy_does(value: datetime | None) -> None:
    """The intake's own datetime processor on SQLite: SQLAlchemy's text, offset dropped likewise."""
    dialect = sqlite_dialect.dialect(paramstyle="qmark")
    ours = bind_processors(messages, dialect)["received_at"]
    theirs = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert ours(value) == theirs(value)


def test_intake_threads_run_in_the_callers_context() -> None:
    """What the event loop bound (a request's log context) is seen by the work on the threads."""
    import contextvars

    from gateway.http.threads import IntakeThreads

    bound: contextvars.ContextVar[str] = contextvars.ContextVar("bound", default="unset")
    threads = IntakeThreads(2)

    async def call() -> str:
        bound.set("request-1")
        return await threads.run(bound.get)

    try:
        assert asyncio.run(call()) == "request-1"
    finally:
        threads.close()

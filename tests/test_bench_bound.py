"""The ingest benchmark's bound (bench/bound_server.py) does the work it claims, on the gateway's
stack: CI runs no benchmark, so a bound that stopped parsing, validating or storing would
otherwise go unnoticed and inflate every ratio measured against it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx

from bench.bound_server import PATH, create_bound_app
from gateway.http.direct import DirectRoutes
from tests.conftest import GENDARMERIE_V1

XML = {"Content-Type": "application/xml"}


def test_bound_parses_validates_and_stores_each_message(tmp_path: Path) -> None:
    """A valid message is stored (202); an invalid one (422) and a refused one (400) are not."""
    db = tmp_path / "bound.db"
    app = create_bound_app(f"sqlite:///{db}")
    valid = (GENDARMERIE_V1 / "valid" / "03-typical.xml").read_bytes()
    invalid = valid.replace(b"<ProcedureNumber>", b"<ProcedureNumber>X", 1)
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>'

    async def statuses() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bound") as client:
            return [
                (await client.post(PATH, content=body, headers=XML)).status_code
                for body in (valid, invalid, hostile)
            ]

    assert asyncio.run(statuses()) == [202, 422, 400]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT raw FROM raw_messages").fetchall() == [(valid,)]


def test_bound_is_answered_in_front_of_the_routing_as_the_gateway_answers_its_own() -> None:
    """The same direct route as the gateway's XML endpoints (gateway.http.app)."""
    app = create_bound_app("sqlite://")
    assert any(m.cls is DirectRoutes and m.kwargs["routes"].keys() == {PATH} for m in app.user_middleware)

"""Shared fixtures: settings on a temporary SQLite file, a wired container, a live server,
PostgreSQL when configured (required in CI), and a guard that keeps tests on loopback."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import hypothesis
import pytest
import uvicorn
from sqlalchemy import create_engine, text

from gateway.composition import Container, build
from gateway.settings import Settings

# Property tests explore at random on developers' machines, where a new bug is welcome; CI replays
# one fixed exploration, so that a landing never depends on the luck of a draw.
if os.environ.get("CI") == "true":
    hypothesis.settings.register_profile("ci", derandomize=True, database=None)
    hypothesis.settings.load_profile("ci")

FIXTURES = Path(__file__).parent / "fixtures"
# Most tests exercise what happens to a message, not who may send it: they run with sender and
# operator authentication off, as the settings allow for local tests only. The tests of who may
# send and see (tests/test_access.py) turn both on explicitly (a Settings argument wins over
# the environment); subprocesses started by tests inherit these.
os.environ.setdefault("SAISINE_SENDER_AUTH", "none")
os.environ.setdefault("SAISINE_OPERATOR_AUTH", "false")
GENDARMERIE_V1 = FIXTURES / "gendarmerie" / "v1"
POLICE_V1 = FIXTURES / "police" / "v1"
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection to a non-loopback address fails the test (zeep's habit)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if isinstance(address, tuple) and address[0] not in _LOOPBACK:
            raise AssertionError(f"test tried to reach {address!r}: tests stay on loopback")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'saisine.db'}", log_json=True)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    wired = build(settings)
    yield wired
    wired.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """The gateway's ASGI app served by uvicorn in a thread, on a loopback port."""

    def __init__(self, container: Container) -> None:
        from gateway.http.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(container), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live(container: Container) -> Iterator[LiveServer]:
    with LiveServer(container) as server:
        yield server


@pytest.fixture
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test; skipped only outside CI without a server."""
    url = os.environ.get("SAISINE_TEST_POSTGRES_URL")
    required = os.environ.get("SAISINE_REQUIRE_POSTGRES") == "1" or os.environ.get("CI") == "true"
    if not url:
        if required:
            pytest.fail("SAISINE_TEST_POSTGRES_URL is required in CI")
        pytest.skip("set SAISINE_TEST_POSTGRES_URL to run the PostgreSQL tests")
    schema = f"saisine_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def fixture_bytes(relative: str) -> bytes:
    return (GENDARMERIE_V1 / relative).read_bytes()


def with_new_id(data: bytes, message_id: str | None = None) -> bytes:
    """The same procedure under another message id (a new message for the gateway)."""
    text = data.decode()
    start = text.index("<MessageId>") + len("<MessageId>")
    end = text.index("</MessageId>")
    return (text[:start] + (message_id or str(uuid.uuid4())) + text[end:]).encode()

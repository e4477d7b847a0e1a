"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (never a downloaded
browser), a real reference registry and a real gateway with its worker, on loopback."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from gateway.composition import Container, build
from gateway.http.app import create_app
from gateway.paths import PROJECT_ROOT
from gateway.settings import Settings
from sandbox.registry.testing import RegistryServer
from tests.conftest import free_port

CHROMIUM = Path(os.environ.get("SAISINE_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"


def _unavailable(reason: str) -> None:
    """In CI the browser tests are required (issue 5: `.ci/run` installs Chromium and sets
    SAISINE_REQUIRE_BROWSER); elsewhere they are skipped with the reason."""
    if os.environ.get("CI") == "true" or os.environ.get("SAISINE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (required in CI: .ci/run installs Debian's chromium)")
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium from Debian's package, through Playwright's ``executable_path``."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path / "registry") as server:
        yield server


class Gateway:
    """``saisine serve`` in a thread: the app with its delivery worker and replay runner."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(container, run_worker=True)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Gateway:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_gateway(tmp_path: Path, registry: RegistryServer) -> Iterator[Gateway]:
    """A gateway as deployed (senders with tokens, operators logging in) that gives up on a
    delivery at its first retriable failure (a dead letter at once when the registry is down),
    with fast polling."""
    settings = Settings(
        sender_auth="token",
        operator_auth=True,
        database_url=f"sqlite:///{tmp_path / 'saisine.db'}",
        registry_url=registry.url,
        registry_connect_timeout=2.0,
        registry_read_timeout=10.0,
        worker_poll_seconds=0.05,
        retry_initial_seconds=0.05,
        retry_max_seconds=0.3,
        retry_max_attempts=1,
        breaker_threshold=3,
        breaker_cooldown_seconds=0.5,
    )
    container = build(settings)
    try:
        with Gateway(container) as served:
            yield served
    finally:
        container.close()

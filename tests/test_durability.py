"""A 202 means the message is on disk: killing the server right after loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import GENDARMERIE_V1, free_port, with_new_id

pytestmark = pytest.mark.integration


def start_server(database_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SAISINE_DATABASE_URL=database_url, SAISINE_LOG_JSON="true")
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not start")


def test_sigkill_right_after_202_loses_nothing(tmp_path: Path) -> None:
    """Every 202 received before a SIGKILL is found after a restart, with its delivery order."""
    database_url = f"sqlite:///{tmp_path / 'durable.db'}"
    port = free_port()
    log = tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    sample = sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))[0].read_bytes()
    server = start_server(database_url, port, log)
    receipts = []
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(20):
                response = client.post(
                    "/api/v1/gendarmerie/procedures",
                    content=with_new_id(sample),
                    headers={"Content-Type": "application/xml"},
                )
                assert response.status_code == 202
                receipts.append(response.json()["receipt_id"])
        server.send_signal(signal.SIGKILL)  # no shutdown hook runs: only what was committed survives
        server.wait(timeout=10)
        server = start_server(database_url, port, log)
        with httpx.Client(base_url=base, timeout=30) as client:
            statuses = [client.get(f"/api/v1/receipts/{r}").json()["status"] for r in receipts]
        # accepted, or already taken by the delivery worker (no registry runs here): never lost
        assert len(statuses) == 20 and set(statuses) <= {"accepted", "delivering"}
    finally:
        server.kill()
        server.wait(timeout=10)

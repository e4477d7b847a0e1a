"""The reference registry served on a loopback port in a thread, for tests (ours and integrators')."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from sandbox.registry.app import RegistryApp, RegistrySettings, create_registry_app
from sandbox.registry.cli import build_server
from sandbox.registry.faults import FaultPlan


class RegistryServer:
    """``with RegistryServer(tmp_path) as reg:`` a live registry; ``reg.url`` is its SOAP address.

    The listening socket is bound before the server starts, so the port is never raced.
    """

    def __init__(
        self, workdir: Path, *, fault: FaultPlan | None = None, settings: RegistrySettings | None = None
    ) -> None:
        self.settings = settings or RegistrySettings(database=workdir / "registry.db", initial_fault=fault)
        self.app = create_registry_app(self.settings)
        self.registry: RegistryApp = self.app.state.registry
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base_url}/soap/registry"
        self.wsdl_url = f"{self.url}?wsdl"
        self.server = build_server(self.app, log_level="warning")
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._http = httpx.Client(base_url=self.base_url, timeout=10)

    def __enter__(self) -> RegistryServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the reference registry did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def set_fault(self, mode: str, **knobs: Any) -> dict[str, Any]:
        """Start a fault (knobs: duration_s, count, delay_ms, retry_after_s, timeout_s)."""
        return self._json("POST", "/admin/faults", {"mode": mode, **knobs})

    def clear_fault(self) -> dict[str, Any]:
        return self._json("DELETE", "/admin/faults")

    def fault(self) -> dict[str, Any]:
        return self._json("GET", "/admin/faults")

    def stats(self) -> dict[str, Any]:
        """Calls by operation and outcome, and injected faults, since start."""
        return self._json("GET", "/api/stats")

    def cases(self) -> list[dict[str, Any]]:
        """Every registered affaire (numero_parquet, idempotency_key, revision, complements...)."""
        data: list[dict[str, Any]] = self._http.get("/api/cases").raise_for_status().json()
        return data

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = self._http.request(method, path, json=body).raise_for_status().json()
        return data

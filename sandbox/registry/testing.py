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
    :meth:`stop` and :meth:`start` take it down (connection refused) and up again on the same port.
    """

    def __init__(
        self, workdir: Path, *, fault: FaultPlan | None = None, settings: RegistrySettings | None = None
    ) -> None:
        self.settings = settings or RegistrySettings(database=workdir / "registry.db", initial_fault=fault)
        self.app = create_registry_app(self.settings)
        self.registry: RegistryApp = self.app.state.registry
        self._socket: socket.socket | None = _bound_socket(0)
        self.port = int(self._socket.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base_url}/soap/registry"
        self.wsdl_url = f"{self.url}?wsdl"
        self.server = build_server(self.app, log_level="warning")
        self._thread = threading.Thread()
        self._http = httpx.Client(base_url=self.base_url, timeout=10)

    def __enter__(self) -> RegistryServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()
        self.stop()

    def start(self) -> None:
        """Serve (again, after :meth:`stop`) on the same port, with the same data and stats."""
        if self._socket is None:  # after stop(): a new socket and server on the same port
            self._socket = _bound_socket(self.port)
            self.server = build_server(self.app, log_level="warning")
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the reference registry did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving: clients get "connection refused" until :meth:`start`."""
        if self._socket is None:
            return
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
        self._socket = None

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


def _bound_socket(port: int) -> socket.socket:
    """A loopback socket bound to ``port`` (0: any free one), not yet listening.

    ``SO_REUSEADDR`` lets a restarted server bind the port its previous run left in TIME_WAIT.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock

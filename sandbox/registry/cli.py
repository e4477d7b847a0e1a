"""Running the reference registry with uvicorn (``saisine sandbox registry``)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from sandbox.registry.app import RegistryApp, RegistrySettings, create_registry_app
from sandbox.registry.faults import FaultMode, FaultPlan, parse_mode


class RegistryUvicorn(uvicorn.Server):
    """uvicorn, ending the registry's held-back answers (``timeout`` mode) as soon as it
    shuts down, instead of waiting for them to run their course."""

    def __init__(self, config: uvicorn.Config, registry: RegistryApp) -> None:
        super().__init__(config)
        self.registry = registry

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.registry.start()
        await super().startup(sockets=sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.registry.stop()
        await super().shutdown(sockets=sockets)


def build_server(
    app: FastAPI, host: str = "127.0.0.1", port: int = 8090, log_level: str = "info"
) -> RegistryUvicorn:
    """A uvicorn server for an app made by :func:`create_registry_app`."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level)
    registry: RegistryApp = app.state.registry
    return RegistryUvicorn(config, registry)


def startup_fault(fault: str | None, fault_duration: float | None, delay_ms: int | None) -> FaultPlan | None:
    """The fault asked for on the command line; ``--delay-ms`` alone means ``slow``."""
    if fault is None and delay_ms is None:
        return None
    mode = parse_mode(fault) if fault is not None else FaultMode.SLOW
    if mode is FaultMode.NONE:
        return None
    return FaultPlan(mode, duration_s=fault_duration, delay_ms=200 if delay_ms is None else delay_ms)


def run_registry(
    port: int,
    host: str,
    database: Path,
    fault: str | None,
    fault_duration: float | None,
    delay_ms: int | None,
) -> None:
    """Serve the reference registry until interrupted."""
    settings = RegistrySettings(
        database=database, initial_fault=startup_fault(fault, fault_duration, delay_ms)
    )
    app = create_registry_app(settings)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - only compared, never bound here
    base = f"http://{shown}:{port}"
    print(f"Reference court registry (sandbox): {base}/soap/registry?wsdl", file=sys.stderr)
    print(f"Cases received: {base}/cases  -  fault injection: {base}/admin/faults", file=sys.stderr)
    build_server(app, host, port).run()

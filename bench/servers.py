"""Server processes under measurement: start, wait until healthy, read CPU and memory, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from bench.messages import GENERATED_UNIT
from gateway.demo import sample_units

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INTAKE_PATH = "/api/v1/gendarmerie/procedures"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerSpec:
    """How to start one server: its name, its command (``{port}``, ``{db}`` filled in), its env.

    ``health_path`` is polled until it answers 200; ``None`` for a process that serves no HTTP
    (a delivery worker): it only has to stay up.
    """

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    db_file: str = "server.db"
    health_path: str | None = "/healthz"
    # a sender credential made before start (``saisine senders add``), sent by the load client
    sender_units: tuple[str, ...] = ()


def saisine_spec(worker: bool, max_body_bytes: int | None = None) -> ServerSpec:
    """The real gateway, as deployed: ``python -m gateway serve``, JSON logs, SQLite file, and
    senders authenticated by token (each message's unit checked against its credential). The
    per-sender rate limit is lifted: the benchmark measures the gateway, not the limit."""
    env = {
        "SAISINE_DATABASE_URL": "sqlite:///{db}",
        "SAISINE_LOG_JSON": "true",
        "SAISINE_WORKER_ENABLED": "true" if worker else "false",
        "SAISINE_SENDER_AUTH": "token",
        "SAISINE_SENDER_RATE_PER_SECOND": "1000000",
        "SAISINE_SENDER_BURST": "1000000",
    }
    if max_body_bytes is not None:
        env["SAISINE_MAX_BODY_BYTES"] = str(max_body_bytes)
    argv = [sys.executable, "-m", "gateway", "serve", "--port", "{port}"]
    return ServerSpec("saisine", argv, env, "saisine.db", sender_units=(*sample_units(), GENERATED_UNIT))


def registry_spec() -> ServerSpec:
    """The reference court registry, as shipped: ``python -m gateway sandbox registry``."""
    argv = [sys.executable, "-m", "gateway", "sandbox", "registry", "--port", "{port}", "--database", "{db}"]
    return ServerSpec("registry", argv, {}, "registry.db", health_path="/api/stats")


def worker_spec(database_url: str, registry_url: str, concurrency: int) -> ServerSpec:
    """A delivery worker alone, as production runs it: ``python -m gateway worker``."""
    env = {
        "SAISINE_DATABASE_URL": database_url,
        "SAISINE_REGISTRY_URL": registry_url,
        "SAISINE_WORKER_CONCURRENCY": str(concurrency),
        "SAISINE_LOG_JSON": "true",
    }
    return ServerSpec("worker", [sys.executable, "-m", "gateway", "worker"], env, health_path=None)


def bound_spec() -> ServerSpec:
    """The bound: same stack, bare endpoint (bench/bound_server.py)."""
    argv = [
        sys.executable,
        "-m",
        "bench.bound_server",
        "--port",
        "{port}",
        "--database-url",
        "sqlite:///{db}",
    ]
    return ServerSpec("bound", argv, {}, "bound.db")


class ServerProcess:
    """One server in its own process on a free loopback port, logging to a file in ``workdir``."""

    def __init__(self, spec: ServerSpec, workdir: Path, tag: str = "") -> None:
        self.spec = spec
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.intake_url = self.url + INTAKE_PATH
        label = f"{spec.name}{tag}"
        self.db_path = workdir / f"{label}-{spec.db_file}"
        self.log_path = workdir / f"{label}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.headers: dict[str, str] = {}  # what a client sends with each request (credentials)

    def _fill(self, value: str) -> str:
        return value.replace("{port}", str(self.port)).replace("{db}", str(self.db_path))

    def __enter__(self) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAISINE_")}
        env.update({k: self._fill(v) for k, v in self.spec.env.items()})
        argv = [self._fill(a) for a in self.spec.argv]
        if self.spec.sender_units:
            self.headers["Authorization"] = f"Bearer {self._sender_token(env)}"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_healthy()
        return self

    def _sender_token(self, env: dict[str, str]) -> str:
        """A sender credential for the spec's units, made in the server's database before start."""
        units = [x for unit in self.spec.sender_units for x in ("--unit", unit)]
        argv = [
            sys.executable,
            "-m",
            "gateway",
            "senders",
            "add",
            "--agency",
            "gendarmerie",
            *units,
            "--json",
        ]
        argv += ["--database-url", f"sqlite:///{self.db_path}"]
        done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True)
        token: str = json.loads(done.stdout.strip().splitlines()[-1])["token"]
        return token

    def load(self, template_file: Path, mode: str, **options: Any) -> Any:
        """One load run against this server's intake by the client in its own process
        (bench/load.py; ``options`` are its command-line options), with this server's
        credentials; the client's JSON report."""
        argv = [
            sys.executable,
            "-m",
            "bench.load",
            "--url",
            self.intake_url,
            "--template",
            str(template_file),
        ]
        argv += ["--mode", mode] + [
            x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", str(v))
        ]
        argv += [x for name, value in self.headers.items() for x in ("--header", f"{name}: {value}")]
        done = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
        return json.loads(done.stdout)

    def _wait_healthy(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        if self.spec.health_path is None:
            time.sleep(0.2)
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited at start-up: {self.log_tail()}")
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited at start-up: {self.log_tail()}")
            try:
                if httpx.get(self.url + self.spec.health_path, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.spec.name} did not become healthy in {timeout} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak since start) in KiB."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

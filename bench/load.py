"""The load generator of the ingest benchmark, run as its own process.

A minimal HTTP/1.1 client on asyncio (uvloop when installed) with keep-alive connections and
every request prebuilt before the clock starts, so that the client spends as little CPU as
possible: on 2 cores it shares the machine with the server, and it reports its own CPU time
so the report can show it is not the bottleneck.

Two modes, both printing one JSON document on stdout:

- ``closed``: ``--requests`` messages over ``--concurrency`` connections, each sending its next
  message as soon as the previous answer arrives: the sustained rate.
- ``open``: ``--rate`` messages per second for ``--duration`` seconds, each sent at its scheduled
  time whatever the answers (open loop, no coordinated omission); latency is measured from the
  scheduled time, so a late send or a wait for a free connection counts against the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from bench.messages import split_at_message_id, with_procedure_number
from bench.stats import summarize

T = TypeVar("T")

IDLE_RECONNECT_S = 4.0  # below uvicorn's keep-alive timeout (5 s): never reuse a closing socket


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    send_lag_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        failures = sum(n for status, n in self.statuses.items() if status != "202")
        return {
            "statuses": dict(self.statuses),
            "failures": failures,
            "errors": self.errors[:5],
            "latency_ms": summarize([x * 1000 for x in self.latencies_s]),
            "send_lag_ms": summarize([x * 1000 for x in self.send_lag_s]),
        }


class Connection:
    """One keep-alive HTTP/1.1 connection: write a prebuilt request, read status and body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.last_used = time.perf_counter()

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return cls(reader, writer)

    async def request(self, data: bytes) -> int:
        self.writer.write(data)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError("response without Content-Length")
        await self.reader.readexactly(length)
        self.last_used = time.perf_counter()
        return status

    def close(self) -> None:
        self.writer.close()


def build_requests(
    url: str,
    template_path: Path,
    count: int,
    first_procedure: int | None = None,
    headers: list[str] | None = None,
) -> list[bytes]:
    """``count`` complete HTTP requests, each message under a fresh MessageId (and, from
    ``first_procedure`` on, each under a numéro de procédure of its own)."""
    template = split_at_message_id(template_path.read_bytes(), str(template_path))
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        + "".join(f"{line}\r\n" for line in headers or [])
        + "Content-Type: application/xml\r\nContent-Length: {length}\r\n\r\n"
    )
    requests = []
    for index in range(count):
        body = template.with_id()
        if first_procedure is not None:
            body = with_procedure_number(body, first_procedure + index)
        requests.append(head.replace("{length}", str(len(body))).encode() + body)
    return requests


async def _send(conn: Connection, data: bytes, tally: Tally) -> float:
    try:
        status = await conn.request(data)
        tally.statuses[str(status)] += 1
    except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError) as exc:
        tally.statuses["error"] += 1
        tally.errors.append(f"{type(exc).__name__}: {exc}")
        raise
    return time.perf_counter()


async def closed_loop(host: str, port: int, requests: list[bytes], concurrency: int) -> tuple[Tally, float]:
    tally = Tally()
    pending = iter(requests)

    async def worker() -> None:
        conn = await Connection.open(host, port)
        try:
            for data in pending:
                started = time.perf_counter()
                try:
                    done = await _send(conn, data, tally)
                except Exception:
                    conn.close()
                    conn = await Connection.open(host, port)
                    continue
                tally.latencies_s.append(done - started)
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally, time.perf_counter() - started


async def open_loop(
    host: str, port: int, requests: list[bytes], rate: float, connections: int
) -> tuple[Tally, float]:
    tally = Tally()
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await Connection.open(host, port))

    async def one(data: bytes, scheduled: float) -> None:
        conn = idle.get_nowait() if not idle.empty() else await Connection.open(host, port)
        if time.perf_counter() - conn.last_used > IDLE_RECONNECT_S:
            conn.close()
            conn = await Connection.open(host, port)
        tally.send_lag_s.append(time.perf_counter() - scheduled)
        try:
            done = await _send(conn, data, tally)
        except Exception:
            conn.close()
            return
        tally.latencies_s.append(done - scheduled)
        idle.put_nowait(conn)

    tasks = []
    start = time.perf_counter() + 0.05
    for index, data in enumerate(requests):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(data, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    return tally, elapsed


def _run_loop(main: Coroutine[Any, Any, T]) -> T:
    """On uvloop when it is installed (it is a dependency of uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int | None) -> float:
    """User + system CPU seconds of a process (all its threads), 0 without a pid."""
    if pid is None:
        return 0.0
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _machine_cpu() -> float:
    """Busy CPU seconds of the whole machine, all cores (iowait counts as idle)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / _TICKS


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(args: argparse.Namespace) -> dict[str, object]:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    count = args.requests if args.mode == "closed" else round(args.rate * args.duration)
    requests = build_requests(args.url, Path(args.template), count, args.first_procedure, args.header)
    cpu_before, server_before, machine_before = _cpu_seconds(), _process_cpu(args.server_pid), _machine_cpu()
    if args.mode == "closed":
        tally, elapsed = _run_loop(closed_loop(host, port, requests, args.concurrency))
    else:
        tally, elapsed = _run_loop(open_loop(host, port, requests, args.rate, args.concurrency))
    client_cpu = _cpu_seconds() - cpu_before
    server_cpu = _process_cpu(args.server_pid) - server_before
    # what the machine spent beside server and client: kernel work (fsync, loopback) and other work
    elsewhere = max(_machine_cpu() - machine_before - server_cpu - client_cpu, 0.0)
    return {
        "mode": args.mode,
        "sent": count,
        "elapsed_s": round(elapsed, 3),
        "messages_per_s": round(count / elapsed, 1),
        "client_cpu_s": round(client_cpu, 3),
        "client_cpu_share": round(client_cpu / elapsed, 3),
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_share": round(server_cpu / elapsed, 3),
        "server_cpu_ms_per_message": round(server_cpu * 1000 / count, 3),
        "elsewhere_cpu_share": round(elsewhere / elapsed, 3),
        **tally.as_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--template", required=True, help="file of the message to send")
    parser.add_argument("--mode", choices=("closed", "open"), required=True)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8, help="connections (open: opened at start)")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--server-pid", type=int, help="server process whose CPU time to report")
    parser.add_argument(
        "--header", action="append", default=[], help="a header line sent with each request (credentials)"
    )
    parser.add_argument(
        "--first-procedure", type=int, help="give message i the numéro de procédure N+i (not the template's)"
    )
    args = parser.parse_args()
    json.dump(run(args), sys.stdout)


if __name__ == "__main__":
    main()

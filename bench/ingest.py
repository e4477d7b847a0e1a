"""Ingest benchmark: Saisine against its bound, measured the same way in the same run.

    python -m bench.ingest            # full run (about 4 minutes on 2 cores)
    python -m bench.ingest --quick    # smoke run (under a minute)

For each of two servers, run in turn on a fresh SQLite file (WAL, synchronous=FULL), ``--rounds``
times (saisine, bound, saisine, bound...; the round with the best sustained rate of each counts,
every round's rate is reported: the machine's speed drifts by 10 to 20 % between runs):

- ``saisine``: the real gateway, ``python -m gateway serve`` (JSON logs to a file);
- ``bound``: the same stack with a bare endpoint that parses, validates against the XSD and
  inserts the raw bytes with one commit (``bench/bound_server.py``);

it measures the sustained rate (closed loop, ``--concurrency`` connections, ``--requests``
messages) and the latency at a steady ``--rate`` (open loop for ``--duration`` seconds, latency
from each send's scheduled time). Then the peak memory of a fresh gateway for one message of
``--memory-mb`` MB with pièces inline. Every message has a fresh MessageId; every answer must be
202, and the stored rows are counted afterwards. Results: a table, ``bench/results/ingest-*.json``
and PASS/FAIL against the targets (exit 1 on a missed target only with ``--strict``; exit 2 when
a request failed or a message was not stored, since the figures then mean nothing).
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.messages import Template, large_template, typical_template
from bench.report import finish, render, server_problems, verdicts, work_folder
from bench.servers import PROJECT_ROOT, ServerProcess, ServerSpec, bound_spec, saisine_spec

TARGETS = {"throughput_ratio_min": 0.6, "p99_ms_max": 25.0, "memory_factor_max": 5.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="closed-loop messages per server")
    parser.add_argument("--concurrency", type=int, default=8, help="client connections")
    parser.add_argument("--warmup", type=int, default=200, help="messages sent before measuring")
    parser.add_argument(
        "--rounds", type=int, default=2, help="Saisine and bound runs, in turn; the best of each counts"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop messages per second")
    parser.add_argument("--duration", type=float, default=15.0, help="open-loop seconds")
    parser.add_argument("--memory-mb", type=float, default=10.0, help="size of the large message (MiB)")
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak memory measurement")
    parser.add_argument("--worker", action="store_true", help="run the delivery worker in the gateway")
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (databases, logs)")
    parser.add_argument("--output", type=Path, help="results file (default bench/results/ingest-*.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.warmup, args.duration = min(args.requests, 300), min(args.warmup, 30), 3.0
        args.rounds = 1
    return args


def check_accepted(template: Template) -> None:
    """The message must be one the gateway accepts, or the benchmark measures rejections."""
    from gateway.composition import build_checker
    from gateway.settings import Settings

    verdict = build_checker(Settings()).evaluate(template.with_id())
    if verdict.http_status != 202:
        codes = ", ".join(verdict.codes)
        raise SystemExit(f"the benchmark message ({template.source}) is not accepted: {codes}")


def run_load(
    server: ServerProcess, template_file: Path, mode: str, args: argparse.Namespace, **kw: Any
) -> Any:
    """One load run in a separate client process (bench/load.py); its JSON report."""
    options = {"requests": args.requests, "concurrency": args.concurrency, "rate": args.rate}
    return server.load(template_file, mode, **(options | {"duration": args.duration, **kw}))


def stored_count(spec: ServerSpec, db_path: Path) -> int:
    """Messages durably stored as accepted, read back from the file once the server stopped."""
    query = (
        "SELECT count(*) FROM messages WHERE accepted"  # stays true once delivery moves the status on
        if spec.name == "saisine"
        else "SELECT count(*) FROM raw_messages"
    )
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute(query).fetchone()[0])


def measure_server(
    spec: ServerSpec, template_file: Path, workdir: Path, args: argparse.Namespace, tag: str = ""
) -> Any:
    """Warm-up, sustained rate, then open-loop latency, on one fresh server."""
    print(f"[{spec.name}{tag}] starting", file=sys.stderr, flush=True)
    with ServerProcess(spec, workdir, tag=tag) as server:
        warm = run_load(server, template_file, "closed", args, requests=args.warmup)
        phases: dict[str, Any] = {"warmup": warm}
        for phase, mode in (("throughput", "closed"), ("latency", "open")):
            print(f"[{spec.name}] {phase}", file=sys.stderr, flush=True)
            result = run_load(server, template_file, mode, args, server_pid=server.pid)
            if result["elsewhere_cpu_share"] > 0.3:
                share = result["elsewhere_cpu_share"]
                print(f"[{spec.name}] warning: {share:.0%} of a core busy elsewhere", file=sys.stderr)
            phases[phase] = result
        memory = server.memory_kib()
    answered = sum(p["statuses"].get("202", 0) for p in phases.values())
    phases["stored"] = {"accepted_202": answered, "in_database": stored_count(spec, server.db_path)}
    phases["rss_after_kib"] = memory["VmRSS"]
    return phases


def best_round(runs: list[Any]) -> Any:
    """The round with the best sustained rate, with every round's rate beside it."""
    best = max(runs, key=lambda phases: phases["throughput"]["messages_per_s"])
    # a failure in any round voids the run, not only in the one shown
    problems = [f"round {n}: {p}" for n, phases in enumerate(runs, 1) for p in server_problems(phases)]
    rates = [phases["throughput"]["messages_per_s"] for phases in runs]
    return {**best, "rounds_per_s": rates, "rounds_problems": problems}


def measure_memory(spec: ServerSpec, typical: Template, workdir: Path, size_mb: float) -> dict[str, Any]:
    """Peak RSS above idle for one large message, on a fresh process warmed with a typical one."""
    large = large_template(int(size_mb * 1024 * 1024)).with_id()
    print(f"[{spec.name}] memory, one message of {len(large):,} bytes", file=sys.stderr, flush=True)
    headers = {"Content-Type": "application/xml"}
    with ServerProcess(spec, workdir, tag="-memory") as server, httpx.Client(timeout=120) as client:
        headers = {**headers, **server.headers}
        warm = client.post(server.intake_url, content=typical.with_id(), headers=headers)
        time.sleep(0.5)
        idle = server.memory_kib()
        started = time.perf_counter()
        answer = client.post(server.intake_url, content=large, headers=headers)
        seconds = time.perf_counter() - started
        after = server.memory_kib()
    growth = (after["VmHWM"] - idle["VmHWM"]) * 1024
    return {
        "message_bytes": len(large),
        "statuses": [warm.status_code, answer.status_code],
        "seconds": round(seconds, 3),
        "idle_rss_kib": idle["VmRSS"],
        "idle_hwm_kib": idle["VmHWM"],
        "peak_hwm_kib": after["VmHWM"],
        "rss_after_kib": after["VmRSS"],
        "peak_above_idle_bytes": growth,
        "factor": round(growth / len(large), 2),
        "factor_vs_idle_rss": round((after["VmHWM"] - idle["VmRSS"]) * 1024 / len(large), 2),
    }


def environment(template: Template) -> dict[str, Any]:
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    import uvicorn

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "uvicorn": uvicorn.__version__,
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "message": {"source": template.source, "bytes": len(template)},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    typical = typical_template()
    check_accepted(typical)
    with work_folder("saisine-bench-", args.keep) as workdir:
        template_file = workdir / "typical.xml"
        template_file.write_bytes(typical.with_id())
        results: dict[str, Any] = {"environment": environment(typical), "targets": TARGETS}
        results["settings"] = {k: v for k, v in vars(args).items() if k not in ("output",)}
        rounds: dict[str, list[Any]] = {"saisine": [], "bound": []}
        for n in range(1, args.rounds + 1):
            for spec in (saisine_spec(args.worker), bound_spec()):
                tag = f"-{n}" if args.rounds > 1 else ""
                rounds[spec.name].append(measure_server(spec, template_file, workdir, args, tag))
        results["servers"] = {name: best_round(runs) for name, runs in rounds.items()}
        if not args.skip_memory:
            spec = saisine_spec(args.worker, max_body_bytes=64 * 1024 * 1024)
            results["memory"] = measure_memory(spec, typical, workdir, args.memory_mb)
        results["verdicts"] = verdicts(results)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish("ingest", args, run(args), render)


if __name__ == "__main__":
    sys.exit(main())

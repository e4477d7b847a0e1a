"""Delivery benchmark: the delivery worker against its bound, measured in the same run.

    python -m bench.deliver            # full run (about 2 minutes on 2 cores)
    python -m bench.deliver --quick    # smoke run (under a minute)

Every phase talks to a fresh reference court registry (``python -m gateway sandbox registry``,
its own SQLite file) on loopback:

1. **preload**: ``--messages`` messages accepted through the real intake (``Intake.submit``)
   into a fresh SQLite file: the initial procedures of the fixtures in turn, each under a fresh
   MessageId and a numéro de procédure of its own, so that per-procedure order does not chain
   the deliveries together;
2. **registry alone**: the same SOAP requests, serialized beforehand, sent by a client that
   costs almost nothing (``bench/direct.py raw``): what the registry itself can take;
3. **bound**: the gateway's zeep client (``ZeepCourtRegistry``) calling the registry directly,
   ``--concurrency`` calls in flight, same cases, no database (``bench/direct.py zeep``);
4. **worker**: ``python -m gateway worker`` on a copy of the preloaded file, ``--concurrency``
   deliveries in flight: deliveries/s from its first claim to its last registration (event
   times in the database). Every case must be registered once, and only once, at the registry.
   Bound and worker run in turn ``--rounds`` times; the best run of each counts;
5. **latency**: ``python -m gateway serve`` with its worker, receiving ``--rate`` messages/s over
   HTTP for ``--duration`` s (open loop, ``bench/load.py``), each under a procedure of its own;
   per message, the time from its ``accepted`` event to its ``registered`` event.

Results: a table, ``bench/results/deliver-*.json`` and PASS/FAIL against the targets (exit 1
on a missed target only with ``--strict``; exit 2 when a delivery failed, a case was not
registered exactly once or a message was refused, since the figures then mean nothing).
"""

from __future__ import annotations

import argparse
import json
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
from sqlalchemy import func, select

from bench.delivery_report import render, verdicts
from bench.load import _machine_cpu, _process_cpu
from bench.messages import PROJECT_ROOT, typical_template
from bench.outbox import (
    attempts_summary,
    event_times,
    export_tasks,
    fresh_outbox,
    preload,
    wait_registered,
)
from bench.report import finish, work_folder
from bench.servers import ServerProcess, registry_spec, saisine_spec, worker_spec
from bench.stats import summarize
from gateway.store.engine import make_engine
from gateway.store.tables import messages

TARGETS = {"deliveries_per_s_min": 300.0, "bound_ratio_min": 0.7, "p99_ms_max": 1000.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000, help="cases delivered by worker and bound")
    parser.add_argument("--concurrency", type=int, default=8, help="deliveries (calls) in flight")
    parser.add_argument(
        "--rounds", type=int, default=2, help="bound and worker runs, in turn; the best counts"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="latency phase: messages per second")
    parser.add_argument("--duration", type=float, default=20.0, help="latency phase: seconds")
    parser.add_argument("--warmup", type=int, default=100, help="latency phase: messages before measuring")
    parser.add_argument("--skip-latency", action="store_true", help="skip the latency phase")
    parser.add_argument("--skip-throughput", action="store_true", help="skip all but the latency phase")
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (databases, logs)")
    parser.add_argument("--output", type=Path, help="results file (default bench/results/deliver-*.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.warmup, args.duration = min(args.messages, 400), min(args.warmup, 30), 5.0
        args.rounds = 1
    return args


def log(message: str) -> None:
    print(f"[deliver] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ registry side


def registry_stats(registry: ServerProcess) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(registry.url + "/api/stats", timeout=10).json()
    return data


def registry_check(registry: ServerProcess, expected: int) -> list[str]:
    """Problems if the registry did not register each case exactly once."""
    operations = registry_stats(registry)["operations"]
    outcomes = operations.get("RegisterAffaire", {})
    with sqlite3.connect(registry.db_path) as conn:
        stored, keys = conn.execute(
            "SELECT count(*), count(DISTINCT idempotency_key) FROM affaires"
        ).fetchone()
    problems = []
    if outcomes != {"registered": expected}:
        problems.append(f"registry answered {outcomes}, expected {expected} registered")
    if stored != expected or keys != expected:
        problems.append(f"registry stored {stored} affaires under {keys} keys, expected {expected}")
    return problems


def run_direct(registry: ServerProcess, cases_file: Path, client: str, concurrency: int) -> dict[str, Any]:
    """``bench/direct.py`` in its own process; its JSON report and the registry's check."""
    argv = [sys.executable, "-m", "bench.direct", "--url", registry.url + "/soap/registry"]
    argv += ["--cases", str(cases_file), "--client", client, "--concurrency", str(concurrency)]
    argv += ["--server-pid", str(registry.pid)]
    done = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.direct {client} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    result["problems"] = registry_check(registry, result["sent"])
    return result


# ------------------------------------------------------------------ worker


def wait_for_log(server: ServerProcess, event: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while f'"event": "{event}"' not in server.log_path.read_text(errors="replace"):
        if time.monotonic() > deadline or (server.proc and server.proc.poll() is not None):
            raise RuntimeError(f"{server.spec.name}: no {event} in its log: {server.log_tail()}")
        time.sleep(0.01)


def measure_worker(template: Path, workdir: Path, tag: str, count: int, concurrency: int) -> dict[str, Any]:
    """A worker process delivering a copy of the preloaded outbox to a fresh registry."""
    database_url = fresh_outbox(template, workdir / f"outbox{tag}.db")
    engine = make_engine(database_url)
    with ServerProcess(registry_spec(), workdir, tag=f"-worker{tag}") as registry:
        spec = worker_spec(database_url, registry.url + "/soap/registry", concurrency)
        with ServerProcess(spec, workdir, tag=tag) as worker:
            wait_for_log(worker, "worker_started")
            cpu = {"worker": _process_cpu(worker.pid), "registry": _process_cpu(registry.pid)}
            machine, started = _machine_cpu(), time.perf_counter()
            counts = wait_registered(engine, count, timeout=max(60.0, count / 20))
            elapsed = time.perf_counter() - started
            worker_cpu = _process_cpu(worker.pid) - cpu["worker"]
            registry_cpu = _process_cpu(registry.pid) - cpu["registry"]
            elsewhere = max(_machine_cpu() - machine - worker_cpu - registry_cpu, 0.0)
        problems = registry_check(registry, count)
    if counts.get("registered", 0) != count:
        problems.append(f"outbox after the run: {counts}, expected {count} registered")
    first = min(event_times(engine, "delivering").values())
    last = max(event_times(engine, "registered").values())
    window = (last - first).total_seconds()
    attempts = attempts_summary(engine)
    engine.dispose()
    if set(attempts["outcomes"]) != {"registered"}:
        problems.append(f"attempts other than registered: {attempts['outcomes']}")
    return {
        "sent": count,
        "concurrency": concurrency,
        "elapsed_s": round(window, 3),
        "per_s": round(count / window, 1),
        "worker_cpu_ms_per_delivery": round(worker_cpu * 1000 / count, 3),
        "worker_cpu_share": round(worker_cpu / elapsed, 3),
        "registry_cpu_ms_per_call": round(registry_cpu * 1000 / count, 3),
        "registry_cpu_share": round(registry_cpu / elapsed, 3),
        "elsewhere_cpu_share": round(elsewhere / elapsed, 3),
        "outbox": counts,
        **attempts,
        "problems": problems,
    }


# ------------------------------------------------------------------ latency


def run_client(server: ServerProcess, template: Path, mode: str, first: int, **options: Any) -> Any:
    """One load run over HTTP (bench/load.py), each message under a procedure of its own."""
    return server.load(template, mode, first_procedure=first, **options)


def measure_latency(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The gateway with its worker at a steady rate: acceptance to registered, per message."""
    template = workdir / "typical.xml"
    template.write_bytes(typical_template().with_id())
    with ServerProcess(registry_spec(), workdir, tag="-latency") as registry:
        spec = saisine_spec(worker=True)
        spec.env["SAISINE_REGISTRY_URL"] = registry.url + "/soap/registry"
        spec.env["SAISINE_WORKER_CONCURRENCY"] = str(args.concurrency)
        with ServerProcess(spec, workdir, tag="-latency") as server:
            engine = make_engine(f"sqlite:///{server.db_path}")
            warm = run_client(server, template, "closed", 1, requests=args.warmup, concurrency=4)
            wait_registered(engine, args.warmup, timeout=60)
            with engine.connect() as conn:
                warm_pk = int(conn.execute(select(func.max(messages.c.id))).scalar() or 0)
            log(f"latency: {args.rate:.0f} messages/s for {args.duration:.0f} s")
            load = run_client(
                server,
                template,
                "open",
                1 + args.warmup,
                rate=args.rate,
                duration=args.duration,
                concurrency=8,
                server_pid=server.pid,
            )
            expected = args.warmup + load["statuses"].get("202", 0)
            counts = wait_registered(engine, expected, timeout=60)
        problems = [] if counts.get("registered", 0) == expected else [f"outbox: {counts}, {expected} sent"]
    accepted = event_times(engine, "accepted", warm_pk)
    registered = event_times(engine, "registered", warm_pk)
    engine.dispose()
    delays = [(registered[pk] - at).total_seconds() * 1000 for pk, at in accepted.items() if pk in registered]
    if warm["failures"] or load["failures"]:
        problems.append(f"intake answered {warm['statuses']} then {load['statuses']}")
    return {
        "rate": args.rate,
        "duration_s": args.duration,
        "measured": len(accepted),
        "registered": len(delays),
        "accepted_to_registered_ms": summarize(delays),
        "intake": {k: load[k] for k in ("messages_per_s", "latency_ms", "server_cpu_share", "statuses")},
        "elsewhere_cpu_share": load["elsewhere_cpu_share"],
        "problems": problems,
    }


# ------------------------------------------------------------------ run


def environment() -> dict[str, Any]:
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    import zeep

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "zeep": zeep.__version__,
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def measure_throughput(workdir: Path, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Preload the outbox; the registry alone; then bound and worker in turn, ``--rounds`` times."""
    template = workdir / "outbox-template.db"
    log(f"preloading {args.messages} accepted messages")
    preloaded = preload(f"sqlite:///{template}", args.messages)
    engine = make_engine(f"sqlite:///{template}")
    cases_file = workdir / "cases.json"
    export_tasks(engine, cases_file)
    engine.dispose()
    log(f"registry alone: raw client, {args.concurrency} in flight")
    with ServerProcess(registry_spec(), workdir, tag="-alone") as registry:
        phases: dict[str, Any] = {"registry": run_direct(registry, cases_file, "raw", args.concurrency)}
    rounds: dict[str, list[dict[str, Any]]] = {"bound": [], "worker": []}
    for n in range(1, args.rounds + 1):
        log(f"round {n}: bound (zeep client alone), then worker, {args.concurrency} in flight")
        with ServerProcess(registry_spec(), workdir, tag=f"-bound{n}") as registry:
            rounds["bound"].append(run_direct(registry, cases_file, "zeep", args.concurrency))
        rounds["worker"].append(measure_worker(template, workdir, str(n), args.messages, args.concurrency))
    for name, runs in rounds.items():
        best = max(runs, key=lambda run: float(run["per_s"]))
        problems = [problem for run in runs for problem in run["problems"]]
        phases[name] = {**best, "rounds_per_s": [run["per_s"] for run in runs], "problems": problems}
    return preloaded, phases


def run(args: argparse.Namespace) -> dict[str, Any]:
    with work_folder("saisine-bench-deliver-", args.keep) as workdir:
        results: dict[str, Any] = {"environment": environment(), "targets": TARGETS}
        results["settings"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        phases: dict[str, Any] = {}
        if not args.skip_throughput:
            results["cases"], throughput = measure_throughput(workdir, args)
            phases.update(throughput)
        if not args.skip_latency:
            phases["latency"] = measure_latency(workdir, args)
        results["phases"] = phases
        results["verdicts"] = verdicts(results)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish("deliver", args, run(args), render)


if __name__ == "__main__":
    sys.exit(main())

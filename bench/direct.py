"""Calls to the court registry with no gateway around them, run as their own process.

Two clients, both on the cases the delivery worker delivers (a JSON file written by
``bench/deliver.py``), both printing one JSON document on stdout:

- ``zeep`` (the bound): the gateway's own registry client, :class:`ZeepCourtRegistry`, called
  directly from ``--concurrency`` threads, with no database: what any delivery must do at
  least. Its clients are built lazily, one per thread, as the worker's are.
- ``raw`` (the registry's capacity): the same SOAP requests, serialized with zeep before the
  clock starts and sent over ``--concurrency`` keep-alive connections by the ingest benchmark's
  asyncio client (``bench/load.py``). It costs the client almost nothing, so its rate is what
  the registry can take: if the bound came close to it, the registry would be the bottleneck.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.load import _cpu_seconds, _machine_cpu, _process_cpu, _run_loop, closed_loop
from bench.stats import summarize
from gateway.ports import DeliveryTask
from gateway.settings import Settings

SOAP_ACTIONS = {
    "initiale": ("RegisterAffaire", "urn:saisine:court:registry:v1#RegisterAffaire"),
    "complement": ("AddComplement", "urn:saisine:court:registry:v1#AddComplement"),
}


def load_tasks(path: Path) -> list[DeliveryTask]:
    """The cases as the worker's claim would hand them over."""
    tasks = []
    for item in json.loads(path.read_text()):
        item["created_at"] = datetime.fromisoformat(item["created_at"])
        tasks.append(DeliveryTask(**item))
    return tasks


def run_zeep(url: str, tasks: list[DeliveryTask], concurrency: int) -> dict[str, Any]:
    """Every task through ``ZeepCourtRegistry.register`` from ``concurrency`` threads."""
    from gateway.registry_client import ZeepCourtRegistry

    settings = Settings()
    registry = ZeepCourtRegistry(
        settings.registry_wsdl, url, settings.registry_connect_timeout, settings.registry_read_timeout
    )
    outcomes: Counter[str] = Counter()
    errors: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def one(task: DeliveryTask) -> None:
        started = time.perf_counter()
        try:
            answer = registry.register(task)
            outcome = "repeat" if answer.repeat else "registered"
        except Exception as exc:
            outcome = type(exc).__name__
            with lock:
                errors.append(f"{outcome}: {exc}")
        elapsed = time.perf_counter() - started
        with lock:
            outcomes[outcome] += 1
            latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency, thread_name_prefix="direct") as pool:
        list(pool.map(one, tasks))
    elapsed = time.perf_counter() - started
    failures = sum(n for outcome, n in outcomes.items() if outcome != "registered")
    return {
        "elapsed_s": elapsed,
        "outcomes": dict(outcomes),
        "failures": failures,
        "errors": errors[:5],
        "latency_ms": summarize([x * 1000 for x in latencies]),
    }


def soap_requests(url: str, tasks: list[DeliveryTask]) -> list[bytes]:
    """The HTTP requests ``ZeepCourtRegistry`` sends for ``tasks``, built with zeep beforehand."""
    import zeep
    from lxml import etree

    from gateway.court_xml import affaire_to_xml
    from gateway.model import Affaire
    from gateway.registry_client import BINDING

    settings = zeep.Settings(forbid_dtd=True, forbid_external=True, strict=True)
    client = zeep.Client(str(Settings().registry_wsdl), settings=settings)
    service = client.create_service(BINDING, url)
    parts = urlsplit(url)
    requests = []
    for task in tasks:
        operation, action = SOAP_ACTIONS[task.kind]
        affaire = Affaire.model_validate(task.affaire)
        if task.kind == "complement":
            values = {"numeroParquet": task.numero_parquet, "_value_1": affaire_to_xml(affaire, "Complement")}
        else:
            values = {"revision": task.revision, "_value_1": affaire_to_xml(affaire)}
        envelope = client.create_message(service, operation, idempotencyKey=task.message_id, **values)
        body = etree.tostring(envelope, encoding="UTF-8", xml_declaration=True)
        head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f'Content-Type: text/xml; charset=utf-8\r\nSOAPAction: "{action}"\r\n'
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


def run_raw(url: str, requests: list[bytes], concurrency: int) -> dict[str, Any]:
    """The prebuilt requests over keep-alive connections, closed loop."""
    parts = urlsplit(url)
    tally, elapsed = _run_loop(
        closed_loop(parts.hostname or "127.0.0.1", parts.port or 80, requests, concurrency)
    )
    failures = sum(n for status, n in tally.statuses.items() if status != "200")
    return {
        "elapsed_s": elapsed,
        "outcomes": {f"HTTP {status}": n for status, n in tally.statuses.items()},
        "failures": failures,
        "errors": tally.errors[:5],
        "latency_ms": summarize([x * 1000 for x in tally.latencies_s]),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    tasks = load_tasks(args.cases)
    requests = soap_requests(args.url, tasks) if args.client == "raw" else []  # before the counters
    cpu_before, server_before, machine_before = _cpu_seconds(), _process_cpu(args.server_pid), _machine_cpu()
    if args.client == "zeep":
        result = run_zeep(args.url, tasks, args.concurrency)
    else:
        result = run_raw(args.url, requests, args.concurrency)
    client_cpu = _cpu_seconds() - cpu_before
    server_cpu = _process_cpu(args.server_pid) - server_before
    elsewhere = max(_machine_cpu() - machine_before - server_cpu - client_cpu, 0.0)
    elapsed = result.pop("elapsed_s")
    count = len(tasks)
    return {
        "client": args.client,
        "sent": count,
        "concurrency": args.concurrency,
        "elapsed_s": round(elapsed, 3),
        "per_s": round(count / elapsed, 1),
        "client_cpu_ms_per_call": round(client_cpu * 1000 / count, 3),
        "client_cpu_share": round(client_cpu / elapsed, 3),
        "registry_cpu_ms_per_call": round(server_cpu * 1000 / count, 3),
        "registry_cpu_share": round(server_cpu / elapsed, 3),
        "elsewhere_cpu_share": round(elsewhere / elapsed, 3),
        **result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--url", required=True, help="the registry's SOAP address")
    parser.add_argument("--cases", type=Path, required=True, help="JSON file of delivery tasks")
    parser.add_argument("--client", choices=("zeep", "raw"), required=True)
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight")
    parser.add_argument("--server-pid", type=int, help="registry process whose CPU time to report")
    args = parser.parse_args()
    json.dump(run(args), sys.stdout)


if __name__ == "__main__":
    main()

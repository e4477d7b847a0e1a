"""``saisine demo``: the main job end to end on the embedded default (SQLite).

Starts the reference court registry and a gateway (with its delivery worker) in
child processes, each on a fresh SQLite file; sends the sample procedures through
the gendarmerie SOAP service with zeep, as a unit's software would; follows each
receipt until the court registry has registered the case and given its numéro
parquet; shows one procedure rejected with its errors; then says where to look
and stops both servers.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import requests
import zeep
import zeep.exceptions
from lxml import etree
from rich.console import Console
from rich.table import Table
from zeep.transports import Transport

from gateway.paths import PROJECT_ROOT

SAMPLES = PROJECT_ROOT / "tests" / "fixtures" / "gendarmerie" / "v1"
REJECTED_SAMPLE = SAMPLES / "invalid" / "natinf-unknown.xml"
INTAKE_NS = "urn:saisine:gendarmerie:intake:v1"
FINAL = {"registered", "dead_letter", "held", "rejected", "failed"}


@dataclass
class Sent:
    path: Path
    receipt_id: str
    status: str
    numero_parquet: str | None = None
    seconds: float | None = None


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603


def _wait_ready(url: str, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the {name} stopped during start-up: see {log}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the {name} did not become ready within 60 s: see {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _client(base: str, token: str) -> Any:
    """A zeep client of the gendarmerie intake service, built from the WSDL the gateway serves,
    sending the unit's token with every call."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    settings = zeep.Settings(forbid_dtd=True, forbid_entities=True, strict=True)
    return zeep.Client(
        f"{base}/soap/gendarmerie?wsdl", settings=settings, transport=Transport(session=session)
    )


def sample_units(samples: Path = SAMPLES) -> tuple[str, ...]:
    """The unit codes of the gendarmerie samples: what the demo's sender may send for."""
    found: set[str] = set()
    for path in samples.glob("*/*.xml"):
        text = path.read_bytes().decode("utf-8", errors="replace")
        found.update(re.findall(r"<Unit>\s*<Code>([^<]+)</Code>", text))
    return tuple(sorted(found))


@dataclass
class Credentials:
    sender_token: str
    operator: str
    password: str
    operator_token: str


def _provision(python: list[str], env: dict[str, str], database_url: str) -> Credentials:
    """What a deployment's administrator does first: a sender credential for the sample units,
    and an operator (integrator) with a console password."""
    units = [x for unit in sample_units() for x in ("--unit", unit)]
    base = ["--database-url", database_url, "--json", "--by", "demo"]
    sender = [*python, "senders", "add", "--agency", "gendarmerie", "--name", "demo units", *units, *base]
    made = subprocess.run(sender, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    sender_token = json.loads(made.stdout.strip().splitlines()[-1])["token"]
    password = secrets.token_urlsafe(12)
    operator = [*python, "operators", "add", "demo", "--role", "integrator", "--password", *base]
    made = subprocess.run(  # noqa: S603
        operator, env={**env, "SAISINE_NEW_PASSWORD": password}, capture_output=True, text=True, check=True
    )
    operator_token = json.loads(made.stdout.strip().splitlines()[-1])["token"]
    return Credentials(sender_token, "demo", password, operator_token)


def run_demo(
    port: int = 8080, workdir: Path = Path(".demo"), registry_port: int = 8090, keep: bool = False
) -> int:
    """Run the demo; with ``keep``, leave both servers up until Ctrl-C, to look around."""
    console = Console(width=None if sys.stdout.isatty() else 120)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    base = f"http://127.0.0.1:{port}"
    registry = f"http://127.0.0.1:{registry_port}"
    python = [sys.executable, "-m", "gateway"]
    env = dict(os.environ, SAISINE_LOG_JSON="true")
    console.rule("[bold]Saisine demo")
    console.print(f"Reference court registry on {registry} (its own SQLite file {workdir / 'registry.db'})")
    registry_log = workdir / "registry.log"
    registry_process = _start(
        [
            *python,
            "sandbox",
            "registry",
            "--port",
            str(registry_port),
            "--database",
            str(workdir / "registry.db"),
        ],
        env,
        registry_log,
    )
    gateway_process: subprocess.Popen[bytes] | None = None
    try:
        _wait_ready(f"{registry}/soap/registry?wsdl", registry_process, "registry", registry_log)
        console.print(f"Gateway on {base} (SQLite file {workdir / 'saisine.db'}), delivering to the registry")
        database_url = f"sqlite:///{workdir / 'saisine.db'}"
        gateway_env = dict(
            env, SAISINE_DATABASE_URL=database_url, SAISINE_REGISTRY_URL=f"{registry}/soap/registry"
        )
        # authentication as deployed (tokens for senders, a login for operators), whatever the caller's env
        gateway_env.update(SAISINE_SENDER_AUTH="token", SAISINE_OPERATOR_AUTH="true")
        credentials = _provision(python, gateway_env, database_url)
        console.print(
            f"Credentials made with `saisine senders add` and `saisine operators add`:\n"
            f"  sender token for the sample units  {credentials.sender_token}\n"
            f"  console login                      {credentials.operator} / {credentials.password}"
        )
        gateway_log = workdir / "gateway.log"
        gateway_process = _start([*python, "serve", "--port", str(port)], gateway_env, gateway_log)
        _wait_ready(f"{base}/readyz", gateway_process, "gateway", gateway_log)
        code = _exchange(console, base, registry, keep, credentials)
        if keep:
            console.print("\nBoth servers stay up; Ctrl-C stops them.")
            try:
                while gateway_process.poll() is None and registry_process.poll() is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
        return code
    finally:
        if gateway_process is not None:
            _stop(gateway_process)
        _stop(registry_process)
        console.print(
            f"Both stopped. Their logs (JSON, no personal data): {workdir}/gateway.log, registry.log"
        )


def _exchange(console: Console, base: str, registry: str, keep: bool, credentials: Credentials) -> int:
    client = _client(base, credentials.sender_token)
    samples = sorted((SAMPLES / "valid").glob("*.xml"))  # initial procedures sort before their compléments
    console.print(
        f"\nSending {len(samples)} sample procedures through SOAP (zeep), as a gendarmerie unit would"
    )
    sent: list[Sent] = []
    started = time.monotonic()
    for path in samples:
        answer = client.service.SubmitProcedure(_value_1=etree.fromstring(path.read_bytes()))
        sent.append(Sent(path, str(answer.receiptId), str(answer.status)))

    rejected_ok = _show_rejection(console, client)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(s.status not in FINAL for s in sent):
        for item in sent:
            if item.status in FINAL:
                continue
            status = client.service.GetReceiptStatus(receiptId=item.receipt_id)
            item.status = str(status.status)
            if item.status == "registered":
                item.numero_parquet = str(status.numeroParquet)
                item.seconds = time.monotonic() - started
        time.sleep(0.2)

    table = Table(title="Receipts, as GetReceiptStatus gives them")
    for column in ("file", "kind", "status", "numéro parquet", "receipt"):
        table.add_column(column)
    for item in sent:
        kind = "complément" if b"<MessageType>COMPLEMENT" in item.path.read_bytes() else "initiale"
        colour = "green" if item.status == "registered" else "red"
        table.add_row(
            item.path.name,
            kind,
            f"[{colour}]{item.status}[/]",
            item.numero_parquet or "-",
            item.receipt_id,
        )
    console.print(table)
    registered = sum(s.status == "registered" for s in sent)
    slowest = max((s.seconds or 0.0) for s in sent)
    console.print(f"{registered}/{len(sent)} registered by the court registry, all within {slowest:.1f} s")

    example = sent[0].receipt_id
    console.print("\nWhere to look while a gateway runs:")
    console.print(f"  the clerk's view  {registry}/cases   (cases received by the reference registry)")
    console.print(
        f"  the console       {base}/console   (log in as {credentials.operator} / {credentials.password})"
    )
    console.print(f"  a receipt         {base}/api/v1/receipts/{example}   (with the sender token)")
    console.print(f"  SOAP WSDL         {base}/soap/gendarmerie?wsdl   (GetReceiptStatus)")
    console.print(f"  API docs          {base}/docs    (OpenAPI: {base}/openapi.json)")
    console.print(f"  health, metrics   {base}/readyz  {base}/metrics")
    console.print(
        "  (the demo stops both servers now; `saisine serve` and `saisine sandbox registry` keep them up)"
    )
    ok = registered == len(sent) and rejected_ok
    console.print(
        "[green]Demo finished: every sample registered with its numéro parquet, the invalid one rejected."
        if ok
        else "[red]Demo finished with unexpected answers (see above)."
    )
    return 0 if ok else 1


def _show_rejection(console: Console, client: Any) -> bool:
    """Send a procedure citing an unknown NATINF code: a SOAP Client fault listing every error."""
    procedure = etree.fromstring(REJECTED_SAMPLE.read_bytes())
    try:
        client.service.SubmitProcedure(_value_1=procedure)
    except zeep.exceptions.Fault as fault:
        errors = fault.detail.findall(f".//{{{INTAKE_NS}}}error") if fault.detail is not None else []
        console.print(f"\n[bold]{REJECTED_SAMPLE.name}[/]: SOAP fault {fault.code}, {fault.message}")
        for error in errors:
            fields = {etree.QName(child).localname: child.text for child in error}
            console.print(f"  {fields.get('code')}  line {fields.get('line')}  {fields.get('path')}")
            console.print(f"    {fields.get('message')}")
        return str(fault.code).endswith("Client") and bool(errors)
    console.print(f"[red]{REJECTED_SAMPLE.name} was accepted; it should have been rejected")
    return False

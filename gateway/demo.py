"""``saisine demo``: the main job end to end on the embedded default (SQLite).

Starts a gateway in a child process on a fresh SQLite file, sends the sample
procedures as a gendarmerie unit's software would (REST, and SOAP through zeep),
shows each receipt, one rejection with its errors, then stops the gateway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
from lxml import etree
from rich.console import Console
from rich.table import Table

from gateway.paths import PROJECT_ROOT

SAMPLES = PROJECT_ROOT / "tests" / "fixtures" / "gendarmerie" / "v1"
REJECTED_SAMPLE = SAMPLES / "invalid" / "natinf-unknown.xml"


def _start_gateway(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        SAISINE_DATABASE_URL=f"sqlite:///{workdir / 'saisine.db'}",
        SAISINE_LOG_JSON="true",
    )
    log = (workdir / "gateway.log").open("wb")
    command = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def _wait_ready(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the gateway stopped during start-up: see .demo/gateway.log")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the gateway did not become ready within 60 s")


def _soap_submit(base: str, path: Path) -> tuple[str, str]:
    """Send one procedure through the SOAP service with zeep, as a unit's software would."""
    import zeep

    settings = zeep.Settings(forbid_dtd=True, forbid_external=False, strict=True)
    client = zeep.Client(f"{base}/soap/gendarmerie?wsdl", settings=settings)
    procedure = etree.fromstring(path.read_bytes())
    answer = client.service.SubmitProcedure(_value_1=procedure)
    return str(answer.receiptId), str(answer.status)


def run_demo(port: int = 8080, workdir: Path = Path(".demo")) -> int:
    console = Console()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    base = f"http://127.0.0.1:{port}"
    console.rule("[bold]Saisine demo")
    console.print(f"Starting the gateway on {base} (SQLite file {workdir / 'saisine.db'})")
    process = _start_gateway(port, workdir)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            _wait_ready(client, process)
            return _exchange(console, client, base)
    finally:
        process.terminate()
        process.wait(timeout=30)
        console.print(f"Gateway stopped. Its log (JSON, no personal data): {workdir / 'gateway.log'}")


def _exchange(console: Console, client: httpx.Client, base: str) -> int:
    table = Table(title="Sample procedures sent by a gendarmerie unit")
    for column in ("file", "transport", "HTTP", "status", "receipt"):
        table.add_column(column)
    samples = sorted((SAMPLES / "valid").glob("*.xml"))
    failures = 0
    for path in samples[1:]:
        response = client.post(
            "/api/v1/gendarmerie/procedures",
            content=path.read_bytes(),
            headers={"Content-Type": "application/xml"},
        )
        body = response.json()
        failures += response.status_code != 202
        table.add_row(
            path.name,
            "REST",
            str(response.status_code),
            body["status"],
            body.get("receipt_id", "-"),
        )
    receipt_id, status = _soap_submit(base, samples[0])
    failures += status != "accepted"
    table.add_row(samples[0].name, "SOAP (zeep)", "200", status, receipt_id)
    console.print(table)

    rejected = client.post(
        "/api/v1/gendarmerie/procedures",
        content=REJECTED_SAMPLE.read_bytes(),
        headers={"Content-Type": "application/xml"},
    )
    console.print(
        f"\n[bold]{REJECTED_SAMPLE.name}[/]: HTTP {rejected.status_code}, {rejected.json()['status']}"
    )
    for error in rejected.json()["errors"]:
        console.print(f"  {error['code']}  line {error['line']}  {error['path']}\n    {error['message']}")

    receipt = client.get(f"/api/v1/receipts/{receipt_id}").json()
    console.print(
        f"\nReceipt {receipt_id}: status {receipt['status']}, history "
        + " -> ".join(event["kind"] for event in receipt["history"])
    )
    console.print("\nWhere to look while a gateway runs:")
    console.print(f"  receipts      {base}/api/v1/receipts/<receipt_id>")
    console.print(f"  API docs      {base}/docs    (OpenAPI: {base}/openapi.json)")
    console.print(f"  SOAP WSDL     {base}/soap/gendarmerie?wsdl")
    console.print(f"  health        {base}/healthz  {base}/readyz")
    ok = failures == 0 and rejected.status_code == 422
    console.print(
        "[green]Demo finished: every sample accepted, the invalid one rejected with its errors."
        if ok
        else "[red]Demo finished with unexpected answers (see above)."
    )
    return 0 if ok else 1

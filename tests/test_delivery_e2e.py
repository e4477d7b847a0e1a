"""Delivery end to end: the gateway's worker against the real reference registry over HTTP on
loopback (zeep on both sides, nothing faked), on SQLite and PostgreSQL: the registry down then
back, refusals, a worker killed mid-delivery, compléments and their order, graceful shutdown,
and what the sender reads on the receipt."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import structlog
import zeep
from sqlalchemy import select, update

from gateway.composition import Container, build
from gateway.delivery.breaker import CLOSED, HALF_OPEN, OPEN
from gateway.delivery.worker import DeliveryWorker
from gateway.paths import PROJECT_ROOT
from gateway.ports import Receipt
from gateway.settings import Settings
from gateway.store.tables import deliveries, messages
from sandbox.registry.testing import RegistryServer
from tests.conftest import GENDARMERIE_V1, LiveServer, with_new_id

pytestmark = pytest.mark.integration

T = TypeVar("T")

# Initial procedures whose tribunal the reference registry serves.
INITIALS = [
    "02-contraventions-routieres-bastia.xml",
    "04-aeronef-personne-morale-ajaccio.xml",
    "05-blessures-aeronautique-reunion.xml",
    "06-auteur-inconnu-aubagne.xml",
    "07-mineur-garde-a-vue.xml",
    "08-commission-rogatoire-plusieurs-mis-en-cause.xml",
    "14-porto-vecchio-plusieurs-mis-en-cause.xml",
    "15-controle-judiciaire-lyon.xml",
]
UNKNOWN_TRIBUNAL = "TJ99999"  # well-formed for the gateway, unknown to the registry
_procedure_numbers = itertools.count(1)


def initial(n: int = 0, tribunal: str | None = None) -> bytes:
    """An initial procedure (a sample, in turn) under a new message id and its own procedure number."""
    text = with_new_id((GENDARMERIE_V1 / "valid" / INITIALS[n % len(INITIALS)]).read_bytes()).decode()
    number = f"<ProcedureNumber>{next(_procedure_numbers):05d}/"
    text = re.sub(r"<ProcedureNumber>\d{5}/", number, text, count=1)
    if tribunal:
        text = re.sub(r"(<Tribunal>\s*<Code>)[^<]+", rf"\g<1>{tribunal}", text, count=1)
    return text.encode()


def complement_of(data: bytes) -> bytes:
    """A complément of the same procedure (same unit and numéro), under a new message id."""
    return with_new_id(data.replace(b"PROCEDURE_INITIALE", b"COMPLEMENT", 1))


# ----- wiring ----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'saisine.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path / "registry") as server:
        yield server


def fast_settings(database_url: str, registry: RegistryServer, **overrides: Any) -> Settings:
    """Retry and breaker timings in tenths of a second, so an outage plays out in a few seconds."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "registry_url": registry.url,
        "registry_connect_timeout": 2.0,
        "registry_read_timeout": 10.0,
        "worker_poll_seconds": 0.05,
        "retry_initial_seconds": 0.05,
        "retry_max_seconds": 0.3,
        "retry_max_attempts": 100,
        "breaker_threshold": 3,
        "breaker_cooldown_seconds": 0.5,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def gateway(database_url: str, registry: RegistryServer) -> Iterator[Callable[..., Container]]:
    """``gateway(**settings)``: a container on this test's database, delivering to ``registry``."""
    made: list[Container] = []

    def make(**overrides: Any) -> Container:
        made.append(build(fast_settings(database_url, registry, **overrides)))
        return made[-1]

    yield make
    for container in made:
        container.close()


@contextmanager
def running(worker: DeliveryWorker) -> Iterator[threading.Thread]:
    """The worker's loop in a thread, as ``saisine serve`` runs it; stopped and joined at the end."""
    thread = threading.Thread(target=worker.run, name="delivery-worker", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        worker.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker did not stop"


def eventually(check: Callable[[], T], what: str, timeout: float = 20.0) -> T:
    """Poll ``check`` until it returns something true; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(0.05)


def accept(container: Container, data: bytes) -> str:
    outcome = container.intake.submit("gendarmerie", data, "rest")
    assert outcome.http_status == 202, outcome.receipt.errors
    return outcome.receipt.receipt_id


def receipt(container: Container, receipt_id: str) -> Receipt:
    found = container.store.receipt(receipt_id)
    assert found is not None
    return found


def statuses(container: Container, receipt_ids: list[str]) -> list[str]:
    return [receipt(container, r).status for r in receipt_ids]


def all_registered(container: Container, receipt_ids: list[str]) -> bool:
    return statuses(container, receipt_ids) == ["registered"] * len(receipt_ids)


def last_event(found: Receipt, kind: str) -> dict[str, Any]:
    return next(e for e in reversed(found.history) if e.kind == kind).detail


def leases(container: Container, owner_like: str = "%") -> list[int]:
    """Deliveries claimed and not finished (lease owner set)."""
    query = select(deliveries.c.id).where(deliveries.c.lease_owner.like(owner_like))
    with container.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def calls(registry: RegistryServer, operation: str = "RegisterAffaire") -> dict[str, int]:
    """The registry's answers to ``operation`` by outcome (registered, repeat, fault_client...)."""
    counts: dict[str, int] = registry.stats()["operations"].get(operation, {})
    return counts


def assert_registered_once(container: Container, registry: RegistryServer, initial_ids: list[str]) -> None:
    """The registry holds exactly one affaire per initial procedure, under its message id as
    idempotency key, and each receipt carries that affaire's numéro parquet."""
    cases = registry.cases()
    by_key = {case["idempotency_key"]: case for case in cases}
    receipts = [receipt(container, r) for r in initial_ids]
    assert len(cases) == len(by_key) == len(initial_ids), "one affaire per message, no duplicate"
    assert set(by_key) == {r.message_id for r in receipts}, "none lost, none extra"
    for found in receipts:
        assert found.status == "registered"
        assert found.numero_parquet == by_key[found.message_id]["numero_parquet"]


def redeliver(container: Container, receipt_id: str) -> None:
    """What a replay does to a dead letter (issue "Replay and the operator console")."""
    with container.engine.begin() as conn:
        pk = conn.execute(select(messages.c.id).where(messages.c.receipt_id == receipt_id)).scalar_one()
        conn.execute(
            update(deliveries).where(deliveries.c.message_pk == pk).values(status="pending", attempts=0)
        )


def circuit(http: httpx.Client) -> tuple[str, float]:
    """The breaker's state as ``/readyz`` details it, and as ``/metrics`` exports it."""
    state = http.get("/readyz").json()["checks"]["registry"]["circuit"]
    found = re.search(r"^saisine_circuit_state\{[^}]*\} (\S+)$", http.get("/metrics").text, re.M)
    assert found is not None
    return state, float(found.group(1))


# ----- the registry down, then back ------------------------------------------------------------


def test_registry_down_then_back_every_case_registered_once_and_breaker_closes(
    gateway: Callable[..., Container], registry: RegistryServer
) -> None:
    """503s, then connection refused, then back: each case registered once, the breaker opened and closed."""
    container = gateway()
    registry.set_fault("unavailable", retry_after_s=1)  # until cleared
    with (
        LiveServer(container) as live,
        httpx.Client(base_url=live.url, timeout=10) as http,
        structlog.testing.capture_logs() as logs,
    ):
        posted = [
            http.post(
                "/api/v1/gendarmerie/procedures",
                content=initial(n),
                headers={"Content-Type": "application/xml"},
            )
            for n in range(8)
        ]
        assert [p.status_code for p in posted] == [202] * 8
        ids = [p.json()["receipt_id"] for p in posted]
        with running(container.worker()):
            eventually(lambda: circuit(http) == (OPEN, 2.0), "the breaker is open (readyz and metrics)")
            registry.stop()  # down for good: connection refused
            eventually(
                lambda: _last_error_is(container, "connection failed"), "a probe met connection refused"
            )
            assert set(statuses(container, ids)) <= {"accepted", "delivering"}, "nothing given up"
            registry.start()
            registry.clear_fault()
            eventually(lambda: all_registered(container, ids), "every case is registered")
            eventually(lambda: circuit(http) == (CLOSED, 0.0), "the breaker is closed again")
    assert_registered_once(container, registry, ids)
    assert calls(registry) == {"registered": 8}, "no repeat, no refusal"
    changes = [e["state"] for e in logs if e["event"] == "circuit_state_changed"]
    assert OPEN in changes and HALF_OPEN in changes and changes[-1] == CLOSED
    # the breaker kept the sick registry from being hammered: the first batch, then single probes
    assert registry.stats()["injected"]["unavailable"] <= 8 + 4
    throttled = [
        e for r in ids for e in receipt(container, r).history if e.detail.get("reason") == "HTTP 503"
    ]
    assert throttled, "the 503s were recorded on the receipts"
    for event in throttled:
        waited = datetime.fromisoformat(event.detail["next_attempt_at"]) - event.at
        assert waited >= timedelta(seconds=1), "Retry-After is honoured"


def _last_error_is(container: Container, reason: str) -> bool:
    with container.engine.connect() as conn:
        return (
            conn.execute(select(deliveries.c.id).where(deliveries.c.last_error == reason)).first() is not None
        )


# ----- refusals --------------------------------------------------------------------------------


def test_client_fault_is_a_dead_letter_with_the_registry_reason_and_others_go_on(
    gateway: Callable[..., Container], registry: RegistryServer
) -> None:
    """An unknown tribunal: dead letter at once with UNKNOWN_TRIBUNAL; other procedures are registered."""
    container = gateway()
    refused = initial(tribunal=UNKNOWN_TRIBUNAL)
    refused_id = accept(container, refused)
    behind_id = accept(container, complement_of(refused))
    others = [initial(n) for n in range(1, 5)]
    other_ids = [accept(container, data) for data in others]
    other_complement_id = accept(container, complement_of(others[0]))
    with running(container.worker()):
        eventually(
            lambda: (
                statuses(container, [refused_id, behind_id, *other_ids, other_complement_id])
                == ["dead_letter", "held", *["registered"] * 5]
            ),
            "the refused case is a dead letter and everything else registered",
        )
    dead = last_event(receipt(container, refused_id), "dead_letter")
    assert dead["code"] == "UNKNOWN_TRIBUNAL" and UNKNOWN_TRIBUNAL in dead["reason"]
    assert dead["attempt"] == 1, "a refusal is not retried"
    assert receipt(container, refused_id).reason == ("UNKNOWN_TRIBUNAL", dead["reason"])
    assert (receipt(container, behind_id).reason or ("",))[0] == "PREDECESSOR_DEAD_LETTER"
    assert_registered_once(container, registry, other_ids)
    assert calls(registry) == {"registered": 4, "fault_client": 1}
    assert registry.stats()["fault_reasons"] == {"UNKNOWN_TRIBUNAL": 1}
    assert calls(registry, "AddComplement") == {"registered": 1}, "the held complément was not sent"
    assert container.breaker.state == CLOSED, "a refusal shows the registry is up"


# ----- compléments -----------------------------------------------------------------------------


def test_complement_arriving_first_waits_for_its_initial_and_goes_with_its_numero(
    gateway: Callable[..., Container], registry: RegistryServer
) -> None:
    """A complément is not sent before its initial procedure is registered, then goes on its affaire."""
    container = gateway()
    first = initial()
    complement_id = accept(container, complement_of(first))
    container.worker().run_until_idle()
    assert receipt(container, complement_id).status == "accepted"
    assert registry.stats()["operations"] == {}, "nothing sent without the initial's numéro parquet"

    registry.set_fault("unavailable", count=2, retry_after_s=0)  # the initial needs three attempts
    initial_id = accept(container, first)
    with running(container.worker()):
        eventually(lambda: all_registered(container, [initial_id, complement_id]), "both are registered")

    numero = receipt(container, initial_id).numero_parquet
    assert receipt(container, complement_id).numero_parquet == numero
    [case] = registry.cases()
    assert case["numero_parquet"] == numero and case["complements"] == 1
    assert calls(registry, "AddComplement") == {"registered": 1}, "sent once, once the numéro was known"
    registered_at = _event_at(receipt(container, initial_id), "registered")
    assert _event_at(receipt(container, complement_id), "delivering") >= registered_at


def _event_at(found: Receipt, kind: str) -> Any:
    return next(e.at for e in found.history if e.kind == kind)


def test_complement_behind_a_dead_letter_is_held_then_goes_on_after_replay(
    gateway: Callable[..., Container], registry: RegistryServer
) -> None:
    """Held (not failed, not sent) while its initial is a dead letter; registered by itself after a replay."""
    container = gateway(retry_max_attempts=2)
    registry.set_fault("server_fault", count=2)
    first = initial()
    initial_id = accept(container, first)
    complement_id = accept(container, complement_of(first))
    with running(container.worker()):
        eventually(
            lambda: statuses(container, [initial_id, complement_id]) == ["dead_letter", "held"],
            "the initial is a dead letter and its complément held",
        )
        assert last_event(receipt(container, initial_id), "dead_letter")["code"] == "RETRIES_EXHAUSTED"
        assert "AddComplement" not in registry.stats()["operations"]
        redeliver(container, initial_id)
        eventually(lambda: all_registered(container, [initial_id, complement_id]), "both are registered")
    [case] = registry.cases()
    assert case["numero_parquet"] == receipt(container, complement_id).numero_parquet
    assert case["complements"] == 1


def test_complement_accepted_after_its_initial_is_a_dead_letter_is_held(
    gateway: Callable[..., Container], registry: RegistryServer
) -> None:
    """The sender of a complément whose initial procedure is a dead letter is told it is held."""
    container = gateway()
    refused = initial(tribunal=UNKNOWN_TRIBUNAL)
    refused_id = accept(container, refused)
    container.worker().run_until_idle()
    assert receipt(container, refused_id).status == "dead_letter"
    complement_id = accept(container, complement_of(refused))
    container.worker().run_until_idle()
    assert receipt(container, complement_id).status == "held"


# ----- graceful shutdown -----------------------------------------------------------------------


def test_stop_lets_in_flight_calls_finish_and_leaves_nothing_claimed(
    gateway: Callable[..., Container], registry: RegistryServer
) -> None:
    """worker.stop() with slow calls in flight: they finish; nothing is left claimed or sent twice."""
    container = gateway(worker_concurrency=3)
    registry.set_fault("slow", delay_ms=800)
    ids = [accept(container, initial(n)) for n in range(6)]
    worker = container.worker()
    with running(worker):
        in_flight = eventually(
            lambda: leases(container) if len(leases(container)) == 3 else [], "3 in flight"
        )
        worker.stop()
    assert leases(container) == [], "nothing left claimed"
    with container.engine.connect() as conn:
        done = set(conn.execute(select(deliveries.c.id).where(deliveries.c.status == "registered")).scalars())
    assert done == set(in_flight), "the in-flight calls finished and nothing new was claimed"
    assert calls(registry) == {"registered": 3}

    registry.clear_fault()
    container.worker().run_until_idle()
    assert_registered_once(container, registry, ids)
    assert calls(registry) == {"registered": 6}, "nothing delivered twice"


# ----- a worker killed mid-delivery, two workers on PostgreSQL ---------------------------------


class Workers:
    """``saisine worker`` processes, their logs in files; whatever is still running is killed at exit."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> subprocess.Popen[bytes]:
        with self._log(name).open("wb") as log:
            self.started[name] = subprocess.Popen(
                [sys.executable, "-m", "gateway", "worker"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self.started[name]

    def wait_running(self, *names: str) -> None:
        """Until each has logged worker_started (its stop signal handlers are installed by then)."""
        for name in names:
            eventually(
                lambda name=name: (
                    b'"worker_started"' in self._log(name).read_bytes()
                    or self.started[name].poll() is not None
                ),
                f"worker {name} runs",
            )
            assert self.started[name].poll() is None, self.tails()

    def _log(self, name: str) -> Path:
        return self.logs / f"worker-{name}.log"

    def tails(self) -> str:
        return "\n".join(f"--- {name}\n{self._log(name).read_text()[-2000:]}" for name in self.started)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.started.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


@pytest.mark.postgres
def test_worker_killed_mid_delivery_every_case_registered_once(
    request: pytest.FixtureRequest, registry: RegistryServer, tmp_path: Path
) -> None:
    """Two workers, one SIGKILLed with calls in flight: its leases expire, every case is registered once."""
    url = str(request.getfixturevalue("postgres_url"))
    container = build(Settings(database_url=url, registry_url=registry.url))
    try:
        ids = [accept(container, initial(n)) for n in range(40)]
        registry.set_fault("slow", delay_ms=400)
        env = {
            **os.environ,
            "SAISINE_DATABASE_URL": url,
            "SAISINE_REGISTRY_URL": registry.url,
            "SAISINE_MIGRATE_ON_START": "false",
            "SAISINE_LOG_JSON": "true",
            "SAISINE_WORKER_CONCURRENCY": "4",
            "SAISINE_WORKER_LEASE_SECONDS": "2",
            "SAISINE_WORKER_POLL_SECONDS": "0.05",
            "SAISINE_RETRY_INITIAL_SECONDS": "0.1",
            "SAISINE_RETRY_MAX_SECONDS": "0.5",
        }
        with Workers(tmp_path, env) as workers:
            doomed = workers.start("a")
            workers.start("b")
            workers.wait_running("a", "b")
            owner = f"%:{doomed.pid}:%"
            # past the start (zeep clients built, calls flowing), the first worker's leases are
            # calls waiting on the slow registry
            eventually(lambda: calls(registry).get("registered", 0) >= 8, "deliveries are flowing")
            eventually(lambda: len(leases(container, owner)) >= 2, "the first worker has calls in flight")
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=10)
            orphans = leases(container, owner)
            assert orphans, "the killed worker left claimed deliveries behind"
            workers.start("a-restarted")
            workers.wait_running("a-restarted")
            try:
                eventually(lambda: all_registered(container, ids), "every case is registered", timeout=60)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{workers.tails()}") from None
            survivors = [workers.started["b"], workers.started["a-restarted"]]
            for process in survivors:
                process.send_signal(signal.SIGTERM)
            assert [p.wait(timeout=20) for p in survivors] == [0, 0], workers.tails()
        assert leases(container) == [], "the stopped workers left nothing claimed"
        assert_registered_once(container, registry, ids)
        answers = calls(registry)
        assert answers["registered"] == len(ids)
        # only the killed worker's calls can have been sent twice (those that had reached the
        # registry, which then answered the re-delivery with the same numéro): nothing else was
        assert set(answers) <= {"registered", "repeat"}
        assert answers.get("repeat", 0) <= len(orphans), (answers, orphans)
    finally:
        container.close()


# ----- the receipt -----------------------------------------------------------------------------


def test_receipt_shows_registered_with_numero_and_time_over_rest_and_soap(
    gateway: Callable[..., Container], registry: RegistryServer
) -> None:
    """GET /api/v1/receipts/{id} and SOAP GetReceiptStatus show registered, the numéro parquet and when."""
    container = gateway()
    with LiveServer(container) as live, httpx.Client(base_url=live.url, timeout=10) as http:
        posted = http.post(
            "/api/v1/gendarmerie/procedures", content=initial(), headers={"Content-Type": "application/xml"}
        )
        receipt_id = posted.json()["receipt_id"]
        container.worker().run_until_idle()
        [case] = registry.cases()
        numero = case["numero_parquet"]

        body = http.get(f"/api/v1/receipts/{receipt_id}").json()
        assert body["status"] == "registered" and body["numero_parquet"] == numero
        registered = [e for e in body["history"] if e["kind"] == "registered"]
        assert len(registered) == 1 and registered[0]["detail"]["numero_parquet"] == numero
        assert body.get("registered_at") is not None, "the receipt says when the court registered it"

        client = zeep.Client(f"{live.url}/soap/gendarmerie?wsdl")
        try:
            status = client.service.GetReceiptStatus(receiptId=receipt_id)
        finally:
            client.transport.session.close()
        assert status.status == "registered"
        assert status.numeroParquet == numero
        assert status.registeredAt is not None

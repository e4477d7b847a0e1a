"""The reference court registry (sandbox/registry) over real HTTP on loopback, with zeep as the client."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import zeep
import zeep.exceptions
from lxml import etree

from gateway import model as m
from gateway.court_xml import AFFAIRE_NS, affaire_to_xml
from sandbox.registry.app import RegistrySettings, load_tribunals
from sandbox.registry.cli import startup_fault
from sandbox.registry.faults import FaultMode, FaultPlan
from sandbox.registry.store import KeyConflict, RegistryStore
from sandbox.registry.testing import RegistryServer
from tests.test_court_xml import full_affaire, minimal_affaire

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
WSDL = ROOT / "schemas" / "court" / "v1" / "registry.wsdl"
REG_NS = "urn:saisine:court:registry:v1"
BINDING = f"{{{REG_NS}}}CourtRegistrySoapBinding"
NUMERO = re.compile(r"TJ([0-9]{2}|2[AB])[0-9]{3}-[0-9]{4}-[0-9]{7}")  # registry.wsdl's pattern
FIXED = datetime(2026, 3, 12, 17, 4, tzinfo=UTC)


def zeep_settings() -> zeep.Settings:
    return zeep.Settings(forbid_dtd=True, forbid_external=True, strict=True)


def initial(tribunal: str = "TJ75056") -> m.Affaire:
    return full_affaire().model_copy(update={"numero_parquet": None, "tribunal_code": tribunal})


def complement() -> etree._Element:
    return affaire_to_xml(minimal_affaire(), "Complement")


class Client:
    """A zeep service bound to one registry, with its HTTP session closed at the end."""

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self.session = requests.Session()
        transport = zeep.Transport(session=self.session, timeout=timeout, operation_timeout=timeout)
        self.zeep = zeep.Client(str(WSDL), settings=zeep_settings(), transport=transport)
        self.service: Any = self.zeep.create_service(BINDING, address)

    def register(self, key: str, affaire: m.Affaire | None = None, revision: int | None = None) -> Any:
        element = affaire_to_xml(affaire or initial())
        if revision is None:
            return self.service.RegisterAffaire(idempotencyKey=key, _value_1=element)
        return self.service.RegisterAffaire(idempotencyKey=key, revision=revision, _value_1=element)

    def complement(self, key: str, numero: str, revision: int | None = None) -> Any:
        extra = {} if revision is None else {"revision": revision}
        return self.service.AddComplement(
            idempotencyKey=key, numeroParquet=numero, _value_1=complement(), **extra
        )


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[RegistryServer]:
    settings = RegistrySettings(database=tmp_path / "registry.db", clock=lambda: FIXED)
    with RegistryServer(tmp_path, settings=settings) as server:
        yield server


@pytest.fixture
def client(reg: RegistryServer) -> Iterator[Client]:
    made = Client(reg.url)
    yield made
    made.session.close()


def reason_code(fault: zeep.exceptions.Fault) -> str | None:
    return fault.detail.findtext(f"{{{REG_NS}}}RegistryFault/{{{REG_NS}}}reasonCode")


def soap_post(reg: RegistryServer, body: bytes, action: str = "") -> httpx.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'}
    return httpx.post(reg.url, content=body, headers=headers, timeout=5)


def envelope(inner: str) -> bytes:
    soap = "http://schemas.xmlsoap.org/soap/envelope/"
    return f'<e:Envelope xmlns:e="{soap}"><e:Body>{inner}</e:Body></e:Envelope>'.encode()


# ----- registration and numbering ---------------------------------------------------------------


def test_numeros_follow_the_format_and_a_sequence_per_tribunal(client: Client) -> None:
    """Numbers are <tribunal>-<year>-<7 digits>, counted separately per tribunal."""
    numbers = [
        client.register("k1").numeroParquet,
        client.register("k2").numeroParquet,
        client.register("k3", initial("TJ69123")).numeroParquet,
    ]
    assert numbers == ["TJ75056-2026-0000001", "TJ75056-2026-0000002", "TJ69123-2026-0000001"]
    assert all(NUMERO.fullmatch(n) for n in numbers)


def test_answer_carries_registration_time_and_no_repeat(client: Client) -> None:
    """A first registration answers registeredAt (now, UTC) and repeat=false."""
    answer = client.register("k1")
    assert answer.registeredAt == FIXED
    assert answer.repeat is False


def test_sequence_restarts_each_year_and_refusals_use_no_number(tmp_path: Path) -> None:
    """The counter is per (tribunal, year); a refused registration rolls back without a gap."""
    store = RegistryStore(tmp_path / "r.db")
    first = store.register_affaire("a", 1, "TJ75056", "<x/>", datetime(2026, 12, 31, 23, tzinfo=UTC))
    numero = first.numero_parquet
    store.add_complement("c", numero, "<y/>", datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(KeyConflict):
        store.register_affaire("c", 1, "TJ75056", "<x/>", datetime(2027, 1, 1, tzinfo=UTC))
    second = store.register_affaire("b", 1, "TJ75056", "<x/>", datetime(2027, 1, 2, tzinfo=UTC))
    assert (numero, second.numero_parquet) == ("TJ75056-2026-0000001", "TJ75056-2027-0000001")
    store.close()


def test_concurrent_registrations_get_unique_gap_free_numbers(tmp_path: Path) -> None:
    """Forty threads registering at once get 1..N without duplicate; a shared key registers once."""
    store = RegistryStore(tmp_path / "r.db")
    keys = [f"k{i}" for i in range(30)] + ["same"] * 10
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda k: store.register_affaire(k, 1, "TJ75056", "<x/>", FIXED), keys))
    assert sorted(int(a.numero_parquet[-7:]) for a in answers if not a.repeat) == list(range(1, 32))
    assert len({a.numero_parquet for a in answers if a.repeat}) <= 1
    assert len(store.cases()) == 31
    store.close()


def test_same_key_again_returns_same_numero_as_repeat(reg: RegistryServer, client: Client) -> None:
    """The same idempotency key gives the same numéro and registeredAt, repeat=true, one affaire."""
    first = client.register("msg-1")
    again = client.register("msg-1")
    assert (again.numeroParquet, again.registeredAt, again.repeat) == (
        first.numeroParquet,
        first.registeredAt,
        True,
    )
    assert [c["idempotency_key"] for c in reg.cases()] == ["msg-1"]
    assert reg.stats()["operations"]["RegisterAffaire"] == {"registered": 1, "repeat": 1}


def test_higher_revision_updates_the_same_affaire(reg: RegistryServer, client: Client) -> None:
    """A corrected message (same key, higher revision) keeps its numéro and replaces the stored affaire."""
    first = client.register("msg-1")
    revised = client.register("msg-1", revision=2)
    assert (revised.numeroParquet, revised.repeat) == (first.numeroParquet, False)
    assert client.register("msg-1", revision=2).repeat is True
    assert [(c["numero_parquet"], c["revision"]) for c in reg.cases()] == [(first.numeroParquet, 2)]


def test_complement_attaches_to_a_registered_affaire(reg: RegistryServer, client: Client) -> None:
    """AddComplement answers the affaire's numéro; its key again is a repeat, counted once."""
    numero = client.register("msg-1").numeroParquet
    answer = client.complement("msg-2", numero)
    assert (answer.numeroParquet, answer.repeat) == (numero, False)
    assert client.complement("msg-2", numero).repeat is True
    assert reg.cases()[0]["complements"] == 1


def test_higher_revision_updates_the_same_complement(reg: RegistryServer, client: Client) -> None:
    """A corrected complément (same key, higher revision) replaces the stored one: answered as new
    (not a repeat) with the same numéro, then as a repeat; still one complément."""
    numero = client.register("msg-1").numeroParquet
    client.complement("msg-2", numero)
    revised = client.complement("msg-2", numero, revision=2)
    assert (revised.numeroParquet, revised.repeat) == (numero, False)
    assert client.complement("msg-2", numero, revision=2).repeat is True
    assert reg.stats()["operations"]["AddComplement"] == {"registered": 1, "revised": 1, "repeat": 1}
    assert reg.cases()[0]["complements"] == 1


def test_complement_on_unknown_numero_is_client_fault_unknown_affaire(client: Client) -> None:
    """A complément for a numéro the registry never gave is refused with UNKNOWN_AFFAIRE."""
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.complement("msg-2", "TJ75056-2026-0000099")
    assert caught.value.code.endswith("Client")
    assert reason_code(caught.value) == "UNKNOWN_AFFAIRE"


def test_unknown_tribunal_is_client_fault_readable_by_zeep(reg: RegistryServer, client: Client) -> None:
    """An affaire for a tribunal not in tribunals.csv: Client fault UNKNOWN_TRIBUNAL, nothing stored."""
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.register("msg-1", initial("TJ99999"))
    fault = caught.value
    assert fault.code == "soapenv:Client"
    assert reason_code(fault) == "UNKNOWN_TRIBUNAL"
    assert "TJ99999" in fault.message
    assert reg.cases() == []
    assert reg.stats()["fault_reasons"] == {"UNKNOWN_TRIBUNAL": 1}


def test_invalid_affaire_is_client_fault_with_the_errors(client: Client) -> None:
    """An affaire that does not validate against affaire.xsd: INVALID_AFFAIRE naming the element."""
    element = affaire_to_xml(initial())
    element.find(f"{{{AFFAIRE_NS}}}cadre").text = "garde_a_vue"
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.RegisterAffaire(idempotencyKey="msg-1", _value_1=element)
    assert reason_code(caught.value) == "INVALID_AFFAIRE"
    assert "cadre" in caught.value.message


def test_complement_element_in_register_request_is_refused(client: Client) -> None:
    """RegisterAffaire holding an aff:Complement (valid per xs:any) is refused: wrong slot."""
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.RegisterAffaire(idempotencyKey="msg-1", _value_1=complement())
    assert reason_code(caught.value) == "INVALID_AFFAIRE"


def test_key_reused_for_another_operation_is_a_conflict(client: Client) -> None:
    """A key already used for an affaire cannot register a complément: IDEMPOTENCY_KEY_CONFLICT."""
    numero = client.register("msg-1").numeroParquet
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.complement("msg-1", numero)
    assert reason_code(caught.value) == "IDEMPOTENCY_KEY_CONFLICT"


def test_envelope_errors_are_client_faults_with_http_500(reg: RegistryServer) -> None:
    """Malformed XML and a contradicting SOAPAction get a Client fault (HTTP 500) with a reason code."""
    broken = soap_post(reg, b"<not-xml")
    request = f'<r:AddComplementRequest xmlns:r="{REG_NS}"/>'
    contradicting = soap_post(reg, envelope(request), f"{REG_NS}#RegisterAffaire")
    for response, code in ((broken, "XML_NOT_WELL_FORMED"), (contradicting, "SOAP_ACTION_MISMATCH")):
        assert response.status_code == 500
        assert "soapenv:Client" in response.text
        assert f"<reasonCode>{code}</reasonCode>" in response.text.replace("reg:", "").replace("ns0:", "")


def test_body_over_the_cap_is_refused(tmp_path: Path) -> None:
    """A body larger than max_body_bytes is refused before parsing: BODY_TOO_LARGE."""
    settings = RegistrySettings(database=tmp_path / "r.db", max_body_bytes=1024)
    with RegistryServer(tmp_path, settings=settings) as reg:
        response = soap_post(reg, envelope("<x>" + "a" * 2048 + "</x>"))
    assert response.status_code == 500
    assert "BODY_TOO_LARGE" in response.text


def test_tribunal_codes_fit_the_numero_pattern() -> None:
    """Every tribunal the registry knows yields numbers valid against registry.wsdl."""
    tribunals = load_tribunals(ROOT / "sandbox" / "tribunals.csv")
    assert {"TJ75056", "TJ2A004", "TJ2B033", "TJ97411"} <= tribunals.keys()
    assert all(NUMERO.fullmatch(f"{code}-2026-0000001") for code in tribunals)


# ----- contract and pages -----------------------------------------------------------------------


def test_wsdl_is_served_with_this_servers_address(reg: RegistryServer) -> None:
    """GET ?wsdl returns registry.wsdl whose soap:address is this server's SOAP URL."""
    response = httpx.get(reg.wsdl_url)
    root = etree.fromstring(response.content)
    locations = root.xpath("//s:address/@location", namespaces={"s": "http://schemas.xmlsoap.org/wsdl/soap/"})
    assert response.status_code == 200
    assert locations == [reg.url]


def test_affaire_xsd_is_served_beside_the_soap_endpoint(reg: RegistryServer) -> None:
    """GET /soap/affaire.xsd serves the schema file, for tools following the file's relative import."""
    response = httpx.get(f"{reg.base_url}/soap/affaire.xsd")
    xsd = ROOT / "schemas" / "court" / "v1" / "affaire.xsd"
    assert (response.status_code, response.content) == (200, xsd.read_bytes())


def test_zeep_can_load_the_wsdl_by_url(reg: RegistryServer) -> None:
    """A hardened zeep client (forbid_external) loads the served WSDL by URL: affaire.xsd is inlined."""
    served = httpx.get(reg.wsdl_url).content
    assert b"schemaLocation" not in served and b'name="AffaireType"' in served
    with requests.Session() as session:
        remote = zeep.Client(
            reg.wsdl_url, settings=zeep_settings(), transport=zeep.Transport(session=session)
        )
        answer = remote.service.RegisterAffaire(idempotencyKey="k1", _value_1=affaire_to_xml(initial()))
    assert answer.numeroParquet == "TJ75056-2026-0000001"


def test_cases_page_lists_the_case_as_a_clerk_reads_it(reg: RegistryServer, client: Client) -> None:
    """The clerk's page shows the numéro, tribunal, mis en cause, NATINF and compléments count."""
    numero = client.register("msg-1").numeroParquet
    client.complement("msg-2", numero)
    page = httpx.get(f"{reg.base_url}/cases")
    html = page.text
    assert page.headers["content-type"].startswith("text/html")
    assert (
        '<html lang="fr">' in html and "<caption>" in html and '<th scope="col">Numéro parquet</th>' in html
    )
    for text in (numero, "Tribunal judiciaire de Paris", "DURAND Paul Henri", "7875 – Vol avec violence"):
        assert text in html
    assert "<script" not in html
    assert httpx.get(f"{reg.base_url}/").text == html


def test_empty_cases_page_says_so(reg: RegistryServer) -> None:
    """With nothing received, the page says so instead of an empty table."""
    assert "Aucune affaire reçue" in httpx.get(f"{reg.base_url}/cases").text


# ----- fault injection --------------------------------------------------------------------------


def test_unavailable_answers_503_with_retry_after_then_recovers(reg: RegistryServer, client: Client) -> None:
    """unavailable: HTTP 503 with Retry-After (zeep: TransportError 503), for `count` requests only."""
    reg.set_fault("unavailable", count=2, retry_after_s=7)
    raw = soap_post(reg, envelope(""))
    assert (raw.status_code, raw.headers["retry-after"]) == (503, "7")
    with pytest.raises(zeep.exceptions.TransportError) as caught:
        client.register("k1")
    assert caught.value.status_code == 503
    assert client.register("k1").repeat is False
    assert reg.stats()["injected"] == {"unavailable": 2}


def test_timeout_holds_the_answer_but_registers(reg: RegistryServer) -> None:
    """timeout: the client times out (requests ReadTimeout), yet the case is registered; a retry repeats."""
    reg.set_fault("timeout", count=1)
    impatient = Client(reg.url, timeout=0.5)
    try:
        with pytest.raises(requests.exceptions.ReadTimeout):
            impatient.register("k1")
    finally:
        impatient.session.close()
    [case] = reg.cases()
    retry = Client(reg.url)
    assert retry.register("k1").numeroParquet == case["numero_parquet"]
    assert retry.register("k1").repeat is True
    retry.session.close()


def test_held_answer_ends_when_the_server_stops(tmp_path: Path) -> None:
    """Stopping the server ends a held-back answer at once instead of after timeout_s."""
    plan = FaultPlan(FaultMode.TIMEOUT, timeout_s=30)
    answers: list[int] = []
    with RegistryServer(tmp_path, fault=plan) as reg:
        waiting = threading.Thread(target=lambda: answers.append(soap_post(reg, envelope("")).status_code))
        waiting.start()
        time.sleep(0.3)
        started = time.monotonic()
    waiting.join(timeout=5)
    assert time.monotonic() - started < 5  # instead of timeout_s=30
    assert answers == [500]  # answered normally: a Client fault for the empty Body


def test_stopped_registry_refuses_connections_then_restarts_on_its_port(
    reg: RegistryServer, client: Client
) -> None:
    """stop(): connection refused; start(): the same port, cases and stats, and faults still work."""
    numero = client.register("k1").numeroParquet
    reg.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        client.register("k2")
    reg.start()
    assert client.register("k1").numeroParquet == numero
    reg.set_fault("slow", count=1, delay_ms=400)
    started = time.monotonic()
    client.register("k2")
    assert time.monotonic() - started >= 0.4, "answers are held back again after a restart"
    assert reg.stats()["operations"]["RegisterAffaire"] == {"registered": 2, "repeat": 1}


def test_server_fault_is_a_soap_server_fault(reg: RegistryServer, client: Client) -> None:
    """server_fault: zeep raises Fault with code soapenv:Server; nothing is registered."""
    reg.set_fault("server_fault", count=1)
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.register("k1")
    assert caught.value.code.endswith("Server")
    assert reg.cases() == []
    assert client.register("k1").numeroParquet == "TJ75056-2026-0000001"


def test_close_drops_the_connection_without_an_answer(reg: RegistryServer, client: Client) -> None:
    """close: requests/zeep see ConnectionError (RemoteDisconnected), httpx RemoteProtocolError."""
    reg.set_fault("close", count=2)
    with pytest.raises(requests.exceptions.ConnectionError, match="RemoteDisconnected"):
        client.register("k1")
    with pytest.raises(httpx.RemoteProtocolError):
        soap_post(reg, envelope(""))
    assert reg.cases() == []
    assert client.register("k1").repeat is False


def test_slow_adds_the_delay_then_answers(reg: RegistryServer, client: Client) -> None:
    """slow: the answer is normal but comes after delay_ms."""
    reg.set_fault("slow", count=1, delay_ms=400)
    started = time.monotonic()
    client.register("k1")
    assert time.monotonic() - started >= 0.4
    client.register("k2")
    assert reg.stats()["injected"] == {"slow": 1}


def test_fault_ends_after_its_duration(reg: RegistryServer) -> None:
    """A fault with duration_s stops by itself; GET /admin/faults shows what is left."""
    reg.set_fault("unavailable", duration_s=0.4)
    assert reg.fault()["mode"] == "unavailable" and 0 < reg.fault()["remaining_s"] <= 0.4
    assert soap_post(reg, envelope("")).status_code == 503
    time.sleep(0.45)
    assert reg.fault() == {"mode": "none"}
    assert soap_post(reg, envelope("")).status_code == 500  # a normal answer: Client fault, empty Body


def test_fault_can_be_cleared_and_bad_modes_are_refused(reg: RegistryServer) -> None:
    """DELETE /admin/faults clears the fault; an unknown mode is a 422."""
    reg.set_fault("server_fault")
    assert reg.clear_fault() == {"mode": "none"}
    response = httpx.post(f"{reg.base_url}/admin/faults", json={"mode": "explode"})
    assert response.status_code == 422


def test_startup_fault_applies_from_the_first_request(tmp_path: Path) -> None:
    """A fault given at start-up (as by --fault) applies to the first requests."""
    with RegistryServer(tmp_path, fault=FaultPlan(FaultMode.UNAVAILABLE, count=1)) as reg:
        assert soap_post(reg, envelope("")).status_code == 503
        assert soap_post(reg, envelope("")).status_code == 500


def test_startup_fault_options() -> None:
    """--fault names a mode (else ValueError); --delay-ms alone means slow."""
    assert startup_fault(None, None, None) is None
    assert startup_fault("close", 5.0, None) == FaultPlan(FaultMode.CLOSE, duration_s=5.0)
    assert startup_fault(None, None, 50) == FaultPlan(FaultMode.SLOW, delay_ms=50)
    with pytest.raises(ValueError, match="unavailable"):
        startup_fault("explode", None, None)

"""Hostile input, end to end over real HTTP on loopback: each attack on the REST and SOAP
intakes is refused with its own error code, quickly, in bounded memory, reading nothing from
disk or network, and leaves exactly one rejection record (no case, no delivery).

The parser-level behaviour is specified in tests/test_xmlparse.py and tests/test_soap.py;
this suite checks what a sender (or an attacker) actually gets through the gateway's doors.
The bounds (2 s, 50 MB) are generous safety nets against blow-ups, not speed targets: those
live in bench/. docs/security.md ("Hostile input") lists the attacks and their codes.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from sqlalchemy import func, select

from gateway.codes import CODES
from gateway.composition import Container, build
from gateway.settings import Settings
from gateway.store.tables import messages, metadata
from tests.conftest import GENDARMERIE_V1, LiveServer, with_new_id

pytestmark = pytest.mark.integration

REST = "/api/v1/gendarmerie/procedures"
VALIDATE = "/api/v1/gendarmerie/procedures/validate"
SOAP = "/soap/gendarmerie"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
INTAKE_NS = "urn:saisine:gendarmerie:intake:v1"
WSA_NS = "http://www.w3.org/2005/08/addressing"
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
PROCEDURE_NS = "urn:saisine:gendarmerie:procedure:v1"
MAX_SECONDS = 2.0
MAX_RSS_GROWTH = 50 * 1024 * 1024
# A refused message may grow only these tables (its row, its history, its error codes, its audit).
REJECTION_TABLES = {"messages", "events", "message_error_codes", "audit_records", "audit_head"}


# ---------------------------------------------------------------- the world around the gateway


class Listener:
    """A TCP listener on loopback that counts every connection made to it (and answers none)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


class SecretFile:
    """A named pipe that counts its readers: any open of it for reading is seen (and served a
    canary), where a plain file's access time would tell nothing reliable."""

    def __init__(self, path: Path, canary: str) -> None:
        self.path = path
        self.canary = canary
        os.mkfifo(path)
        self.opened = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            fd = os.open(self.path, os.O_WRONLY)  # blocks until someone opens it for reading
            if not self.running:
                os.close(fd)
                return
            self.opened += 1
            with contextlib.suppress(BrokenPipeError):  # a reader that left early
                os.write(fd, f'<?xml version="1.0"?><x>{self.canary}</x>\n'.encode())
            os.close(fd)

    def close(self) -> None:
        self.running = False
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # releases the blocked writer
        self.thread.join(timeout=2)
        os.close(fd)


@dataclass
class World:
    """What an attack may point at: a secret file, a listener, an "internal" address."""

    canary: str
    secret: SecretFile
    outside: Listener  # "the network": external entities, DTDs, schemas, XIncludes point here
    internal: Listener  # an internal service: ReplyTo/FaultTo point here


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    canary = f"CANARY-{uuid.uuid4().hex}"
    secret = SecretFile(tmp_path_factory.mktemp("secret") / "secret.xsd", canary)
    outside, internal = Listener(), Listener()
    yield World(canary, secret, outside, internal)
    outside.close()
    internal.close()
    secret.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Container, str]]:
    """One gateway (default limits, no delivery worker) for the whole suite, on a loopback port."""
    db = tmp_path_factory.mktemp("hostile") / "saisine.db"
    # Who may send is tests/test_auth.py's matter: here every attack reaches the parser.
    wired = build(Settings(database_url=f"sqlite:///{db}", log_json=True, sender_auth="none"))
    try:
        with LiveServer(wired) as server:
            yield wired, server.url
    finally:
        wired.close()


# ---------------------------------------------------------------- measuring one request


def _rss_peak_reset() -> Callable[[], int]:
    """Reset the process's peak RSS (Linux clear_refs) and return a function giving its growth.

    The gateway runs in this process (uvicorn in a thread), so the peak covers the parser's own
    C allocations too, which tracemalloc would not see.
    """
    status = Path("/proc/self/status")

    def read(field_name: str) -> int:
        for line in status.read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"{field_name} not in /proc/self/status")

    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
    except OSError:  # not allowed here: the growth of the process's lifetime peak, a weaker bound
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak
    baseline = read("VmRSS")
    return lambda: read("VmHWM") - baseline


def _table_counts(container: Container) -> dict[str, int]:
    with container.engine.connect() as conn:
        return {
            name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in metadata.tables.items()
        }


def _receipt_ids(container: Container) -> set[str]:
    with container.engine.connect() as conn:
        return set(conn.execute(select(messages.c.receipt_id)).scalars())


@dataclass
class Exchange:
    """One request sent to the gateway and everything observed around it."""

    response: httpx.Response
    seconds: float
    rss_growth: int
    grown: dict[str, int]
    new_receipts: list[str]
    connections_before: tuple[int, int, int]  # the outside listener, the internal one, the secret file


def send(container: Container, world: World, url: str, body: bytes, headers: dict[str, str]) -> Exchange:
    before_counts, before_ids = _table_counts(container), _receipt_ids(container)
    connections = (world.outside.connections, world.internal.connections, world.secret.opened)
    growth = _rss_peak_reset()
    started = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        response = client.post(url, content=body, headers=headers)
    seconds = time.perf_counter() - started
    rss = growth()
    after = _table_counts(container)
    grown = {name: after[name] - before_counts.get(name, 0) for name in after}
    new = sorted(_receipt_ids(container) - before_ids)
    return Exchange(response, seconds, rss, {k: v for k, v in grown.items() if v}, new, connections)


# ---------------------------------------------------------------- the attacks


def sample() -> str:
    return with_new_id(sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))[0].read_bytes()).decode()


def inside_procedure(fragment: str, attributes: str = "") -> str:
    """A valid procedure with ``fragment`` just inside its root and ``attributes`` on it."""
    text = sample()
    start = text.index("<Procedure")
    end = text.index(">", start)
    return text[:end] + (" " + attributes if attributes else "") + ">" + fragment + text[end + 1 :]


def without_declaration(text: str) -> str:
    return text.split("?>", 1)[1].lstrip() if text.startswith("<?xml ") else text


def billion_laughs(_: World) -> bytes:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    body = without_declaration(inside_procedure("&l9;"))
    return f'<?xml version="1.0"?><!DOCTYPE Procedure [<!ENTITY l0 "lol">{entities}]>{body}'.encode()


def quadratic_blowup(_: World) -> bytes:
    # one 50,000-character entity referenced 20,000 times: a gigabyte if ever expanded
    big = "a" * 50_000
    body = without_declaration(inside_procedure("&a;" * 20_000))
    return f'<!DOCTYPE Procedure [<!ENTITY a "{big}">]>{body}'.encode()


def external_entity_file(w: World) -> bytes:
    body = without_declaration(inside_procedure("&x;"))
    return f'<!DOCTYPE Procedure [<!ENTITY x SYSTEM "file://{w.secret.path}">]>{body}'.encode()


def external_entity_network(w: World) -> bytes:
    body = without_declaration(inside_procedure("&x;"))
    return f'<!DOCTYPE Procedure [<!ENTITY x SYSTEM "{w.outside.url}/entity">]>{body}'.encode()


def external_dtd(w: World) -> bytes:
    body = without_declaration(inside_procedure(""))
    return f'<!DOCTYPE Procedure SYSTEM "{w.outside.url}/evil.dtd">{body}'.encode()


def parameter_entity(w: World) -> bytes:
    body = without_declaration(inside_procedure(""))
    subset = f'<!ENTITY % p SYSTEM "{w.outside.url}/p.dtd"> %p;'
    return f"<!DOCTYPE Procedure [{subset}]>{body}".encode()


def undeclared_entity(_: World) -> bytes:
    return inside_procedure("&xxe;").encode()


def xinclude_file(w: World) -> bytes:
    fragment = (
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file://{w.secret.path}" parse="text"/>'
    )
    return inside_procedure(fragment).encode()


def xinclude_network(w: World) -> bytes:
    fragment = f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{w.outside.url}/inc.xml"/>'
    return inside_procedure(fragment).encode()


def schema_location_network(w: World) -> bytes:
    return inside_procedure(
        "", f'{XSI} xsi:schemaLocation="{PROCEDURE_NS} {w.outside.url}/evil.xsd"'
    ).encode()


def schema_location_file(w: World) -> bytes:
    return inside_procedure("", f'{XSI} xsi:noNamespaceSchemaLocation="file://{w.secret.path}"').encode()


def schema_location_lone_url(w: World) -> bytes:
    # a single token, not a namespace/location pair: once let through as if it were a namespace
    return inside_procedure("", f'{XSI} xsi:schemaLocation="{w.outside.url}/evil.xsd"').encode()


def deep_nesting(_: World) -> bytes:
    return inside_procedure("<d>" * 100_000 + "</d>" * 100_000).encode()


def deep_nesting_within_libxml2(_: World) -> bytes:
    return inside_procedure("<d>" * 200 + "</d>" * 200).encode()


def element_flood(_: World) -> bytes:
    return inside_procedure("<e/>" * 250_000).encode()


def element_flood_8mb(_: World) -> bytes:
    # two million elements: once a 240 MB tree before the count was looked at
    return inside_procedure("<e/>" * 2_000_000).encode()


def attribute_flood_spread(_: World) -> bytes:
    # 64 attributes per element (the limit) on 20,000 elements: 1.3 million attributes
    element = "<e " + " ".join(f'a{i}=""' for i in range(64)) + "/>"
    return inside_procedure(element * 20_000).encode()


def processing_instruction_flood(_: World) -> bytes:
    return inside_procedure("<?p?>" * 1_000_000).encode()


def attribute_flood(_: World) -> bytes:
    return inside_procedure("", " ".join(f'a{i}="x"' for i in range(100_000))).encode()


def namespace_flood(_: World) -> bytes:
    return inside_procedure("", " ".join(f'xmlns:n{i}="urn:flood:{i}"' for i in range(20_000))).encode()


def namespace_flood_spread(_: World) -> bytes:
    # one declaration per sibling: never more than two in scope, twenty thousand in the document
    return inside_procedure("".join(f'<n{i}:x xmlns:n{i}="urn:flood:{i}"/>' for i in range(20_000))).encode()


def overlong_element_name(_: World) -> bytes:
    return inside_procedure(f"<{'n' * 100_000}/>").encode()


def overlong_attribute_name(_: World) -> bytes:
    return inside_procedure("", f'{"a" * 100_000}="1"').encode()


def utf7_declared(_: World) -> bytes:
    text = sample().replace('encoding="UTF-8"', 'encoding="UTF-7"', 1)
    return text.replace("<Envelope>", "+ADw-Envelope+AD4-", 1).encode()


def utf16_without_bom(_: World) -> bytes:
    return sample().replace('encoding="UTF-8"', 'encoding="UTF-16"', 1).encode("utf-16-le")


def ucs4_without_bom(_: World) -> bytes:
    # once decoded by libxml2's autodetection and accepted although only UTF-8 is
    return without_declaration(sample()).encode("utf-32-be")


def ebcdic_declared(_: World) -> bytes:
    return sample().replace('encoding="UTF-8"', 'encoding="IBM037"', 1).encode("cp037")


def latin1_labelled_utf8(_: World) -> bytes:
    return sample().replace("</Name>", "é</Name>", 1).encode("latin-1")


def processing_instruction(w: World) -> bytes:
    text = sample()
    end = text.index("?>") + 2
    return (
        text[:end] + f'<?xml-stylesheet type="text/xsl" href="{w.outside.url}/x.xsl"?>' + text[end:]
    ).encode()


def processing_instruction_inside(_: World) -> bytes:
    return inside_procedure("<?php system('id'); ?>").encode()


def body_over_the_cap(_: World) -> bytes:
    return b"<r>" + b"x" * (Settings().max_body_bytes + 1) + b"</r>"


@dataclass(frozen=True)
class Attack:
    build: Callable[[World], bytes]
    code: str
    reads: bool = False  # points at the secret file: its canary must show up nowhere

    @property
    def name(self) -> str:
        return self.build.__name__


PARSER_ATTACKS = [
    Attack(billion_laughs, "XML_DOCTYPE_FORBIDDEN"),
    Attack(quadratic_blowup, "XML_DOCTYPE_FORBIDDEN"),
    Attack(external_entity_file, "XML_DOCTYPE_FORBIDDEN", reads=True),
    Attack(external_entity_network, "XML_DOCTYPE_FORBIDDEN"),
    Attack(external_dtd, "XML_DOCTYPE_FORBIDDEN"),
    Attack(parameter_entity, "XML_DOCTYPE_FORBIDDEN"),
    Attack(undeclared_entity, "XML_ENTITY_FORBIDDEN"),
    Attack(xinclude_file, "XML_XINCLUDE_FORBIDDEN", reads=True),
    Attack(xinclude_network, "XML_XINCLUDE_FORBIDDEN"),
    Attack(schema_location_network, "XML_SCHEMA_LOCATION_FORBIDDEN"),
    Attack(schema_location_file, "XML_SCHEMA_LOCATION_FORBIDDEN", reads=True),
    Attack(schema_location_lone_url, "XML_SCHEMA_LOCATION_FORBIDDEN"),
    Attack(deep_nesting, "XML_TOO_DEEP"),
    Attack(deep_nesting_within_libxml2, "XML_TOO_DEEP"),
    Attack(element_flood, "XML_TOO_MANY_ELEMENTS"),
    Attack(element_flood_8mb, "XML_TOO_MANY_ELEMENTS"),
    Attack(attribute_flood_spread, "XML_TOO_MANY_ATTRIBUTES"),
    Attack(processing_instruction_flood, "XML_PROCESSING_INSTRUCTION_FORBIDDEN"),
    Attack(attribute_flood, "XML_TOO_MANY_ATTRIBUTES"),
    Attack(namespace_flood, "XML_TOO_MANY_NAMESPACES"),
    Attack(namespace_flood_spread, "XML_TOO_MANY_NAMESPACES"),
    Attack(overlong_element_name, "XML_NAME_TOO_LONG"),
    Attack(overlong_attribute_name, "XML_NAME_TOO_LONG"),
    Attack(utf7_declared, "XML_ENCODING_UNSUPPORTED"),
    Attack(utf16_without_bom, "XML_ENCODING_UNSUPPORTED"),
    Attack(ucs4_without_bom, "XML_ENCODING_UNSUPPORTED"),
    Attack(ebcdic_declared, "XML_ENCODING_UNSUPPORTED"),
    Attack(latin1_labelled_utf8, "XML_ENCODING_UNSUPPORTED"),
    Attack(processing_instruction, "XML_PROCESSING_INSTRUCTION_FORBIDDEN"),
    Attack(processing_instruction_inside, "XML_PROCESSING_INSTRUCTION_FORBIDDEN"),
]
REST_ATTACKS = [*PARSER_ATTACKS, Attack(body_over_the_cap, "BODY_TOO_LARGE")]


def _ids(attacks: list[Attack]) -> list[Any]:
    return [pytest.param(a, id=a.name) for a in attacks]


# ---------------------------------------------------------------- what every refusal must show


def assert_harmless(container: Container, world: World, exchange: Exchange, attack_reads: bool) -> None:
    """Quick, small, nothing read from disk or network, the canary nowhere."""
    assert exchange.seconds < MAX_SECONDS, f"took {exchange.seconds:.2f} s"
    assert exchange.rss_growth < MAX_RSS_GROWTH, f"peak RSS grew by {exchange.rss_growth / 2**20:.0f} MB"
    outside, internal, opened = exchange.connections_before
    assert world.secret.opened == opened, "the gateway opened a file named in the message"
    assert world.outside.connections == outside, "the gateway connected to an address named in the message"
    assert world.internal.connections == internal, "the gateway connected to an internal address"
    if attack_reads:
        assert world.canary not in exchange.response.text
        database = Path(container.settings.database_url.removeprefix("sqlite:///"))
        for path in database.parent.glob(database.name + "*"):  # the file, its WAL and journal
            assert world.canary.encode() not in path.read_bytes(), f"the canary is stored in {path.name}"


def assert_one_rejection(container: Container, exchange: Exchange, code: str) -> dict[str, Any]:
    """Exactly one new message, rejected with exactly this code; no case, no delivery, nothing else."""
    assert len(exchange.new_receipts) == 1, exchange.new_receipts
    assert set(exchange.grown) <= REJECTION_TABLES, exchange.grown
    assert exchange.grown["messages"] == 1
    receipt_id = exchange.new_receipts[0]
    receipt = container.store.receipt(receipt_id)
    assert receipt is not None and receipt.status == "rejected"
    assert [e.code for e in receipt.errors] == [code], receipt.errors
    assert container.store.case(receipt_id) is None
    with container.engine.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.receipt_id == receipt_id)).mappings().one()
    assert row["http_status"] == CODES[code].http_status and not row["accepted"]
    return dict(row)


# ---------------------------------------------------------------- REST


@pytest.mark.parametrize("attack", _ids(REST_ATTACKS))
def test_rest_intake_refuses_the_attack_with_its_own_code(
    gateway: tuple[Container, str], world: World, attack: Attack
) -> None:
    """The REST intake answers the code's status with that single code, and keeps one rejection."""
    container, url = gateway
    body = attack.build(world)
    exchange = send(container, world, url + REST, body, {"Content-Type": "application/xml"})
    assert exchange.response.status_code == CODES[attack.code].http_status, exchange.response.text[:300]
    answer = exchange.response.json()
    assert answer["status"] == "rejected"
    assert [e["code"] for e in answer["errors"]] == [attack.code]
    assert answer["receipt_id"] == exchange.new_receipts[0]
    assert_one_rejection(container, exchange, attack.code)
    assert_harmless(container, world, exchange, attack.reads)


@pytest.mark.parametrize("attack", _ids(PARSER_ATTACKS))
def test_validate_refuses_the_attack_and_stores_nothing(
    gateway: tuple[Container, str], world: World, attack: Attack
) -> None:
    """The senders' check endpoint refuses the same way and stores nothing at all."""
    container, url = gateway
    exchange = send(
        container, world, url + VALIDATE, attack.build(world), {"Content-Type": "application/xml"}
    )
    assert exchange.response.status_code == CODES[attack.code].http_status
    assert [e["code"] for e in exchange.response.json()["errors"]] == [attack.code]
    assert exchange.grown == {} and exchange.new_receipts == []
    assert_harmless(container, world, exchange, attack.reads)


# ---------------------------------------------------------------- SOAP


def envelope(body: str, header: str = "", prolog: str = "") -> str:
    head = f"<s:Header>{header}</s:Header>" if header else ""
    opening = f'<s:Envelope xmlns:s="{SOAP_NS}" xmlns:i="{INTAKE_NS}">'
    return f"{prolog}{opening}{head}<s:Body>{body}</s:Body></s:Envelope>"


def submit(procedure: str) -> str:
    return f"<i:SubmitProcedureRequest>{without_declaration(procedure)}</i:SubmitProcedureRequest>"


STATUS_REQUEST = "<i:GetReceiptStatusRequest><i:receiptId>x</i:receiptId></i:GetReceiptStatusRequest>"
SUBMIT_ACTION = f"{INTAKE_NS}#SubmitProcedure"


def wrapped(build: Callable[[World], bytes]) -> Callable[[World], bytes]:
    """A parser attack carried as the procedure of a SubmitProcedure request; a DOCTYPE moves
    in front of the Envelope, where XML allows it."""

    def soap(w: World) -> bytes:
        text = without_declaration(build(w).decode("utf-8"))
        prolog = ""
        if text.startswith("<!DOCTYPE"):
            subset = text.index("[") if "[" in text else len(text)
            end = text.index("]>") + 2 if subset < text.index(">") else text.index(">") + 1
            prolog, text = text[:end], text[end:]
        return envelope(submit(text), prolog=prolog).encode()

    soap.__name__ = build.__name__
    return soap


def _declared(encoding: str, body: str | None = None) -> str:
    return f'<?xml version="1.0" encoding="{encoding}"?>' + envelope(body or submit(sample()))


def soap_utf7_declared(_: World) -> bytes:
    return _declared("UTF-7").replace("<s:Body>", "+ADw-s:Body+AD4-", 1).encode()


def soap_utf16_without_bom(_: World) -> bytes:
    return _declared("UTF-16").encode("utf-16-le")


def soap_ebcdic_declared(_: World) -> bytes:
    return _declared("IBM037").encode("cp037")


def soap_latin1_labelled_utf8(_: World) -> bytes:
    return _declared("UTF-8", submit(sample().replace("</Name>", "é</Name>", 1))).encode("latin-1")


def oversized_header(_: World) -> bytes:
    # 8 MB of plain text in a header block: within the body cap, and libxml2's per-node limit
    block = "".join(f"<x:Note xmlns:x='urn:x'>{'z' * 1_000_000}</x:Note>" for _ in range(8))
    return envelope(STATUS_REQUEST, header=block).encode()


def two_body_children(_: World) -> bytes:
    return envelope(submit(sample()) + STATUS_REQUEST).encode()


def two_bodies(_: World) -> bytes:
    text = envelope(STATUS_REQUEST)
    return text.replace("</s:Body>", f"</s:Body><s:Body>{submit(sample())}</s:Body>", 1).encode()


def two_procedures(_: World) -> bytes:
    # the second procedure would never have been checked: refused rather than ignored
    inner = without_declaration(sample()) + without_declaration(sample())
    return envelope(f"<i:SubmitProcedureRequest>{inner}</i:SubmitProcedureRequest>").encode()


def contradicting_soap_action(_: World) -> bytes:
    return envelope(submit(sample())).encode()


def unknown_must_understand(_: World) -> bytes:
    header = '<x:Secret xmlns:x="urn:x" s:mustUnderstand="1">1</x:Secret>'
    return envelope(submit(sample()), header=header).encode()


def mandatory_reply_to(w: World) -> bytes:
    # WS-Addressing is not understood: a mandatory ReplyTo is a MustUnderstand fault
    address = f"<a:Address>{w.internal.url}/x</a:Address>"
    header = f'<a:ReplyTo xmlns:a="{WSA_NS}" s:mustUnderstand="1">{address}</a:ReplyTo>'
    return envelope(submit(sample()), header=header).encode()


def soap_1_2_envelope(_: World) -> bytes:
    return envelope(submit(sample())).replace(SOAP_NS, "http://www.w3.org/2003/05/soap-envelope").encode()


@dataclass(frozen=True)
class SoapAttack:
    build: Callable[[World], bytes]
    code: str
    faultcode: str = "Client"
    action: str = ""
    reads: bool = False

    @property
    def name(self) -> str:
        return self.build.__name__


ENCODINGS = {
    "utf7_declared",
    "utf16_without_bom",
    "ucs4_without_bom",
    "ebcdic_declared",
    "latin1_labelled_utf8",
}
SOAP_ATTACKS = [
    *(SoapAttack(wrapped(a.build), a.code, reads=a.reads) for a in PARSER_ATTACKS if a.name not in ENCODINGS),
    SoapAttack(soap_utf7_declared, "XML_ENCODING_UNSUPPORTED"),
    SoapAttack(soap_utf16_without_bom, "XML_ENCODING_UNSUPPORTED"),
    SoapAttack(soap_ebcdic_declared, "XML_ENCODING_UNSUPPORTED"),
    SoapAttack(soap_latin1_labelled_utf8, "XML_ENCODING_UNSUPPORTED"),
    SoapAttack(oversized_header, "SOAP_HEADER_TOO_LARGE"),
    SoapAttack(two_body_children, "SOAP_BODY_MULTIPLE"),
    SoapAttack(two_bodies, "SOAP_ENVELOPE_INVALID"),
    SoapAttack(two_procedures, "SCHEMA_ELEMENT_UNEXPECTED"),
    SoapAttack(contradicting_soap_action, "SOAP_ACTION_MISMATCH", action=f"{INTAKE_NS}#GetReceiptStatus"),
    SoapAttack(unknown_must_understand, "SOAP_MUST_UNDERSTAND", faultcode="MustUnderstand"),
    SoapAttack(mandatory_reply_to, "SOAP_MUST_UNDERSTAND", faultcode="MustUnderstand"),
    SoapAttack(soap_1_2_envelope, "SOAP_VERSION_MISMATCH", faultcode="VersionMismatch"),
    SoapAttack(body_over_the_cap, "BODY_TOO_LARGE"),
]


def soap_headers(action: str) -> dict[str, str]:
    return {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'}


def fault_of(response: httpx.Response) -> tuple[str, list[str]]:
    """The fault code and the error codes of its ValidationFault detail."""
    root = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False, no_network=True))
    fault = root.find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    assert fault is not None, response.text[:300]
    codes = [
        e.text or ""
        for e in fault.iterfind(
            f"detail/{{{INTAKE_NS}}}ValidationFault/{{{INTAKE_NS}}}error/{{{INTAKE_NS}}}code"
        )
    ]
    return fault.findtext("faultcode") or "", codes


@pytest.mark.parametrize("attack", [pytest.param(a, id=a.name) for a in SOAP_ATTACKS])
def test_soap_intake_refuses_the_attack_with_its_own_code(
    gateway: tuple[Container, str], world: World, attack: SoapAttack
) -> None:
    """A SOAP 1.1 Fault (HTTP 500) naming the code in its detail, and one rejection kept."""
    container, url = gateway
    exchange = send(
        container, world, url + SOAP, attack.build(world), soap_headers(attack.action or SUBMIT_ACTION)
    )
    assert exchange.response.status_code == 500
    faultcode, codes = fault_of(exchange.response)
    assert faultcode == f"soapenv:{attack.faultcode}"
    if (
        attack.faultcode == "MustUnderstand"
    ):  # SOAP 1.1 gives this fault no detail: the string names the header
        assert codes == [] and "not understood" in exchange.response.text
    else:
        assert codes == [attack.code]
    assert_one_rejection(container, exchange, attack.code)
    assert_harmless(container, world, exchange, attack.reads)


# ---------------------------------------------------------------- WS-Addressing: never followed


def _addressing(w: World) -> str:
    return (
        f'<a:ReplyTo xmlns:a="{WSA_NS}"><a:Address>{w.internal.url}/reply</a:Address></a:ReplyTo>'
        f'<a:FaultTo xmlns:a="{WSA_NS}"><a:Address>{w.internal.url}/fault</a:Address></a:FaultTo>'
    )


def test_reply_to_an_internal_address_is_never_followed(gateway: tuple[Container, str], world: World) -> None:
    """A valid submission with ReplyTo/FaultTo: the receipt comes back on the same connection,
    and the internal address receives nothing."""
    container, url = gateway
    data = envelope(submit(sample()), header=_addressing(world)).encode()
    exchange = send(container, world, url + SOAP, data, soap_headers(SUBMIT_ACTION))
    assert exchange.response.status_code == 200, exchange.response.text[:300]
    assert b"SubmitProcedureResponse" in exchange.response.content
    time.sleep(0.3)  # room for a follow-up call that must not come
    assert_harmless(container, world, exchange, attack_reads=False)


def test_fault_to_an_internal_address_is_never_followed(gateway: tuple[Container, str], world: World) -> None:
    """An invalid submission with FaultTo: the fault comes back on the same connection, the
    rejection is kept, and the internal address receives nothing."""
    container, url = gateway
    invalid = sample().replace("<MessageType>PROCEDURE_INITIALE", "<MessageType>AUTRE", 1)
    data = envelope(submit(invalid), header=_addressing(world)).encode()
    exchange = send(container, world, url + SOAP, data, soap_headers(SUBMIT_ACTION))
    assert exchange.response.status_code == 500
    assert fault_of(exchange.response) == ("soapenv:Client", ["SCHEMA_VALUE_INVALID"])
    assert_one_rejection(container, exchange, "SCHEMA_VALUE_INVALID")
    time.sleep(0.3)
    assert_harmless(container, world, exchange, attack_reads=False)


# ---------------------------------------------------------------- the streamed check


_STREAMED = {
    "depth 65": b"<a>" * 65 + b"</a>" * 65,
    "PI, then too deep": b"<r><?p?>" + b"<a>" * 70 + b"</a>" * 70 + b"</r>",
    "too deep, then a PI": b"<r>" + b"<a>" * 70 + b"</a>" * 70 + b"<?p?></r>",
    "PI after the root": b"<r><a/></r><?after x?>",
    "PI before the root": b"<?before x?><r/>",
    "65 attributes": ("<r><x " + " ".join(f'a{i}="1"' for i in range(65)) + "/></r>").encode(),
    "attributes in total": b"<r>" + b'<x a="1" b="2"/>' * 101 + b"</r>",
    "elements": b"<r>" + b"<x/>" * 300 + b"</r>",
    "name of 257": f"<r><{'n' * 257}/></r>".encode(),
    "33 namespaces in scope": ("<r " + " ".join(f'xmlns:n{i}="urn:x"' for i in range(33)) + "/>").encode(),
    "33 inherited": (
        "<r "
        + " ".join(f'xmlns:n{i}="urn:{i}"' for i in range(20))
        + "><a "
        + " ".join(f'xmlns:m{i}="urn:{i}"' for i in range(13))
        + "/></r>"
    ).encode(),
    "33 spread": ("<r>" + "".join(f'<a xmlns="urn:{i}"/>' for i in range(33)) + "</r>").encode(),
    "remote hint": f'<r {XSI}><a xsi:noNamespaceSchemaLocation="/etc/x.xsd"/></r>'.encode(),
    "XInclude": b'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="x"/></r>',
    "all clear": b'<r xmlns="urn:a"><a b="1"><!-- c --><c/></a></r>',
}


@pytest.mark.parametrize("data", list(_STREAMED.values()), ids=list(_STREAMED))
def test_streamed_check_refuses_as_the_walk_does(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """A big body is checked while streamed, with no tree: same code and message as the walk."""
    import gateway.xmlparse as xmlparse
    from gateway.errors import RefusedInput

    limits = xmlparse.ParseLimits(max_elements=200, max_attributes_total=200)

    def outcome() -> object:
        try:
            return xmlparse.parse(data, limits).tag
        except RefusedInput as exc:
            return [(e.code, e.message) for e in exc.errors]

    monkeypatch.setattr(xmlparse, "_clearly_within", lambda *args: False)
    walked = outcome()
    monkeypatch.setattr(xmlparse, "_needs_stream", lambda *args: True)
    assert outcome() == walked


def test_a_security_header_of_ordinary_size_is_not_refused(
    gateway: tuple[Container, str], world: World
) -> None:
    """A 40 KB header (a WS-Security token with its certificate, say) is no attack: the
    request is answered as usual (here: no such receipt), not refused for its header."""
    container, url = gateway
    token = f'<w:Security xmlns:w="urn:wsse"><w:Token>{"A" * 40_000}</w:Token></w:Security>'
    data = envelope(STATUS_REQUEST, header=token).encode()
    exchange = send(container, world, url + SOAP, data, soap_headers(f"{INTAKE_NS}#GetReceiptStatus"))
    assert fault_of(exchange.response) == ("soapenv:Client", ["RECEIPT_NOT_FOUND"])
    assert exchange.grown == {}

"""The registry of formats drives everything: a format that exists only in this test, registered
through ``gateway.composition.build(settings, formats=...)``, gets its REST and validate routes,
its SOAP endpoint when a SOAP service is declared, the CLI and the metrics, while nothing in
``gateway/`` names it (docs/adding-a-sender-format.md walks through a real one)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import zeep
from lxml import etree
from sqlalchemy import select
from typer.testing import CliRunner

from adapters import registry
from gateway.cli import app
from gateway.composition import build
from gateway.facts import InfractionFact, ProcedureFacts, Value
from gateway.formats import MessageHeader, SenderFormat, SoapService
from gateway.locations import ElementLoc
from gateway.model import Affaire, Cadre, MessageKind, Nature
from gateway.paths import PROJECT_ROOT
from gateway.settings import Settings
from gateway.store.tables import messages
from tests.conftest import FIXTURES, LiveServer

HERE = FIXTURES / "testformat"
MESSAGE = HERE / "message.xml"
NS = "urn:saisine:testformat:signalement:v1"
AGENCY = "testagency"
XML = {"Content-Type": "application/xml"}


# ---------------------------------------------------------------- the test-only format


def _el(root: etree._Element, name: str) -> etree._Element:
    found = root.find(f"{{{NS}}}{name}")
    assert found is not None, name
    return found


def _when(root: etree._Element, name: str) -> Value[datetime]:
    el = _el(root, name)
    return Value(datetime.fromisoformat(str(el.text).strip()), ElementLoc(el))


def read_header(root: etree._Element) -> MessageHeader:
    unit, tribunal = root.find(f"{{{NS}}}Unit"), root.find(f"{{{NS}}}Tribunal")
    return MessageHeader(
        message_id=root.findtext(f"{{{NS}}}MessageId"),
        kind="PROCEDURE_INITIALE",
        unit_code=unit.get("code") if unit is not None else None,
        tribunal_code=tribunal.get("code") if tribunal is not None else None,
    )


def read_facts(root: etree._Element) -> ProcedureFacts:
    natinf = _el(root, "Natinf")
    where = ElementLoc(natinf)
    return ProcedureFacts(
        kind=MessageKind.INITIALE,
        sent_at=_when(root, "SentAt"),
        saisine_at=_when(root, "SaisineAt"),
        no_mis_en_cause_reason="auteur_inconnu",
        infractions=[
            InfractionFact(
                id=Value("I1", where),
                natinf=Value(str(natinf.text).strip(), where),
                nature=Value(Nature.DELIT, where),
            )
        ],
    )


def map_case(root: etree._Element) -> Affaire:
    unit, tribunal = _el(root, "Unit"), _el(root, "Tribunal")
    natinf = str(_el(root, "Natinf").text).strip()
    sent_at = _when(root, "SentAt").value
    return Affaire.model_validate(
        {
            "kind": MessageKind.INITIALE,
            "tribunal_code": tribunal.get("code"),
            "tribunal_name": tribunal.text,
            "procedure_numbers": [],
            "originator": {
                "agency": AGENCY,
                "unit_code": unit.get("code"),
                "unit_name": unit.text,
                "officer_name": "unknown",
                "officer_quality": "OPJ",
            },
            "cadre": Cadre.ENQUETE_PRELIMINAIRE,
            "saisine_at": _when(root, "SaisineAt").value,
            "nature": Nature.DELIT,
            "has_scelles": False,
            "no_mis_en_cause_reason": "auteur_inconnu",
            "infractions": [{"ref": "I1", "natinf": natinf, "qualification": "-", "nature": Nature.DELIT}],
            "source": {
                "agency": AGENCY,
                "format": f"{AGENCY}/v1",
                "schema_version": root.get("schemaVersion"),
                "mapping_version": f"{AGENCY}-v1.0",
                "message_id": _el(root, "MessageId").text,
                "sent_at": sent_at,
                "software": "test",
            },
        }
    )


TEST_FORMAT = SenderFormat(
    agency=AGENCY,
    version="1",
    namespace=NS,
    root="Signalement",
    schema_path=HERE / "procedure.xsd",
    mapping_version=f"{AGENCY}-v1.0",
    read_header=read_header,
    read_facts=read_facts,
    map_case=map_case,
    transports=("rest", "soap"),
)  # ``read`` is left to its default: the mapping takes the element tree as it is

# Declaring a SOAP service is what gives an agency a SOAP endpoint; this one borrows the
# gendarmerie's intake WSDL (its request takes any procedure element of another namespace).
TEST_SOAP = SoapService(
    agency=AGENCY,
    wsdl_path=PROJECT_ROOT / "schemas" / "gendarmerie" / "v1" / "intake.wsdl",
    namespace="urn:saisine:gendarmerie:intake:v1",
)


def _message(natinf: str = "180") -> bytes:
    return MESSAGE.read_bytes().replace(b"<Natinf>180</Natinf>", f"<Natinf>{natinf}</Natinf>".encode())


@pytest.fixture
def registered(settings: Settings) -> Iterator[LiveServer]:
    """A gateway wired with every real format plus the test one, and its SOAP service."""
    container = build(
        settings,
        formats=(*registry.FORMATS, TEST_FORMAT),
        soap_services=(*registry.SOAP_SERVICES, TEST_SOAP),
    )
    try:
        with LiveServer(container) as server:
            yield server
    finally:
        container.close()


# ---------------------------------------------------------------- what the registry gives it


def test_a_registered_format_gets_its_rest_route_and_its_messages_are_stored(
    registered: LiveServer, settings: Settings
) -> None:
    """POST /api/v1/<agency>/procedures exists, accepts the message and stores it with its versions."""
    with httpx.Client(base_url=registered.url, timeout=30) as client:
        answer = client.post(f"/api/v1/{AGENCY}/procedures", content=_message(), headers=XML)
        assert answer.status_code == 202, answer.text
        receipt = client.get(answer.json()["links"]["receipt"]).json()
        assert receipt["status"] == "accepted"
        paths = client.get("/openapi.json").json()["paths"]
    assert {f"/api/v1/{AGENCY}/procedures", f"/api/v1/{AGENCY}/procedures/validate"} <= set(paths)
    container = build(settings, formats=(TEST_FORMAT,), soap_services=())
    try:
        with container.engine.connect() as conn:
            row = conn.execute(
                select(messages.c.format, messages.c.schema_version, messages.c.mapping_version)
            ).one()
    finally:
        container.close()
    assert tuple(row) == (f"{AGENCY}/v1", "1.0", f"{AGENCY}-v1.0")


def test_the_validate_route_applies_the_common_business_rules(registered: LiveServer) -> None:
    """/validate maps a valid message, and reports a rule error with the line and path of its source."""
    url = f"{registered.url}/api/v1/{AGENCY}/procedures/validate"
    valid = httpx.post(url, content=_message(), headers=XML)
    assert valid.status_code == 200, valid.text
    assert valid.json()["format"] == f"{AGENCY}/v1"
    assert valid.json()["case"]["originator"]["unit_code"] == "99001"
    invalid = httpx.post(url, content=_message("99999"), headers=XML)
    assert invalid.status_code == 422
    [error] = invalid.json()["errors"]
    assert (error["code"], error["path"], error["line"]) == ("NATINF_UNKNOWN", "/Signalement/Natinf", 9)


def test_a_declared_soap_service_gives_it_a_soap_endpoint(registered: LiveServer) -> None:
    """zeep submits the test format through /soap/<agency>, served from the declared WSDL."""
    settings = zeep.Settings(forbid_dtd=True, forbid_external=True, strict=True)
    client = zeep.Client(f"{registered.url}/soap/{AGENCY}?wsdl", settings=settings)
    answer = client.service.SubmitProcedure(_value_1=etree.fromstring(_message()))
    assert answer.status == "accepted"


def test_messages_are_counted_by_agency(registered: LiveServer) -> None:
    """The metrics label the new agency without being told about it."""
    httpx.post(f"{registered.url}/api/v1/{AGENCY}/procedures", content=_message(), headers=XML)
    httpx.post(f"{registered.url}/api/v1/{AGENCY}/procedures", content=_message("99999"), headers=XML)
    metrics = httpx.get(f"{registered.url}/metrics").text
    assert f'saisine_messages_accepted_total{{agency="{AGENCY}"}} 1.0' in metrics
    assert f'saisine_messages_rejected_total{{agency="{AGENCY}",code="NATINF_UNKNOWN"}} 1.0' in metrics


def test_another_agencys_endpoint_refuses_it_and_says_where_it_belongs(registered: LiveServer) -> None:
    """Sent to the gendarmerie, it is FORMAT_UNKNOWN with a hint naming its own service."""
    answer = httpx.post(f"{registered.url}/api/v1/gendarmerie/procedures", content=_message(), headers=XML)
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert error["code"] == "FORMAT_UNKNOWN" and f"{AGENCY}/v1" in error["message"]


def test_an_unregistered_format_has_no_route(http: httpx.Client) -> None:
    """With the real registry only, the test agency has neither a REST nor a SOAP endpoint."""
    assert http.post(f"/api/v1/{AGENCY}/procedures", content=_message(), headers=XML).status_code == 404
    assert http.get(f"/soap/{AGENCY}?wsdl").status_code == 404


def test_the_cli_lists_and_validates_a_registered_format(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`saisine formats` and `saisine validate` read the registry of adapters/registry.py."""
    monkeypatch.setattr(registry, "FORMATS", (*registry.FORMATS, TEST_FORMAT))
    runner = CliRunner()
    listed = runner.invoke(app, ["formats"])
    assert listed.exit_code == 0, listed.output
    assert f"{AGENCY}/v1" in listed.output and f"{AGENCY}-v1.0" in listed.output
    checked = runner.invoke(app, ["validate", "--json", str(MESSAGE)])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["format"] == f"{AGENCY}/v1"


def test_nothing_in_the_gateway_names_the_test_format() -> None:
    """The pipeline learnt of the format from the registry alone."""
    sources = [p for p in (PROJECT_ROOT / "gateway").rglob("*") if p.is_file() and p.suffix != ".pyc"]
    assert sources
    for path in sources:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert AGENCY not in text and NS not in text, path

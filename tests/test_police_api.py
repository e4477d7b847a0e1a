"""The police intake over real HTTP on loopback: the route the registry makes, its answers,
and the gendarmerie's services refusing a police message (police software sends REST only)."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
import zeep
from lxml import etree

from gateway.composition import Container
from tests.conftest import GENDARMERIE_V1, POLICE_V1, LiveServer

URL = "/api/v1/police/procedures"
XML = {"Content-Type": "application/xml"}
INTAKE_NS = "urn:saisine:gendarmerie:intake:v1"
TYPICAL = POLICE_V1 / "valid" / "03-typical.xml"


def police(name: str = "03-typical.xml", folder: str = "valid") -> bytes:
    return (POLICE_V1 / folder / name).read_bytes()


def with_new_id(data: bytes) -> bytes:
    """The same police procedure under another message id."""
    return re.sub(
        rb"<idMessage>[^<]*</idMessage>", f"<idMessage>{uuid.uuid4()}</idMessage>".encode(), data, count=1
    )


def test_police_routes_come_from_the_registry(http: httpx.Client) -> None:
    """Registering police/v1 made the submit and validate routes, documented with a police example."""
    paths = http.get("/openapi.json").json()["paths"]
    assert {URL, f"{URL}/validate"} <= set(paths)
    example = paths[URL]["post"]["requestBody"]["content"]["application/xml"]["example"]
    assert "urn:saisine:police:procedure:v1" in example and "procedurePolice" in example


def test_police_has_no_soap_service(http: httpx.Client) -> None:
    """The police send over plain HTTP only: there is no /soap/police."""
    assert http.get("/soap/police?wsdl").status_code == 404
    assert http.post("/soap/police", content=b"<x/>", headers={"Content-Type": "text/xml"}).status_code == 404


def test_valid_police_message_is_accepted_with_a_receipt(http: httpx.Client, container: Container) -> None:
    """202 with a receipt in the police/v1 format; the stored case is the mapped court case."""
    response = http.post(URL, content=police(), headers=XML)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "accepted" and body["repeat"] is False and body["format"] == "police/v1"
    receipt = http.get(f"/api/v1/receipts/{body['receipt_id']}").json()
    assert [e["kind"] for e in receipt["history"]] == ["received", "validated", "accepted"]
    case = container.store.case(body["receipt_id"])
    assert case is not None
    assert (
        case["originator"]["unit_code"] == "PN-69-CSP-012"
        and case["saisine_at"] == "2026-03-14T23:10:00+01:00"
    )


def test_same_police_message_twice_is_a_repeat(http: httpx.Client) -> None:
    """The same bytes again: 200 with the original receipt."""
    data = with_new_id(police("01-stupefiants-gare-part-dieu-lyon.xml"))
    first = http.post(URL, content=data, headers=XML).json()
    again = http.post(URL, content=data, headers=XML)
    assert again.status_code == 200 and again.json()["receipt_id"] == first["receipt_id"]
    assert again.json()["repeat"] is True


def test_complement_is_accepted_after_its_initial_procedure(http: httpx.Client, container: Container) -> None:
    """A complément (same service code and procedure number) is accepted and kept as one."""
    assert http.post(URL, content=police(), headers=XML).status_code == 202
    response = http.post(URL, content=police("11-complement-typical.xml"), headers=XML)
    assert response.status_code == 202, response.text
    case = container.store.case(response.json()["receipt_id"])
    assert case is not None and case["kind"] == "complement"
    assert case["procedure_numbers"] == ["00312/2026"]


def test_invalid_police_message_gets_422_with_every_error(http: httpx.Client) -> None:
    """Two schema errors of the police's own habits, each with code, line and path."""
    text = police().decode()
    broken = text.replace(
        "<saisiLe>2026-03-14T23:10:00</saisiLe>", "<saisiLe>2026-03-14T23:10:00+01:00</saisiLe>"
    )
    broken = broken.replace("<qualite>MEC</qualite>", "<qualite>MIS_EN_CAUSE</qualite>", 1)
    response = http.post(URL, content=broken.encode(), headers=XML)
    assert response.status_code == 422
    body = response.json()
    assert body["status"] == "rejected" and body["receipt_id"]
    assert {e["code"] for e in body["errors"]} == {"SCHEMA_VALUE_INVALID"}
    assert {e["path"] for e in body["errors"]} == {
        "/procedurePolice/cadre/saisiLe",
        "/procedurePolice/personnes/personnePhysique[1]/qualite",
    }
    assert all(e["line"] > 0 for e in body["errors"])


def test_nonexistent_local_time_is_422(http: httpx.Client) -> None:
    """A time in the hour skipped in spring is rejected by its own rule, located."""
    response = http.post(URL, content=police("date-local-nonexistent.xml", "invalid"), headers=XML)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["code"] == "DATE_LOCAL_NONEXISTENT"
    assert error["path"] == "/procedurePolice/faits/fin" and error["line"] > 0
    assert "2026-03-29T02:30:00" in error["message"]


def test_gendarmerie_message_on_the_police_endpoint_is_format_unknown(http: httpx.Client) -> None:
    """A gendarmerie message is not a police format; the answer says where it belongs."""
    data = (GENDARMERIE_V1 / "valid" / "01-stupefiants-controle-routier.xml").read_bytes()
    response = http.post(URL, content=data, headers=XML)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["code"] == "FORMAT_UNKNOWN"
    assert "gendarmerie/v1 message" in error["message"]


def test_police_message_on_the_gendarmerie_endpoint_is_format_unknown(http: httpx.Client) -> None:
    """The gendarmerie REST endpoint refuses a police message, naming it."""
    response = http.post("/api/v1/gendarmerie/procedures", content=police(), headers=XML)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["code"] == "FORMAT_UNKNOWN" and "police/v1 message" in error["message"]


def test_gendarmerie_soap_service_refuses_a_police_message(live: LiveServer) -> None:
    """zeep submits a police message to the gendarmerie's SOAP service: a Client fault,
    FORMAT_UNKNOWN, saying it is a police message and where it must go."""
    settings = zeep.Settings(forbid_dtd=True, forbid_external=True, strict=True)
    client = zeep.Client(f"{live.url}/soap/gendarmerie?wsdl", settings=settings)
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.SubmitProcedure(_value_1=etree.fromstring(police()))
    assert caught.value.code.endswith("Client")
    errors = caught.value.detail.findall(f".//{{{INTAKE_NS}}}error")
    assert len(errors) == 1
    fields = {etree.QName(child).localname: child.text for child in errors[0]}
    assert fields["code"] == "FORMAT_UNKNOWN"
    assert "police/v1 message" in (fields["message"] or "")
    assert fields["path"] == "/Envelope/Body/SubmitProcedureRequest/procedurePolice"

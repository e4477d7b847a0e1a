"""The delivered contracts (schemas/): they compile, zeep loads them, and zeep speaks them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import zeep
from lxml import etree
from zeep.exceptions import Fault

from gateway.court_xml import AFFAIRE_NS, affaire_to_xml
from gateway.errors import ErrorDetail
from gateway.soap import SOAP_ENV_NS, SoapFault, build_fault, build_response, read_envelope
from gateway.xmlparse import parse
from tests.test_court_xml import full_affaire, minimal_affaire

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
INTAKE_WSDL = SCHEMAS / "gendarmerie" / "v1" / "intake.wsdl"
REGISTRY_WSDL = SCHEMAS / "court" / "v1" / "registry.wsdl"
AFFAIRE_XSD = SCHEMAS / "court" / "v1" / "affaire.xsd"
INTAKE_NS = "urn:saisine:gendarmerie:intake:v1"
REGISTRY_NS = "urn:saisine:court:registry:v1"
PROCEDURE_NS = "urn:saisine:gendarmerie:procedure:v1"
XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
BODY = f"{{{SOAP_ENV_NS}}}Body"


def zeep_client(path: Path) -> zeep.Client:
    settings = zeep.Settings(forbid_dtd=True, forbid_external=True, strict=True)
    return zeep.Client(wsdl=str(path), settings=settings)


@pytest.fixture(scope="module")
def intake() -> zeep.Client:
    return zeep_client(INTAKE_WSDL)


@pytest.fixture(scope="module")
def registry() -> zeep.Client:
    return zeep_client(REGISTRY_WSDL)


def inline_schema(wsdl: Path) -> etree.XMLSchema:
    """The WSDL's inline xs:schema compiled by lxml (imports resolved beside the WSDL)."""
    schema = etree.parse(str(wsdl)).find(f"{{{WSDL}}}types/{{{XS}}}schema")
    assert schema is not None
    return etree.XMLSchema(schema)


def body_child(envelope: etree._Element) -> etree._Element:
    body = envelope.find(BODY)
    assert body is not None and len(body) == 1
    return body[0]


def operations(client: zeep.Client) -> dict[str, str]:
    """Operation name -> soapAction, as zeep read them from the WSDL."""
    return {name: op.soapaction for name, op in client.service._binding._operations.items()}


@dataclass
class FakeHttpResponse:
    """Just what zeep's binding reads from a requests.Response: no network involved."""

    content: bytes
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/xml"})
    encoding: str = "utf-8"


def zeep_reply(client: zeep.Client, operation: str, data: bytes, status: int = 200) -> object:
    binding = client.service._binding
    return binding.process_reply(client, binding.get(operation), FakeHttpResponse(data, status))


def procedure() -> etree._Element:
    root = etree.Element(f"{{{PROCEDURE_NS}}}Procedure", nsmap={None: PROCEDURE_NS})
    root.set("schemaVersion", "1.0")
    etree.SubElement(root, f"{{{PROCEDURE_NS}}}Envelope")
    return root


# ----- the files compile and load ------------------------------------------------------------


@pytest.mark.parametrize("wsdl", [INTAKE_WSDL, REGISTRY_WSDL], ids=["intake", "registry"])
def test_wsdl_inline_schemas_compile_with_lxml(wsdl: Path) -> None:
    """Each WSDL's inline schema (with the registry's import of affaire.xsd) compiles with lxml."""
    inline_schema(wsdl)


def test_affaire_xsd_compiles_with_lxml() -> None:
    """affaire.xsd compiles on its own."""
    etree.XMLSchema(etree.parse(str(AFFAIRE_XSD)))


def test_intake_wsdl_loads_in_zeep_with_its_operations(intake: zeep.Client) -> None:
    """zeep (strict, no DTD, nothing external) loads the intake WSDL and its two operations."""
    assert operations(intake) == {
        "SubmitProcedure": f"{INTAKE_NS}#SubmitProcedure",
        "GetReceiptStatus": f"{INTAKE_NS}#GetReceiptStatus",
    }
    assert intake.service._binding_options["address"] == "http://localhost:8080/soap/gendarmerie"
    assert "GendarmerieIntakeService" in intake.wsdl.services


def test_registry_wsdl_loads_in_zeep_with_its_operations(registry: zeep.Client) -> None:
    """zeep loads the registry WSDL and affaire.xsd beside it, with both operations."""
    assert operations(registry) == {
        "RegisterAffaire": f"{REGISTRY_NS}#RegisterAffaire",
        "AddComplement": f"{REGISTRY_NS}#AddComplement",
    }
    assert registry.service._binding_options["address"] == "http://localhost:8090/soap/registry"
    assert registry.get_element(f"{{{AFFAIRE_NS}}}Affaire") is not None


# ----- intake: zeep as a sender --------------------------------------------------------------


def test_zeep_puts_the_procedure_element_inside_submit_procedure(intake: zeep.Client) -> None:
    """SubmitProcedure(_value_1=<Procedure>) puts the element as the request's only child."""
    message = intake.create_message(intake.service, "SubmitProcedure", _value_1=procedure())
    request = body_child(message)
    assert request.tag == f"{{{INTAKE_NS}}}SubmitProcedureRequest"
    assert [child.tag for child in request] == [f"{{{PROCEDURE_NS}}}Procedure"]
    assert request[0].get("schemaVersion") == "1.0"


def test_zeep_requests_pass_the_gateway_envelope_checks(intake: zeep.Client) -> None:
    """What zeep sends, with its own SOAPAction, is accepted by read_envelope."""
    actions = operations(intake)
    table = {f"{name}Request": action for name, action in actions.items()}
    for name, kwargs in (
        ("SubmitProcedure", {"_value_1": procedure()}),
        ("GetReceiptStatus", {"receiptId": "r-1"}),
    ):
        message = intake.create_message(intake.service, name, **kwargs)
        root = parse(etree.tostring(message))
        call = read_envelope(root, f'"{actions[name]}"', table, namespace=INTAKE_NS)
        assert call.operation == f"{name}Request"


def receipt(tag: str, history: bool) -> etree._Element:
    def sub(parent: etree._Element, name: str, text: str) -> etree._Element:
        child = etree.SubElement(parent, f"{{{INTAKE_NS}}}{name}")
        child.text = text
        return child

    root = etree.Element(f"{{{INTAKE_NS}}}{tag}", nsmap={"gi": INTAKE_NS})
    sub(root, "receiptId", "r-1")
    sub(root, "messageId", "0b6f2a4e-3c1d-4e5f-9a7b-1c2d3e4f5a6b")
    sub(root, "status", "registered" if history else "accepted")
    sub(root, "repeat", "false")
    sub(root, "receivedAt", "2026-03-12T18:00:01+01:00")
    if history:
        sub(root, "numeroParquet", "TJ75056-2026-0000042")
    sub(sub(root, "warnings", ""), "warning", "NATINF 7875 will be withdrawn")
    if history:
        event = etree.SubElement(sub(root, "history", ""), f"{{{INTAKE_NS}}}event")
        sub(event, "at", "2026-03-12T18:05:00+01:00")
        sub(event, "kind", "registered")
        sub(event, "detail", "numero_parquet=TJ75056-2026-0000042")
    return root


def test_intake_responses_are_valid_and_read_by_zeep(intake: zeep.Client) -> None:
    """Receipts in build_response envelopes validate against the WSDL and zeep reads them."""
    schema = inline_schema(INTAKE_WSDL)
    for operation, tag, history in (
        ("SubmitProcedure", "SubmitProcedureResponse", False),
        ("GetReceiptStatus", "GetReceiptStatusResponse", True),
    ):
        payload = receipt(tag, history)
        schema.assertValid(payload)
        result = zeep_reply(intake, operation, build_response(payload))
        assert result.receiptId == "r-1"
        assert result.warnings.warning == ["NATINF 7875 will be withdrawn"]
    assert result.numeroParquet == "TJ75056-2026-0000042"
    assert result.history.event[0].kind == "registered"


def test_validation_fault_is_valid_and_read_by_zeep(intake: zeep.Client) -> None:
    """build_fault's ValidationFault validates against the WSDL; zeep raises Fault with it."""
    errors = [ErrorDetail("NATINF_UNKNOWN", "NATINF 99999 is unknown.", 12, 7, "/Envelope/Body")]
    data = build_fault(SoapFault("Client", "Message rejected", errors), INTAKE_NS)
    detail = parse(data).find(f"{BODY}/{{{SOAP_ENV_NS}}}Fault/detail")
    assert detail is not None
    inline_schema(INTAKE_WSDL).assertValid(detail[0])
    with pytest.raises(Fault) as caught:
        zeep_reply(intake, "SubmitProcedure", data, status=500)
    assert caught.value.code.endswith("Client")
    assert caught.value.message == "Message rejected"
    assert caught.value.detail.findtext(f".//{{{INTAKE_NS}}}code") == "NATINF_UNKNOWN"


def test_receipt_not_found_fault_is_valid() -> None:
    """The GetReceiptStatus fault (code only) is a valid ValidationFault too."""
    data = build_fault(SoapFault("Client", "No such receipt", code="RECEIPT_NOT_FOUND"), INTAKE_NS)
    detail = parse(data).find(f"{BODY}/{{{SOAP_ENV_NS}}}Fault/detail")
    assert detail is not None
    inline_schema(INTAKE_WSDL).assertValid(detail[0])


# ----- registry: zeep as the gateway's client ------------------------------------------------


def test_zeep_builds_register_affaire_from_court_xml(registry: zeep.Client) -> None:
    """RegisterAffaire(idempotencyKey, _value_1=affaire_to_xml(...)) makes a valid request."""
    message = registry.create_message(
        registry.service,
        "RegisterAffaire",
        idempotencyKey="0b6f2a4e-3c1d-4e5f-9a7b-1c2d3e4f5a6b",
        revision=2,
        _value_1=affaire_to_xml(full_affaire()),
    )
    request = body_child(message)
    assert [etree.QName(c).localname for c in request] == ["idempotencyKey", "revision", "Affaire"]
    assert request[2].findtext(f"{{{AFFAIRE_NS}}}tribunal_code") == "TJ75056"
    inline_schema(REGISTRY_WSDL).assertValid(request)


def test_revision_may_be_left_out(registry: zeep.Client) -> None:
    """Without revision (default 1), the request is still valid."""
    message = registry.create_message(
        registry.service, "RegisterAffaire", idempotencyKey="k-1", _value_1=affaire_to_xml(minimal_affaire())
    )
    request = body_child(message)
    assert request.find(f"{{{REGISTRY_NS}}}revision") is None
    inline_schema(REGISTRY_WSDL).assertValid(request)


def test_zeep_builds_add_complement_from_court_xml(registry: zeep.Client) -> None:
    """AddComplement(idempotencyKey, numeroParquet, _value_1=<Complement>) makes a valid request."""
    message = registry.create_message(
        registry.service,
        "AddComplement",
        idempotencyKey="k-2",
        numeroParquet="TJ75056-2026-0000042",
        _value_1=affaire_to_xml(minimal_affaire(), root="Complement"),
    )
    request = body_child(message)
    assert request[2].tag == f"{{{AFFAIRE_NS}}}Complement"
    inline_schema(REGISTRY_WSDL).assertValid(request)


def test_registry_schema_refuses_an_invalid_affaire(registry: zeep.Client) -> None:
    """The affaire slot is validated strictly: a broken Affaire fails the registry's schema."""
    affaire = affaire_to_xml(minimal_affaire())
    affaire.remove(affaire.find(f"{{{AFFAIRE_NS}}}source"))
    message = registry.create_message(
        registry.service, "RegisterAffaire", idempotencyKey="k", _value_1=affaire
    )
    assert not inline_schema(REGISTRY_WSDL).validate(body_child(message))


def test_registry_response_and_fault_are_read_by_zeep(registry: zeep.Client) -> None:
    """zeep reads a registration and turns a RegistryFault into a Fault with its reasonCode."""
    reply = (
        f'<s:Envelope xmlns:s="{SOAP_ENV_NS}"><s:Body><r:RegisterAffaireResponse xmlns:r="{REGISTRY_NS}">'
        "<r:numeroParquet>TJ75056-2026-0000042</r:numeroParquet>"
        "<r:registeredAt>2026-03-12T18:05:00+01:00</r:registeredAt><r:repeat>true</r:repeat>"
        "</r:RegisterAffaireResponse></s:Body></s:Envelope>"
    ).encode()
    result = zeep_reply(registry, "RegisterAffaire", reply)
    assert (result.numeroParquet, result.repeat) == ("TJ75056-2026-0000042", True)
    fault = (
        f'<s:Envelope xmlns:s="{SOAP_ENV_NS}"><s:Body><s:Fault><faultcode>s:Client</faultcode>'
        f'<faultstring>Unknown tribunal</faultstring><detail><r:RegistryFault xmlns:r="{REGISTRY_NS}">'
        "<r:reasonCode>UNKNOWN_TRIBUNAL</r:reasonCode><r:reason>TJ99999</r:reason>"
        "</r:RegistryFault></detail></s:Fault></s:Body></s:Envelope>"
    ).encode()
    with pytest.raises(Fault) as caught:
        zeep_reply(registry, "RegisterAffaire", fault, status=500)
    assert caught.value.detail.findtext(f".//{{{REGISTRY_NS}}}reasonCode") == "UNKNOWN_TRIBUNAL"

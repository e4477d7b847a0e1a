"""SOAP 1.1 request checks, responses and faults (gateway/soap.py)."""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.errors import ErrorDetail
from gateway.soap import (
    SOAP_ENV_NS,
    SoapFault,
    build_fault,
    build_response,
    read_envelope,
    wsdl_with_address,
)
from gateway.xmlparse import parse

INTAKE_NS = "urn:saisine:gendarmerie:intake:v1"
PROCEDURE_NS = "urn:saisine:gendarmerie:procedure:v1"
WSA_NS = "http://www.w3.org/2005/08/addressing"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
OPERATIONS = {
    "SubmitProcedureRequest": f"{INTAKE_NS}#SubmitProcedure",
    "GetReceiptStatusRequest": f"{INTAKE_NS}#GetReceiptStatus",
}


def env(tag: str, ns: str = SOAP_ENV_NS) -> str:
    return f"{{{ns}}}{tag}"


def submit_request() -> etree._Element:
    request = etree.Element(f"{{{INTAKE_NS}}}SubmitProcedureRequest", nsmap={"gi": INTAKE_NS})
    etree.SubElement(request, f"{{{PROCEDURE_NS}}}Procedure", schemaVersion="1.0")
    return request


def envelope(
    *body_children: etree._Element,
    headers: list[etree._Element] | None = None,
    ns: str = SOAP_ENV_NS,
    body: bool = True,
) -> etree._Element:
    """An envelope built with lxml, serialized and read back through the hardened parser."""
    root = etree.Element(env("Envelope", ns), nsmap={"soapenv": ns})
    if headers is not None:
        header = etree.SubElement(root, env("Header", ns))
        header.extend(headers)
    if body:
        etree.SubElement(root, env("Body", ns)).extend(body_children)
    return parse(etree.tostring(root))


def read(root: etree._Element, action: str | None = None, **kwargs: str) -> object:
    return read_envelope(root, action, OPERATIONS, **kwargs)


def fault_of(root: etree._Element, action: str | None = None, **kwargs: str) -> SoapFault:
    with pytest.raises(SoapFault) as caught:
        read_envelope(root, action, OPERATIONS, **kwargs)
    return caught.value


# ----- read_envelope -------------------------------------------------------------------------


def test_valid_request_gives_operation_body_child_and_headers() -> None:
    """A well-formed request yields the Body child's local name, the element and the headers."""
    reply_to = etree.Element(f"{{{WSA_NS}}}MessageID")
    reply_to.text = "urn:uuid:1"
    call = read_envelope(
        envelope(submit_request(), headers=[reply_to]),
        f'"{INTAKE_NS}#SubmitProcedure"',
        OPERATIONS,
    )
    assert call.operation == "SubmitProcedureRequest"
    assert call.body_child.tag == f"{{{INTAKE_NS}}}SubmitProcedureRequest"
    assert call.body_child[0].tag == f"{{{PROCEDURE_NS}}}Procedure"
    assert [h.tag for h in call.headers] == [f"{{{WSA_NS}}}MessageID"]


def test_root_that_is_not_an_envelope_is_a_client_fault() -> None:
    """A bare procedure (no Envelope) is refused with SOAP_NOT_ENVELOPE."""
    fault = fault_of(parse(etree.tostring(submit_request())))
    assert (fault.faultcode, fault.errors[0].code) == ("Client", "SOAP_NOT_ENVELOPE")


def test_soap12_envelope_is_a_version_mismatch() -> None:
    """An Envelope in the SOAP 1.2 namespace gets SOAP 1.1's VersionMismatch fault."""
    fault = fault_of(envelope(submit_request(), ns=SOAP12_NS))
    assert (fault.faultcode, fault.code) == ("VersionMismatch", "SOAP_VERSION_MISMATCH")


def test_envelope_without_body_is_a_client_fault() -> None:
    """An Envelope with only a Header is refused with SOAP_BODY_MISSING."""
    fault = fault_of(envelope(headers=[], body=False))
    assert (fault.faultcode, fault.errors[0].code) == ("Client", "SOAP_BODY_MISSING")


def test_element_after_body_is_a_client_fault() -> None:
    """Nothing may follow the Body (WS-I BP R1011)."""
    root = envelope(submit_request())
    etree.SubElement(root, "{urn:x}Trailer")
    fault = fault_of(root)
    assert (fault.faultcode, fault.errors[0].code) == ("Client", "SOAP_ENVELOPE_INVALID")


def test_empty_body_is_a_client_fault() -> None:
    """A Body with no element child (a comment does not count) is refused with SOAP_BODY_EMPTY."""
    root = envelope()
    root[0].append(etree.Comment("nothing here"))
    fault = fault_of(root)
    assert (fault.faultcode, fault.errors[0].code) == ("Client", "SOAP_BODY_EMPTY")
    assert fault.errors[0].path == "/Envelope/Body"


def test_two_body_children_are_a_client_fault() -> None:
    """Exactly one Body child: a second one is refused with SOAP_BODY_MULTIPLE, located."""
    fault = fault_of(envelope(submit_request(), submit_request()))
    assert (fault.faultcode, fault.errors[0].code) == ("Client", "SOAP_BODY_MULTIPLE")
    assert fault.errors[0].line == 1
    assert fault.errors[0].path == "/Envelope/Body/SubmitProcedureRequest"


def test_unknown_operation_is_a_client_fault() -> None:
    """A Body child that is not one of the operations is refused with SOAP_OPERATION_UNKNOWN."""
    fault = fault_of(envelope(etree.Element(f"{{{INTAKE_NS}}}DeleteEverything")))
    assert (fault.faultcode, fault.errors[0].code) == ("Client", "SOAP_OPERATION_UNKNOWN")


def test_operation_in_another_namespace_is_refused_when_namespace_is_given() -> None:
    """With namespace=..., a Body child of the right local name in another namespace is refused."""
    other = etree.Element("{urn:other}SubmitProcedureRequest")
    assert read(envelope(other)) is not None  # local names only without namespace
    fault = fault_of(envelope(other), namespace=INTAKE_NS)
    assert fault.errors[0].code == "SOAP_OPERATION_UNKNOWN"


@pytest.mark.parametrize(
    "action",
    [None, "", '""', f"{INTAKE_NS}#SubmitProcedure", f'"{INTAKE_NS}#SubmitProcedure"'],
)
def test_absent_empty_or_matching_soap_action_is_accepted(action: str | None) -> None:
    """No SOAPAction, an empty one or the operation's own (quoted or not) is accepted."""
    call = read_envelope(envelope(submit_request()), action, OPERATIONS)
    assert call.operation == "SubmitProcedureRequest"


@pytest.mark.parametrize(
    "action", [f"{INTAKE_NS}#GetReceiptStatus", '"urn:elsewhere#Delete"', "SubmitProcedure"]
)
def test_contradicting_soap_action_is_a_client_fault(action: str) -> None:
    """A non-empty SOAPAction naming another operation than the Body's is SOAP_ACTION_MISMATCH."""
    fault = fault_of(envelope(submit_request()), action)
    assert (fault.faultcode, fault.code) == ("Client", "SOAP_ACTION_MISMATCH")
    assert fault.errors[0].code == "SOAP_ACTION_MISMATCH"


@pytest.mark.parametrize("value", ["1", "true", " 1 "])
def test_mandatory_header_is_a_must_understand_fault(value: str) -> None:
    """A Header block with soapenv:mustUnderstand 1/true gets a MustUnderstand fault."""
    block = etree.Element("{urn:vendor}Security")
    block.set(env("mustUnderstand"), value)
    fault = fault_of(envelope(submit_request(), headers=[block]))
    assert (fault.faultcode, fault.code) == ("MustUnderstand", "SOAP_MUST_UNDERSTAND")
    assert "{urn:vendor}Security" in fault.faultstring


def test_optional_header_is_accepted() -> None:
    """A Header block with mustUnderstand="0" (or none) does not stop the request."""
    block = etree.Element("{urn:vendor}Trace")
    block.set(env("mustUnderstand"), "0")
    call = read_envelope(envelope(submit_request(), headers=[block]), None, OPERATIONS)
    assert len(call.headers) == 1


def test_ws_addressing_reply_to_is_ignored() -> None:
    """wsa:ReplyTo and wsa:FaultTo are accepted but never acted upon: the request reads as usual."""
    reply_to = etree.Element(f"{{{WSA_NS}}}ReplyTo")
    etree.SubElement(reply_to, f"{{{WSA_NS}}}Address").text = "http://attacker.example/"
    fault_to = etree.Element(f"{{{WSA_NS}}}FaultTo")
    etree.SubElement(fault_to, f"{{{WSA_NS}}}Address").text = "http://attacker.example/"
    call = read_envelope(envelope(submit_request(), headers=[reply_to, fault_to]), None, OPERATIONS)
    assert call.operation == "SubmitProcedureRequest"


# ----- responses and faults ------------------------------------------------------------------


def test_build_response_wraps_the_payload_in_a_soap11_body() -> None:
    """The payload becomes the only Body child of a SOAP 1.1 Envelope, and is left untouched."""
    payload = etree.Element(f"{{{INTAKE_NS}}}SubmitProcedureResponse")
    etree.SubElement(payload, f"{{{INTAKE_NS}}}receiptId").text = "r-1"
    data = build_response(payload)
    root = parse(data)
    assert root.tag == env("Envelope")
    (body,) = root
    assert body.tag == env("Body")
    assert body[0].findtext(f"{{{INTAKE_NS}}}receiptId") == "r-1"
    assert payload.getparent() is None


def fault_parts(data: bytes) -> tuple[str, str, etree._Element | None]:
    fault = parse(data).find(f"{env('Body')}/{env('Fault')}")
    assert fault is not None
    return (
        fault.findtext("faultcode") or "",
        fault.findtext("faultstring") or "",
        fault.find("detail"),
    )


def test_build_fault_carries_every_error_in_a_validation_fault() -> None:
    """A Client fault's detail is a ValidationFault with status rejected and one error each."""
    errors = [
        ErrorDetail("NATINF_UNKNOWN", "NATINF 99999 is unknown.", 12, 7, "/Envelope/Body/X/Natinf"),
        ErrorDetail("SCHEMA_INVALID", "Bad."),
    ]
    code, text, detail = fault_parts(build_fault(SoapFault("Client", "Rejected", errors), INTAKE_NS))
    assert (code, text) == ("soapenv:Client", "Rejected")
    assert detail is not None
    (vf,) = detail
    assert vf.tag == f"{{{INTAKE_NS}}}ValidationFault"
    assert vf.findtext(f"{{{INTAKE_NS}}}status") == "rejected"
    first, second = vf.iterfind(f"{{{INTAKE_NS}}}error")
    assert [c.text for c in first] == [
        "NATINF_UNKNOWN",
        "NATINF 99999 is unknown.",
        "12",
        "7",
        "/Envelope/Body/X/Natinf",
    ]
    assert [etree.QName(c).localname for c in second] == ["code", "message"]


def test_build_fault_uses_the_fault_code_when_there_are_no_errors() -> None:
    """A fault with only a code reports it as its single error, message = faultstring."""
    fault = SoapFault("Client", "No such receipt", code="RECEIPT_NOT_FOUND")
    _, _, detail = fault_parts(build_fault(fault, INTAKE_NS))
    assert detail is not None
    error = detail[0].find(f"{{{INTAKE_NS}}}error")
    assert error is not None
    assert error.findtext(f"{{{INTAKE_NS}}}code") == "RECEIPT_NOT_FOUND"
    assert error.findtext(f"{{{INTAKE_NS}}}message") == "No such receipt"


def test_server_fault_has_status_error() -> None:
    """A Server fault says the sender may retry: status error, a default code."""
    code, _, detail = fault_parts(build_fault(SoapFault("Server", "Store unavailable"), INTAKE_NS))
    assert code == "soapenv:Server"
    assert detail is not None
    assert detail[0].findtext(f"{{{INTAKE_NS}}}status") == "error"
    assert detail[0].findtext(f"{{{INTAKE_NS}}}error/{{{INTAKE_NS}}}code") == "SOAP_SERVER_ERROR"


def test_must_understand_fault_has_no_detail() -> None:
    """SOAP 1.1 section 4.4: header errors carry no detail; the faultstring names the header."""
    block = etree.Element("{urn:vendor}Security")
    block.set(env("mustUnderstand"), "1")
    fault = fault_of(envelope(submit_request(), headers=[block]))
    code, text, detail = fault_parts(build_fault(fault, INTAKE_NS))
    assert (code, detail) == ("soapenv:MustUnderstand", None)
    assert "Security" in text


# ----- WSDL address --------------------------------------------------------------------------

WSDL = b"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" targetNamespace="urn:t">
  <wsdl:service name="S"><wsdl:port name="P" binding="b">
    <soap:address location="http://localhost:8080/soap/gendarmerie"/>
  </wsdl:port></wsdl:service>
</wsdl:definitions>"""


def test_wsdl_with_address_rewrites_the_port_location() -> None:
    """The served WSDL advertises the gateway's public address."""
    data = wsdl_with_address(WSDL, "https://saisine.example.fr/soap/gendarmerie")
    address = etree.fromstring(data).find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address is not None
    assert address.get("location") == "https://saisine.example.fr/soap/gendarmerie"


@pytest.mark.parametrize("address", ["javascript:alert(1)", "file:///etc/passwd", "/soap/x", ""])
def test_wsdl_with_address_refuses_a_non_http_address(address: str) -> None:
    """Only an absolute http(s) URL can be advertised."""
    with pytest.raises(ValueError, match="http"):
        wsdl_with_address(WSDL, address)

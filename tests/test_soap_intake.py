"""The gendarmerie SOAP service, called by zeep as a real client over HTTP on loopback."""

from __future__ import annotations

import httpx
import pytest
import zeep
from lxml import etree

from tests.conftest import GENDARMERIE_V1, LiveServer, with_new_id

SETTINGS = zeep.Settings(forbid_dtd=True, forbid_external=True, strict=True)
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
INTAKE_NS = "urn:saisine:gendarmerie:intake:v1"


def sample() -> bytes:
    return sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))[0].read_bytes()


@pytest.fixture
def client(live: LiveServer) -> zeep.Client:
    """zeep loads the WSDL the gateway serves, with the address rewritten to this server."""
    return zeep.Client(f"{live.url}/soap/gendarmerie?wsdl", settings=SETTINGS)


def fault_errors(fault: zeep.exceptions.Fault) -> list[dict[str, str]]:
    errors = fault.detail.findall(f".//{{{INTAKE_NS}}}error")
    return [{etree.QName(c).localname: c.text for c in error} for error in errors]


def test_served_wsdl_carries_this_servers_address(live: LiveServer) -> None:
    """GET ?wsdl answers the WSDL with the soap:address of the server that served it."""
    wsdl = httpx.get(f"{live.url}/soap/gendarmerie?wsdl").text
    assert f'location="{live.url}/soap/gendarmerie"' in wsdl


def test_zeep_submits_a_valid_procedure_and_gets_a_receipt(client: zeep.Client) -> None:
    """SubmitProcedure answers accepted with a receipt id; GetReceiptStatus shows its history."""
    answer = client.service.SubmitProcedure(_value_1=etree.fromstring(sample()))
    assert answer.status == "accepted" and answer.repeat is False
    status = client.service.GetReceiptStatus(receiptId=answer.receiptId)
    assert status.status == "accepted"
    assert [e.kind for e in status.history.event] == ["received", "validated", "accepted"]


def test_zeep_gets_a_fault_with_every_error(client: zeep.Client) -> None:
    """An invalid procedure gives a Client fault whose detail lists each error with code and line."""
    text = sample().decode().replace("<MessageType>PROCEDURE_INITIALE", "<MessageType>AUTRE", 1)
    text = text.replace("<ProcedureNumber>", "<ProcedureNumber>X", 1)
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.SubmitProcedure(_value_1=etree.fromstring(text.encode()))
    assert caught.value.code.endswith("Client")
    errors = fault_errors(caught.value)
    assert len(errors) == 2
    assert {e["code"] for e in errors} == {"SCHEMA_VALUE_INVALID"}
    assert all(int(e["line"]) > 0 and e["path"].startswith("/Envelope/Body/") for e in errors), errors


def test_same_procedure_twice_is_a_repeat(client: zeep.Client) -> None:
    """The same message again through SOAP returns the original receipt, flagged."""
    data = with_new_id(sample())
    first = client.service.SubmitProcedure(_value_1=etree.fromstring(data))
    again = client.service.SubmitProcedure(_value_1=etree.fromstring(data))
    assert again.receiptId == first.receiptId and again.repeat is True


def test_unknown_receipt_is_a_fault(client: zeep.Client) -> None:
    """GetReceiptStatus for an id that does not exist."""
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.GetReceiptStatus(receiptId="00000000-0000-0000-0000-000000000000")
    assert fault_errors(caught.value)[0]["code"] == "RECEIPT_NOT_FOUND"


def _envelope(body: str, header: str = "") -> bytes:
    return (
        f'<s:Envelope xmlns:s="{SOAP_NS}" xmlns:i="{INTAKE_NS}">'
        f"<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _post(live: LiveServer, data: bytes, action: str = "") -> httpx.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'}
    return httpx.post(f"{live.url}/soap/gendarmerie", content=data, headers=headers)


def test_two_body_children_are_refused(live: LiveServer) -> None:
    """Exactly one Body child: a second one is a Client fault."""
    request = "<i:GetReceiptStatusRequest><i:receiptId>x</i:receiptId></i:GetReceiptStatusRequest>"
    response = _post(live, _envelope(request * 2))
    assert response.status_code == 500 and b"SOAP_BODY_MULTIPLE" in response.content


def test_contradicting_soap_action_is_refused(live: LiveServer) -> None:
    """The Body decides the operation; a SOAPAction naming another one is refused."""
    request = "<i:GetReceiptStatusRequest><i:receiptId>x</i:receiptId></i:GetReceiptStatusRequest>"
    response = _post(live, _envelope(request), action=f"{INTAKE_NS}#SubmitProcedure")
    assert b"SOAP_ACTION_MISMATCH" in response.content


def test_unknown_must_understand_header_is_a_fault(live: LiveServer) -> None:
    """A header we must understand but do not: a MustUnderstand fault."""
    header = '<x:Secret xmlns:x="urn:x" s:mustUnderstand="1">1</x:Secret>'
    request = "<i:GetReceiptStatusRequest><i:receiptId>x</i:receiptId></i:GetReceiptStatusRequest>"
    response = _post(live, _envelope(request, header))
    assert b"MustUnderstand" in response.content


def test_reply_to_is_never_followed(live: LiveServer) -> None:
    """WS-Addressing ReplyTo to an internal address: the answer comes back on the same connection."""
    header = (
        '<a:ReplyTo xmlns:a="http://www.w3.org/2005/08/addressing">'
        "<a:Address>http://127.0.0.1:9/internal</a:Address></a:ReplyTo>"
    )
    request = "<i:GetReceiptStatusRequest><i:receiptId>x</i:receiptId></i:GetReceiptStatusRequest>"
    response = _post(live, _envelope(request, header))
    assert b"RECEIPT_NOT_FOUND" in response.content


def test_hostile_envelope_is_refused_by_the_hardened_parser(live: LiveServer) -> None:
    """A DOCTYPE in a SOAP request is refused like in a REST body, and kept as a rejection."""
    data = b'<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + _envelope("&x;")
    response = _post(live, data)
    assert response.status_code == 500 and b"XML_DOCTYPE_FORBIDDEN" in response.content

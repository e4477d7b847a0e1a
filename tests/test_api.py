"""The REST intake over real HTTP on loopback: answers, receipts, repeats, conflicts."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from gateway.composition import Container, build
from gateway.settings import Settings
from gateway.store.engine import make_engine
from tests.conftest import GENDARMERIE_V1, LiveServer

URL = "/api/v1/gendarmerie/procedures"
XML = {"Content-Type": "application/xml"}


def valid_files() -> list[Path]:
    return sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))


def first_valid() -> bytes:
    return valid_files()[0].read_bytes()


def test_valid_message_is_accepted_with_a_receipt(http: httpx.Client) -> None:
    """202 with the receipt id, the message id and status accepted."""
    response = http.post(URL, content=first_valid(), headers=XML)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "accepted" and body["repeat"] is False
    assert uuid.UUID(body["receipt_id"]) and uuid.UUID(body["message_id"])
    assert body["format"] == "gendarmerie/v1"


def test_receipt_shows_status_and_history(http: httpx.Client) -> None:
    """GET /api/v1/receipts/{id} gives the status and each step so far."""
    receipt_id = http.post(URL, content=first_valid(), headers=XML).json()["receipt_id"]
    receipt = http.get(f"/api/v1/receipts/{receipt_id}")
    assert receipt.status_code == 200
    body = receipt.json()
    assert body["status"] == "accepted"
    assert [e["kind"] for e in body["history"]] == ["received", "validated", "accepted"]


def test_unknown_receipt_is_404(http: httpx.Client) -> None:
    """A receipt id that does not exist."""
    assert http.get(f"/api/v1/receipts/{uuid.uuid4()}").status_code == 404


def test_invalid_message_gets_422_with_every_error(http: httpx.Client) -> None:
    """Two independent schema errors are both reported, each with code, line and path."""
    text = first_valid().decode()
    broken = text.replace("<MessageType>PROCEDURE_INITIALE", "<MessageType>PROCEDURE_INCONNUE", 1)
    broken = broken.replace("<ProcedureNumber>", "<ProcedureNumber>X", 1)
    response = http.post(URL, content=broken.encode(), headers=XML)
    assert response.status_code == 422
    body = response.json()
    assert body["status"] == "rejected"
    assert len(body["errors"]) >= 2
    for error in body["errors"]:
        assert set(error) == {"code", "message", "line", "column", "path"}
        assert error["code"] == "SCHEMA_VALUE_INVALID" and error["line"] > 0
    paths = {e["path"] for e in body["errors"]}
    assert "/Procedure/Envelope/MessageType" in paths
    assert "/Procedure/Identification/ProcedureNumber" in paths


def test_rejected_message_is_kept_with_its_errors(http: httpx.Client, container: Container) -> None:
    """Nothing is lost: a rejection has a receipt, and the raw bytes are stored."""
    data = b"<Procedure xmlns='urn:saisine:gendarmerie:procedure:v1'><oops></Procedure>"
    response = http.post(URL, content=data, headers=XML)
    assert response.status_code == 400
    receipt_id = response.json()["receipt_id"]
    assert http.get(f"/api/v1/receipts/{receipt_id}").json()["status"] == "rejected"
    assert container.store.raw(receipt_id) == data
    assert container.store.case(receipt_id) is None


def test_not_well_formed_is_400(http: httpx.Client) -> None:
    """Not XML at all."""
    response = http.post(URL, content=b"hello", headers=XML)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "XML_NOT_WELL_FORMED"


def test_wrong_content_type_is_415(http: httpx.Client) -> None:
    """JSON is not a procedure message."""
    response = http.post(URL, content=b'{"a": 1}', headers={"Content-Type": "application/json"})
    assert response.status_code == 415
    assert response.json()["errors"][0]["code"] == "CONTENT_TYPE_UNSUPPORTED"


def test_empty_body_is_400(http: httpx.Client) -> None:
    """An empty body is refused before parsing."""
    response = http.post(URL, content=b"", headers=XML)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "BODY_EMPTY"


def test_other_agency_namespace_is_format_unknown(http: httpx.Client) -> None:
    """A document in a namespace no format of this agency has."""
    response = http.post(URL, content=b"<Procedure xmlns='urn:other'/>", headers=XML)
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "FORMAT_UNKNOWN"


def test_same_bytes_again_return_the_original_receipt(http: httpx.Client) -> None:
    """A repeat is 200 with the original receipt, flagged, and is recorded in its history."""
    first = http.post(URL, content=first_valid(), headers=XML).json()
    again = http.post(URL, content=first_valid(), headers=XML)
    assert again.status_code == 200
    assert again.json()["receipt_id"] == first["receipt_id"]
    assert again.json()["repeat"] is True
    history = http.get(f"/api/v1/receipts/{first['receipt_id']}").json()["history"]
    assert history[-1]["kind"] == "repeat_received"


def test_same_id_with_other_bytes_is_409_and_keeps_the_original(
    http: httpx.Client, container: Container
) -> None:
    """A conflict is refused with 409; the original message and case are untouched."""
    original = first_valid()
    first = http.post(URL, content=original, headers=XML).json()
    changed = original.replace(b"</Summary>", b" (modifi\xc3\xa9)</Summary>", 1)
    assert changed != original
    response = http.post(URL, content=changed, headers=XML)
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "MESSAGE_ID_CONFLICT"
    assert response.json()["receipt_id"] != first["receipt_id"]
    assert container.store.raw(first["receipt_id"]) == original
    assert http.get(f"/api/v1/receipts/{first['receipt_id']}").json()["status"] == "accepted"


def test_body_over_the_cap_is_413(tmp_path: Path) -> None:
    """The size cap is enforced while reading, before parsing; the refusal is recorded."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'cap.db'}", max_body_bytes=1000)
    wired = build(settings)
    try:
        with LiveServer(wired) as server, httpx.Client(base_url=server.url) as client:
            response = client.post(URL, content=b"<r>" + b"x" * 5000 + b"</r>", headers=XML)
            assert response.status_code == 413
            assert response.json()["errors"][0]["code"] == "BODY_TOO_LARGE"

            def chunks():  # no Content-Length: the cap must hold on a stream too
                for _ in range(10):
                    yield b"x" * 500

            streamed = client.post(URL, content=chunks(), headers=XML)
            assert streamed.status_code == 413
            receipt = client.get(f"/api/v1/receipts/{streamed.json()['receipt_id']}").json()
            assert receipt["status"] == "rejected"
    finally:
        wired.close()


def test_hostile_documents_get_400_quickly(http: httpx.Client) -> None:
    """Billion laughs, external entity, 30,000-level nesting: 400 each, with its code."""
    bomb = b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><r>&b;</r>'
    xxe = b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    deep = b"<a>" * 30_000 + b"</a>" * 30_000
    for data, code in (
        (bomb, "XML_DOCTYPE_FORBIDDEN"),
        (xxe, "XML_DOCTYPE_FORBIDDEN"),
        (deep, "XML_TOO_DEEP"),
    ):
        response = http.post(URL, content=data, headers=XML)
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == code
        assert "root:" not in response.text


def test_health_and_readiness(http: httpx.Client) -> None:
    """healthz answers; readyz checks the store and the loaded schemas."""
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["checks"]["store"] == "ok"
    assert "gendarmerie/v1" in ready["checks"]["formats"]


def test_readiness_fails_when_the_store_is_gone(container: Container) -> None:
    """readyz is 503 when the database cannot be reached."""
    container.store.engine = make_engine("sqlite:////nonexistent/dir/x.db")
    with LiveServer(container) as server, httpx.Client(base_url=server.url) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["store"].startswith("unreachable")


def test_openapi_documents_the_endpoints_with_examples(http: httpx.Client) -> None:
    """The REST contract is published with an XML request example and the error shape."""
    spec = http.get("/openapi.json").json()
    operation = spec["paths"][URL]["post"]
    assert "example" in operation["requestBody"]["content"]["application/xml"]
    assert {"202", "200", "400", "409", "413", "415", "422"} <= set(operation["responses"])
    assert "/api/v1/receipts/{receipt_id}" in spec["paths"]


@pytest.mark.parametrize("path", valid_files(), ids=lambda p: p.name)
def test_every_valid_fixture_is_accepted_over_http(http: httpx.Client, path: Path) -> None:
    """Each valid sample goes through the real server."""
    response = http.post(URL, content=path.read_bytes(), headers=XML)
    assert response.status_code == 202, response.text

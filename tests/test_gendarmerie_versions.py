"""Gendarmerie v1 and v2 side by side: the namespace chooses the version, each stored message
and case records its schema and mapping versions, and deprecating v1 warns v1 senders only,
over REST and SOAP alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
import zeep
from lxml import etree
from sqlalchemy import select

from gateway.composition import Container, build, build_checker
from gateway.intake import Checker
from gateway.settings import Settings
from gateway.store.tables import cases, messages
from gateway.xmlparse import parse
from tests.conftest import FIXTURES, GENDARMERIE_V1, LiveServer, with_new_id

GENDARMERIE_V2 = FIXTURES / "gendarmerie" / "v2"
V1_TYPICAL = GENDARMERIE_V1 / "valid" / "03-typical.xml"
V2_TYPICAL = GENDARMERIE_V2 / "valid" / "03-typical.xml"
NS1, NS2 = "urn:saisine:gendarmerie:procedure:v1", "urn:saisine:gendarmerie:procedure:v2"
XML = {"Content-Type": "application/xml"}
END_OF_V1 = date(2027, 6, 30)


@pytest.fixture(scope="module")
def checker() -> Checker:
    return build_checker(Settings())


def _with_witness_as_civilement_responsable(path: Path) -> bytes:
    text = path.read_text(encoding="utf-8")
    witness = '<NaturalPerson id="P4">\n      <Role>TEMOIN</Role>'
    assert witness in text
    return text.replace(witness, witness.replace("TEMOIN", "CIVILEMENT_RESPONSABLE")).encode()


def test_the_namespace_chooses_the_version(checker: Checker) -> None:
    """The same procedure is read as v1 or v2 by its namespace, on the same agency."""
    v1 = checker.evaluate(V1_TYPICAL.read_bytes(), "gendarmerie")
    v2 = checker.evaluate(V2_TYPICAL.read_bytes(), "gendarmerie")
    assert v1.fmt is not None and v1.fmt.name == "gendarmerie/v1" and v1.accepted
    assert v2.fmt is not None and v2.fmt.name == "gendarmerie/v2" and v2.accepted


def test_a_v2_body_under_the_v1_namespace_is_checked_against_v1(checker: Checker) -> None:
    """The namespace decides, not the content: v1's schema refuses v2's Service and AvisParquet."""
    text = V2_TYPICAL.read_text(encoding="utf-8").replace(NS2, NS1).replace('"2.0"', '"1.0"', 1)
    verdict = checker.evaluate(text.encode(), "gendarmerie")
    assert verdict.fmt is not None and verdict.fmt.name == "gendarmerie/v1"
    assert verdict.codes == ["SCHEMA_ELEMENT_UNEXPECTED"]
    paths = {e.path for e in verdict.errors}
    assert {"/Procedure/Identification/Service", "/Procedure/AvisParquet"} <= paths, paths


def test_the_grown_role_list_is_v2_only(checker: Checker) -> None:
    """CIVILEMENT_RESPONSABLE is refused by v1's schema and mapped to the court role by v2."""
    v1 = checker.evaluate(_with_witness_as_civilement_responsable(V1_TYPICAL), "gendarmerie")
    assert v1.codes == ["SCHEMA_VALUE_INVALID"]
    v2 = checker.evaluate(_with_witness_as_civilement_responsable(V2_TYPICAL), "gendarmerie")
    assert v2.case is not None, v2.errors
    assert {p.ref: p.role.value for p in v2.case.parties}["P4"] == "civilement_responsable"


def test_the_v2_header_is_read_under_its_new_names(checker: Checker) -> None:
    """The unit code, which links a complément to its initial message, comes from Service/Code."""
    verdict = checker.evaluate(V2_TYPICAL.read_bytes(), "gendarmerie")
    assert verdict.header.unit_code == "00691234"
    assert verdict.header.procedure_number == "00312/2026"


def test_each_stored_message_and_case_records_its_schema_and_mapping_versions(container: Container) -> None:
    """messages and cases rows carry the versions of the format that read them; a rejected
    message keeps its schema version but has no mapping version (it was never mapped)."""
    rejected = V2_TYPICAL.read_text(encoding="utf-8").replace("<Mode>TELEPHONE</Mode>", "<Mode>FAX</Mode>")
    sent = {
        "v1": container.intake.submit("gendarmerie", V1_TYPICAL.read_bytes(), "rest"),
        "v2": container.intake.submit("gendarmerie", V2_TYPICAL.read_bytes(), "rest"),
        "rejected": container.intake.submit("gendarmerie", with_new_id(rejected.encode()), "rest"),
    }
    assert [o.http_status for o in sent.values()] == [202, 202, 422]
    columns = (messages.c.format, messages.c.schema_version, messages.c.mapping_version)
    with container.engine.connect() as conn:
        stored = {
            name: conn.execute(
                select(*columns).where(messages.c.receipt_id == outcome.receipt.receipt_id)
            ).one()
            for name, outcome in sent.items()
        }
        versions = select(messages.c.format, cases.c.schema_version, cases.c.mapping_version)
        kept = sorted(
            tuple(row)
            for row in conn.execute(versions.join_from(messages, cases, cases.c.message_pk == messages.c.id))
        )
    assert tuple(stored["v1"]) == ("gendarmerie/v1", "1.0", "gendarmerie-v1.0")
    assert tuple(stored["v2"]) == ("gendarmerie/v2", "2.0", "gendarmerie-v2.0")
    assert tuple(stored["rejected"]) == ("gendarmerie/v2", "2.0", None)
    assert kept == [  # one case per accepted message, none for the rejected one
        ("gendarmerie/v1", "1.0", "gendarmerie-v1.0"),
        ("gendarmerie/v2", "2.0", "gendarmerie-v2.0"),
    ]


# ---------------------------------------------------------------- deprecation


@pytest.fixture
def deprecated_v1(tmp_path: Path) -> Iterator[LiveServer]:
    """A live gateway configured with SAISINE_DEPRECATED_FORMATS={"gendarmerie/v1": "2027-06-30"}."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'deprecated.db'}",
        deprecated_formats={"gendarmerie/v1": END_OF_V1},
    )
    container = build(settings)
    try:
        with LiveServer(container) as live:
            yield live
    finally:
        container.close()


def _is_v1_notice(warnings: list[str]) -> bool:
    return (
        len(warnings) == 1
        and warnings[0].startswith("FORMAT_DEPRECATED: gendarmerie/v1")
        and END_OF_V1.isoformat() in warnings[0]
    )


def test_deprecated_v1_warns_over_rest_and_v2_does_not(deprecated_v1: LiveServer) -> None:
    """Both are accepted; only the v1 receipt (now and later) carries the end-of-support date."""
    with httpx.Client(base_url=deprecated_v1.url, timeout=30) as client:
        v1 = client.post("/api/v1/gendarmerie/procedures", content=V1_TYPICAL.read_bytes(), headers=XML)
        v2 = client.post("/api/v1/gendarmerie/procedures", content=V2_TYPICAL.read_bytes(), headers=XML)
        assert (v1.status_code, v2.status_code) == (202, 202), (v1.text, v2.text)
        assert _is_v1_notice(v1.json()["warnings"])
        assert v2.json()["warnings"] == []
        assert client.get(v1.json()["links"]["receipt"]).json()["warnings"] == v1.json()["warnings"]
        assert client.get(v2.json()["links"]["receipt"]).json()["warnings"] == []
        checked = client.post(
            "/api/v1/gendarmerie/procedures/validate", content=V1_TYPICAL.read_bytes(), headers=XML
        )
        assert checked.status_code == 200 and _is_v1_notice(checked.json()["warnings"])


def test_deprecated_v1_warns_over_soap_and_v2_does_not(deprecated_v1: LiveServer) -> None:
    """zeep, as a unit's software: the SOAP receipt's warnings element is there for v1 only."""
    settings = zeep.Settings(forbid_dtd=True, forbid_external=True, strict=True)
    client = zeep.Client(f"{deprecated_v1.url}/soap/gendarmerie?wsdl", settings=settings)
    v1 = client.service.SubmitProcedure(_value_1=etree.fromstring(V1_TYPICAL.read_bytes()))
    v2 = client.service.SubmitProcedure(_value_1=etree.fromstring(V2_TYPICAL.read_bytes()))
    assert v1.status == v2.status == "accepted"
    assert v1.warnings is not None and _is_v1_notice(list(v1.warnings.warning))
    assert v2.warnings is None
    status = client.service.GetReceiptStatus(receiptId=v1.receiptId)
    assert _is_v1_notice(list(status.warnings.warning))


@pytest.mark.parametrize(
    "path",
    sorted((GENDARMERIE_V1 / "valid").glob("*.xml")) + sorted((GENDARMERIE_V2 / "valid").glob("*.xml")),
    ids=lambda p: f"{p.parent.parent.name}/{p.name}",
)
def test_the_header_from_the_reading_is_the_header_searched_in_the_tree(path: Path) -> None:
    """A valid message's header is read from its one-pass reading (header_of), an invalid one's
    by searching the tree (read_header): both give the same for every valid fixture."""
    checker = build_checker(Settings())
    root = parse(path.read_bytes())
    fmt = checker.formats.detect(root)
    assert fmt is not None and fmt.header_of is not None
    header = fmt.header_of(fmt.read(root))
    assert header == fmt.read_header(root)
    assert header.message_id and header.unit_code and header.sent_at is not None

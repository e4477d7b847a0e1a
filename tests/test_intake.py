"""The intake pipeline with in-memory fakes: what is stored, what is logged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import structlog
from lxml import etree

from adapters.gendarmerie.formats import V1
from gateway.composition import build_checker
from gateway.intake import Intake
from gateway.logs import configure_logging
from gateway.ports import Status
from gateway.settings import Settings
from tests.conftest import GENDARMERIE_V1
from tests.fakes import MemoryStore

PERSONAL = (
    "BirthName",
    "UsageName",
    "GivenName",
    "Alias",
    "BirthDate",
    "Line",
    "Number",
    "Summary",
    "Name",
)


def all_fixtures() -> list[Path]:
    return sorted(GENDARMERIE_V1.glob("*/*.xml"))


def personal_values(path: Path) -> set[str]:
    """Names, birth dates, addresses and document numbers found in a fixture."""
    try:
        root = etree.fromstring(path.read_bytes(), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return set()
    values = set()
    for el in root.iter():
        if (
            isinstance(el.tag, str)
            and etree.QName(el).localname in PERSONAL
            and el.text
            and len(el.text.strip()) > 3
        ):
            values.add(el.text.strip())
    return values


@pytest.fixture
def intake() -> Intake:
    return Intake(build_checker(Settings()), MemoryStore())


def test_logs_never_carry_personal_data(intake: Intake, capsys: pytest.CaptureFixture[str]) -> None:
    """Every fixture through the pipeline; the rendered JSON logs hold none of its personal data."""
    configure_logging("DEBUG", json=True)
    capsys.readouterr()
    secrets: set[str] = set()
    for path in all_fixtures():
        secrets |= personal_values(path)
        intake.submit("gendarmerie", path.read_bytes(), "rest")
    output = capsys.readouterr().err
    assert output.count("message_received") == len(all_fixtures())
    assert len(secrets) > 50  # the scan looks for something real
    leaked = sorted(s for s in secrets if s in output)
    assert leaked == []


def test_one_event_per_stage_bound_to_the_message(intake: Intake) -> None:
    """received then accepted (or rejected), each with message id, receipt and sender."""
    sample = sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))[0].read_bytes()
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        outcome = intake.submit("gendarmerie", sample, "rest")
    assert [entry["event"] for entry in logs] == ["message_received", "message_accepted"]
    for entry in logs:
        assert entry["receipt_id"] == outcome.receipt.receipt_id
        assert entry["message_id"] == outcome.receipt.message_id
        assert entry["sender"].startswith("gendarmerie:")


def test_a_crash_in_mapping_keeps_the_message_as_failed() -> None:
    """Our own bug answers 500 but the message is stored, raw bytes included."""

    def broken_mapping(root: etree._Element) -> object:
        raise RuntimeError("bug")

    broken = dataclasses.replace(V1, map_case=broken_mapping)
    store = MemoryStore()
    intake = Intake(build_checker(Settings(), formats=(broken,)), store)
    sample = sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))[0].read_bytes()
    outcome = intake.submit("gendarmerie", sample, "rest")
    assert outcome.http_status == 500
    stored = store.messages[outcome.receipt.receipt_id]
    assert stored.status == Status.FAILED and stored.raw == sample
    assert [e.code for e in stored.errors] == ["INTERNAL_ERROR"]

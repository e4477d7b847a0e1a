"""Logs never carry a person's data: every fixture of every format goes through the running
gateway (REST intake, validation, receipts, the message detail, delivery), and all the log
output captured on the way is searched for every name, birth date, address line and identity
number those fixtures hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.composition import Container, build_checker
from gateway.logs import configure_logging
from gateway.settings import Settings
from tests.conftest import FIXTURES, LiveServer
from tests.fakes import FakeRegistry

ENDPOINT = {"gendarmerie": "/api/v1/gendarmerie/procedures", "police": "/api/v1/police/procedures"}


def _fixtures() -> list[tuple[str, Path]]:
    found = []
    for agency in ("gendarmerie", "police"):
        for path in sorted((FIXTURES / agency).glob("v*/*/*.xml")):
            found.append((agency, path))
    return found


def _people(case: dict[str, Any]) -> set[str]:
    """A case's personal data, as text: natural persons' names, birth dates, addresses, identity
    numbers, and the officer's name and number."""
    values: set[str] = set()
    originator = case["originator"]
    values.update(v for v in (originator.get("officer_name"), originator.get("officer_id")) if v)
    for partie in case["parties"]:
        person = partie.get("natural")
        if not person:
            continue
        values.update(v for v in (person["birth_name"], person.get("usage_name")) if v)
        values.update(person["given_names"] + person.get("aliases", []))
        if person.get("birth_date"):
            values.add(person["birth_date"])
        address = person.get("address") or {}
        values.update(address.get("lines", []))
        document = person.get("identity_document") or {}
        if document.get("number"):
            values.add(document["number"])
    return {v for v in values if len(v) >= 4}  # shorter would match anything


def test_no_personal_data_in_any_log_line(
    settings: Settings, container: Container, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", json=True)
    checker = build_checker(settings)
    fixtures = _fixtures()
    secrets: set[str] = set()
    for agency, path in fixtures:
        result = checker.evaluate(path.read_bytes(), agency)
        if result.case is not None:
            secrets |= _people(result.case.model_dump(mode="json"))
    assert len(secrets) > 50, "the fixtures hold many people; the search must have found them"

    container.registry = FakeRegistry()
    statuses: dict[int, int] = {}
    with LiveServer(container) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        for agency, path in fixtures:
            body = path.read_bytes()
            headers = {"Content-Type": "application/xml"}
            http.post(f"{ENDPOINT[agency]}/validate", content=body, headers=headers)
            answer = http.post(ENDPOINT[agency], content=body, headers=headers)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            receipt = answer.json().get("receipt_id")
            if receipt:
                http.get(f"/api/v1/receipts/{receipt}")
                http.get(f"/api/v1/messages/{receipt}")
        container.worker().run_until_idle()
    assert statuses.get(202, 0) > 20 and statuses.get(422, 0) > 10, statuses

    captured = capfd.readouterr()
    output = captured.out + captured.err
    assert "message_received" in output and "delivery_registered" in output, "the logs were captured"
    leaked = sorted(s for s in secrets if s in output)
    assert leaked == [], f"personal data in the logs: {leaked[:5]}"

"""The court receives the same case whatever the sender's format: the same procedure written
by gendarmerie software (v1 and v2) and by police software maps to equivalent affaires."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.composition import build_checker
from gateway.intake import Checker
from gateway.settings import Settings
from tests.conftest import FIXTURES

# The same procedure in each format (tests/fixtures/police/v1/README.md and
# tests/fixtures/gendarmerie/v2/README.md say how it was written).
SAME_PROCEDURE = {
    "gendarmerie/v1": FIXTURES / "gendarmerie" / "v1" / "valid" / "03-typical.xml",
    "gendarmerie/v2": FIXTURES / "gendarmerie" / "v2" / "valid" / "03-typical.xml",
    "police/v1": FIXTURES / "police" / "v1" / "valid" / "03-typical.xml",
}
# Who sent it and how: the only fields allowed to differ.
SENDER_FIELDS = {"source", "originator"}


@pytest.fixture(scope="module")
def checker() -> Checker:
    return build_checker(Settings())


def _case(checker: Checker, name: str) -> dict[str, Any]:
    verdict = checker.evaluate(SAME_PROCEDURE[name].read_bytes(), name.split("/")[0])
    assert verdict.case is not None, verdict.errors
    assert verdict.fmt is not None and verdict.fmt.name == name
    return verdict.case.model_dump(mode="json")


def _without_sender(case: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in case.items() if key not in SENDER_FIELDS}


def test_same_procedure_gives_the_same_case_in_every_format(checker: Checker) -> None:
    """Parties, offences, préventions, measures, scellés, pièces and dates are identical."""
    cases = {name: _without_sender(_case(checker, name)) for name in SAME_PROCEDURE}
    reference = cases.pop("gendarmerie/v1")
    for name, case in cases.items():
        differing = sorted(k for k in reference.keys() | case.keys() if reference.get(k) != case.get(k))
        assert differing == [], f"{name} differs from gendarmerie/v1 in {differing}"


def test_only_the_sender_differs(checker: Checker) -> None:
    """The cases are told apart by their source and originator, which name each agency."""
    gendarmerie, police = _case(checker, "gendarmerie/v1"), _case(checker, "police/v1")
    assert gendarmerie["source"]["format"] == "gendarmerie/v1" and police["source"]["format"] == "police/v1"
    assert gendarmerie["originator"]["agency"] == "gendarmerie" and police["originator"]["agency"] == "police"
    assert police["originator"]["unit_code"] == "PN-69-CSP-012"
    assert gendarmerie["source"]["sent_at"] == police["source"]["sent_at"]


def test_the_police_message_really_is_written_differently() -> None:
    """Guard against a vacuous comparison: local times, police codes, names as typed."""
    text = SAME_PROCEDURE["police/v1"].read_text(encoding="utf-8")
    assert "<saisiLe>2026-03-14T23:10:00</saisiLe>" in text  # no offset
    assert "<qualite>MEC</qualite>" in text and "<typeEnquete>FLAG</typeEnquete>" in text
    assert "<prenoms>Élodie, Marie</prenoms>" in text
    assert "Lefe\u0300vre - Mu\u0308ller" in text  # decomposed accents, spaced hyphen
    assert "<siren>" not in text  # the SIREN comes from the SIRET


def test_both_gendarmerie_versions_have_the_same_sender_but_their_own_versions(checker: Checker) -> None:
    """v1 and v2 name the same unit and officer; the source records each one's schema and mapping."""
    v1, v2 = _case(checker, "gendarmerie/v1"), _case(checker, "gendarmerie/v2")
    assert v2["originator"] == v1["originator"]  # from Service and Nigend in v2, Unit and Matricule in v1
    assert (v1["source"]["schema_version"], v1["source"]["mapping_version"]) == ("1.0", "gendarmerie-v1.0")
    assert (v2["source"]["schema_version"], v2["source"]["mapping_version"]) == ("2.0", "gendarmerie-v2.0")
    assert v2["source"]["sent_at"] == v1["source"]["sent_at"]


def test_the_v2_message_really_is_written_in_v2() -> None:
    """Guard against a vacuous comparison: v2's namespace, renamed elements and avis au parquet."""
    text = SAME_PROCEDURE["gendarmerie/v2"].read_text(encoding="utf-8")
    assert 'xmlns="urn:saisine:gendarmerie:procedure:v2" schemaVersion="2.0"' in text
    assert "<Service>" in text and "<Nigend>223190</Nigend>" in text and "<AvisParquet>" in text
    assert "<Unit>" not in text and "<Matricule>" not in text

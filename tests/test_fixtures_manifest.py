"""Fixtures are the specification: each invalid one produces exactly its codes, each valid
one maps to its golden case. Set SAISINE_UPDATE_GOLDEN=1 to rewrite the golden files
after a deliberate mapping change (and review the diff)."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gateway.codes import CODES, Layer
from gateway.composition import build_checker
from gateway.intake import Checker
from gateway.settings import Settings
from tests.conftest import GENDARMERIE_V1

MANIFEST = tomllib.loads((GENDARMERIE_V1 / "manifest.toml").read_text(encoding="utf-8"))
GOLDEN = GENDARMERIE_V1 / "golden"
# Codes that no message file can carry: they are about the HTTP request or the store,
# and are tested in tests/test_api.py.
TRANSPORT_ONLY = {"BODY_TOO_LARGE", "BODY_EMPTY", "CONTENT_TYPE_UNSUPPORTED", "MESSAGE_ID_CONFLICT"}
TRANSPORT_ONLY |= {c.code for c in CODES.values() if c.layer == Layer.SOAP}  # tests/test_soap*.py
# Depth past libxml2's own limit is generated in tests/test_xmlparse.py, not stored as a file.
GENERATED = {"XML_TOO_DEEP", "XML_TOO_MANY_ELEMENTS"}
# SCHEMA_INVALID is the fallback for libxml2 errors we have not classified; no valid root
# element reaches it today (a wrong root is FORMAT_UNKNOWN). INTERNAL_ERROR is our own fault.
FALLBACK = {"SCHEMA_INVALID", "INTERNAL_ERROR"}


@pytest.fixture(scope="module")
def checker() -> Checker:
    return build_checker(Settings())


def _id(entry: dict[str, Any]) -> str:
    return str(entry["file"])


@pytest.mark.parametrize("entry", MANIFEST["invalid"], ids=_id)
def test_invalid_fixture_produces_exactly_its_codes(checker: Checker, entry: dict[str, Any]) -> None:
    """The manifest's codes, no more, no fewer, and the expected HTTP status."""
    verdict = checker.evaluate((GENDARMERIE_V1 / entry["file"]).read_bytes(), "gendarmerie")
    assert verdict.case is None
    assert verdict.codes == sorted(set(entry["codes"])), [e.message for e in verdict.errors]
    assert verdict.http_status == entry["status"]
    for error in verdict.errors:
        assert error.message
        if CODES[error.code].layer in (Layer.SCHEMA, Layer.RULE):
            assert error.line and error.path, error


@pytest.mark.parametrize("entry", MANIFEST["valid"], ids=_id)
def test_valid_fixture_maps_to_its_golden_case(checker: Checker, entry: dict[str, Any]) -> None:
    """The mapped case equals the reviewed golden JSON."""
    path = GENDARMERIE_V1 / entry["file"]
    verdict = checker.evaluate(path.read_bytes(), "gendarmerie")
    assert verdict.errors == []
    assert verdict.case is not None
    actual = verdict.case.model_dump(mode="json")
    golden = GOLDEN / f"{Path(entry['file']).stem}.json"
    if os.environ.get("SAISINE_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == json.loads(golden.read_text(encoding="utf-8"))


def test_manifest_lists_every_fixture_once() -> None:
    """No fixture without its expectations, no expectation without its file."""
    listed = [e["file"] for e in MANIFEST["valid"] + MANIFEST["invalid"]]
    on_disk = sorted(str(p.relative_to(GENDARMERIE_V1)) for p in GENDARMERIE_V1.glob("*/*.xml"))
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)


def test_every_message_level_code_has_a_fixture() -> None:
    """Each parser, format, schema and rule code is produced by at least one fixture."""
    covered = {code for entry in MANIFEST["invalid"] for code in entry["codes"]}
    expected = (
        {c.code for c in CODES.values() if c.layer != Layer.TRANSPORT} - TRANSPORT_ONLY - GENERATED - FALLBACK
    )
    assert expected - covered == set()


def test_enough_varied_fixtures() -> None:
    """At least 12 valid and 25 invalid messages."""
    assert len(MANIFEST["valid"]) >= 12
    assert len(MANIFEST["invalid"]) >= 25


def test_every_golden_file_belongs_to_a_valid_fixture() -> None:
    """No stale golden file left behind."""
    stems = {Path(e["file"]).stem for e in MANIFEST["valid"]}
    assert {p.stem for p in GOLDEN.glob("*.json")} == stems

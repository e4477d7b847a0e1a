"""Fixtures are the specification: each invalid one produces exactly its codes, each valid
one maps to its golden case. Every format folder with a manifest (tests/fixtures/<agency>/<version>/)
is held to the same rules. Set SAISINE_UPDATE_GOLDEN=1 to rewrite the golden files after a
deliberate mapping change (and review the diff)."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from adapters.registry import FORMATS
from gateway.codes import CODES, Layer
from gateway.composition import build_checker
from gateway.intake import Checker
from gateway.settings import Settings
from tests.conftest import FIXTURES

FOLDERS = sorted(p.parent for p in FIXTURES.glob("*/*/manifest.toml"))
MANIFESTS = {
    folder: tomllib.loads((folder / "manifest.toml").read_text(encoding="utf-8")) for folder in FOLDERS
}
# Codes that no message file can carry: they are about the HTTP request or the store,
# and are tested in tests/test_api.py.
TRANSPORT_ONLY = {"BODY_TOO_LARGE", "BODY_EMPTY", "CONTENT_TYPE_UNSUPPORTED", "MESSAGE_ID_CONFLICT"}
TRANSPORT_ONLY |= {c.code for c in CODES.values() if c.layer == Layer.SOAP}  # tests/test_soap*.py
TRANSPORT_ONLY |= {c.code for c in CODES.values() if c.layer == Layer.OPERATOR}  # test_replay_api.py
TRANSPORT_ONLY |= {c.code for c in CODES.values() if c.layer == Layer.ACCESS}  # tests/test_access.py
# Depth past libxml2's own limit is generated in tests/test_xmlparse.py, not stored as a file.
GENERATED = {"XML_TOO_DEEP", "XML_TOO_MANY_ELEMENTS"}
# SCHEMA_INVALID is the fallback for libxml2 errors we have not classified; no valid root
# element reaches it today (a wrong root is FORMAT_UNKNOWN). INTERNAL_ERROR is our own fault.
FALLBACK = {"SCHEMA_INVALID", "INTERNAL_ERROR"}
# A format may declare, in its manifest's [unreachable] table, rule codes its shape cannot
# produce (e.g. local-time rules for a format whose date-times all carry an offset), each with
# the reason. Parser, format and schema codes are never excused: every format reaches them.
EXCUSABLE = {Layer.RULE}


def _name(folder: Path) -> str:
    return folder.relative_to(FIXTURES).as_posix()


def _agency(folder: Path) -> str:
    return folder.relative_to(FIXTURES).parts[0]


def _entries(kind: str) -> list[Any]:
    return [
        pytest.param(folder, entry, id=f"{_name(folder)}:{entry['file']}")
        for folder in FOLDERS
        for entry in MANIFESTS[folder][kind]
    ]


def _folders() -> list[Any]:
    return [pytest.param(folder, id=_name(folder)) for folder in FOLDERS]


@pytest.fixture(scope="module")
def checker() -> Checker:
    return build_checker(Settings())


def test_every_registered_format_has_its_fixtures() -> None:
    """Each format of the registry has its folder of fixtures with a manifest."""
    assert {f.name for f in FORMATS} <= {_name(folder) for folder in FOLDERS}


@pytest.mark.parametrize(("folder", "entry"), _entries("invalid"))
def test_invalid_fixture_produces_exactly_its_codes(
    checker: Checker, folder: Path, entry: dict[str, Any]
) -> None:
    """The manifest's codes, no more, no fewer, and the expected HTTP status."""
    verdict = checker.evaluate((folder / entry["file"]).read_bytes(), _agency(folder))
    assert verdict.case is None
    assert verdict.codes == sorted(set(entry["codes"])), [e.message for e in verdict.errors]
    assert verdict.http_status == entry["status"]
    for error in verdict.errors:
        assert error.message
        if CODES[error.code].layer in (Layer.SCHEMA, Layer.RULE):
            assert error.line and error.path, error


@pytest.mark.parametrize(("folder", "entry"), _entries("valid"))
def test_valid_fixture_maps_to_its_golden_case(checker: Checker, folder: Path, entry: dict[str, Any]) -> None:
    """The mapped case equals the reviewed golden JSON."""
    verdict = checker.evaluate((folder / entry["file"]).read_bytes(), _agency(folder))
    assert verdict.errors == []
    assert verdict.case is not None
    assert verdict.fmt is not None and verdict.case.source.format == verdict.fmt.name == _name(folder)
    actual = verdict.case.model_dump(mode="json")
    golden = folder / "golden" / f"{Path(entry['file']).stem}.json"
    if os.environ.get("SAISINE_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == json.loads(golden.read_text(encoding="utf-8"))


@pytest.mark.parametrize("folder", _folders())
def test_manifest_lists_every_fixture_once(folder: Path) -> None:
    """No fixture without its expectations, no expectation without its file."""
    manifest = MANIFESTS[folder]
    listed = [e["file"] for e in manifest["valid"] + manifest["invalid"]]
    on_disk = sorted(str(p.relative_to(folder)) for p in folder.glob("*/*.xml"))
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)


@pytest.mark.parametrize("folder", _folders())
def test_every_message_level_code_has_a_fixture(folder: Path) -> None:
    """Each parser, format, schema and rule code is produced by at least one fixture of the
    format, unless the manifest says why the format cannot produce it."""
    manifest = MANIFESTS[folder]
    covered = {code for entry in manifest["invalid"] for code in entry["codes"]}
    unreachable = dict(manifest.get("unreachable", {}))
    assert all(code in CODES and CODES[code].layer in EXCUSABLE for code in unreachable), unreachable
    assert all(reason.strip() for reason in unreachable.values())
    assert not covered & set(unreachable), "a code declared unreachable is produced by a fixture"
    expected = (
        {c.code for c in CODES.values() if c.layer != Layer.TRANSPORT}
        - TRANSPORT_ONLY
        - GENERATED
        - FALLBACK
        - set(unreachable)
    )
    assert expected - covered == set()


@pytest.mark.parametrize("folder", _folders())
def test_enough_varied_fixtures(folder: Path) -> None:
    """At least 12 valid and 25 invalid messages."""
    assert len(MANIFESTS[folder]["valid"]) >= 12
    assert len(MANIFESTS[folder]["invalid"]) >= 25


@pytest.mark.parametrize("folder", _folders())
def test_every_golden_file_belongs_to_a_valid_fixture(folder: Path) -> None:
    """No stale golden file left behind."""
    stems = {Path(e["file"]).stem for e in MANIFESTS[folder]["valid"]}
    assert {p.stem for p in (folder / "golden").glob("*.json")} == stems

"""The saisine command: validate offline, list codes, upgrade the database."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app
from tests.conftest import GENDARMERIE_V1

runner = CliRunner()
VALID = sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))
INVALID = GENDARMERIE_V1 / "invalid" / "natinf-unknown.xml"


def test_validate_prints_the_mapped_case_and_exits_0() -> None:
    """A valid file: exit 0 and the court case as JSON."""
    result = runner.invoke(app, ["validate", "--json", str(VALID[0])])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["status"] == "valid" and body["case"]["source"]["format"] == "gendarmerie/v1"


def test_validate_lists_errors_and_exits_1() -> None:
    """An invalid file among valid ones: exit 1, each error with its code and line."""
    result = runner.invoke(app, ["validate", "--json", str(VALID[0]), str(INVALID)])
    assert result.exit_code == 1
    results = json.loads(result.output)
    assert [r["status"] for r in results] == ["valid", "invalid"]
    assert results[1]["errors"][0]["code"] == "NATINF_UNKNOWN"
    assert results[1]["errors"][0]["line"] > 0


def test_validate_unreadable_file_exits_2(tmp_path: Path) -> None:
    """A missing file is not 'invalid': exit 2."""
    result = runner.invoke(app, ["validate", str(VALID[0]), str(tmp_path / "missing.xml")])
    assert result.exit_code == 2


def test_error_code_document_is_up_to_date() -> None:
    """docs/error-codes.md holds exactly what `saisine codes` prints."""
    result = runner.invoke(app, ["codes"])
    assert result.exit_code == 0
    doc = (Path(__file__).parent.parent / "docs" / "error-codes.md").read_text(encoding="utf-8")
    assert result.output.strip() in doc


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    """`saisine db upgrade` on a new SQLite file, twice."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    for _ in range(2):
        result = runner.invoke(app, ["db", "upgrade", "--database-url", url])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "new.db").exists()

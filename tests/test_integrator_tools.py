"""Tools for integrators: the validate endpoint, `saisine ingest`, `saisine formats`, deprecations."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from gateway.cli import app
from gateway.composition import build
from gateway.settings import Settings
from gateway.store.tables import messages
from tests.conftest import GENDARMERIE_V1, LiveServer

runner = CliRunner()
VALID = sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))
INVALID = GENDARMERIE_V1 / "invalid" / "natinf-unknown.xml"
XML = {"Content-Type": "application/xml"}


def stored(settings: Settings) -> int:
    container = build(settings)
    try:
        with container.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(messages)).scalar_one())
    finally:
        container.close()


def test_validate_endpoint_maps_and_stores_nothing(http: httpx.Client, settings: Settings) -> None:
    """200 with the case the court would get; 422 with every error; the store stays empty."""
    valid = http.post("/api/v1/gendarmerie/procedures/validate", content=VALID[2].read_bytes(), headers=XML)
    assert valid.status_code == 200, valid.text
    body = valid.json()
    assert body["status"] == "valid" and body["format"] == "gendarmerie/v1"
    assert body["case"]["tribunal_code"].startswith("TJ") and body["errors"] == []
    invalid = http.post("/api/v1/gendarmerie/procedures/validate", content=INVALID.read_bytes(), headers=XML)
    assert invalid.status_code == 422
    assert [e["code"] for e in invalid.json()["errors"]] == ["NATINF_UNKNOWN"]
    assert invalid.json()["errors"][0]["line"] > 0
    refused = http.post("/api/v1/gendarmerie/procedures/validate", content=b"<a><b></a>", headers=XML)
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "XML_NOT_WELL_FORMED"
    wrong_type = http.post(
        "/api/v1/gendarmerie/procedures/validate", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    assert stored(settings) == 0


def test_validate_endpoint_is_documented(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert "/api/v1/gendarmerie/procedures/validate" in paths


def _backlog(tmp_path: Path) -> Path:
    folder = tmp_path / "backlog"
    (folder / "sub").mkdir(parents=True)
    for path in VALID[:3]:
        shutil.copy(path, folder / path.name)
    shutil.copy(INVALID, folder / "sub" / INVALID.name)
    (folder / "sub" / "garbage.xml").write_bytes(b"<not-closed>")
    return folder


def test_ingest_submits_a_folder_and_running_again_submits_nothing_twice(
    tmp_path: Path, settings: Settings
) -> None:
    folder = _backlog(tmp_path)
    report = tmp_path / "report.jsonl"
    args = ["ingest", str(folder), "--report", str(report), "--database-url", settings.database_url]
    first = runner.invoke(app, args)
    assert first.exit_code == 1, first.output  # some rejected
    assert "NATINF_UNKNOWN" in first.output and "XML_NOT_WELL_FORMED" in first.output
    entries = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(e["outcome"] for e in entries) == ["accepted"] * 3 + ["rejected"] * 2
    assert all(e["receipt_id"] for e in entries)
    count = stored(settings)
    assert count == 5

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output  # this run submitted nothing: all in the report
    assert "skipped (already in the report)" in again.output
    assert stored(settings) == count, "nothing stored twice"
    assert len(report.read_text().splitlines()) == 5

    # a lost report: the pipeline still knows the accepted ones (repeats), nothing accepted twice
    report.unlink()
    third = runner.invoke(app, args)
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(e["outcome"] for e in lines).count("repeat") == 3, third.output
    container = build(settings)
    with container.engine.connect() as conn:
        accepted = conn.execute(select(func.count()).where(messages.c.accepted.is_(True))).scalar_one()
    container.close()
    assert accepted == 3


def test_ingest_refuses_a_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope")])
    assert result.exit_code == 2


def test_formats_lists_each_format_and_its_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAISINE_DEPRECATED_FORMATS", '{"gendarmerie/v1": "2027-06-30"}')
    result = runner.invoke(app, ["formats"])
    assert result.exit_code == 0, result.output
    assert "gendarmerie/v1" in result.output and "2027-06-30" in result.output


def test_a_deprecated_format_is_accepted_with_a_warning_on_the_receipt(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'd.db'}",
        deprecated_formats={"gendarmerie/v1": date(2027, 6, 30)},
    )
    container = build(settings)
    try:
        with LiveServer(container) as live, httpx.Client(base_url=live.url) as client:
            answer = client.post("/api/v1/gendarmerie/procedures", content=VALID[0].read_bytes(), headers=XML)
            assert answer.status_code == 202
            warnings = answer.json()["warnings"]
            assert len(warnings) == 1 and "2027-06-30" in warnings[0] and "deprecated" in warnings[0]
            later = client.get(answer.json()["links"]["receipt"]).json()
            assert later["warnings"] == warnings
    finally:
        container.close()


def test_deprecating_an_unknown_format_stops_start_up(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'd.db'}", deprecated_formats={"gendarmerie/v9": date(2027, 1, 1)}
    )
    with pytest.raises(ValueError, match="gendarmerie/v9"):
        build(settings)

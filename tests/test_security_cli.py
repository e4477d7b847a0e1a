"""The administrator's commands: `saisine senders`, `operators`, `holds`, `purge`, `keys`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from gateway.cli import app
from gateway.composition import build
from gateway.settings import Settings
from gateway.store.tables import audit_records

runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'admin.db'}"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_senders_add_prints_the_token_once_and_list_never_shows_it(url: str) -> None:
    code, out = run(
        "senders",
        "add",
        "--agency",
        "gendarmerie",
        "--unit",
        "00741234",
        "--json",
        "--by",
        "ada",
        "--database-url",
        url,
    )
    assert code == 0, out
    made = json.loads(out)
    assert made["token"].startswith("ssn_snd_") and made["units"] == ["00741234"]
    code, out = run("senders", "list", "--json", "--database-url", url)
    listed = json.loads(out)
    assert code == 0 and [s["id"] for s in listed] == [made["id"]] and listed[0]["state"] == "active"
    assert made["token"] not in out and listed[0]["token"].endswith("…")
    container = build(Settings(database_url=url))
    try:
        assert container.credentials.sender_by_token(made["token"]) is not None
    finally:
        container.close()
    code, out = run("senders", "revoke", made["id"], "--by", "ada", "--database-url", url)
    assert code == 0 and "revoked" in out
    code, out = run("senders", "revoke", made["id"], "--database-url", url)
    assert code == 1 and "refused" in out
    code, out = run("senders", "add", "--agency", "douane", "--unit", "1", "--database-url", url)
    assert code == 1 and "Unknown agency" in out


def test_operators_add_with_a_password_from_the_environment(url: str) -> None:
    env = {"SAISINE_NEW_PASSWORD": "correct horse battery"}
    code, out = run(
        "operators",
        "add",
        "ada",
        "--role",
        "integrator",
        "--password",
        "--json",
        "--database-url",
        url,
        env=env,
    )
    assert code == 0, out
    assert json.loads(out)["token"].startswith("ssn_op_")
    code, out = run("operators", "add", "bob", "--role", "king", "--database-url", url)
    assert code == 1 and "Unknown role" in out
    code, out = run("operators", "list", "--json", "--database-url", url)
    [ada] = json.loads(out)
    assert (ada["name"], ada["role"], ada["password"], ada["state"]) == ("ada", "integrator", True, "active")
    container = build(Settings(database_url=url))
    try:
        assert container.credentials.login("ada", "correct horse battery") is not None
    finally:
        container.close()
    code, out = run("operators", "revoke", "ada", "--database-url", url)
    assert code == 0 and "revoked" in out


def test_holds_and_purge(url: str) -> None:
    args = ("--agency", "gendarmerie", "--unit", "00741234", "--procedure", "00412/2026")
    code, out = run(
        "holds", "add", *args, "--reason", "ordonnance 2026/77", "--by", "ada", "--database-url", url
    )
    assert code == 0 and "hold 1 placed" in out
    code, out = run("holds", "add", *args, "--reason", " ", "--database-url", url)
    assert code == 1 and "reason" in out
    code, out = run("holds", "list", "--json", "--database-url", url)
    assert [h["reason"] for h in json.loads(out)] == ["ordonnance 2026/77"]
    code, out = run("purge", "--dry-run", "--json", "--database-url", url)
    assert code == 0 and json.loads(out) == {"dry_run": True, "purged": 0, "held": 0}
    code, out = run("holds", "release", "1", "--by", "ada", "--database-url", url)
    assert code == 0 and "released" in out
    code, out = run("holds", "list", "--json", "--database-url", url)
    assert json.loads(out) == []
    code, _ = run("holds", "release", "1", "--database-url", url)
    assert code == 1
    container = build(Settings(database_url=url))
    try:
        with container.engine.connect() as conn:
            actions = conn.execute(
                select(audit_records.c.actor, audit_records.c.detail["action"].as_string())
                .where(audit_records.c.kind == "purge")
                .order_by(audit_records.c.seq)
            ).all()
    finally:
        container.close()
    assert [tuple(a) for a in actions] == [("ada", "hold_placed"), ("ada", "hold_released")]


def test_keys_new_makes_a_key_that_seals() -> None:
    from gateway.store.sealing import PayloadCipher

    code, out = run("keys", "new")
    key = out.strip()
    assert code == 0 and len(key) == 44
    cipher = PayloadCipher([key])
    assert cipher.open(cipher.seal(b"x")) == b"x"

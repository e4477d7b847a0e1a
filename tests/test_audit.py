"""The audit record on SQLite and PostgreSQL: what is recorded, and that ``saisine audit verify``
names the first record changed, removed or inserted, even behind a fully recomputed chain."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, delete, insert, select, text, update
from typer.testing import CliRunner

from gateway.audit import GENESIS, AuditRecord, Entry, canonical, hash_of, seal, verify_export
from gateway.cli import app
from gateway.composition import Container, build
from gateway.errors import Fatal, Retriable
from gateway.settings import Settings
from gateway.store.audit import AuditLog, records, snapshot, verify_chain
from gateway.store.tables import audit_head, audit_records
from tests.conftest import GENDARMERIE_V1, LiveServer, with_new_id
from tests.fakes import FakeRegistry

VALID = sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))
INITIAL = next(p for p in VALID if b"PROCEDURE_INITIALE" in p.read_bytes())
runner = CliRunner()


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def wired(url: str) -> Iterator[Container]:
    container = build(Settings(database_url=url, retry_max_attempts=3, breaker_threshold=100))
    container.registry = FakeRegistry()
    container.clock = FakeClock()
    yield container
    container.close()


def chain(engine: Engine) -> list[AuditRecord]:
    with snapshot(engine) as conn:
        return list(records(conn))


def accept(container: Container) -> str:
    outcome = container.intake.submit("gendarmerie", with_new_id(INITIAL.read_bytes()), "rest")
    assert outcome.http_status == 202
    return outcome.receipt.receipt_id


def filled(container: Container, count: int = 5) -> list[AuditRecord]:
    """A chain of ``count`` acceptances."""
    for _ in range(count):
        accept(container)
    return chain(container.engine)


def verify(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify", "--database-url", url, *args])
    return result.exit_code, result.output


def rehash_from(engine: Engine, seq: int) -> None:
    """What someone with write access would do to hide a change: recompute every hash from
    record ``seq`` on, and the head."""
    with engine.begin() as conn:
        rows = list(conn.execute(select(audit_records).order_by(audit_records.c.seq)))
        prev = GENESIS
        for row in rows:
            record = AuditRecord(
                row.seq, row.at, row.kind, row.actor, row.subject, dict(row.detail), prev, row.hash
            )
            if row.seq >= seq:
                record = replace(record, hash=hash_of(record))
                conn.execute(
                    update(audit_records)
                    .where(audit_records.c.seq == row.seq)
                    .values(prev_hash=prev, hash=record.hash)
                )
            prev = record.hash
        conn.execute(update(audit_head).values(seq=rows[-1].seq, hash=prev))


# ------------------------------------------------------------------ what is recorded


def test_acceptance_and_rejection_are_one_record_each_with_the_verdict(wired: Container) -> None:
    """Each stored message: one record, kind acceptance or rejection, its sender, hash and codes."""
    data = with_new_id(INITIAL.read_bytes())
    accepted = wired.intake.submit("gendarmerie", data, "rest").receipt
    bad = data.replace(b"<MessageId>", b"<MessageId>not-a-uuid-", 1)
    rejected = wired.intake.submit("gendarmerie", bad, "rest")
    assert rejected.http_status == 422
    first, second = chain(wired.engine)
    assert (first.seq, first.kind, first.subject, first.prev_hash) == (
        1,
        "acceptance",
        accepted.receipt_id,
        GENESIS,
    )
    assert first.actor.startswith("gendarmerie:")
    assert first.detail["sha256"] == hashlib.sha256(data).hexdigest()
    assert (first.detail["status"], first.detail["codes"]) == ("accepted", [])
    assert (second.kind, second.subject, second.prev_hash) == (
        "rejection",
        rejected.receipt.receipt_id,
        first.hash,
    )
    assert second.detail["status"] == "rejected"
    assert second.detail["codes"] == sorted({e.code for e in rejected.receipt.errors})


def test_a_record_carries_no_personal_data(wired: Container) -> None:
    """Only codes, statuses and hashes: nothing of the message's text is in the record."""
    accept(wired)
    (record,) = chain(wired.engine)
    text_of_record = json.dumps(record.as_json(), ensure_ascii=False)
    message = INITIAL.read_text(encoding="utf-8")
    for name in ("<LastName>", "<Nom>", "<BirthDate>"):
        if name in message:
            value = message.split(name, 1)[1].split("<", 1)[0]
            assert value and value not in text_of_record
    assert set(record.detail) == {
        "status",
        "http_status",
        "sha256",
        "size",
        "transport",
        "format",
        "message_id",
        "codes",
    }


def test_delivery_outcomes_are_recorded(wired: Container) -> None:
    """A retriable failure, a registration with its numéro parquet, a dead letter with its code."""
    registered = accept(wired)
    assert isinstance(wired.registry, FakeRegistry)
    wired.registry.script = [Retriable("HTTP 503")]
    wired.worker().run_until_idle()
    assert isinstance(wired.clock, FakeClock)
    wired.clock.now += timedelta(hours=1)
    wired.worker().run_until_idle()
    dead = accept(wired)
    wired.registry.script = [Fatal("UNKNOWN_TRIBUNAL", "tribunal inconnu")]
    wired.clock.now += timedelta(hours=1)
    wired.worker().run_until_idle()
    deliveries = [r for r in chain(wired.engine) if r.kind == "delivery"]
    assert [(r.subject, r.detail["outcome"]) for r in deliveries] == [
        (registered, "retriable"),
        (registered, "registered"),
        (dead, "fatal"),
    ]
    receipt = wired.store.receipt(registered)
    assert receipt is not None and deliveries[1].detail["numero_parquet"] == receipt.numero_parquet
    assert deliveries[2].detail["code"] == "UNKNOWN_TRIBUNAL"
    assert "tribunal inconnu" not in json.dumps(deliveries[2].detail)
    assert all(r.actor for r in deliveries)
    assert verify_chain(wired.engine).ok


def test_consulting_a_message_is_recorded_with_its_purpose(wired: Container) -> None:
    """GET /api/v1/messages/{id} writes a consultation record; an unknown id consults nothing."""
    receipt_id = accept(wired)
    with LiveServer(wired) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        purposed = client.get(f"/api/v1/messages/{receipt_id}", params={"purpose": "ticket 4512"})
        assert purposed.status_code == 200
        assert client.get(f"/api/v1/messages/{receipt_id}").status_code == 200
        assert client.get("/api/v1/messages/00000000-0000-0000-0000-000000000000").status_code == 404
    consultations = [r for r in chain(wired.engine) if r.kind == "consultation"]
    assert [(r.subject, r.detail) for r in consultations] == [
        (receipt_id, {"purpose": "ticket 4512"}),
        (receipt_id, {}),
    ]
    assert consultations[0].actor == "unauthenticated:127.0.0.1"


def test_a_rolled_back_transaction_leaves_no_record_and_the_chain_goes_on(wired: Container) -> None:
    """A record exists only if its transaction committed; the next append still chains."""
    accept(wired)
    log = wired.store.audit
    at = datetime.now(UTC)
    with pytest.raises(RuntimeError), wired.engine.begin() as conn:
        log.append(conn, Entry("replay", "operator", "r-1", at, {"mode": "redeliver"}))
        raise RuntimeError("the business change failed")
    accept(wired)
    records_ = chain(wired.engine)
    assert [r.seq for r in records_] == [1, 2] and [r.kind for r in records_] == ["acceptance"] * 2
    assert verify_chain(wired.engine).ok


def test_the_intake_chains_after_a_head_moved_by_another_writer(wired: Container) -> None:
    """The intake's guessed head is wrong after another instance (here another AuditLog on the
    same database) appended: its conditional move changes nothing, it takes the head and goes on."""
    accept(wired)
    other = AuditLog(wired.engine)
    with wired.engine.begin() as conn:
        other.append(conn, Entry("consultation", "operator", "r-x", datetime.now(UTC), {"purpose": "t"}))
    accept(wired)
    accept(wired)
    records_ = chain(wired.engine)
    assert [r.seq for r in records_] == [1, 2, 3, 4]
    assert [r.kind for r in records_] == ["acceptance", "consultation", "acceptance", "acceptance"]
    assert verify_chain(wired.engine).ok


def test_a_failed_intake_commit_leaves_nothing_and_the_chain_goes_on(
    wired: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message whose transaction fails after some of its rows are written is not stored at
    all, the error reaches the caller, and the next message chains after the last committed record.

    SQLite: the intake's one statement (gateway.store.onestatement) is interrupted halfway, as an
    I/O error would stop it. Elsewhere: the audit record, the transaction's last statement, fails."""
    accept(wired)
    accept(wired)  # on SQLite, the second goes through the one statement (the head is known)
    if wired.store.direct:
        writer = wired.store._writer
        assert writer is not None
        steps = {"n": 0}

        def halfway() -> int:
            steps["n"] += 1
            # the whole statement is about 640 instructions of SQLite's machine; at 300 the
            # message's row and some of its others are written, the audit record is not
            return 1 if steps["n"] > 300 else 0

        writer.driver_connection.set_progress_handler(halfway, 1)  # type: ignore[union-attr]
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            accept(wired)
        assert steps["n"] > 300
    else:
        log = wired.store.audit
        real = log.append

        def failing(*args: object) -> list[AuditRecord]:
            real(*args)  # type: ignore[arg-type]
            raise RuntimeError("the disk is full")

        monkeypatch.setattr(log, "append", failing)
        with pytest.raises(RuntimeError):
            accept(wired)
        monkeypatch.undo()
    accept(wired)
    records_ = chain(wired.engine)
    assert [r.seq for r in records_] == [1, 2, 3]
    with wired.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar() == 3
        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 9
    assert verify_chain(wired.engine).ok


def test_the_intake_creates_a_missing_head(tmp_path: Path) -> None:
    """A schema without the head row (made before the migration that writes it): the first append
    creates it, as SQLAlchemy's way does."""
    container = build(Settings(database_url=f"sqlite:///{tmp_path / 'nohead.db'}"))
    try:
        with container.engine.begin() as conn:
            conn.execute(delete(audit_head))
        accept(container)
        accept(container)
        assert [r.seq for r in chain(container.engine)] == [1, 2]
        assert verify_chain(container.engine).ok
    finally:
        container.close()


# ------------------------------------------------------------------ verify


def test_verify_says_ok_on_an_intact_chain(wired: Container, url: str) -> None:
    """Exit 0, the count and the head."""
    records_ = filled(wired, 3)
    code, output = verify(url)
    assert code == 0, output
    assert f"OK: 3 records, chain intact; head 3:{records_[-1].hash}" in output


def test_verify_names_a_record_edited_in_the_database(wired: Container, url: str) -> None:
    """An UPDATE of one record's detail: exit 1, that record named as changed."""
    filled(wired)
    with wired.engine.begin() as conn:
        conn.execute(
            update(audit_records).where(audit_records.c.seq == 3).values(detail={"status": "rejected"})
        )
    code, output = verify(url)
    assert code == 1
    assert "BROKEN at record 3 (changed)" in output and "2 records checked before it" in output


def test_verify_names_a_record_rewritten_with_its_hash_recomputed(wired: Container) -> None:
    """Record 2 changed and rehashed alone: the link from record 3 breaks, record 2 is named."""
    filled(wired)
    with wired.engine.begin() as conn:
        row = conn.execute(select(audit_records).where(audit_records.c.seq == 2)).one()
        forged = AuditRecord(
            2, row.at, row.kind, "someone:else", row.subject, dict(row.detail), row.prev_hash, ""
        )
        conn.execute(
            update(audit_records)
            .where(audit_records.c.seq == 2)
            .values(actor="someone:else", hash=hash_of(forged))
        )
    verdict = verify_chain(wired.engine)
    assert verdict.finding is not None
    assert (verdict.finding.seq, verdict.finding.problem) == (2, "rewritten")


def test_verify_names_a_removed_record(wired: Container, url: str) -> None:
    """A DELETE leaves a gap in seq: the missing record is named."""
    filled(wired)
    with wired.engine.begin() as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq == 2))
    code, output = verify(url)
    assert code == 1 and "BROKEN at record 2 (removed)" in output


def test_verify_names_a_removed_record_behind_a_renumbering(wired: Container) -> None:
    """Deleted, and the later records renumbered to close the gap: still named as removed."""
    filled(wired)
    with wired.engine.begin() as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq == 2))
        for seq in (3, 4, 5):
            conn.execute(update(audit_records).where(audit_records.c.seq == seq).values(seq=seq - 1))
        conn.execute(update(audit_head).values(seq=4))
    verdict = verify_chain(wired.engine)
    assert verdict.finding is not None
    assert (verdict.finding.seq, verdict.finding.problem) == (2, "removed")


def test_verify_names_a_removed_last_record(wired: Container) -> None:
    """The last record deleted: the head still names it."""
    filled(wired, 3)
    with wired.engine.begin() as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq == 3))
    verdict = verify_chain(wired.engine)
    assert verdict.finding is not None
    assert (verdict.finding.seq, verdict.finding.problem) == (3, "removed")


def test_verify_names_an_inserted_record(wired: Container, url: str) -> None:
    """A well-formed record added after the last one, head untouched: named as inserted."""
    records_ = filled(wired, 3)
    (forged,) = seal([Entry("acceptance", "x", "y", datetime.now(UTC))], 3, records_[-1].hash)
    with wired.engine.begin() as conn:
        conn.execute(insert(audit_records).values(**_row(forged)))
    code, output = verify(url)
    assert code == 1 and "BROKEN at record 4 (inserted)" in output


def test_verify_names_a_record_inserted_in_the_middle(wired: Container) -> None:
    """Records renumbered to make room for a forged one (correctly hashed): the forged one is named."""
    records_ = filled(wired, 4)
    (forged,) = seal([Entry("acceptance", "x", "y", datetime.now(UTC))], 1, records_[0].hash)
    with wired.engine.begin() as conn:
        for seq in (4, 3, 2):
            conn.execute(update(audit_records).where(audit_records.c.seq == seq).values(seq=seq + 1))
        conn.execute(insert(audit_records).values(**_row(forged)))
        conn.execute(update(audit_head).values(seq=5))
    verdict = verify_chain(wired.engine)
    assert verdict.finding is not None
    assert (verdict.finding.seq, verdict.finding.problem) == (2, "inserted")


def test_the_anchor_catches_a_fully_recomputed_chain(wired: Container, url: str, tmp_path: Path) -> None:
    """Edited and every hash recomputed (head too): only the exported head shows it."""
    filled(wired, 4)
    exported = runner.invoke(
        app, ["audit", "export", "--database-url", url, "--output", str(tmp_path / "a.jsonl")]
    )
    assert exported.exit_code == 0
    anchor = exported.output.strip().removeprefix("head ")
    accept(wired)  # the chain goes on after the anchor
    with wired.engine.begin() as conn:
        conn.execute(
            update(audit_records).where(audit_records.c.seq == 2).values(detail={"status": "rejected"})
        )
    rehash_from(wired.engine, 2)
    assert verify(url)[0] == 0, "a recomputed chain is consistent in itself"
    code, output = verify(url, "--anchor", anchor)
    assert code == 1 and "BROKEN at record 4 (anchor)" in output


def test_an_intact_chain_holds_its_anchor(wired: Container, url: str) -> None:
    """An anchor taken earlier still holds while the chain grows."""
    records_ = filled(wired, 2)
    accept(wired)
    code, output = verify(url, "--anchor", f"2:{records_[1].hash}")
    assert code == 0 and "anchor 2 holds" in output


# ------------------------------------------------------------------ export


def test_export_round_trips(wired: Container, url: str, tmp_path: Path) -> None:
    """The exported lines are the records, hash for hash; the file verifies on its own and
    ``--after`` continues where the last export stopped."""
    stored = filled(wired, 3)
    first = tmp_path / "first.jsonl"
    assert (
        runner.invoke(app, ["audit", "export", "--database-url", url, "--output", str(first)]).exit_code == 0
    )
    lines = first.read_text(encoding="utf-8").splitlines()
    assert [AuditRecord.from_json(json.loads(line)) for line in lines[:-1]] == stored
    assert json.loads(lines[-1]) == {"head": f"3:{stored[-1].hash}", "after": 0, "records": 3}
    assert verify_export(lines).ok
    checked = runner.invoke(app, ["audit", "verify", "--file", str(first)])
    assert checked.exit_code == 0 and "OK: 3 records" in checked.output
    accept(wired)
    second = runner.invoke(app, ["audit", "export", "--database-url", url, "--after", "3"])
    later = [json.loads(line) for line in second.stdout.splitlines()]
    assert [r["seq"] for r in later[:-1]] == [4] and later[0]["prev_hash"] == stored[-1].hash
    assert verify_export(second.stdout.splitlines(), anchor=None).ok


def test_an_edited_export_does_not_verify(wired: Container, tmp_path: Path) -> None:
    """An archive copy changed afterwards is caught as well."""
    filled(wired, 3)
    out = tmp_path / "e.jsonl"
    from gateway.store.audit import export

    with out.open("w", encoding="utf-8") as f:
        export(wired.engine, f.write)
    lines = out.read_text(encoding="utf-8").splitlines()
    edited = json.loads(lines[1])
    edited["actor"] = "someone:else"
    lines[1] = json.dumps(edited)
    verdict = verify_export(lines)
    assert verdict.finding is not None and (verdict.finding.seq, verdict.finding.problem) == (2, "changed")
    assert not verify_export(lines[:-1]).ok, "an export without its head line was cut short"


# ------------------------------------------------------------------ concurrency and format


@pytest.mark.postgres
def test_concurrent_appends_on_postgresql_make_one_contiguous_chain(postgres_url: str) -> None:
    """Several instances (each its own AuditLog) and threads appending at once: 1..N, all valid."""
    container = build(Settings(database_url=postgres_url))
    try:
        logs = [AuditLog(container.engine) for _ in range(3)]
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(40):
                    with container.engine.begin() as conn:
                        entry = Entry("replay", f"thread-{n}", f"r-{n}-{i}", datetime.now(UTC), {"i": i})
                        logs[n % 3].append(conn, entry)
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        records_ = chain(container.engine)
        assert [r.seq for r in records_] == list(range(1, 321))
        assert len({r.subject for r in records_}) == 320
        verdict = verify_chain(container.engine)
        assert verdict.ok and verdict.count == 320
    finally:
        container.close()


def test_the_hash_is_sha256_of_sorted_compact_json() -> None:
    """The canonical form, pinned: an external tool recomputes a hash from an exported line."""
    at = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
    data = canonical(1, at, "acceptance", "gendarmerie:00691234", "r-1", {"b": 1, "a": "é"}, GENESIS)
    assert (
        data
        == (
            '{"actor":"gendarmerie:00691234","at":"2026-11-29T15:00:00.000000+00:00",'
            '"detail":{"a":"é","b":1},"kind":"acceptance","prev_hash":"'
            + GENESIS
            + '","seq":1,"subject":"r-1"}'
        ).encode()
    )
    (record,) = seal([Entry("acceptance", "gendarmerie:00691234", "r-1", at, {"b": 1, "a": "é"})], 0, GENESIS)
    assert record.hash == hashlib.sha256(data).hexdigest() == hash_of(record)


def test_verify_on_a_database_without_the_audit_tables_says_so(tmp_path: Path) -> None:
    """Exit 2 and one line, not a traceback."""
    with_tables = build(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    with with_tables.engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_head"))
    with_tables.close()
    code, output = verify(f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 2 and "cannot read the audit record" in output


def _row(r: AuditRecord) -> dict[str, object]:
    return {
        "seq": r.seq,
        "at": r.at,
        "kind": r.kind,
        "actor": r.actor,
        "subject": r.subject,
        "detail": r.detail,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    }

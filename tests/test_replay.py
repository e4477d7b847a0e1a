"""Replays, on SQLite and PostgreSQL: redeliver and reprocess, preview, order, pace, control,
idempotent reruns, and the record of each replay."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.composition import Container, build, build_checker
from gateway.errors import Fatal, Retriable
from gateway.ports import DeliveryTask, Registration
from gateway.settings import SAMPLE_NATINF, Settings
from gateway.store.queries import MessageFilter, message_detail
from gateway.store.tables import audit_records, cases
from replay.model import (
    Action,
    ItemState,
    Mode,
    NothingSelected,
    ReasonRequired,
    ReplayError,
    ReplayStateConflict,
    ReplayStatus,
    ReplayUnknown,
    Selection,
)
from replay.service import ReplayService
from tests.fakes import FakeRegistry
from tests.test_delivery import FakeClock, accept, complement_of, initial, status

SAMPLES = sorted((Path(__file__).parent / "fixtures" / "gendarmerie" / "v1" / "valid").glob("*.xml"))
DEAD = MessageFilter(status="dead_letter")


class TimedRegistry(FakeRegistry):
    """The fake registry, noting when each call came (monotonic seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def register(self, task: DeliveryTask) -> Registration:
        with self.lock:
            self.times.append(time.monotonic())
        return super().register(task)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'replay.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _wire(url: str, **settings: Any) -> Container:
    container = build(Settings(database_url=url, retry_max_attempts=1, breaker_threshold=10_000, **settings))
    container.registry = TimedRegistry()
    container.clock = container.replays.clock = FakeClock()
    return container


@pytest.fixture
def wired(url: str) -> Iterator[Container]:
    container = _wire(url)
    yield container
    container.close()


def fake(container: Container) -> TimedRegistry:
    assert isinstance(container.registry, TimedRegistry)
    return container.registry


_PROCEDURES = itertools.count(uuid.uuid4().int % 50_000)


def procedure() -> str:
    """A numéro de procédure no other message of this test run has."""
    return f"{next(_PROCEDURES) % 100_000:05d}/2026"


def dead_letters(container: Container, count: int, with_complements: int = 0) -> tuple[list[str], list[str]]:
    """``count`` initial procedures refused by the registry (dead letters), the first
    ``with_complements`` of them followed by a complément (held)."""
    firsts, seconds = [], []
    for n in range(count):
        data = initial(n % 4, procedure=procedure())
        firsts.append(accept(container, data))
        if n < with_complements:
            seconds.append(accept(container, complement_of(data)))
    fake(container).script = [Fatal("UNKNOWN_TRIBUNAL", "refused")] * count
    container.worker().run_until_idle(timeout=120)
    fake(container).script = []
    return firsts, seconds


def run(container: Container, replay_id: str) -> None:
    """Carry the replay out, then let the worker deliver what it requeued."""
    summary = container.replays.run(replay_id, "test-runner")
    assert summary.status == ReplayStatus.COMPLETED
    container.worker().run_until_idle(timeout=120)


# ----- redeliver ---------------------------------------------------------------------------------


def test_redeliver_a_dead_letter_registers_it_and_what_was_held_behind_it(wired: Container) -> None:
    [dead], [held] = dead_letters(wired, 1, with_complements=1)
    assert (status(wired, dead), status(wired, held)) == ("dead_letter", "held")
    selection = Selection(receipt_ids=(dead, held))

    preview = wired.replays.preview(Mode.REDELIVER, selection)
    assert [(i.receipt_id, i.action) for i in preview.items] == [(dead, "requeue"), (held, "skip")]
    assert "goes on by itself" in preview.items[1].reason
    assert status(wired, dead) == "dead_letter", "a preview changes nothing"

    started = wired.replays.start(Mode.REDELIVER, selection, "registry fixed INC-42", "alice")
    assert started.status == "running" and started.total == 2 and started.counts == {"pending": 2}
    run(wired, started.replay_id)
    assert (status(wired, dead), status(wired, held)) == ("registered", "registered")

    summary = wired.replays.get(started.replay_id)
    assert summary.counts["requeue"] == 1 and summary.counts["skip"] == 1 and summary.done == 2
    assert summary.deliveries == {"registered": 1}
    assert (summary.reason, summary.requested_by) == ("registry fixed INC-42", "alice")
    # lineage: the replay on the message's timeline, before the attempt it produced
    timeline = message_detail(wired.engine, dead)
    assert timeline is not None
    kinds = [(e["kind"], e["detail"].get("replay_id")) for e in timeline["timeline"]]
    at = kinds.index(("replayed", started.replay_id))
    assert ("registered", None) in kinds[at:]
    attempts = [e for e in timeline["timeline"] if e["source"] == "attempt"]
    assert [a.get("replay_id") for a in attempts] == [None, started.replay_id]
    assert wired.replays.of_message(dead)[0]["action"] == "requeue"
    # on the audit record: who started it and why, and what it did to the message
    with wired.engine.connect() as conn:
        records = conn.execute(
            select(audit_records.c.actor, audit_records.c.subject, audit_records.c.detail)
            .where(audit_records.c.kind == "replay")
            .order_by(audit_records.c.seq)
        ).all()
    assert [(r.actor, r.subject, r.detail["action"]) for r in records] == [
        ("alice", started.replay_id, "started"),
        ("alice", dead, "requeue"),
    ]
    assert records[0].detail["reason"] == "registry fixed INC-42"


def test_running_the_same_replay_twice_sends_nothing_twice(wired: Container) -> None:
    dead, _ = dead_letters(wired, 3)
    selection = Selection(receipt_ids=tuple(dead))
    run(wired, wired.replays.start(Mode.REDELIVER, selection, "first", "alice").replay_id)
    calls = len(fake(wired).calls)
    again = wired.replays.start(Mode.REDELIVER, selection, "again, by mistake", "bob")
    run(wired, again.replay_id)
    assert len(fake(wired).calls) == calls, "registered messages are skipped"
    assert wired.replays.get(again.replay_id).counts == {"done": 3, "skip": 3}
    assert {i.reason.split(" as ")[0] for i in wired.replays.items(again.replay_id)} == {"Already registered"}


def test_bulk_replay_of_1000_dead_letters_once_each_in_order_within_the_rate(url: str) -> None:
    """The issue's "done when": after the registry recovers, a bulk replay registers each dead
    letter exactly once, each procedure in order, and no faster than its rate."""
    container = _wire(url, worker_concurrency=8)
    try:
        dead, held = dead_letters(container, 1000, with_complements=50)
        registry = fake(container)
        before = len(registry.calls)
        rate = 400.0
        started = container.replays.start(
            Mode.REDELIVER, Selection(filter=DEAD), "registry back after INC-7", "alice", rate_per_second=rate
        )
        assert started.total == 1000
        worker = container.worker()
        delivering = threading.Thread(target=worker.run)
        delivering.start()
        try:
            began = time.monotonic()
            summary = container.replays.run(started.replay_id, "bulk-runner")
            took = time.monotonic() - began
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and container.store.deliveries.queue_depth().get("pending"):
                time.sleep(0.1)
        finally:
            worker.stop()
            delivering.join()
        assert summary.status == "completed" and summary.counts["requeue"] == 1000
        calls, times = registry.calls[before:], registry.times[before:]
        keys = [c.message_id for c in calls]
        assert len(keys) == len(set(keys)) == 1050, "each message sent exactly once"
        assert all(status(container, r) == "registered" for r in dead + held)
        # order: each complément after its initial procedure
        position = {c.message_id: n for n, c in enumerate(calls)}
        by_key = {c.procedure_key: c for c in calls if c.kind == "initiale"}
        for complement in (c for c in calls if c.kind == "complement"):
            assert position[by_key[complement.procedure_key].message_id] < position[complement.message_id]
        # pace: no second holds more requeued sends than the rate and its burst (a tenth of it)
        initials = sorted(t for c, t in zip(calls, times, strict=True) if c.kind == "initiale")
        window = max(sum(1 for t in initials if start <= t < start + 1.0) for start in initials)
        assert window <= rate * 1.1 + 1
        assert took >= (1000 - rate / 10 - 1) / rate, "1000 requeued at 400/s take 2.5 s at least"
    finally:
        container.close()


# ----- reprocess ---------------------------------------------------------------------------------


def _drop_second_offence(fmt: Any) -> Any:
    """The format with a mapping bug: it keeps only the first offence of a case."""
    real = fmt.map_case

    def buggy(reading: Any) -> Any:
        case = real(reading)
        return case.model_copy(update={"infractions": case.infractions[:1]})

    return dataclasses.replace(fmt, map_case=buggy)


def test_reprocess_after_a_mapping_fix_changes_exactly_the_cases_it_should(url: str, tmp_path: Path) -> None:
    from adapters.registry import FORMATS

    buggy_formats = tuple(_drop_second_offence(f) if f.name == "gendarmerie/v1" else f for f in FORMATS)
    settings = Settings(database_url=url, retry_max_attempts=1, breaker_threshold=10_000)
    container = build(settings, formats=buggy_formats)
    container.registry = TimedRegistry()
    container.clock = container.replays.clock = FakeClock()
    try:
        correct = build_checker(settings)
        receipts: dict[str, Path] = {}
        for sample in SAMPLES:
            outcome = container.intake.submit("gendarmerie", sample.read_bytes(), "rest")
            if outcome.http_status == 202:
                receipts[outcome.receipt.receipt_id] = sample
        container.worker().run_until_idle(timeout=120)
        should_change = {
            receipt_id
            for receipt_id, sample in receipts.items()
            if len(correct.evaluate(sample.read_bytes(), "gendarmerie").case.infractions) > 1  # type: ignore[union-attr]
        }
        assert 0 < len(should_change) < len(receipts)

        container.replays.checker = correct  # the fix is deployed
        selection = Selection(receipt_ids=tuple(receipts))
        preview = container.replays.preview(Mode.REPROCESS, selection)
        revised = {i.receipt_id for i in preview.items if i.action == Action.REVISE}
        assert revised == should_change
        for item in preview.items:
            if item.action == Action.REVISE:
                assert item.revision == 2
                assert item.changes and all(c.path.startswith("/infractions/") for c in item.changes)
                assert all(c.old is None for c in item.changes)
            else:
                assert item.action == Action.SKIP and item.reason == "The case is unchanged: nothing to do."

        calls = len(fake(container).calls)
        run(container, container.replays.start(Mode.REPROCESS, selection, "fix of #12", "alice").replay_id)
        sent = fake(container).calls[calls:]
        assert sorted(c.message_id for c in sent) == sorted(
            message_detail(container.engine, r)["message_id"]  # type: ignore[index]
            for r in should_change
        )
        assert {c.revision for c in sent} == {2}
        for receipt_id in receipts:
            assert status(container, receipt_id) == "registered"
            detail = message_detail(container.engine, receipt_id)
            assert detail is not None
            expected = 2 if receipt_id in should_change else 1
            assert detail["case"]["revision"] == expected
        with container.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(cases)).scalar_one() == len(receipts) + len(
                should_change
            )
        # and again: nothing left to change
        again = container.replays.preview(Mode.REPROCESS, selection)
        assert again.counts == {Action.SKIP: len(receipts)}
    finally:
        container.close()


def _without_23800(tmp_path: Path) -> Path:
    """The sample NATINF list as it was before code 23800 was added to it."""
    old = tmp_path / "natinf-old.csv"
    lines = SAMPLE_NATINF.read_text(encoding="utf-8").splitlines(keepends=True)
    old.write_text("".join(line for line in lines if not line.startswith("23800;")), encoding="utf-8")
    return old


def test_reprocess_a_rejected_message_after_a_reference_list_update(url: str, tmp_path: Path) -> None:
    """Rejected for a NATINF code missing from an old list; accepted and delivered once the list
    is updated."""
    container = _wire(url, natinf_csv=_without_23800(tmp_path))
    try:
        sample = next(p for p in SAMPLES if b"<Natinf>23800</Natinf>" in p.read_bytes())
        refused = container.intake.submit("gendarmerie", sample.read_bytes(), "rest")
        assert refused.http_status == 422 and "NATINF_UNKNOWN" in {e.code for e in refused.receipt.errors}
        selection = Selection(filter=MessageFilter(error_code="NATINF_UNKNOWN"))

        still = container.replays.preview(Mode.REPROCESS, selection)
        assert [i.action for i in still.items] == [Action.STILL_REJECTED]
        with pytest.raises(ReplayError):
            container.replays.preview(Mode.REPROCESS, Selection(filter=MessageFilter()))

        container.replays.checker = build_checker(Settings(database_url=url))  # the list updated
        preview = container.replays.preview(Mode.REPROCESS, selection)
        [item] = preview.items
        assert item.action == Action.ACCEPT and item.revision == 1
        assert {c.path for c in item.changes} >= {"/infractions", "/parties", "/tribunal_code"}
        run(
            container,
            container.replays.start(Mode.REPROCESS, selection, "NATINF list of June", "bob").replay_id,
        )
        receipt_id = refused.receipt.receipt_id
        assert status(container, receipt_id) == "registered"
        detail = message_detail(container.engine, receipt_id)
        assert detail is not None and detail["errors"] == [] and detail["case"]["revision"] == 1
        kinds = [e["kind"] for e in detail["timeline"]]
        assert kinds.index("rejected") < kinds.index("accepted") < kinds.index("registered")
        # the list no longer finds it among the NATINF_UNKNOWN rejections
        with pytest.raises(NothingSelected):
            container.replays.preview(Mode.REPROCESS, selection)
    finally:
        container.close()


def test_reprocess_leaves_an_accepted_case_alone_when_it_would_now_be_rejected(
    url: str, tmp_path: Path
) -> None:
    container = _wire(url)
    try:
        sample = next(p for p in SAMPLES if b"<Natinf>23800</Natinf>" in p.read_bytes())
        accepted = accept(container, sample.read_bytes())
        container.worker().run_until_idle()
        old_list = _without_23800(tmp_path)
        container.replays.checker = build_checker(Settings(database_url=url, natinf_csv=old_list))
        selection = Selection(receipt_ids=(accepted,))
        [item] = container.replays.preview(Mode.REPROCESS, selection).items
        assert item.action == Action.REFUSED and item.errors[0]["code"] == "NATINF_UNKNOWN"
        run(container, container.replays.start(Mode.REPROCESS, selection, "check", "alice").replay_id)
        assert status(container, accepted) == "registered"
    finally:
        container.close()


# ----- control and errors ------------------------------------------------------------------------


def test_pause_resume_cancel(wired: Container) -> None:
    dead, _ = dead_letters(wired, 4)
    replays = wired.replays
    started = replays.start(
        Mode.REDELIVER, Selection(receipt_ids=tuple(dead)), "why", "alice", rate_per_second=1
    )
    assert replays.step("runner") == 1, "one at once, then the rate"
    assert replays.step("runner") == 0
    elsewhere = ReplayService(wired.store, replays.checker, replays.clock, replays.rate_per_second)
    assert elsewhere.step("another-runner") == 0, "another runner (its own pace) waits for the lease"
    paused = replays.pause(started.replay_id, "bob")
    assert paused.status == "paused" and paused.events[-1]["kind"] == "paused"
    with pytest.raises(ReplayStateConflict):
        replays.pause(started.replay_id, "bob")
    time.sleep(1.1)
    assert replays.step("runner") == 0, "a paused replay does nothing"
    replays.resume(started.replay_id, "bob")
    time.sleep(1.1)
    assert replays.step("runner") == 1
    cancelled = replays.cancel(started.replay_id, "carol")
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert cancelled.counts == {"done": 2, "requeue": 2, "cancelled": 2}
    assert [e["kind"] for e in cancelled.events] == ["paused", "resumed", "cancelled"]
    assert [e["by"] for e in cancelled.events] == ["bob", "bob", "carol"]
    with wired.engine.connect() as conn:
        controls = conn.execute(
            select(audit_records.c.actor, audit_records.c.detail["action"].as_string())
            .where(audit_records.c.kind == "replay", audit_records.c.subject == started.replay_id)
            .order_by(audit_records.c.seq)
        ).all()
    assert [tuple(c) for c in controls] == [
        ("alice", "started"),
        ("bob", "paused"),
        ("bob", "resumed"),
        ("carol", "cancelled"),
    ]
    with pytest.raises(ReplayStateConflict):
        replays.resume(started.replay_id, "bob")
    assert [i.state for i in replays.items(started.replay_id)] == [
        ItemState.DONE,
        ItemState.DONE,
        ItemState.CANCELLED,
        ItemState.CANCELLED,
    ]
    assert replays.history()[0].replay_id == started.replay_id


def test_requests_that_cannot_be_carried_out(wired: Container) -> None:
    replays = wired.replays
    one = Selection(receipt_ids=(accept(wired, initial(procedure=procedure())),))
    with pytest.raises(ReasonRequired):
        replays.start(Mode.REDELIVER, one, "  ", "alice")
    with pytest.raises(ReplayError, match="Unknown mode"):
        replays.preview("resend", one)
    with pytest.raises(ReplayError, match="Unknown receipt ids"):
        replays.preview(Mode.REDELIVER, Selection(receipt_ids=("nope",)))
    with pytest.raises(NothingSelected):
        replays.preview(Mode.REDELIVER, Selection())
    with pytest.raises(NothingSelected):
        replays.preview(Mode.REDELIVER, Selection(filter=MessageFilter(unit_code="00000")))
    with pytest.raises(ReplayError, match="not both"):
        replays.preview(Mode.REDELIVER, Selection(receipt_ids=("x",), filter=DEAD))
    with pytest.raises(ReplayUnknown):
        replays.get("nope")
    with pytest.raises(ReplayUnknown):
        replays.cancel("nope", "alice")


def test_retriable_failures_after_a_replay_start_a_fresh_budget(wired: Container) -> None:
    """A requeued dead letter is not out of time at its first failure (its age restarts)."""
    [dead], _ = dead_letters(wired, 1)
    clock = wired.clock
    assert isinstance(clock, FakeClock)
    clock.advance(48 * 3600)  # two days later: older than retry_max_age
    container = wired
    container.settings = container.settings.model_copy(update={"retry_max_attempts": 3})
    fake(container).script = [Retriable("HTTP 503")]
    run(
        container, container.replays.start(Mode.REDELIVER, Selection(receipt_ids=(dead,)), "r", "a").replay_id
    )
    assert status(container, dead) == "delivering", "retried later, not dead at once"

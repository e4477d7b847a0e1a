"""The purge of personal data after the retention time, legal holds, and their audit records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.composition import Container
from gateway.ports import DeliveryTask, Registration
from gateway.store.audit import verify_chain
from gateway.store.queries import message_detail
from gateway.store.retention import PURGED_TEXT, HoldError
from gateway.store.tables import audit_records
from replay.model import Action, Mode, Selection
from tests.fakes import FakeRegistry
from tests.test_delivery import FakeClock, accept, initial
from tests.test_replay import _wire, procedure


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def wired(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'retention.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    container = _wire(url, retention_days=30, rejected_retention_days=7)
    container.retention.clock = container.clock
    yield container
    container.close()


def later(container: Container, days: float) -> None:
    clock = container.clock
    assert isinstance(clock, FakeClock)
    clock.advance(days * 86400)


def test_registered_payloads_are_purged_after_retention_unless_held(wired: Container) -> None:
    kept_data = initial(0, procedure=procedure())
    kept, purged = accept(wired, kept_data), accept(wired, initial(1, procedure=procedure()))
    rejected = wired.intake.submit("gendarmerie", b"<Procedure xmlns='urn:nope'/>", "rest").receipt.receipt_id
    wired.worker().run_until_idle()
    held_detail = message_detail(wired.engine, kept)
    assert held_detail is not None
    hold = wired.retention.place_hold(
        "gendarmerie",
        held_detail["unit_code"],
        held_detail["procedure_number"],
        "ordonnance du JI 2026/77",
        "ada",
    )
    with pytest.raises(HoldError):
        wired.retention.place_hold("gendarmerie", "1", "2", "  ", "ada")

    later(wired, 6)
    assert wired.retention.purge("cron", dry_run=True).purged == 0, "nothing due yet"
    later(wired, 2)  # 8 days: the rejected one is due
    report = wired.retention.purge("cron")
    assert (report.purged, report.receipt_ids) == (1, [rejected])
    refused = message_detail(wired.engine, rejected)
    assert refused is not None and refused["raw"] is None and refused["purged_at"] is not None
    assert {e["message"] for e in refused["errors"]} == {PURGED_TEXT} and refused["errors"][0]["code"]

    later(wired, 30)
    dry = wired.retention.purge("cron", dry_run=True)
    assert (dry.purged, dry.held, dry.receipt_ids) == (1, 1, [purged])
    assert message_detail(wired.engine, purged)["raw"] is not None  # type: ignore[index]
    report = wired.retention.purge("cron")
    assert (report.purged, report.held) == (1, 1)
    gone = message_detail(wired.engine, purged)
    assert gone is not None and gone["raw"] is None and gone["case"]["affaire"] == {"purged": True}
    assert gone["sha256"] and gone["numero_parquet"] and gone["status"] == "registered", "metadata stays"
    still = message_detail(wired.engine, kept)
    assert still is not None and still["raw"] is not None and still["case"]["affaire"]["infractions"]

    wired.retention.release_hold(hold.id, "ada")
    with pytest.raises(HoldError):
        wired.retention.release_hold(hold.id, "ada")
    assert wired.retention.holds() == [] and len(wired.retention.holds(in_force_only=False)) == 1
    assert wired.retention.purge("cron").receipt_ids == [kept]
    assert wired.retention.purge("cron").purged == 0, "a purge twice purges nothing twice"

    with wired.engine.connect() as conn:
        rows = conn.execute(
            select(audit_records.c.subject, audit_records.c.detail).where(audit_records.c.kind == "purge")
        ).all()
    purged_subjects = [s for s, d in rows if d["action"] == "payload_purged"]
    assert purged_subjects == [rejected, purged, kept]
    assert [d["action"] for s, d in rows if s.startswith("hold:")] == ["hold_placed", "hold_released"]
    assert verify_chain(wired.engine).ok


def test_a_purged_message_cannot_be_reprocessed_but_says_why(wired: Container) -> None:
    receipt_id = accept(wired, initial(2, procedure=procedure()))
    wired.worker().run_until_idle()
    later(wired, 31)
    wired.retention.purge("cron")
    [item] = wired.replays.preview(Mode.REPROCESS, Selection(receipt_ids=(receipt_id,))).items
    assert item.action == Action.SKIP and "not kept" in item.reason


class RegistryOnTheClock(FakeRegistry):
    """Answers with the registration time of the test's clock (the registry's word counts)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def register(self, task: DeliveryTask) -> Registration:
        return dataclasses.replace(super().register(task), registered_at=self.clock())


def test_retention_is_counted_from_registration_not_reception(wired: Container) -> None:
    assert isinstance(wired.clock, FakeClock)
    wired.registry = RegistryOnTheClock(wired.clock)
    receipt_id = accept(wired, initial(3, procedure=procedure()))
    later(wired, 25)
    wired.worker().run_until_idle()  # registered 25 days after reception
    later(wired, 10)
    assert wired.retention.purge("cron").purged == 0
    later(wired, 21)
    assert wired.retention.purge("cron").receipt_ids == [receipt_id]
    assert timedelta(days=30) == wired.retention.retention

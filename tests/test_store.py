"""The message store on SQLite and PostgreSQL: migrations, idempotency, concurrent twins."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.composition import Container, build
from gateway.settings import Settings
from gateway.store.engine import make_engine
from gateway.store.migrate import upgrade
from gateway.store.repository import _FIND_ACCEPTED
from gateway.store.tables import metadata
from tests.conftest import GENDARMERIE_V1, with_new_id

SAMPLE = sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))[0]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def wired(database_url: str) -> Iterator[Container]:
    container = build(Settings(database_url=database_url))
    yield container
    container.close()


def test_migrations_match_the_tables(database_url: str) -> None:
    """Alembic's head creates exactly the tables the code declares (and runs twice safely)."""
    upgrade(database_url)
    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_accepted_message_is_stored_with_its_case(wired: Container) -> None:
    """Raw bytes, case, status and history are all there after submit."""
    data = with_new_id(SAMPLE.read_bytes())
    outcome = wired.intake.submit("gendarmerie", data, "rest")
    assert outcome.http_status == 202
    receipt_id = outcome.receipt.receipt_id
    assert wired.store.raw(receipt_id) == data
    case = wired.store.case(receipt_id)
    assert case is not None and case["source"]["mapping_version"] == "gendarmerie-v1.0"
    receipt = wired.store.receipt(receipt_id)
    assert receipt is not None and [e.kind for e in receipt.history] == [
        "received",
        "validated",
        "accepted",
    ]


def test_repeat_and_conflict(wired: Container) -> None:
    """Same bytes: the original receipt; same id with other bytes: 409 recorded apart."""
    data = with_new_id(SAMPLE.read_bytes())
    first = wired.intake.submit("gendarmerie", data, "rest")
    repeat = wired.intake.submit("gendarmerie", data, "rest")
    assert (repeat.http_status, repeat.repeat) == (200, True)
    assert repeat.receipt.receipt_id == first.receipt.receipt_id
    conflict = wired.intake.submit("gendarmerie", data.replace(b"</Summary>", b".</Summary>", 1), "rest")
    assert conflict.http_status == 409
    assert conflict.receipt.receipt_id != first.receipt.receipt_id
    assert wired.store.raw(first.receipt.receipt_id) == data


def test_a_rejected_message_does_not_take_its_id(wired: Container) -> None:
    """A sender may fix a rejected message and send it again under the same id."""
    data = with_new_id(SAMPLE.read_bytes())
    broken = data.replace(b"<ProcedureNumber>", b"<ProcedureNumber>X", 1)
    assert wired.intake.submit("gendarmerie", broken, "rest").http_status == 422
    assert wired.intake.submit("gendarmerie", data, "rest").http_status == 202


def test_concurrent_twins_store_one_message(wired: Container) -> None:
    """The same message sent eight times at once is accepted once; the others are repeats."""
    data = with_new_id(SAMPLE.read_bytes())
    barrier = threading.Barrier(8)
    outcomes = []

    def send() -> None:
        barrier.wait()
        outcomes.append(wired.intake.submit("gendarmerie", data, "rest"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.http_status for o in outcomes) == [200] * 7 + [202]
    assert len({o.receipt.receipt_id for o in outcomes}) == 1


def test_repeat_lookup_searches_the_partial_index(tmp_path: Path) -> None:
    """On SQLite the accepted-message look-up uses its partial index, not a table scan."""
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    upgrade(url)
    engine = make_engine(url)
    bound = _FIND_ACCEPTED.params(sender="gendarmerie:00691234", message_id="m-1")
    query = bound.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}"))
    engine.dispose()
    assert "USING INDEX uq_messages_accepted_sender_message_id" in plan, plan

"""The operators' read API: the message list (filters, order, cursor) on SQLite and PostgreSQL,
and over HTTP the list, the message page with its timeline, and the structured 404."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert, update

from gateway.composition import Container, build
from gateway.errors import Fatal
from gateway.ports import DeliveryOutcome, OutcomeKind, Registration
from gateway.settings import Settings
from gateway.store.engine import make_engine
from gateway.store.migrate import upgrade
from gateway.store.queries import Cursor, InvalidCursor, MessageFilter, list_messages
from gateway.store.tables import message_error_codes, messages
from tests.conftest import GENDARMERIE_V1, with_new_id

VALID = sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))[:3]
NATINF_UNKNOWN = GENDARMERIE_V1 / "invalid" / "natinf-unknown.xml"
SCHEMA_TWO_ERRORS = GENDARMERIE_V1 / "invalid" / "schema-two-errors.xml"
URL = "/api/v1/messages"
PLUS_ONE = timezone(timedelta(hours=1))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def wired(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'messages.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    container = build(Settings(database_url=url))
    yield container
    container.close()


def submit(container: Container, path: Path) -> str:
    return container.intake.submit("gendarmerie", with_new_id(path.read_bytes()), "rest").receipt.receipt_id


def seed(container: Container) -> dict[str, str]:
    """Three accepted messages (the first registered) and two rejected ones; receipt ids by name."""
    ids = {f"valid{i}": submit(container, path) for i, path in enumerate(VALID)}
    ids["natinf"] = submit(container, NATINF_UNKNOWN)
    ids["schema"] = submit(container, SCHEMA_TWO_ERRORS)
    deliveries = container.store.deliveries
    now = datetime.now(UTC) + timedelta(minutes=1)
    task = next(t for t in deliveries.claim("test", 10, 30, now) if t.receipt_id == ids["valid0"])
    registered = Registration("TJ75056-2026-0000042", now)
    deliveries.settle(
        [DeliveryOutcome(task, OutcomeKind.REGISTERED, now, 12, registration=registered)], "", 0, 0, now
    )
    return ids


def everything(container: Container) -> list[dict[str, object]]:
    return list_messages(container.store.engine, MessageFilter(), 500).items


def receipts(items: list[dict[str, object]]) -> list[object]:
    return [item["receipt_id"] for item in items]


def test_list_is_newest_first(wired: Container) -> None:
    """Without a filter every message is listed, by reception time descending."""
    ids = seed(wired)
    items = everything(wired)
    assert set(receipts(items)) == set(ids.values())
    assert receipts(items) == list(reversed(ids.values()))


def test_each_filter_keeps_exactly_the_matching_messages(wired: Container) -> None:
    """status, agency, unit, format, schema version, tribunal and procedure number each filter."""
    seed(wired)
    items = everything(wired)
    for field in (
        "status",
        "agency",
        "unit_code",
        "format",
        "schema_version",
        "tribunal_code",
        "procedure_number",
    ):
        for value in {item[field] for item in items if item[field] is not None}:
            found = list_messages(wired.store.engine, MessageFilter(**{field: value}), 500).items
            assert receipts(found) == [i["receipt_id"] for i in items if i[field] == value], (field, value)
    rejected = list_messages(wired.store.engine, MessageFilter(status="rejected"), 500).items
    assert len(rejected) == 2
    assert list_messages(wired.store.engine, MessageFilter(agency="police"), 500).items == []


def test_error_code_and_numero_parquet_filters(wired: Container) -> None:
    """A code any error of the message has; the numéro parquet of a registered message."""
    ids = seed(wired)
    engine = wired.store.engine

    def find(**where: str) -> list[object]:
        return receipts(list_messages(engine, MessageFilter(**where), 500).items)  # type: ignore[arg-type]

    assert find(error_code="NATINF_UNKNOWN") == [ids["natinf"]]
    assert find(error_code="SCHEMA_ATTRIBUTE_MISSING") == [ids["schema"]]
    assert find(error_code="SCHEMA_ATTRIBUTE_MISSING", status="accepted") == []
    assert find(error_code="NOT_A_CODE") == []
    assert find(numero_parquet="TJ75056-2026-0000042") == [ids["valid0"]]
    by_id = {i["receipt_id"]: i for i in everything(wired)}
    assert by_id[ids["schema"]]["error_codes"] == ["SCHEMA_ATTRIBUTE_MISSING", "SCHEMA_VALUE_INVALID"]
    assert by_id[ids["valid0"]]["status"] == "registered"


def test_received_range_is_from_inclusive_to_exclusive(wired: Container) -> None:
    """received_from keeps messages at or after it, received_to those strictly before it."""
    ids = seed(wired)
    items = everything(wired)
    middle = items[2]["received_at"]
    assert isinstance(middle, datetime)
    engine = wired.store.engine
    later = list_messages(engine, MessageFilter(received_from=middle), 500).items
    earlier = list_messages(engine, MessageFilter(received_to=middle), 500).items
    assert receipts(later) == receipts(items[:3])
    assert receipts(earlier) == receipts(items[3:])
    in_paris = list_messages(engine, MessageFilter(received_from=middle.astimezone(PLUS_ONE)), 500).items
    assert receipts(in_paris) == receipts(items[:3]), "a zone other than UTC means the same instant"
    assert len(ids) == 5


def _ties(container: Container) -> None:
    """Give several messages the same reception time: the order falls back on storage order."""
    at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    with container.store.engine.begin() as conn:
        conn.execute(update(messages).where(messages.c.id % 2 == 0).values(received_at=at))
        conn.execute(
            update(message_error_codes)
            .where(message_error_codes.c.message_pk % 2 == 0)
            .values(received_at=at)
        )


@pytest.mark.parametrize("where", [MessageFilter(), MessageFilter(error_code="NATINF_UNKNOWN")])
def test_cursor_pages_give_every_message_once_in_order(wired: Container, where: MessageFilter) -> None:
    """Following next_cursor with small pages yields the full list, in order, without repeats."""
    for path in VALID + [NATINF_UNKNOWN] * 4:
        submit(wired, path)
    _ties(wired)
    engine = wired.store.engine
    full = list_messages(engine, where, 500).items
    assert len(full) == (7 if where.error_code is None else 4)
    stamps = [(i["received_at"], i["receipt_id"]) for i in full]
    assert [s[0] for s in stamps] == sorted((s[0] for s in stamps), reverse=True)
    paged: list[dict[str, object]] = []
    cursor = None
    while True:
        page = list_messages(engine, where, 2, Cursor.decode(cursor) if cursor else None)
        paged.extend(page.items)
        assert len(page.items) <= 2
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert receipts(paged) == receipts(full)


def test_a_tampered_cursor_is_refused() -> None:
    """Only a cursor this API produced decodes."""
    token = Cursor(datetime(2026, 11, 1, tzinfo=UTC), 42).encode()
    assert Cursor.decode(token) == Cursor(datetime(2026, 11, 1, tzinfo=UTC), 42)
    for bad in ("nope", token[:-3], "WyJ4IiwgMV0"):
        with pytest.raises(InvalidCursor):
            Cursor.decode(bad)


def test_list_over_http_filters_and_pages(http: httpx.Client, container: Container) -> None:
    """GET /api/v1/messages answers items and next_cursor; filters and cursor work over HTTP."""
    ids = seed(container)
    first = http.get(URL, params={"limit": 2})
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["items"]) == 2 and body["next_cursor"]
    rest = http.get(URL, params={"limit": 500, "cursor": body["next_cursor"]}).json()
    assert rest["next_cursor"] is None
    assert len(body["items"]) + len(rest["items"]) == 5
    coded = http.get(URL, params={"error_code": "NATINF_UNKNOWN", "status": "rejected"}).json()
    assert [i["receipt_id"] for i in coded["items"]] == [ids["natinf"]]
    assert coded["items"][0]["error_codes"] == ["NATINF_UNKNOWN"]
    assert http.get(URL, params={"cursor": "nope"}).json()["errors"][0]["code"] == "CURSOR_INVALID"
    assert http.get(URL, params={"limit": 501}).status_code == 422


def test_message_page_shows_raw_case_errors_timeline_and_delivery(
    http: httpx.Client, container: Container
) -> None:
    """The detail of a delivered message: each attempt with outcome, answer and duration."""
    receipt_id = submit(container, VALID[0])
    deliveries = container.store.deliveries
    now = datetime.now(UTC) + timedelta(minutes=1)
    (task,) = deliveries.claim("test", 10, 30, now)
    retry = DeliveryOutcome(
        task,
        OutcomeKind.RETRY,
        now,
        184,
        reason="registry answered 503",
        next_attempt_at=now + timedelta(seconds=5),
    )
    deliveries.settle([retry], "", 0, 0, now)
    later = now + timedelta(seconds=6)
    (task,) = deliveries.claim("test", 10, 30, later)
    registered = Registration("TJ75056-2026-0000007", later)
    deliveries.settle(
        [DeliveryOutcome(task, OutcomeKind.REGISTERED, later, 95, registration=registered)], "", 0, 0, later
    )
    response = http.get(f"{URL}/{receipt_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["raw_encoding"] == "utf-8" and "<MessageId>" in body["raw"]
    assert body["status"] == "registered" and body["numero_parquet"] == "TJ75056-2026-0000007"
    assert body["schema_version"] and body["mapping_version"] == "gendarmerie-v1.0"
    assert body["case"]["revision"] == 1 and body["case"]["affaire"]
    assert body["delivery"]["status"] == "registered" and body["delivery"]["attempts"] == 2
    attempts = [e for e in body["timeline"] if e["source"] == "attempt"]
    assert [(a["outcome"], a["duration_ms"]) for a in attempts] == [("retriable", 184), ("registered", 95)]
    assert attempts[0]["detail"]["reason"] == "registry answered 503"
    kinds = [e["kind"] for e in body["timeline"]]
    assert kinds[:3] == ["received", "validated", "accepted"]
    assert kinds[-2:] == ["delivery_attempt", "registered"]


def test_message_page_of_a_rejection_lists_its_errors(http: httpx.Client, container: Container) -> None:
    """A rejected message: every error with its line, no case, no delivery."""
    receipt_id = submit(container, SCHEMA_TWO_ERRORS)
    body = http.get(f"{URL}/{receipt_id}").json()
    assert body["status"] == "rejected" and body["case"] is None and body["delivery"] is None
    assert {e["code"] for e in body["errors"]} == {"SCHEMA_ATTRIBUTE_MISSING", "SCHEMA_VALUE_INVALID"}
    assert all(e["line"] for e in body["errors"])
    assert [e["kind"] for e in body["timeline"]] == ["received", "rejected"]


def test_raw_bytes_that_are_not_utf8_come_as_base64(http: httpx.Client, container: Container) -> None:
    """A body that is not UTF-8 text is returned exactly, base64-encoded."""
    data = b"\xff\xfe<\x00r\x00/\x00>\x00"
    receipt_id = container.intake.submit("gendarmerie", data, "rest").receipt.receipt_id
    body = http.get(f"{URL}/{receipt_id}").json()
    assert body["raw_encoding"] == "base64"
    assert base64.b64decode(body["raw"]) == data


def test_unknown_message_is_a_structured_404(http: httpx.Client) -> None:
    """An unknown receipt id: 404 with a coded error."""
    response = http.get(f"{URL}/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "MESSAGE_UNKNOWN"


def test_openapi_documents_the_message_endpoints(http: httpx.Client) -> None:
    """Both routes are published, with a summary and who may call them."""
    paths = http.get("/openapi.json").json()["paths"]
    for path in (URL, URL + "/{receipt_id}"):
        operation = paths[path]["get"]
        assert operation["summary"] and "For operators" in operation["description"]
    names = {p["name"] for p in paths[URL]["get"]["parameters"]}
    assert {"status", "unit", "format", "error_code", "tribunal", "numero_parquet", "cursor"} <= names


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_migration_0003_fills_the_codes_of_stored_messages(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Messages stored before the error-code table are found by their codes after upgrading."""
    url = (
        f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    )
    upgrade(url, "0002")
    engine = make_engine(url)
    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    errors = [{"code": "NATINF_UNKNOWN", "message": "x"}, {"code": "NATINF_UNKNOWN", "message": "y"}]
    row = {"receipt_id": "r-old", "agency": "gendarmerie", "sender": "gendarmerie:1", "transport": "rest"}
    row |= {"status": "rejected", "http_status": 422, "accepted": False, "sha256": "0" * 64, "size": 1}
    row |= {"errors": errors, "warnings": [], "received_at": at, "updated_at": at}
    with engine.begin() as conn:
        conn.execute(insert(messages), row)
    upgrade(url)
    page = list_messages(engine, MessageFilter(error_code="NATINF_UNKNOWN"), 10)
    engine.dispose()
    assert [(i["receipt_id"], i["received_at"], i["error_codes"]) for i in page.items] == [
        ("r-old", at, ["NATINF_UNKNOWN"])
    ]


def test_dead_letters_are_found_by_the_reason_their_delivery_ended_with(
    http: httpx.Client, container: Container
) -> None:
    """dead_letter_reason: the registry's code (or RETRIES_EXHAUSTED), which is not one of the
    message's own error codes."""
    from tests.fakes import FakeRegistry

    container.registry = registry = FakeRegistry()
    dead = submit(container, VALID[0])
    registry.script = [Fatal("UNKNOWN_TRIBUNAL", "tribunal inconnu")]
    container.worker().run_until_idle()
    registered = submit(container, VALID[1])
    container.worker().run_until_idle()
    found = http.get(URL, params={"dead_letter_reason": "UNKNOWN_TRIBUNAL"}).json()["items"]
    assert [i["receipt_id"] for i in found] == [dead] and found[0]["status"] == "dead_letter"
    assert http.get(URL, params={"dead_letter_reason": "RETRIES_EXHAUSTED"}).json()["items"] == []
    assert http.get(URL, params={"error_code": "UNKNOWN_TRIBUNAL"}).json()["items"] == []
    assert registered not in {i["receipt_id"] for i in found}
    assert http.get(f"{URL}/{registered}").json()["status"] == "registered", "delivered normally"

"""The replay API over HTTP (a live server): preview, start (202 and Location), follow, pause,
resume, cancel, a single message's replay, and every refusal in the API's error shape."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.composition import Container, build, build_checker
from gateway.errors import Fatal
from gateway.settings import Settings
from tests.conftest import GENDARMERIE_V1, LiveServer, with_new_id
from tests.fakes import FakeRegistry

SAMPLES = sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))
INITIALS = [p for p in SAMPLES if b"PROCEDURE_INITIALE" in p.read_bytes()]
NATINF_UNKNOWN = GENDARMERIE_V1 / "invalid" / "natinf-unknown.xml"
REPLAYS = "/api/v1/replays"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def wired(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'replay-api.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    container = build(Settings(database_url=url, retry_max_attempts=1, breaker_threshold=10_000))
    container.registry = FakeRegistry()
    yield container
    container.close()


@pytest.fixture
def api(wired: Container) -> Iterator[httpx.Client]:
    """The gateway served on loopback, without its worker or replay runner: replays started
    through the API stay running until a test carries them out."""
    with LiveServer(wired) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def dead_letters(container: Container, count: int) -> list[str]:
    """``count`` accepted procedures that the registry refused: dead letters."""
    receipts = []
    for n in range(count):
        data = with_new_id(INITIALS[n % len(INITIALS)].read_bytes())
        outcome = container.intake.submit("gendarmerie", data, "rest")
        assert outcome.http_status == 202
        receipts.append(outcome.receipt.receipt_id)
    registry = container.registry
    assert isinstance(registry, FakeRegistry)
    registry.script = [Fatal("UNKNOWN_TRIBUNAL", "refused")] * count
    container.worker().run_until_idle(timeout=60)
    registry.script = []
    return receipts


def rejected(container: Container) -> str:
    data = with_new_id(NATINF_UNKNOWN.read_bytes())
    return container.intake.submit("gendarmerie", data, "rest").receipt.receipt_id


def status_of(container: Container, receipt_id: str) -> str:
    receipt = container.store.receipt(receipt_id)
    assert receipt is not None
    return receipt.status


def codes(response: httpx.Response) -> list[str]:
    body = response.json()
    assert set(body) == {"status", "errors"}, body
    return [e["code"] for e in body["errors"]]


def start(client: httpx.Client, receipts: list[str], **extra: Any) -> dict[str, Any]:
    body = {"mode": "redeliver", "receipt_ids": receipts, "reason": "registry fixed", "requested_by": "alice"}
    response = client.post(REPLAYS, json={**body, **extra})
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


def test_preview_says_what_each_message_would_get_and_changes_nothing(
    api: httpx.Client, wired: Container
) -> None:
    """200 with mode, total, counts by action and one item per message; nothing is recorded."""
    dead = dead_letters(wired, 2)
    refused = rejected(wired)
    response = api.post(
        f"{REPLAYS}/preview", json={"mode": "redeliver", "filters": {"status": "dead_letter"}}
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["mode"] == "redeliver" and preview["total"] == 2 and preview["truncated"] is False
    assert preview["counts"] == {"requeue": 2}
    assert {i["receipt_id"] for i in preview["items"]} == set(dead)
    item = preview["items"][0]
    assert set(item) == {
        "receipt_id", "message_id", "procedure_key", "status", "action", "reason", "errors", "changes",
        "revision",
    }  # fmt: skip
    assert item["status"] == "dead_letter" and item["action"] == "requeue" and item["reason"]

    reprocess = api.post(f"{REPLAYS}/preview", json={"mode": "reprocess", "receipt_ids": [refused]})
    assert reprocess.status_code == 200
    [still] = reprocess.json()["items"]
    assert still["action"] == "still_rejected" and still["errors"][0]["code"] == "NATINF_UNKNOWN"

    limited = api.post(f"{REPLAYS}/preview", json={"mode": "redeliver", "receipt_ids": dead, "limit": 1})
    assert limited.json()["truncated"] is True and len(limited.json()["items"]) == 1
    assert limited.json()["counts"] == {"requeue": 2}
    assert [status_of(wired, r) for r in dead] == ["dead_letter", "dead_letter"]
    assert api.get(REPLAYS).json() == {"items": []}


def _keep_first_offence(fmt: Any) -> Any:
    """The format with a mapping bug: it keeps only the first offence of a case."""
    real = fmt.map_case

    def buggy(reading: Any) -> Any:
        case = real(reading)
        return case.model_copy(update={"infractions": case.infractions[:1]})

    return dataclasses.replace(fmt, map_case=buggy)


def test_reprocess_preview_shows_the_differences_of_each_case(tmp_path: Path) -> None:
    """After a mapping fix, the preview lists each changed case's differences (path, old, new)."""
    from adapters.registry import FORMATS

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'fix.db'}")
    container = build(settings, formats=tuple(_keep_first_offence(f) for f in FORMATS))
    try:
        receipts = [
            outcome.receipt.receipt_id
            for sample in SAMPLES
            if (outcome := container.intake.submit("gendarmerie", sample.read_bytes(), "rest")).http_status
            == 202
        ]
        container.replays.checker = build_checker(settings)  # the fix is deployed
        with LiveServer(container) as server:
            response = httpx.post(
                f"{server.url}{REPLAYS}/preview",
                json={"mode": "reprocess", "receipt_ids": receipts},
                timeout=30,
            )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        revised = [i for i in items if i["action"] == "revise"]
        assert revised and len(revised) < len(items)
        for item in revised:
            assert item["revision"] == 2
            assert item["changes"] and all(set(c) == {"path", "old", "new"} for c in item["changes"])
            assert all(c["path"].startswith("/infractions/") and c["old"] is None for c in item["changes"])
    finally:
        container.close()


def test_starting_a_replay_answers_202_with_its_location(api: httpx.Client, wired: Container) -> None:
    """202, the summary (who, why, what, progress) and a Location where the replay is followed."""
    dead = dead_letters(wired, 2)
    response = api.post(
        REPLAYS,
        json={
            "mode": "redeliver",
            "filters": {"status": "dead_letter", "agency": "gendarmerie"},
            "reason": "  registry fixed  ",
            "requested_by": "alice",
            "rate_per_second": 5,
        },
    )
    assert response.status_code == 202, response.text
    summary = response.json()
    replay_id = summary["replay_id"]
    assert response.headers["location"] == f"{REPLAYS}/{replay_id}"
    assert summary["status"] == "running" and summary["mode"] == "redeliver"
    assert summary["reason"] == "registry fixed" and summary["requested_by"] == "alice"
    assert summary["rate_per_second"] == 5 and summary["total"] == 2 and summary["done"] == 0
    assert summary["counts"] == {"pending": 2} and summary["deliveries"] == {}
    assert summary["selection"] == {"filter": {"status": "dead_letter", "agency": "gendarmerie"}}
    followed = api.get(response.headers["location"])
    assert followed.status_code == 200 and followed.json()["replay_id"] == replay_id
    items = api.get(f"{REPLAYS}/{replay_id}/items").json()["items"]
    assert [i["position"] for i in items] == [1, 2] and {i["receipt_id"] for i in items} == set(dead)
    assert all(i["state"] == "pending" and i["action"] is None for i in items)
    page = api.get(f"{REPLAYS}/{replay_id}/items", params={"limit": 1, "offset": 1}).json()["items"]
    assert [i["position"] for i in page] == [2]


def test_a_replay_started_through_the_api_registers_the_dead_letters(
    api: httpx.Client, wired: Container
) -> None:
    """Carried out (by the runner) and delivered (by the worker): done, completed, registered."""
    dead = dead_letters(wired, 3)
    replay_id = start(api, dead)["replay_id"]
    wired.replays.run(replay_id, "test-runner")
    wired.worker().run_until_idle(timeout=60)
    summary = api.get(f"{REPLAYS}/{replay_id}").json()
    assert summary["status"] == "completed" and summary["done"] == 3 and summary["finished_at"]
    assert summary["counts"] == {"done": 3, "requeue": 3}
    assert summary["deliveries"] == {"registered": 3}
    assert [status_of(wired, r) for r in dead] == ["registered"] * 3
    items = api.get(f"{REPLAYS}/{replay_id}/items").json()["items"]
    assert {(i["state"], i["action"], i["delivery_status"]) for i in items} == {
        ("done", "requeue", "registered")
    }
    history = api.get(REPLAYS, params={"limit": 5}).json()["items"]
    assert [h["replay_id"] for h in history] == [replay_id]


def test_the_history_is_newest_first(api: httpx.Client, wired: Container) -> None:
    """GET /api/v1/replays lists the latest replay first, `limit` at most."""
    dead = dead_letters(wired, 2)
    first = start(api, dead[:1])["replay_id"]
    second = start(api, dead[1:])["replay_id"]
    assert [h["replay_id"] for h in api.get(REPLAYS).json()["items"]] == [second, first]
    assert [h["replay_id"] for h in api.get(REPLAYS, params={"limit": 1}).json()["items"]] == [second]


def test_a_replay_without_a_reason_is_refused(api: httpx.Client, wired: Container) -> None:
    """No reason, or a blank one: 422 REPLAY_REASON_REQUIRED, and nothing is recorded."""
    dead = dead_letters(wired, 1)
    body = {"mode": "redeliver", "receipt_ids": dead, "requested_by": "alice"}
    missing = api.post(REPLAYS, json=body)
    assert missing.status_code == 422 and codes(missing) == ["REPLAY_REASON_REQUIRED"]
    assert missing.json()["status"] == "invalid"
    assert missing.json()["errors"][0]["path"] == "body.reason"
    for reason in ("", "   ", None):
        blank = api.post(REPLAYS, json={**body, "reason": reason})
        assert blank.status_code == 422 and codes(blank) == ["REPLAY_REASON_REQUIRED"], reason
    assert api.get(REPLAYS).json() == {"items": []}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"mode": "again", "receipt_ids": ["x"]}, "REPLAY_INVALID"),
        ({"receipt_ids": ["x"]}, "REPLAY_INVALID"),
        ({"mode": "redeliver", "receipt_ids": ["x"], "filters": {"status": "dead_letter"}}, "REPLAY_INVALID"),
        ({"mode": "redeliver", "filters": {"colour": "red"}}, "REPLAY_INVALID"),
        ({"mode": "redeliver", "filters": {"received_from": "yesterday"}}, "REPLAY_INVALID"),
        ({"mode": "redeliver", "filters": {}}, "REPLAY_INVALID"),
        ({"mode": "redeliver", "receipt_ids": []}, "REPLAY_INVALID"),
        ({"mode": "redeliver", "receipt_ids": ["no-such-receipt"]}, "REPLAY_INVALID"),
        ({"mode": "redeliver"}, "REPLAY_NOTHING_SELECTED"),
        ({"mode": "redeliver", "filters": {"tribunal_code": "TJ00000"}}, "REPLAY_NOTHING_SELECTED"),
    ],
)
def test_bad_selections_are_refused_in_the_api_error_shape(
    api: httpx.Client, body: dict[str, Any], code: str
) -> None:
    """A selection that cannot be carried out: 422 with the code, for a preview as for a start."""
    preview = api.post(f"{REPLAYS}/preview", json=body)
    assert preview.status_code == 422 and codes(preview) == [code]
    started = api.post(REPLAYS, json={**body, "reason": "test", "requested_by": "alice"})
    assert started.status_code == 422 and codes(started) == [code]


def test_a_body_that_is_not_json_is_refused_in_the_api_error_shape(api: httpx.Client) -> None:
    """Malformed JSON, a missing field, a bad query parameter: 422 REPLAY_INVALID, with where."""
    response = api.post(REPLAYS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and codes(response) == ["REPLAY_INVALID"]
    wrong = api.post(REPLAYS, json={"receipt_ids": ["x"], "reason": "r", "requested_by": "alice"})
    assert wrong.status_code == 422 and codes(wrong) == ["REPLAY_INVALID"]
    assert wrong.json()["errors"][0]["path"] == "body.mode"
    nobody = api.post(REPLAYS, json={"mode": "redeliver", "receipt_ids": ["x"], "reason": "r"})
    assert nobody.status_code == 422 and codes(nobody) == ["REPLAY_INVALID"]
    assert "who asks" in nobody.json()["errors"][0]["message"], "without authentication, a name is needed"
    limit = api.get(REPLAYS, params={"limit": 0})
    assert limit.status_code == 422 and codes(limit) == ["REPLAY_INVALID"]


def test_an_unknown_replay_is_404(api: httpx.Client) -> None:
    """Reading or controlling a replay that does not exist: 404 REPLAY_UNKNOWN."""
    unknown = f"{REPLAYS}/{uuid.uuid4()}"
    for response in (
        api.get(unknown),
        api.get(f"{unknown}/items"),
        api.post(f"{unknown}/pause", json={"by": "alice"}),
        api.post(f"{unknown}/resume", json={"by": "alice"}),
        api.post(f"{unknown}/cancel", json={"by": "alice"}),
    ):
        assert response.status_code == 404 and codes(response) == ["REPLAY_UNKNOWN"]
        assert response.json()["status"] == "not_found"


def test_pause_resume_cancel_and_their_conflicts(api: httpx.Client, wired: Container) -> None:
    """Each control changes the status and is recorded (by whom); one that does not fit the
    replay's state is 409 REPLAY_STATE_CONFLICT."""
    dead = dead_letters(wired, 2)
    replay_id = start(api, dead)["replay_id"]
    url = f"{REPLAYS}/{replay_id}"

    def control(verb: str, by: str = "bob") -> httpx.Response:
        return api.post(f"{url}/{verb}", json={"by": by})

    assert control("resume").status_code == 409
    paused = control("pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    again = control("pause")
    assert again.status_code == 409 and codes(again) == ["REPLAY_STATE_CONFLICT"]
    assert again.json()["status"] == "conflict"
    assert control("resume", "carol").json()["status"] == "running"
    cancelled = control("cancel", "dave")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["counts"] == {"cancelled": 2} and cancelled.json()["finished_at"]
    for verb in ("pause", "resume", "cancel"):
        assert control(verb).status_code == 409, verb
    events = api.get(url).json()["events"]
    assert [(e["kind"], e["by"]) for e in events] == [
        ("paused", "bob"),
        ("resumed", "carol"),
        ("cancelled", "dave"),
    ]
    assert [status_of(wired, r) for r in dead] == ["dead_letter", "dead_letter"]
    missing_by = api.post(f"{url}/pause", json={})
    assert missing_by.status_code == 422 and codes(missing_by) == ["REPLAY_INVALID"]


def test_one_message_is_previewed_or_replayed_from_its_own_address(
    api: httpx.Client, wired: Container
) -> None:
    """POST /api/v1/messages/{id}/replay: dry_run answers the preview; otherwise 202 and Location."""
    [dead] = dead_letters(wired, 1)
    url = f"/api/v1/messages/{dead}/replay"
    preview = api.post(url, json={"mode": "redeliver", "dry_run": True})
    assert preview.status_code == 200 and preview.json()["counts"] == {"requeue": 1}
    assert api.get(REPLAYS).json() == {"items": []}
    no_reason = api.post(url, json={"mode": "redeliver", "requested_by": "alice"})
    assert no_reason.status_code == 422 and codes(no_reason) == ["REPLAY_REASON_REQUIRED"]
    nobody = api.post(url, json={"mode": "redeliver", "reason": "registry fixed"})
    assert nobody.status_code == 422 and codes(nobody) == ["REPLAY_INVALID"]
    started = api.post(url, json={"mode": "redeliver", "reason": "registry fixed", "requested_by": "alice"})
    assert started.status_code == 202, started.text
    assert started.headers["location"] == f"{REPLAYS}/{started.json()['replay_id']}"
    assert started.json()["selection"] == {"receipt_ids": [dead]} and started.json()["total"] == 1
    unknown = api.post("/api/v1/messages/no-such-receipt/replay", json={"mode": "redeliver", "dry_run": True})
    assert unknown.status_code == 404 and codes(unknown) == ["MESSAGE_UNKNOWN"]


def test_the_replay_api_is_documented_with_its_error_shape(api: httpx.Client) -> None:
    """Every route is in OpenAPI, with examples, and its 422 is the API's error shape."""
    spec = api.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        REPLAYS,
        f"{REPLAYS}/preview",
        f"{REPLAYS}/{{replay_id}}",
        f"{REPLAYS}/{{replay_id}}/items",
        f"{REPLAYS}/{{replay_id}}/pause",
        f"{REPLAYS}/{{replay_id}}/resume",
        f"{REPLAYS}/{{replay_id}}/cancel",
        "/api/v1/messages/{receipt_id}/replay",
    ):
        assert path in paths, path
    post = paths[REPLAYS]["post"]
    assert "202" in post["responses"]
    assert post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ApiErrorOut")
    assert "examples" in spec["components"]["schemas"]["ReplayIn"]
    assert paths[f"{REPLAYS}/{{replay_id}}/pause"]["post"]["responses"]["409"]

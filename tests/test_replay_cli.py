"""The operators' commands: `saisine messages list|show` and `saisine replay` (dry run, a replay
carried out in the foreground, Ctrl-C, list, show, pause, resume, cancel) with their exit codes."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from gateway.cli import app
from gateway.composition import Container, build
from gateway.errors import Fatal
from gateway.settings import Settings
from gateway.store.queries import message_detail
from replay.model import Mode, ReplayStatus, Selection
from tests.conftest import GENDARMERIE_V1, with_new_id
from tests.fakes import FakeRegistry

runner = CliRunner()
SAMPLES = sorted((GENDARMERIE_V1 / "valid").glob("*.xml"))
INITIALS = [p for p in SAMPLES if b"PROCEDURE_INITIALE" in p.read_bytes()]
NATINF_UNKNOWN = GENDARMERIE_V1 / "invalid" / "natinf-unknown.xml"


@dataclasses.dataclass
class Store:
    """A store the commands are pointed at (--database-url), and a container on it for the test."""

    url: str
    container: Container

    def cli(self, *args: str, input: str | None = None) -> Result:
        return runner.invoke(app, [*args, "--database-url", self.url], input=input)

    def status(self, receipt_id: str) -> str:
        receipt = self.container.store.receipt(receipt_id)
        assert receipt is not None
        return receipt.status

    def deliver(self) -> None:
        """What a worker does once the registry answers again."""
        self.container.worker().run_until_idle(timeout=60)


def _store(url: str, **settings: Any) -> Iterator[Store]:
    container = build(Settings(database_url=url, retry_max_attempts=1, breaker_threshold=10_000, **settings))
    container.registry = FakeRegistry()
    yield Store(url, container)
    container.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'replay-cli.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    yield from _store(url)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    yield from _store(f"sqlite:///{tmp_path / 'replay-cli.db'}")


def dead_letters(store: Store, count: int) -> list[str]:
    """``count`` accepted procedures that the registry refused: dead letters."""
    receipts = []
    for n in range(count):
        data = with_new_id(INITIALS[n % len(INITIALS)].read_bytes())
        outcome = store.container.intake.submit("gendarmerie", data, "rest")
        assert outcome.http_status == 202
        receipts.append(outcome.receipt.receipt_id)
    registry = store.container.registry
    assert isinstance(registry, FakeRegistry)
    registry.script = [Fatal("UNKNOWN_TRIBUNAL", "refused")] * count
    store.deliver()
    registry.script = []
    return receipts


def rejected(store: Store) -> tuple[str, bytes]:
    data = with_new_id(NATINF_UNKNOWN.read_bytes())
    return store.container.intake.submit("gendarmerie", data, "rest").receipt.receipt_id, data


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ----- saisine messages ----------------------------------------------------------------------


def test_messages_list_filters_and_pages_as_json(store: Store) -> None:
    """Each filter keeps the matching messages; --limit pages, --cursor goes on where it stopped."""
    dead = dead_letters(store, 3)
    refused, _ = rejected(store)
    everything = as_json(store.cli("messages", "list", "--json"))
    assert [m["receipt_id"] for m in everything["items"]] == [refused, *reversed(dead)]
    assert everything["next_cursor"] is None
    assert {
        m["receipt_id"]
        for m in as_json(store.cli("messages", "list", "--status", "dead_letter", "--json"))["items"]
    } == set(dead)
    by_code = as_json(store.cli("messages", "list", "--error-code", "NATINF_UNKNOWN", "--json"))
    assert [(m["receipt_id"], m["error_codes"]) for m in by_code["items"]] == [(refused, ["NATINF_UNKNOWN"])]
    unit = everything["items"][1]["unit_code"]
    by_unit = as_json(store.cli("messages", "list", "--unit", unit, "--agency", "gendarmerie", "--json"))
    assert by_unit["items"] and all(m["unit_code"] == unit for m in by_unit["items"])
    later = as_json(store.cli("messages", "list", "--from", "2999-01-01", "--json"))
    assert later["items"] == []
    first = as_json(store.cli("messages", "list", "--limit", "2", "--json"))
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = as_json(store.cli("messages", "list", "--limit", "2", "--cursor", first["next_cursor"], "--json"))
    assert [m["receipt_id"] for m in first["items"] + rest["items"]] == [refused, *reversed(dead)]


def test_messages_list_prints_a_table_and_the_next_cursor(sqlite_store: Store) -> None:
    """Without --json: a table, then the cursor of the next page (or "last page")."""
    dead = dead_letters(sqlite_store, 2)
    result = sqlite_store.cli("messages", "list", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert dead[1] in result.stdout and dead[0] not in result.stdout
    assert "dead_letter" in result.stdout and "next cursor: " in result.stdout
    last = sqlite_store.cli("messages", "list", "--limit", "5")
    assert "last page" in last.stdout


def test_messages_list_refuses_bad_options_with_exit_2(sqlite_store: Store) -> None:
    """A date that is not ISO 8601, a cursor no page printed, a limit out of range: exit 2."""
    assert sqlite_store.cli("messages", "list", "--from", "yesterday").exit_code == 2
    assert sqlite_store.cli("messages", "list", "--cursor", "not-a-cursor").exit_code == 2
    assert sqlite_store.cli("messages", "list", "--limit", "0").exit_code == 2


def test_messages_show_prints_the_message_its_errors_and_raw_bytes(sqlite_store: Store) -> None:
    """show: status, errors and timeline; --json the API's shape; --raw the bytes as received."""
    refused, data = rejected(sqlite_store)
    [dead] = dead_letters(sqlite_store, 1)
    shown = sqlite_store.cli("messages", "show", refused)
    assert shown.exit_code == 0, shown.output
    assert "rejected" in shown.stdout and "NATINF_UNKNOWN" in shown.stdout and "timeline" in shown.stdout
    detail = as_json(sqlite_store.cli("messages", "show", dead, "--json"))
    assert detail["status"] == "dead_letter" and detail["delivery"]["status"] == "dead_letter"
    assert [e["kind"] for e in detail["timeline"]][-1] == "dead_letter"
    assert detail["replays"] == []
    raw = sqlite_store.cli("messages", "show", refused, "--raw")
    assert raw.exit_code == 0 and raw.stdout_bytes == data
    unknown = sqlite_store.cli("messages", "show", "no-such-receipt")
    assert unknown.exit_code == 1 and "MESSAGE_UNKNOWN" in unknown.output


def test_messages_show_records_the_consultation(sqlite_store: Store) -> None:
    """Each `messages show` is in the audit record: who (the OS user), which message, why."""
    from gateway.store.audit import records

    refused, _ = rejected(sqlite_store)
    assert sqlite_store.cli("messages", "show", refused, "--purpose", "ticket 42").exit_code == 0
    with sqlite_store.container.engine.connect() as conn:
        consulted = [r for r in records(conn) if r.kind == "consultation"]
    assert [(r.actor, r.subject, r.detail) for r in consulted] == [
        (f"cli:{getpass.getuser()}", refused, {"purpose": "ticket 42"})
    ]


# ----- saisine replay --------------------------------------------------------------------------


def test_replay_dry_run_shows_what_would_happen_and_changes_nothing(store: Store) -> None:
    """--dry-run prints the counts and each message's action; no status changes, no replay recorded."""
    dead = dead_letters(store, 2)
    result = store.cli("replay", "--mode", "redeliver", "--status", "dead_letter", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "requeue" in result.stdout and all(r in result.stdout for r in dead)
    assert "nothing was changed" in result.stdout
    preview = as_json(store.cli("replay", "--mode", "redeliver", "--receipt", dead[0], "--dry-run", "--json"))
    assert preview["total"] == 1 and preview["counts"] == {"requeue": 1}
    assert [store.status(r) for r in dead] == ["dead_letter", "dead_letter"]
    assert store.container.replays.history() == []


def _keep_first_offence(fmt: Any) -> Any:
    """The format with a mapping bug: it keeps only the first offence of a case."""
    real = fmt.map_case

    def buggy(reading: Any) -> Any:
        case = real(reading)
        return case.model_copy(update={"infractions": case.infractions[:1]})

    return dataclasses.replace(fmt, map_case=buggy)


def test_reprocess_dry_run_shows_the_differences_of_each_case(tmp_path: Path) -> None:
    """Cases stored by a buggy mapping: the dry run (today's mapping) lists what would change."""
    from adapters.registry import FORMATS

    url = f"sqlite:///{tmp_path / 'fix.db'}"
    buggy = build(Settings(database_url=url), formats=tuple(_keep_first_offence(f) for f in FORMATS))
    try:
        receipts = [
            buggy.intake.submit("gendarmerie", s.read_bytes(), "rest").receipt.receipt_id for s in SAMPLES
        ]
        result = runner.invoke(
            app, ["replay", "--mode", "reprocess", "--status", "accepted", "--dry-run", "--database-url", url]
        )
        assert result.exit_code == 0, result.output
        assert "revise" in result.stdout and "/infractions/1" in result.stdout and "-> " in result.stdout
        detail = message_detail(buggy.engine, receipts[0])
        assert detail is not None and detail["case"]["revision"] == 1
        assert buggy.replays.history() == []
    finally:
        buggy.close()


def test_replay_runs_to_the_end_with_a_summary_and_the_messages_get_registered(store: Store) -> None:
    """The replay is recorded, carried out in the foreground and summed up; once the registry
    answers, the messages are registered and `replay show` says so."""
    dead = dead_letters(store, 3)
    result = store.cli(
        "replay",
        "--mode",
        "redeliver",
        "--status",
        "dead_letter",
        "--reason",
        "registry fixed",
        "--by",
        "alice",
        "--yes",
    )
    assert result.exit_code == 0, result.output
    assert "completed, 3 of 3 messages" in result.stdout and "requeue" in result.stdout
    [summary] = store.container.replays.history()
    assert summary.status == ReplayStatus.COMPLETED and summary.requested_by == "alice"
    assert summary.reason == "registry fixed" and summary.selection == {"filter": {"status": "dead_letter"}}
    store.deliver()
    assert [store.status(r) for r in dead] == ["registered"] * 3
    shown = as_json(store.cli("replay", "show", summary.replay_id, "--json"))
    assert shown["deliveries"] == {"registered": 3} and shown["counts"] == {"done": 3, "requeue": 3}
    assert {(i["receipt_id"], i["delivery_status"]) for i in shown["items"]} == {
        (r, "registered") for r in dead
    }
    table = store.cli("replay", "show", summary.replay_id)
    assert "registered" in table.stdout and "registry fixed" in table.stdout
    listed = store.cli("replay", "list")
    assert summary.replay_id in listed.stdout and "completed" in listed.stdout
    again = store.cli("messages", "show", dead[0], "--json")
    assert [r["replay_id"] for r in as_json(again)["replays"]] == [summary.replay_id]


def test_replay_with_wait_follows_the_deliveries_of_a_running_worker(store: Store) -> None:
    """--wait: the summary shows the messages registered by a worker running beside the command."""
    dead = dead_letters(store, 2)
    worker = store.container.worker()
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        result = store.cli(
            "replay", "--mode", "redeliver", "--receipt", dead[0], "--receipt", dead[1], "--reason", "retry",
            "--yes", "--wait", "30", "--json",
        )  # fmt: skip
    finally:
        worker.stop()
        thread.join()
    summary = as_json(result)
    assert summary["status"] == "completed" and summary["deliveries"] == {"registered": 2}
    assert [store.status(r) for r in dead] == ["registered", "registered"]


def test_replay_as_json_and_by_the_os_user(sqlite_store: Store) -> None:
    """--json prints the final summary; without --by the replay is recorded as the OS user's."""
    dead = dead_letters(sqlite_store, 1)
    args = ("replay", "--mode", "redeliver", "--receipt", dead[0], "--reason", "retry", "--yes", "--json")
    summary = as_json(sqlite_store.cli(*args))
    assert summary["status"] == "completed" and summary["total"] == 1
    assert summary["requested_by"] == getpass.getuser()


def test_replay_asks_before_it_starts(sqlite_store: Store) -> None:
    """Without --yes the counts are shown and a 'no' starts nothing."""
    dead_letters(sqlite_store, 1)
    result = sqlite_store.cli(
        "replay", "--mode", "redeliver", "--status", "dead_letter", "--reason", "retry", input="n\n"
    )
    assert result.exit_code == 1 and "requeue 1" in result.output
    assert sqlite_store.container.replays.history() == []
    accepted = sqlite_store.cli(
        "replay", "--mode", "redeliver", "--status", "dead_letter", "--reason", "retry", input="y\n"
    )
    assert accepted.exit_code == 0, accepted.output
    assert "completed" in accepted.stdout


def test_ctrl_c_pauses_the_replay_and_resume_finishes_it(sqlite_store: Store) -> None:
    """SIGINT during a replay pauses it and says how to resume; `replay resume` carries it on."""
    dead = dead_letters(sqlite_store, 6)
    replays = sqlite_store.container.replays

    def interrupt_once_started() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = replays.history(1)
            if found and found[0].done >= 1:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    interrupter = threading.Thread(target=interrupt_once_started)
    interrupter.start()
    result = sqlite_store.cli(
        "replay",
        "--mode",
        "redeliver",
        "--status",
        "dead_letter",
        "--reason",
        "retry",
        "--rate",
        "2",
        "--yes",
    )
    interrupter.join()
    assert result.exit_code == 0, result.output
    [summary] = replays.history()
    assert summary.status == ReplayStatus.PAUSED and 0 < summary.done < len(dead)
    assert f"saisine replay resume {summary.replay_id}" in result.output
    assert [e["kind"] for e in summary.events] == ["paused"]
    resumed = sqlite_store.cli("replay", "resume", summary.replay_id, "--by", "bob")
    assert resumed.exit_code == 0, resumed.output
    assert replays.get(summary.replay_id).status == ReplayStatus.COMPLETED
    assert "completed, 6 of 6 messages" in resumed.stdout


def test_pause_resume_cancel_commands_and_their_conflicts(sqlite_store: Store) -> None:
    """Controls change the status and record who; a control that does not fit exits 1 with
    REPLAY_STATE_CONFLICT."""
    dead = dead_letters(sqlite_store, 2)
    replay_id = sqlite_store.container.replays.start(
        Mode.REDELIVER, Selection(tuple(dead)), "r", "alice"
    ).replay_id
    paused = as_json(sqlite_store.cli("replay", "pause", replay_id, "--by", "bob", "--json"))
    assert paused["status"] == "paused"
    conflict = sqlite_store.cli("replay", "pause", replay_id)
    assert conflict.exit_code == 1 and "REPLAY_STATE_CONFLICT" in conflict.output
    detached = as_json(sqlite_store.cli("replay", "resume", replay_id, "--detach", "--by", "carol", "--json"))
    assert detached["status"] == "running" and detached["done"] == 0
    cancelled = sqlite_store.cli("replay", "cancel", replay_id, "--by", "dave")
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.stdout
    events = sqlite_store.container.replays.get(replay_id).events
    assert [(e["kind"], e["by"]) for e in events] == [
        ("paused", "bob"),
        ("resumed", "carol"),
        ("cancelled", "dave"),
    ]
    assert sqlite_store.cli("replay", "resume", replay_id).exit_code == 1
    assert [sqlite_store.status(r) for r in dead] == ["dead_letter", "dead_letter"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--mode", "redeliver", "--status", "dead_letter"), "REPLAY_REASON_REQUIRED"),
        (("--mode", "redeliver", "--status", "dead_letter", "--reason", "  "), "REPLAY_REASON_REQUIRED"),
        (("--mode", "redeliver", "--reason", "r", "--yes"), "REPLAY_NOTHING_SELECTED"),
        (("--mode", "redeliver", "--tribunal", "TJ00000", "--dry-run"), "REPLAY_NOTHING_SELECTED"),
        (("--mode", "redeliver", "--receipt", "no-such-receipt", "--dry-run"), "REPLAY_INVALID"),
    ],
)
def test_replay_errors_exit_1_with_their_code(sqlite_store: Store, args: tuple[str, ...], code: str) -> None:
    """No reason, nothing selected, unknown receipt ids: exit 1, the code printed, nothing recorded."""
    dead_letters(sqlite_store, 1)
    result = sqlite_store.cli("replay", *args)
    assert result.exit_code == 1, result.output
    assert code in result.output
    assert sqlite_store.container.replays.history() == []


def test_unknown_replay_exits_1_with_replay_unknown(sqlite_store: Store) -> None:
    """show, pause, resume, cancel of an id no replay has: exit 1, REPLAY_UNKNOWN."""
    for command in ("show", "pause", "resume", "cancel"):
        result = sqlite_store.cli("replay", command, "no-such-replay")
        assert result.exit_code == 1 and "REPLAY_UNKNOWN" in result.output, command


@pytest.mark.parametrize(
    "args",
    [
        ("--mode", "again", "--status", "dead_letter", "--dry-run"),
        ("--mode", "redeliver", "--receipt", "x", "--status", "dead_letter", "--dry-run"),
        ("--mode", "redeliver", "--from", "yesterday", "--dry-run"),
        ("--status", "dead_letter", "--dry-run"),
        ("--mode", "redeliver", "--rate", "0", "--dry-run"),
    ],
)
def test_bad_usage_exits_2(sqlite_store: Store, args: tuple[str, ...]) -> None:
    """An unknown mode, ids and filters together, a bad date, no --mode, a zero rate: exit 2."""
    result = sqlite_store.cli("replay", *args)
    assert result.exit_code == 2, result.output

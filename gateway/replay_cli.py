"""``saisine replay``: preview a replay (``--dry-run``) or carry one out in the foreground with a
progress bar (Ctrl-C pauses it), and ``saisine replay list|show|pause|resume|cancel``. The
selection options are the message list's (gateway/operator_cli.py). Mounted by gateway/cli.py.

Exit codes: 0 done, 1 a replay or selection error (printed with its code), 2 bad usage.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.operator_cli import (
    Agency,
    AsJson,
    DatabaseUrl,
    ErrorCode,
    Format,
    From,
    NumeroParquet,
    Procedure,
    SchemaVersion,
    Status,
    To,
    Tribunal,
    Unit,
    container_for,
    make_console,
    message_filter,
    no_filter,
    os_user,
    print_json,
    short_time,
)
from replay.model import ItemState, ReasonRequired, ReplayError, ReplayStatus, Selection

if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.table import Table

    from replay.model import Preview, ReplayItem, ReplaySummary
    from replay.service import ReplayService

replay_app = typer.Typer(
    help=(
        "Replay messages: saisine replay --mode redeliver|reprocess (--receipt ID ... | filters) "
        "--reason TEXT [--dry-run]. Or follow and control replays with the commands below."
    ),
    no_args_is_help=False,
)


class ModeChoice(StrEnum):
    redeliver = "redeliver"
    reprocess = "reprocess"


By = Annotated[str | None, typer.Option("--by", help="Who (recorded); default: the OS user")]


Wait = Annotated[
    float,
    typer.Option(
        min=0,
        help="Then follow the deliveries up to this many seconds (a running worker delivers them)",
    ),
]


@contextmanager
def _replay_errors() -> Iterator[None]:
    """A ReplayError ends the command with its code and exit status 1."""
    try:
        yield
    except ReplayError as exc:
        typer.echo(f"{exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from exc


def _operator(by: str | None) -> str:
    return by.strip() if by and by.strip() else os_user()


# ---------------------------------------------------------------------------------------------
# saisine replay


@replay_app.callback(invoke_without_command=True)
def replay(
    ctx: typer.Context,
    mode: Annotated[
        ModeChoice | None, typer.Option(help="redeliver the stored case, or reprocess the raw bytes")
    ] = None,
    receipt: Annotated[
        list[str] | None, typer.Option("--receipt", help="A receipt id (repeat for more)")
    ] = None,
    status: Status = None,
    agency: Agency = None,
    unit: Unit = None,
    format_: Format = None,
    schema_version: SchemaVersion = None,
    error_code: ErrorCode = None,
    tribunal: Tribunal = None,
    procedure: Procedure = None,
    numero_parquet: NumeroParquet = None,
    received_from: From = None,
    received_to: To = None,
    reason: Annotated[str | None, typer.Option(help="Why (required, recorded)")] = None,
    by: By = None,
    rate: Annotated[float | None, typer.Option(min=0.001, max=10_000, help="Messages per second")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; change nothing")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    wait: Wait = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Messages listed by --dry-run")] = 200,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Replay messages chosen by --receipt or by filters: --dry-run shows what would happen;
    otherwise the replay is recorded and carried out here, with a progress bar (Ctrl-C pauses
    it). Or use one of the commands below."""
    if ctx.invoked_subcommand is not None:
        return
    if mode is None:
        typer.echo(ctx.get_help())
        typer.echo("\nMissing option '--mode' (redeliver or reprocess).", err=True)
        raise typer.Exit(2)
    where = message_filter(
        status, agency, unit, format_, schema_version, error_code, tribunal, procedure, numero_parquet,
        received_from, received_to,
    )  # fmt: skip
    if receipt and not no_filter(where):
        raise typer.BadParameter(
            "choose messages by --receipt or by filters, not both", param_hint="--receipt"
        )
    selection = (
        Selection(receipt_ids=tuple(receipt))
        if receipt
        else Selection(filter=None if no_filter(where) else where)
    )
    with _replay_errors(), container_for(database_url) as container:
        service = container.replays
        if dry_run:
            preview = service.preview(mode.value, selection, limit)
            _show_preview(preview, as_json)
            return
        if not (reason or "").strip():
            raise ReasonRequired("Give the reason for this replay with --reason: it is recorded.")
        if not yes:
            _confirm(service.preview(mode.value, selection, 0))
        started = service.start(mode.value, selection, reason or "", _operator(by), rate)
        _carry_out(service, started, _operator(by), as_json, wait)


def _confirm(preview: Preview) -> None:
    counts = ", ".join(f"{action} {n}" for action, n in sorted(preview.counts.items()))
    make_console(stderr=True).print(f"{preview.total} messages selected: {counts}")
    typer.confirm(f"Start this {preview.mode} replay?", abort=True, err=True)


def _counts_table(what: str, counts: dict[str, int]) -> Table:
    """A two-column table: ``what`` (an action, a delivery status) and how many messages."""
    from rich.table import Table

    table = Table()
    table.add_column(what)
    table.add_column("messages", justify="right")
    for key, count in sorted(counts.items()):
        table.add_row(key, str(count))
    table.add_section()
    table.add_row("total", str(sum(counts.values())))
    return table


_CHANGES_SHOWN = 20  # differences printed per message; --json gives them all


def _show_preview(preview: Preview, as_json: bool) -> None:
    from rich.table import Table

    from gateway.http.replay_views import preview_out

    if as_json:
        print_json(preview_out(preview).model_dump(mode="json"))
        return
    console = make_console()
    console.print(f"[bold]Preview of a {preview.mode}[/]: {preview.total} messages selected")
    console.print(_counts_table("action", preview.counts))
    table = Table(title_justify="left")
    for column in ("#", "receipt id", "procedure", "status", "action", "why"):
        table.add_column(column, no_wrap=column == "receipt id")
    for n, item in enumerate(preview.items, start=1):
        table.add_row(
            str(n), item.receipt_id, item.procedure_key or "", item.status, item.action, item.reason
        )
    console.print(table)
    for item in preview.items:
        if item.changes:
            console.print(f"[bold]{item.receipt_id}[/] ({item.action}, revision {item.revision}):")
            for change in item.changes[:_CHANGES_SHOWN]:
                old, new = (json.dumps(v, ensure_ascii=False)[:80] for v in (change.old, change.new))
                console.print(f"  {change.path}: {old} -> {new}", markup=False)
            if len(item.changes) > _CHANGES_SHOWN:
                console.print(f"  ... and {len(item.changes) - _CHANGES_SHOWN} more (--json shows all)")
    if preview.truncated:
        console.print(f"(the first {len(preview.items)} of {preview.total} messages; --limit shows more)")
    console.print("Dry run: nothing was changed.")


_STATES = (ItemState.PENDING, ItemState.DONE, ItemState.CANCELLED)
_PENDING = "pending"  # a delivery waiting for the worker (gateway.store.outcomes.PENDING)


def _owner() -> str:
    return f"cli-{socket.gethostname()[:40]}-{os.getpid()}"


@contextmanager
def _sigint_sets(interrupted: threading.Event) -> Iterator[None]:
    """While inside, Ctrl-C sets ``interrupted`` rather than raising (the replay stops cleanly)."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _carry_out(service: ReplayService, summary: ReplaySummary, by: str, as_json: bool, wait: float) -> None:
    """Run the replay here with a progress bar (Ctrl-C pauses it: it can be resumed), then
    follow its deliveries for up to ``wait`` seconds, and sum it up."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    notes = make_console(stderr=True)
    notes.print(
        f"Replay {summary.replay_id}: {summary.total} messages, {summary.mode}, "
        f"{summary.rate_per_second:g}/s. Ctrl-C pauses it."
    )
    interrupted = threading.Event()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with _sigint_sets(interrupted), Progress(*columns, console=notes, transient=True) as progress:
        task = progress.add_task("replaying", total=summary.total, completed=summary.done)
        summary = service.run(
            summary.replay_id,
            _owner(),
            on_progress=lambda s: progress.update(task, completed=s.done),
            should_stop=interrupted.is_set,
        )
        if wait > 0 and summary.status == ReplayStatus.COMPLETED and not interrupted.is_set():
            summary = _follow_deliveries(service, summary, wait, progress, interrupted)
    if interrupted.is_set() and summary.status == ReplayStatus.RUNNING:
        summary = service.pause(summary.replay_id, by)
        notes.print(
            f"Paused after {summary.done} of {summary.total} messages. "
            f"Resume with: saisine replay resume {summary.replay_id}"
        )
    _show_summary(summary, as_json)


def _follow_deliveries(
    service: ReplayService, summary: ReplaySummary, wait: float, progress: Progress, stop: threading.Event
) -> ReplaySummary:
    """Until none of the messages the replay sent is pending (a worker, in ``saisine serve`` or
    ``saisine worker``, delivers them), ``wait`` seconds pass, or Ctrl-C."""
    sent = sum(summary.deliveries.values())
    task = progress.add_task("delivering", total=sent)
    deadline = time.monotonic() + wait
    while summary.deliveries.get(_PENDING, 0) and time.monotonic() < deadline and not stop.is_set():
        progress.update(task, completed=sent - summary.deliveries.get(_PENDING, 0))
        stop.wait(0.25)
        summary = service.get(summary.replay_id)
    return summary


def _show_summary(summary: ReplaySummary, as_json: bool, items: list[ReplayItem] | None = None) -> None:
    from gateway.http.replay_views import ReplayItemOut, summary_out

    if as_json:
        out = summary_out(summary).model_dump(mode="json")
        if items is not None:
            out["items"] = [
                ReplayItemOut.model_validate(i, from_attributes=True).model_dump(mode="json") for i in items
            ]
        print_json(out)
        return
    console = make_console()
    console.print(
        f"[bold]Replay {summary.replay_id}[/]: {summary.status}, {summary.done} of {summary.total} "
        f"messages, {summary.mode} at {summary.rate_per_second:g}/s"
    )
    console.print(
        f"by {summary.requested_by} on {short_time(summary.created_at)}: {summary.reason}", markup=False
    )
    actions = {key: n for key, n in summary.counts.items() if key not in _STATES}
    left = {key: n for key, n in summary.counts.items() if key in _STATES and key != ItemState.DONE}
    console.print(_counts_table("action", actions))
    if left:
        console.print(", ".join(f"{n} {state}" for state, n in sorted(left.items())))
    if summary.deliveries:
        console.print("Messages sent to the registry again, where they stand now:")
        console.print(_counts_table("delivery", summary.deliveries))
    for event in summary.events:
        console.print(f"{event.get('kind')} by {event.get('by')} at {event.get('at')}", markup=False)
    if items:
        _items_table(items)


def _items_table(items: list[ReplayItem]) -> None:
    from rich.table import Table

    table = Table(title="messages", title_justify="left")
    for column in ("#", "receipt id", "state", "action", "delivery", "why"):
        table.add_column(column, no_wrap=column == "receipt id")
    for item in items:
        table.add_row(
            str(item.position),
            item.receipt_id,
            item.state,
            item.action or "",
            item.delivery_status or "",
            item.reason,
        )
    make_console().print(table)


@replay_app.command("list")
def replay_list(
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """The replays, newest first."""
    from rich.table import Table

    from gateway.http.replay_views import summary_out

    with container_for(database_url) as container:
        found = container.replays.history(limit)
    if as_json:
        print_json({"items": [summary_out(s).model_dump(mode="json") for s in found]})
        return
    table = Table(title=f"{len(found)} replays", title_justify="left")
    for column in ("replay id", "created", "by", "mode", "status", "done", "reason"):
        table.add_column(column, no_wrap=column in ("replay id", "created"))
    for s in found:
        table.add_row(
            s.replay_id,
            short_time(s.created_at),
            s.requested_by,
            s.mode,
            s.status,
            f"{s.done}/{s.total}",
            s.reason[:60],
        )
    make_console().print(table)


ReplayIdArg = Annotated[str, typer.Argument(help="The replay's id")]


@replay_app.command("show")
def replay_show(
    replay_id: ReplayIdArg,
    items: Annotated[int, typer.Option("--items", min=0, max=5000, help="Messages listed")] = 50,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """A replay: who, why, progress, what came of each message."""
    with _replay_errors(), container_for(database_url) as container:
        summary = container.replays.get(replay_id)
        listed = container.replays.items(replay_id, items) if items else []
    _show_summary(summary, as_json, listed)


@replay_app.command("pause")
def replay_pause(
    replay_id: ReplayIdArg, by: By = None, as_json: AsJson = False, database_url: DatabaseUrl = None
) -> None:
    """Pause a running replay (it keeps its place)."""
    with _replay_errors(), container_for(database_url) as container:
        summary = container.replays.pause(replay_id, _operator(by))
    _show_summary(summary, as_json)


@replay_app.command("cancel")
def replay_cancel(
    replay_id: ReplayIdArg, by: By = None, as_json: AsJson = False, database_url: DatabaseUrl = None
) -> None:
    """Cancel a replay: the messages it has not reached stay as they are."""
    with _replay_errors(), container_for(database_url) as container:
        summary = container.replays.cancel(replay_id, _operator(by))
    _show_summary(summary, as_json)


@replay_app.command("resume")
def replay_resume(
    replay_id: ReplayIdArg,
    by: By = None,
    wait: Wait = 0,
    detach: Annotated[
        bool, typer.Option("--detach", help="Only mark it running: a `saisine serve` carries it out")
    ] = False,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Resume a paused replay where it stopped, and carry it out here (unless --detach)."""
    with _replay_errors(), container_for(database_url) as container:
        summary = container.replays.resume(replay_id, _operator(by))
        if detach:
            _show_summary(summary, as_json)
            return
        _carry_out(container.replays, summary, _operator(by), as_json, wait)

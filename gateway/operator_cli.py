"""The operators' commands on messages, ``saisine messages list|show``, and what they share
with ``saisine replay`` (gateway/replay_cli.py): the message list's filters as options, the
wired container, the output helpers. Mounted on the ``saisine`` command by gateway/cli.py.

Exit codes: 0 done, 1 no such message, 2 bad usage.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.store.queries import MessageFilter

if TYPE_CHECKING:
    from rich.console import Console

    from gateway.composition import Container

messages_app = typer.Typer(help="Find messages and see one in full.", no_args_is_help=True)
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="SQLite file URL (default) or postgresql://...")
]
AsJson = Annotated[bool, typer.Option("--json", help="JSON for tools")]
Status = Annotated[
    str | None,
    typer.Option(help="accepted, rejected, failed, delivering, held, registered, dead_letter"),
]
Agency = Annotated[str | None, typer.Option(help="gendarmerie, police")]
Unit = Annotated[str | None, typer.Option("--unit", help="Sending unit code")]
Format = Annotated[str | None, typer.Option("--format", help="e.g. gendarmerie/v1")]
SchemaVersion = Annotated[str | None, typer.Option("--schema-version", help="e.g. 1.0")]
ErrorCode = Annotated[str | None, typer.Option("--error-code", help="One of the message's error codes")]
Tribunal = Annotated[str | None, typer.Option("--tribunal", help="Tribunal code, e.g. TJ75056")]
Procedure = Annotated[str | None, typer.Option("--procedure", help="Numéro de procédure")]
NumeroParquet = Annotated[str | None, typer.Option("--numero-parquet")]
From = Annotated[str | None, typer.Option("--from", help="Received at or after (ISO 8601; UTC if no zone)")]
To = Annotated[str | None, typer.Option("--to", help="Received before (ISO 8601; UTC if no zone)")]


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 date or date-time: {value!r}", param_hint=option) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def message_filter(
    status: str | None,
    agency: str | None,
    unit: str | None,
    format_: str | None,
    schema_version: str | None,
    error_code: str | None,
    tribunal: str | None,
    procedure: str | None,
    numero_parquet: str | None,
    received_from: str | None,
    received_to: str | None,
) -> MessageFilter:
    return MessageFilter(
        status=status,
        agency=agency,
        unit_code=unit,
        format=format_,
        schema_version=schema_version,
        error_code=error_code,
        tribunal_code=tribunal,
        procedure_number=procedure,
        numero_parquet=numero_parquet,
        received_from=_when(received_from, "--from"),
        received_to=_when(received_to, "--to"),
    )


def no_filter(where: MessageFilter) -> bool:
    return where == MessageFilter()


@contextmanager
def container_for(database_url: str | None) -> Iterator[Container]:
    """The wired container (as ``serve`` builds it); logs below warnings stay out of the way."""
    from gateway.composition import build
    from gateway.logs import configure_logging
    from gateway.settings import Settings

    settings = Settings(database_url=database_url) if database_url else Settings()
    level = settings.log_level if settings.log_level.upper() not in ("DEBUG", "INFO") else "WARNING"
    configure_logging(level, settings.log_json)
    container = build(settings, migrate=settings.migrate_on_start)
    try:
        yield container
    finally:
        container.close()


def make_console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 200, highlight=False)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def os_user() -> str:
    """Who runs the command, as the operating system knows them."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a container without passwd)
        return "unknown"


def short_time(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# saisine messages


@messages_app.command("list")
def messages_list(
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
    limit: Annotated[int, typer.Option(min=1, max=500, help="Messages per page")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next cursor a previous page printed")] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Messages newest first, filtered; prints the cursor of the next page."""
    from gateway.http.messages_routes import MessagePageOut
    from gateway.store.queries import Cursor, InvalidCursor, list_messages

    where = message_filter(
        status, agency, unit, format_, schema_version, error_code, tribunal, procedure, numero_parquet,
        received_from, received_to,
    )  # fmt: skip
    try:
        after = Cursor.decode(cursor) if cursor else None
    except InvalidCursor as exc:
        raise typer.BadParameter(
            "pass a next cursor exactly as a page printed it", param_hint="--cursor"
        ) from exc
    with container_for(database_url) as container:
        page = list_messages(container.store.engine, where, limit, after)
    if as_json:
        out = MessagePageOut.model_validate({"items": page.items, "next_cursor": page.next_cursor})
        print_json(out.model_dump(mode="json"))
        return
    _messages_table(page.items)
    typer.echo(f"next cursor: {page.next_cursor}" if page.next_cursor else "last page")


def _messages_table(items: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title=f"{len(items)} messages", title_justify="left")
    for column in ("received", "receipt id", "status", "format", "unit", "procedure", "tribunal", "parquet"):
        table.add_column(column, no_wrap=column in ("received", "receipt id"))
    table.add_column("errors")
    for item in items:
        table.add_row(
            short_time(item["received_at"]),
            item["receipt_id"],
            item["status"],
            item["format"] or "",
            item["unit_code"] or "",
            item["procedure_number"] or "",
            item["tribunal_code"] or "",
            item["numero_parquet"] or "",
            ", ".join(item["error_codes"]),
        )
    make_console().print(table)


@messages_app.command("show")
def messages_show(
    receipt_id: Annotated[str, typer.Argument(help="The message's receipt id")],
    raw: Annotated[bool, typer.Option("--raw", help="Print the message's bytes as received")] = False,
    purpose: Annotated[
        str | None, typer.Option(help="Why the personal data is consulted (recorded; name no one)")
    ] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """One message in full: status, errors, case, delivery, timeline and the replays that took it.
    The consultation is recorded in the audit record, as the API's is."""
    from gateway.audit import CONSULTATION, Entry
    from gateway.http.messages_routes import detail_out
    from gateway.store.queries import message_detail

    with container_for(database_url) as container:
        found = message_detail(container.store.engine, receipt_id, container.store.cipher)
        if found is None:
            typer.echo(f"MESSAGE_UNKNOWN: No message has the receipt id {receipt_id}.", err=True)
            raise typer.Exit(1)
        replays = container.replays.of_message(receipt_id)
        detail = {"purpose": purpose} if purpose is not None else {}
        consulted = Entry(CONSULTATION, f"cli:{os_user()}", receipt_id, container.clock(), detail)
        container.store.audit.record(consulted)  # before anything is shown
    if raw:
        if found["raw"] is None:
            typer.echo("The message's bytes were not kept (refused before they were read).", err=True)
            raise typer.Exit(1)
        typer.echo(bytes(found["raw"]), nl=False)
        return
    detail = detail_out(found).model_dump(mode="json")
    if as_json:
        print_json({**detail, "replays": replays})
        return
    _show_message(detail, replays)


def _show_message(detail: dict[str, Any], replays: list[dict[str, Any]]) -> None:
    from rich.table import Table

    console = make_console()
    fields = (
        ("receipt id", "receipt_id"), ("message id", "message_id"), ("status", "status"),
        ("format", "format"), ("mapping", "mapping_version"), ("sender", "sender"),
        ("procedure", "procedure_number"), ("tribunal", "tribunal_code"),
        ("numéro parquet", "numero_parquet"), ("received", "received_at"), ("sha256", "sha256"),
    )  # fmt: skip
    for label, key in fields:
        if detail.get(key) is not None:
            console.print(f"[bold]{label:<15}[/] {detail[key]}")
    if detail["errors"]:
        errors = Table(title="errors", title_justify="left")
        for column in ("code", "line", "path", "message"):
            errors.add_column(column)
        for e in detail["errors"]:
            errors.add_row(e["code"], str(e["line"] or ""), e["path"] or "", e["message"])
        console.print(errors)
    if (delivery := detail["delivery"]) is not None:
        console.print(
            f"[bold]{'delivery':<15}[/] {delivery['status']}, {delivery['attempts']} attempt(s)"
            + (f", last error: {delivery['last_error']}" if delivery["last_error"] else "")
        )
    timeline = Table(title="timeline", title_justify="left")
    for column in ("at", "what", "outcome", "ms", "detail"):
        timeline.add_column(column)
    for entry in detail["timeline"]:
        what = entry["kind"] if entry["source"] == "event" else f"attempt {entry['attempt']}"
        shown = json.dumps(entry["detail"], ensure_ascii=False)
        timeline.add_row(
            entry["at"], what, entry["outcome"] or "", str(entry["duration_ms"] or ""), shown[:100]
        )
    console.print(timeline)
    for taken in replays:
        console.print(
            f"[bold]{'replay':<15}[/] {taken['replay_id']} {taken['mode']} by {taken['requested_by']}: "
            f"{taken['action'] or taken['state']} ({taken['reason']})"
        )

"""``saisine senders add|list|revoke`` and ``saisine operators add|list|revoke``: the
administrator's commands on credentials. A new token is printed once and never again.

Mounted on the ``saisine`` command by gateway/cli.py. Exit codes: 0 done, 1 refused (printed
with the reason), 2 bad usage.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.auth.credentials import CredentialError, Role

if TYPE_CHECKING:
    from gateway.composition import Container

senders_app = typer.Typer(help="Sender credentials: who may send, for which units.", no_args_is_help=True)
operators_app = typer.Typer(help="Operators: who may see and act, with which role.", no_args_is_help=True)
keys_app = typer.Typer(help="Keys sealing the stored payloads (SAISINE_PAYLOAD_KEYS).", no_args_is_help=True)

DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="SQLite file URL (default) or postgresql://...")
]
AsJson = Annotated[bool, typer.Option("--json", help="JSON for tools")]
By = Annotated[str | None, typer.Option("--by", help="Who makes the change (default: the OS user)")]
Days = Annotated[
    int | None, typer.Option("--expires-in-days", min=1, help="Valid this many days (default: no end)")
]


@contextmanager
def wired(database_url: str | None) -> Iterator[Container]:
    from gateway.composition import build
    from gateway.settings import Settings

    settings = Settings(database_url=database_url) if database_url else Settings()
    container = build(settings)
    try:
        yield container
    except CredentialError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()


def actor(by: str | None) -> str:
    return by or os.environ.get("SAISINE_OPERATOR") or getpass.getuser()


def _expiry(days: int | None) -> datetime | None:
    return datetime.now(UTC) + timedelta(days=days) if days else None


def when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


# ----- senders ---------------------------------------------------------------------------------


@senders_app.command("add")
def senders_add(
    agency: Annotated[str, typer.Option(help="gendarmerie or police")],
    unit: Annotated[list[str], typer.Option("--unit", help="A unit code it may send for (repeat)")],
    name: Annotated[str | None, typer.Option(help="A name for people (default: agency and units)")] = None,
    certificate: Annotated[
        str | None, typer.Option(help="The client certificate subject the TLS proxy passes for it")
    ] = None,
    no_token: Annotated[bool, typer.Option("--no-token", help="Certificate only: make no token")] = False,
    expires_in_days: Days = None,
    by: By = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Add a sender credential; prints its token once (keep it: it is not stored)."""
    with wired(database_url) as container:
        if agency not in container.formats.agencies():
            raise CredentialError(
                f"Unknown agency {agency!r}: {', '.join(sorted(container.formats.agencies()))}."
            )
        sender, token = container.credentials.add_sender(
            agency, unit, name, certificate, not no_token, _expiry(expires_in_days), actor(by)
        )
    if as_json:
        typer.echo(
            json.dumps({"id": sender.id, "agency": sender.agency, "units": sender.units, "token": token})
        )
        return
    typer.echo(f"sender {sender.id} ({sender.name}) may send for {', '.join(sender.units)}")
    if token:
        typer.echo(f"token (shown once): {token}")


@senders_app.command("list")
def senders_list(database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Every sender credential (no secret is shown: a token's first characters at most)."""
    with wired(database_url) as container:
        found = container.credentials.senders()
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "id": s.id,
            "name": s.name,
            "agency": s.agency,
            "units": list(s.units),
            "token": s.token_hint,
            "certificate": s.certificate,
            "state": "active" if s.active(now) else ("revoked" if s.revoked_at else "expired"),
            "expires_at": when(s.expires_at),
        }
        for s in found
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    columns = ["id", "name", "agency", "units", "token", "certificate", "state", "expires_at"]
    print_table(
        "Senders",
        columns,
        [[", ".join(r[c]) if c == "units" else str(r[c] or "-") for c in columns] for r in rows],
    )


@senders_app.command("revoke")
def senders_revoke(sender_id: str, by: By = None, database_url: DatabaseUrl = None) -> None:
    """Revoke a sender credential at once (its token and certificate stop working)."""
    with wired(database_url) as container:
        sender = container.credentials.revoke_sender(sender_id, actor(by))
    typer.echo(f"sender {sender.id} revoked at {when(sender.revoked_at)}")


# ----- operators -------------------------------------------------------------------------------


@operators_app.command("add")
def operators_add(
    name: str,
    role: Annotated[str, typer.Option(help=f"{', '.join(Role.ALL)}")],
    password: Annotated[
        bool, typer.Option("--password", help="Ask for a console password (12 characters at least)")
    ] = False,
    no_token: Annotated[bool, typer.Option("--no-token", help="Console only: make no API token")] = False,
    expires_in_days: Days = None,
    by: By = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Add an operator; prints the API token once. The password is read from the terminal
    (or SAISINE_NEW_PASSWORD, for scripts)."""
    secret = None
    if password:
        secret = os.environ.get("SAISINE_NEW_PASSWORD") or typer.prompt(
            "Console password", hide_input=True, confirmation_prompt=True
        )
    with wired(database_url) as container:
        operator, token = container.credentials.add_operator(
            name, role, secret, not no_token, _expiry(expires_in_days), actor(by)
        )
    if as_json:
        typer.echo(
            json.dumps({"id": operator.id, "name": operator.name, "role": operator.role, "token": token})
        )
        return
    typer.echo(f"operator {operator.name} ({operator.role}) added")
    if token:
        typer.echo(f"API token (shown once): {token}")


@operators_app.command("list")
def operators_list(database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Every operator, with role and state."""
    with wired(database_url) as container:
        found = container.credentials.operators()
    now = datetime.now(UTC)
    rows = [
        {
            "id": o.id,
            "name": o.name,
            "role": o.role,
            "token": o.token_hint,
            "password": o.has_password,
            "state": "active" if o.active(now) else ("revoked" if o.revoked_at else "expired"),
        }
        for o in found
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    columns = ["name", "role", "token", "password", "state", "id"]
    print_table(
        "Operators", columns, [[str(r[c] if r[c] is not None else "-") for c in columns] for r in rows]
    )


@operators_app.command("revoke")
def operators_revoke(name: str, by: By = None, database_url: DatabaseUrl = None) -> None:
    """Revoke an operator: token, password and open console sessions stop working."""
    with wired(database_url) as container:
        operator = container.credentials.revoke_operator(name, actor(by))
    typer.echo(f"operator {operator.name} revoked at {when(operator.revoked_at)}")


@keys_app.command("new")
def keys_new() -> None:
    """Print a new payload key. Put it first in SAISINE_PAYLOAD_KEYS (a JSON list) to seal with
    it; keep the older keys after it as long as payloads sealed with them remain."""
    from gateway.store.sealing import new_key

    typer.echo(new_key())

"""``saisine purge`` and ``saisine holds add|list|release``: personal data kept no longer than
needed (gateway/store/retention.py). Run ``saisine purge`` daily (cron, a systemd timer).

Mounted on the ``saisine`` command by gateway/cli.py. Exit codes: 0 done, 1 refused.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gateway.credentials_cli import AsJson, By, DatabaseUrl, actor, print_table, when, wired
from gateway.store.retention import HoldError

holds_app = typer.Typer(help="Legal holds: procedures whose data must not be purged.", no_args_is_help=True)


def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what is due; change nothing")] = False,
    by: By = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Purge the raw payloads and cases past their retention (hashes and metadata stay)."""
    with wired(database_url) as container:
        report = container.retention.purge(actor(by), dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps({"dry_run": dry_run, "purged": report.purged, "held": report.held}))
        return
    verb = "would purge" if dry_run else "purged"
    typer.echo(f"{verb} {report.purged} message(s); {report.held} kept under a legal hold")
    for receipt_id in report.receipt_ids:
        typer.echo(f"  {receipt_id}")


@holds_app.command("add")
def holds_add(
    agency: Annotated[str, typer.Option(help="gendarmerie or police")],
    unit: Annotated[str, typer.Option(help="The unit code of the procedure")],
    procedure: Annotated[str, typer.Option(help="The numéro de procédure")],
    reason: Annotated[str, typer.Option(help="Why (an order, a request's reference)")],
    by: By = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Place a legal hold on a procedure: none of its messages is purged while it lasts."""
    with wired(database_url) as container:
        try:
            hold = container.retention.place_hold(agency, unit, procedure, reason, actor(by))
        except HoldError as exc:
            typer.echo(f"refused: {exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"hold {hold.id} placed on {hold.agency} {hold.unit_code} {hold.procedure_number}")


@holds_app.command("list")
def holds_list(
    all_: Annotated[bool, typer.Option("--all", help="Released holds too")] = False,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Legal holds in force (or all of them)."""
    with wired(database_url) as container:
        found = container.retention.holds(in_force_only=not all_)
    rows = [
        [
            str(h.id),
            h.agency,
            h.unit_code,
            h.procedure_number,
            h.reason,
            h.placed_by,
            when(h.placed_at),
            when(h.released_at),
        ]
        for h in found
    ]
    columns = ["id", "agency", "unit", "procedure", "reason", "placed_by", "placed_at", "released_at"]
    if as_json:
        typer.echo(json.dumps([dict(zip(columns, row, strict=True)) for row in rows]))
        return
    print_table("Legal holds", columns, rows)


@holds_app.command("release")
def holds_release(hold_id: int, by: By = None, database_url: DatabaseUrl = None) -> None:
    """End a legal hold; the procedure's data is purged at the next purge if it is due."""
    with wired(database_url) as container:
        try:
            hold = container.retention.release_hold(hold_id, actor(by))
        except HoldError as exc:
            typer.echo(f"refused: {exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"hold {hold.id} released")

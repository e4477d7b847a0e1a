"""The ``saisine`` command: serve, worker, validate, ingest, formats, db upgrade, codes, demo, sandbox."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.credentials_cli import keys_app, operators_app, senders_app
from gateway.operator_cli import messages_app
from gateway.replay_cli import replay_app
from gateway.retention_cli import holds_app, purge
from gateway.settings import Settings

# Tracebacks never show local variables: they may hold a message and so personal data.
app = typer.Typer(
    help="Saisine: the procedure exchange gateway.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
sandbox_app = typer.Typer(help="Sandbox components that ship with Saisine.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(messages_app, name="messages")
app.add_typer(replay_app, name="replay")
audit_app = typer.Typer(help="The audit record: verify its chain, export it.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(senders_app, name="senders")
app.add_typer(operators_app, name="operators")
app.add_typer(keys_app, name="keys")
app.add_typer(holds_app, name="holds")
app.command()(purge)

DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="SQLite file URL (default) or postgresql://...")
]


def _settings(database_url: str | None = None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if database_url:
        values["database_url"] = database_url
    return Settings(**values)  # type: ignore[arg-type]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the gateway's HTTP server (REST, SOAP, health)."""
    import uvicorn

    from gateway.composition import build
    from gateway.http.app import create_app, settle_collector
    from gateway.logs import configure_logging

    settings = _settings(database_url, host=host, port=port)
    configure_logging(settings.log_level, settings.log_json, background=True)
    container = build(settings, migrate=settings.migrate_on_start)
    app_ = create_app(container, run_worker=settings.worker_enabled)
    settle_collector()
    try:
        uvicorn.run(app_, host=settings.host, port=settings.port, log_level="warning")
    finally:
        container.close()


@app.command()
def worker(database_url: DatabaseUrl = None) -> None:
    """Run a delivery worker alone (several may share one PostgreSQL)."""
    import signal

    from gateway.composition import build
    from gateway.logs import configure_logging

    settings = _settings(database_url)
    configure_logging(settings.log_level, settings.log_json, background=True)
    container = build(settings, migrate=settings.migrate_on_start)
    delivery = container.worker()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: delivery.stop())
    try:
        delivery.run()
    finally:
        container.close()


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Message files to check")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document for tools")] = False,
) -> None:
    """Check messages offline; print each mapped case or its errors.

    Exit 0 when all are valid, 1 when some are invalid, 2 when a file cannot be read.
    """
    from gateway.composition import build_checker

    checker = build_checker(_settings())
    results: list[dict[str, Any]] = []
    worst = 0
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            results.append({"file": str(path), "status": "unreadable", "reason": exc.strerror})
            worst = 2
            continue
        verdict = checker.evaluate(data)
        if verdict.case is not None:
            results.append(
                {
                    "file": str(path),
                    "status": "valid",
                    "format": verdict.fmt.name if verdict.fmt else None,
                    "case": verdict.case.model_dump(mode="json", exclude_none=True),
                }
            )
        else:
            results.append(
                {
                    "file": str(path),
                    "status": "invalid",
                    "errors": [e.as_dict() for e in verdict.errors],
                }
            )
            worst = max(worst, 1)
    _print_results(results, as_json)
    raise typer.Exit(worst)


def _print_results(results: list[dict[str, Any]], as_json: bool) -> None:
    if as_json or not sys.stdout.isatty():
        typer.echo(json.dumps(results if len(results) != 1 else results[0], indent=2, ensure_ascii=False))
        return
    for result in results:
        typer.echo(f"{result['file']}: {result['status']}")
        if result["status"] == "valid":
            typer.echo(json.dumps(result["case"], indent=2, ensure_ascii=False))
        for error in result.get("errors", []):
            where = f"line {error['line']}" if error.get("line") else "-"
            typer.echo(f"  {error['code']:<32} {where:<10} {error.get('path') or ''}\n    {error['message']}")


@app.command()
def ingest(
    directory: Annotated[Path, typer.Argument(help="Folder of messages (searched recursively)")],
    report: Annotated[
        Path, typer.Option(help="Report and journal (JSON lines); running again skips what it lists")
    ] = Path("ingest-report.jsonl"),
    pattern: Annotated[str, typer.Option(help="Which files")] = "*.xml",
    agency: Annotated[
        str | None, typer.Option(help="Agency to record when a file's format cannot be told")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Submit a folder of messages through the intake pipeline (a backlog, a unit without a link).

    Exit 0 when every file was accepted (or already was), 1 when some were rejected, 2 when
    some could not be read.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from gateway.composition import build
    from gateway.ingest import Ingestion, message_files

    if not directory.is_dir():
        typer.echo(f"{directory}: not a folder", err=True)
        raise typer.Exit(2)
    settings = _settings(database_url)
    container = build(settings)
    console = Console(stderr=True)
    try:
        files = message_files(directory, pattern)
        run = Ingestion(container.intake, report, agency)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("ingesting", total=len(files))
            for _entry in run.run(files):
                progress.advance(task)
    finally:
        container.close()
    summary = run.summary
    table = Table(title=f"{directory}: {summary.total} files")
    table.add_column("outcome")
    table.add_column("files", justify="right")
    table.add_row("accepted", str(summary.accepted))
    table.add_row("repeats (already accepted)", str(summary.repeats))
    table.add_row("skipped (already in the report)", str(summary.skipped))
    table.add_row("rejected", str(summary.rejected_files))
    for code, count in sorted(summary.rejected.items()):
        table.add_row(f"  {code}", str(count))
    table.add_row("unreadable", str(summary.unreadable))
    Console().print(table)
    typer.echo(f"Report: {report}")
    raise typer.Exit(2 if summary.unreadable else 1 if summary.rejected_files else 0)


@app.command()
def formats() -> None:
    """The sender formats Saisine accepts: agency, version, namespace, transports, status."""
    from rich.console import Console
    from rich.table import Table

    from gateway.composition import default_formats, with_deprecations

    settings = _settings()
    table = Table(title="Sender formats")
    for column in ("format", "namespace", "root", "transports", "mapping", "status"):
        table.add_column(column)
    for fmt in with_deprecations(default_formats()[0], settings.deprecated_formats):
        status = fmt.status if not fmt.deprecated_until else f"[yellow]{fmt.status}[/]"
        table.add_row(
            fmt.name, fmt.namespace, fmt.root, ", ".join(fmt.transports), fmt.mapping_version, status
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Create or migrate the database schema to the latest version."""
    from gateway.store.migrate import upgrade

    settings = _settings(database_url)
    upgrade(settings.database_url)
    typer.echo("database is at the latest schema version")


@app.command()
def codes() -> None:
    """List every error code a sender can receive (Markdown)."""
    from gateway.codes import CODES

    typer.echo("| code | layer | HTTP | meaning |\n| --- | --- | --- | --- |")
    for code in CODES.values():
        typer.echo(f"| `{code.code}` | {code.layer.value} | {code.http_status} | {code.summary} |")


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port for the demo gateway")] = 8080,
    workdir: Annotated[Path, typer.Option(help="Where the demo keeps its databases and logs")] = Path(
        ".demo"
    ),
    registry_port: Annotated[int, typer.Option(help="Port for the reference court registry")] = 8090,
    keep: Annotated[bool, typer.Option("--keep", help="Leave both servers up until Ctrl-C")] = False,
) -> None:
    """Start the reference registry and a gateway, and send the sample procedures as a unit would."""
    from gateway.demo import run_demo

    raise typer.Exit(run_demo(port=port, workdir=workdir, registry_port=registry_port, keep=keep))


@sandbox_app.command("registry")
def sandbox_registry(
    port: Annotated[int, typer.Option(help="Port of the reference court registry")] = 8090,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    database: Annotated[Path, typer.Option(help="Its own SQLite file")] = Path("sandbox-registry.db"),
    fault: Annotated[
        str | None,
        typer.Option(help="Misbehave from the start: unavailable, timeout, server_fault, close, slow"),
    ] = None,
    fault_duration: Annotated[float | None, typer.Option(help="Seconds the fault lasts")] = None,
    delay_ms: Annotated[int | None, typer.Option(help="Delay added in 'slow' mode")] = None,
) -> None:
    """Run the reference court registry (SOAP, clerk's page, fault injection)."""
    from sandbox.registry.cli import run_registry

    run_registry(
        port=port, host=host, database=database, fault=fault, fault_duration=fault_duration, delay_ms=delay_ms
    )


@audit_app.command("verify")
def audit_verify(
    database_url: DatabaseUrl = None,
    anchor: Annotated[
        str | None,
        typer.Option(help="A head kept elsewhere (SEQ:HASH, from audit export): prove it still holds"),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Check an export file instead of the database")
    ] = None,
) -> None:
    """Check the audit chain: every hash, every link, the head. Exit 0 intact, 1 broken."""
    from gateway.audit import Anchor, verify_export
    from gateway.store.audit import verify_chain
    from gateway.store.engine import make_engine

    try:
        pinned = Anchor.parse(anchor) if anchor else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--anchor") from exc
    if file is not None:
        with file.open(encoding="utf-8") as lines:
            verdict = verify_export(lines, pinned)
    else:
        engine = make_engine(_settings(database_url).database_url)
        try:
            with _audit_readable():
                verdict = verify_chain(engine, pinned)
        finally:
            engine.dispose()
    if verdict.finding is not None:
        found = verdict.finding
        typer.echo(f"BROKEN at record {found.seq} ({found.problem}): {found.message}")
        typer.echo(f"{verdict.count} records checked before it")
        raise typer.Exit(1)
    anchored = f"; anchor {pinned.seq} holds" if pinned else ""
    typer.echo(
        f"OK: {verdict.count} records, chain intact{anchored}; head {verdict.last_seq}:{verdict.last_hash}"
    )


@audit_app.command("export")
def audit_export(
    database_url: DatabaseUrl = None,
    after: Annotated[int, typer.Option(help="Only the records after this seq (the last one exported)")] = 0,
    output: Annotated[Path | None, typer.Option(help="JSON Lines file (default: standard output)")] = None,
) -> None:
    """Write the audit records as JSON Lines, then the head (SEQ:HASH) to timestamp or archive."""
    from gateway.store.audit import export
    from gateway.store.engine import make_engine

    engine = make_engine(_settings(database_url).database_url)
    try:
        with _audit_readable():
            if output is None:
                head = export(engine, sys.stdout.write, after)
            else:
                with output.open("w", encoding="utf-8") as out:
                    head = export(engine, out.write, after)
    finally:
        engine.dispose()
    typer.echo(f"head {head}", err=True)


@contextmanager
def _audit_readable() -> Iterator[None]:
    """A database without the audit tables is said so in one line (exit 2), not a traceback."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
        typer.echo(
            f"cannot read the audit record: {reason} (is the schema current? saisine db upgrade)", err=True
        )
        raise typer.Exit(2) from exc


def main() -> None:
    app()

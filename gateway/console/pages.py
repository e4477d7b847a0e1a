"""The console's reading pages: the dashboard, the message list and the message page.

Each page is put together in one function run on a worker thread (the store is synchronous),
with a bounded number of queries whatever the number of rows shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from gateway.audit import CONSULTATION, Entry
from gateway.composition import Container
from gateway.console.access import Visitor, visitor
from gateway.console.render import Renderer
from gateway.console.views import STATUSES, ListQuery, partie_name, read_list_query
from gateway.console.xmlview import xml_view
from gateway.store.dashboard import (
    counts_by_hour,
    dead_letters_by_reason,
    delivery_reasons,
    list_dead_letters,
    queue_counts,
    reason_code,
)
from gateway.store.queries import (
    Cursor,
    InvalidCursor,
    MessagePage,
    list_messages,
    message_detail,
    without_personal_data,
)
from replay.model import Mode


def dashboard_context(container: Container) -> dict[str, Any]:
    """Counts by status per hour over the last 24 hours, dead letters by reason, the circuit
    state of the registry breaker, the delivery queue and the latest replays."""
    engine = container.store.engine
    hours = counts_by_hour(engine, container.clock())
    totals = {status: sum(h.counts.get(status, 0) for h in hours) for status in STATUSES}
    replays = container.replays.history(5)
    return {
        "hours": list(reversed(hours)),
        "totals": totals,
        "busiest": max((h.total for h in hours), default=0) or 1,
        "dead_letters": dead_letters_by_reason(engine),
        "queue": queue_counts(engine),
        "circuit": container.breaker.state,
        "registry_endpoint": container.breaker.endpoint,
        "replays": replays,
    }


def _page(container: Container, query: ListQuery) -> tuple[MessagePage, list[str]]:
    problems = list(query.problems)
    after = None
    if query.cursor:
        try:
            after = Cursor.decode(query.cursor)
        except InvalidCursor:
            problems.append("The page link was altered: showing the first page.")
    engine = container.store.engine
    if query.reason:
        return list_dead_letters(engine, query.reason, query.where, query.limit, after), problems
    return list_messages(engine, query.where, query.limit, after), problems


def list_context(container: Container, params: Mapping[str, str]) -> dict[str, Any]:
    """The message list: the filter form filled as asked, one page of results, the next page."""
    query = read_list_query(params)
    page, problems = _page(container, query) if not query.problems else (MessagePage([], None), [])
    dead = [item["receipt_id"] for item in page.items if item["status"] == "dead_letter"]
    formats = container.formats.all()
    return {
        "query": query,
        "page": page,
        "problems": [*query.problems, *problems],
        "reasons": delivery_reasons(container.store.engine, dead),
        "agencies": sorted({f.agency for f in formats}),
        "formats": [f.name for f in formats],
        "modes": Mode.ALL,
    }


def message_context(
    container: Container, receipt_id: str, who: Visitor, actor: str, purpose: str | None
) -> dict[str, Any] | None:
    """One message: status, delivery, errors, timeline, versions, the XML, the mapped case.

    A signed-in operator sees the personal data (the XML, the case, the errors' texts) once
    they state a purpose; the consultation is then an audit record, written before the page."""
    found = message_detail(container.store.engine, receipt_id, container.store.cipher)
    if found is None:
        return None
    withheld = who.operator is not None and not purpose
    if withheld:
        found = without_personal_data(found)
    else:
        detail = {"purpose": purpose} if purpose else {}
        container.store.audit.record(Entry(CONSULTATION, actor, receipt_id, container.clock(), detail))
    errors = list(found["errors"])
    lines = {int(e["line"]) for e in errors if isinstance(e.get("line"), int)}
    raw = found.get("raw")
    case = found.get("case")
    affaire = case["affaire"] if case else None
    delivery = found.get("delivery")
    return {
        "m": found,
        "errors": errors,
        "xml": xml_view(bytes(raw) if raw is not None else None, lines),
        "case": case,
        "affaire": affaire,
        "names": {p["ref"]: partie_name(p) for p in (affaire or {}).get("parties", [])},
        "delivery": delivery,
        "dead_reason": reason_code(delivery["last_error"]) if delivery and delivery["last_error"] else None,
        "timeline": found["timeline"],
        "replays": container.replays.of_message(receipt_id),
        "modes": Mode.ALL,
        "withheld": withheld,
        "purpose": purpose,
    }


def install(router: APIRouter, container: Container, renderer: Renderer) -> None:
    """Add the reading pages to ``router`` (mounted under /console)."""

    @router.get("", response_class=HTMLResponse)
    async def dashboard(request: Request) -> HTMLResponse:
        context = await run_in_threadpool(dashboard_context, container)
        return renderer.page(request, "dashboard.html", "dashboard", **context)

    @router.get("/messages", response_class=HTMLResponse)
    async def message_list(request: Request) -> HTMLResponse:
        context = await run_in_threadpool(list_context, container, dict(request.query_params))
        status = 400 if context["problems"] else 200
        return renderer.page(request, "messages.html", "messages", status_code=status, **context)

    @router.get("/messages/{receipt_id}", response_class=HTMLResponse)
    async def message_page(request: Request, receipt_id: str) -> HTMLResponse:
        who = visitor(request)
        purpose = request.query_params.get("purpose", "").strip()[:500] or None
        name = who.name or f"unauthenticated:{request.client.host if request.client else 'unknown'}"
        context = await run_in_threadpool(message_context, container, receipt_id, who, name, purpose)
        if context is None:
            return renderer.not_found(request, f"No message has the receipt id {receipt_id}.")
        return renderer.page(request, "message.html", "messages", **context)

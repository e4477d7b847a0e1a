"""The console's replay pages: the preview (what would happen to each message), the confirm
form (reason and name required) that starts a replay, the history, and a replay's page with
its progress and its pause / resume / cancel buttons.

A replay concerns one message (``receipt_id``) or the message list's filters (including the
console's dead-letter reason filter, turned into the receipt ids it finds when the replay
starts). The selection travels in the query string of the preview and as hidden fields of the
confirm form, so that what is confirmed is what was previewed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway.auth.credentials import Role
from gateway.composition import Container
from gateway.console.access import require, visitor
from gateway.console.render import Renderer
from gateway.console.views import ListQuery, read_list_query
from gateway.store.dashboard import MAX_SELECTED, dead_letter_receipts
from replay.model import (
    Action,
    Mode,
    NothingSelected,
    ReplayError,
    ReplayStateConflict,
    ReplayStatus,
    ReplayUnknown,
    Selection,
)

MAX_FORM_BYTES = 64 * 1024
PREVIEW_LIMIT = 500
CONTROLS = ("pause", "resume", "cancel")


class BadForm(Exception):
    """A form the console did not produce (unknown mode, no selection, oversized)."""


def _selection(container: Container, params: Mapping[str, str]) -> tuple[Selection, ListQuery | None]:
    """The messages a replay form names: one receipt id, or the list's filters."""
    receipt_id = params.get("receipt_id", "").strip()
    if receipt_id:
        return Selection(receipt_ids=(receipt_id,)), None
    query = read_list_query(params)
    if query.problems:
        raise BadForm(" ".join(query.problems))
    if not query.chosen:
        raise BadForm("Choose at least one filter on the message list before replaying a selection.")
    if query.reason:
        ids = dead_letter_receipts(container.store.engine, query.reason, query.where, MAX_SELECTED)
        if not ids:
            raise NothingSelected("No dead letter has this reason with these filters.")
        return Selection(receipt_ids=tuple(ids)), query
    return Selection(filter=query.where), query


def _mode(params: Mapping[str, str]) -> str:
    mode = params.get("mode", Mode.REDELIVER)
    if mode not in Mode.ALL:
        raise BadForm(f"Unknown replay mode {mode!r}: choose redeliver or reprocess.")
    return mode


def _hidden(params: Mapping[str, str], query: ListQuery | None) -> list[tuple[str, str]]:
    """The selection as hidden fields of the confirm form (and for the mode switch)."""
    if query is None:
        return [("receipt_id", params.get("receipt_id", "").strip())]
    return [(k, v) for k, v in query.values.items() if v and k != "limit"]


def preview_context(container: Container, params: Mapping[str, str]) -> dict[str, Any]:
    mode = _mode(params)
    selection, query = _selection(container, params)
    preview = container.replays.preview(mode, selection, limit=PREVIEW_LIMIT)
    changing = sum(preview.counts.get(action, 0) for action in Action.CHANGING)
    hidden = _hidden(params, query)
    return {
        "mode": mode,
        "modes": Mode.ALL,
        "preview": preview,
        "changing": changing,
        "hidden": hidden,
        "back": f"/console/messages?{urlencode(hidden)}" if query else f"/console/messages/{hidden[0][1]}",
        "single": query is None,
        "problem": None,
        "filled": {},
    }


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadForm("The form is too large.")
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def replay_context(container: Container, replay_id: str) -> dict[str, Any]:
    summary = container.replays.get(replay_id)
    items = container.replays.items(replay_id, limit=500)
    live = summary.status not in ReplayStatus.FINISHED or any(
        summary.deliveries.get(s, 0) for s in ("pending", "delivering")
    )
    return {"r": summary, "items": items, "live": live, "controls": _controls(summary.status)}


def _controls(status: str) -> list[str]:
    if status == ReplayStatus.RUNNING:
        return ["pause", "cancel"]
    if status == ReplayStatus.PAUSED:
        return ["resume", "cancel"]
    return []


def install(router: APIRouter, container: Container, renderer: Renderer) -> None:
    """Add the replay pages to ``router`` (mounted under /console)."""
    service = container.replays

    def refused(request: Request, exc: Exception) -> HTMLResponse:
        if isinstance(exc, ReplayUnknown):
            return renderer.not_found(request, exc.message)
        if isinstance(exc, ReplayError):
            status = 409 if isinstance(exc, ReplayStateConflict) else 400
            return renderer.error(request, status, exc.code, exc.message)
        return renderer.error(request, 400, "Not a replay the console can start", str(exc))

    @router.get("/replays/new", response_class=HTMLResponse)
    async def preview(request: Request) -> HTMLResponse:
        require(request, Role.INTEGRATOR)
        try:
            context = await run_in_threadpool(preview_context, container, dict(request.query_params))
        except (BadForm, ReplayError) as exc:
            return refused(request, exc)
        return renderer.page(request, "preview.html", "replays", **context)

    @router.post("/replays", response_model=None)
    async def start(request: Request) -> Response:
        require(request, Role.INTEGRATOR)
        try:
            form = await _form(request)
            mode = _mode(form)
            reason = form.get("reason", "").strip()
            name = visitor(request).name or form.get("requested_by", "").strip()
            if not name or not reason:
                # the browser requires both; a form sent without them gets its preview back
                context = await run_in_threadpool(preview_context, container, form)
                problem = "Give your name and the reason: every replay records who asked for it and why."
                context.update(problem=problem, filled=form)
                return renderer.page(request, "preview.html", "replays", 400, **context)
            selection, _ = await run_in_threadpool(_selection, container, form)
            summary = await run_in_threadpool(service.start, mode, selection, reason, name)
        except (BadForm, ReplayError) as exc:
            return refused(request, exc)
        return RedirectResponse(f"/console/replays/{summary.replay_id}", status_code=303)

    @router.get("/replays", response_class=HTMLResponse)
    async def history(request: Request) -> HTMLResponse:
        replays = await run_in_threadpool(service.history, 100)
        return renderer.page(request, "replays.html", "replays", replays=replays)

    @router.get("/replays/{replay_id}", response_class=HTMLResponse)
    async def replay_page(request: Request, replay_id: str) -> HTMLResponse:
        try:
            context = await run_in_threadpool(replay_context, container, replay_id)
        except ReplayError as exc:
            return refused(request, exc)
        return renderer.page(request, "replay.html", "replays", **context)

    @router.get("/replays/{replay_id}/progress", response_class=HTMLResponse)
    async def progress(request: Request, replay_id: str) -> HTMLResponse:
        """The progress block alone, for the page's refresh script."""
        try:
            context = await run_in_threadpool(replay_context, container, replay_id)
        except ReplayError as exc:
            return refused(request, exc)
        return renderer.html("_progress.html", **context)

    @router.post("/replays/{replay_id}/{control}", response_model=None)
    async def control(request: Request, replay_id: str, control: str) -> Response:
        if control not in CONTROLS:
            return renderer.not_found(request, f"No such action on a replay: {control}.")
        require(request, Role.INTEGRATOR)
        try:
            form = await _form(request)
            by = visitor(request).name or form.get("by", "").strip()
            if not by:
                raise BadForm("Give your name: pausing, resuming and cancelling are recorded.")
            await run_in_threadpool(getattr(service, control), replay_id, by)
        except (BadForm, ReplayError) as exc:
            return refused(request, exc)
        return RedirectResponse(f"/console/replays/{replay_id}", status_code=303)

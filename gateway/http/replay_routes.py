"""The operators' replay API: preview a replay, start one, follow it, pause, resume or cancel
it, and replay a single message (`/api/v1/replays`, `/api/v1/messages/{receipt_id}/replay`).

The work is done by :class:`replay.service.ReplayService`; the shapes are in
:mod:`gateway.http.replay_views`. Its errors (``ReplayError.code``) are answered in the API's
error shape, and so is a request that does not parse (422, ``REPLAY_INVALID``, or
``REPLAY_REASON_REQUIRED`` when the reason is missing) rather than in FastAPI's default one.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from gateway.auth.credentials import Operator, Role
from gateway.composition import Container
from gateway.errors import ErrorDetail
from gateway.http.auth import operator_with
from gateway.http.messages_routes import ApiErrorOut
from gateway.http.replay_views import (
    EXAMPLE_RECEIPT,
    EXAMPLE_REPLAY,
    ControlIn,
    MessageReplayIn,
    PreviewIn,
    PreviewOut,
    ReplayIn,
    ReplayItemsOut,
    ReplayListOut,
    ReplaySummaryOut,
    preview_out,
    summary_out,
)
from replay.model import (
    ReasonRequired,
    ReplayError,
    ReplayStateConflict,
    ReplaySummary,
    ReplayUnknown,
    Selection,
)

_NO_AUTH = (
    "\n\nFor operators (`Authorization: Bearer` with an operator token, or a console session): "
    "reading needs the viewer role, previewing and acting the integrator role; the operator "
    "authenticated is recorded as who asked."
)


Viewer = Annotated[Operator | None, Depends(operator_with(Role.VIEWER))]
Integrator = Annotated[Operator | None, Depends(operator_with(Role.INTEGRATOR))]


def _who(operator: Operator | None, given: str | None) -> str:
    """Who asks: the authenticated operator, or (authentication off) the name given."""
    if operator is not None:
        return operator.name
    if not (given or "").strip():
        raise ReplayError("Say who asks (requested_by, or by): it is recorded.")
    return (given or "").strip()


# ---------------------------------------------------------------------------------------------
# errors


def error_response(status: int, errors: list[ErrorDetail]) -> JSONResponse:
    word = {404: "not_found", 409: "conflict"}.get(status, "invalid")
    return JSONResponse({"status": word, "errors": [e.as_dict() for e in errors]}, status_code=status)


def replay_error_response(exc: ReplayError) -> JSONResponse:
    status = 404 if isinstance(exc, ReplayUnknown) else 409 if isinstance(exc, ReplayStateConflict) else 422
    return error_response(status, [ErrorDetail(exc.code, exc.message)])


def _body_error(error: Any) -> ErrorDetail:
    """One pydantic error of a request as an ErrorDetail (path: where, e.g. ``body.reason``)."""
    where = [str(part) for part in error.get("loc", ())]
    absent = error.get("type") == "missing" or error.get("input", "") is None
    missing_reason = where == ["body", "reason"] and absent
    code = ReasonRequired.code if missing_reason else ReplayError.code
    message = "Give the reason for this replay: it is recorded." if missing_reason else str(error["msg"])
    return ErrorDetail(code, message, path=".".join(where) or None)


def _invalid_request(errors: Sequence[Any]) -> JSONResponse:
    return error_response(422, [_body_error(e) for e in errors])


class ReplayRoute(APIRoute):
    """A route whose bad requests and replay errors are answered in the API's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _invalid_request(exc.errors())
            except ReplayError as exc:
                return replay_error_response(exc)

        return handle


_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ApiErrorOut,
        "description": "A bad request (REPLAY_INVALID), no reason (REPLAY_REASON_REQUIRED), "
        "or no message selected (REPLAY_NOTHING_SELECTED)",
    },
}
_UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiErrorOut, "description": "No replay has this id (REPLAY_UNKNOWN)"}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ApiErrorOut,
        "description": "Not possible in the replay's state (REPLAY_STATE_CONFLICT): pause what is "
        "not running, resume what is not paused, cancel what is finished",
    }
}

ReplayId = Annotated[str, Path(examples=[EXAMPLE_REPLAY])]


def _reason(reason: str | None) -> str:
    if reason is None or not reason.strip():
        raise ReasonRequired("Give the reason for this replay: it is recorded.")
    return reason.strip()


# ---------------------------------------------------------------------------------------------
# routes


def install(app: FastAPI, container: Container) -> None:
    """Add the replay routes to ``app``."""
    router = APIRouter(route_class=ReplayRoute, tags=["replays"])
    _install_replays(router, container)
    _install_controls(router, container)
    _install_message_replay(router, container)
    app.include_router(router)


def _install_replays(router: APIRouter, container: Container) -> None:
    replays = container.replays

    @router.post(
        "/api/v1/replays/preview",
        response_model=PreviewOut,
        responses=_ERRORS,
        summary="What a replay would do to each message; changes nothing",
        description=(
            "A dry run: per message, the action a replay would take (requeue, revise, accept, "
            "still_rejected, refused, skip) and why, in the order the replay would go; for "
            "`reprocess`, the new errors and the differences between the stored case and the new "
            "one (JSON Pointer paths)." + _NO_AUTH
        ),
    )
    async def preview_replay(body: PreviewIn, _operator: Integrator = None) -> PreviewOut:
        selection = body.selection()
        preview = await run_in_threadpool(replays.preview, body.mode, selection, body.limit)
        return preview_out(preview)

    @router.post(
        "/api/v1/replays",
        status_code=202,
        response_model=ReplaySummaryOut,
        responses=_ERRORS,
        summary="Start a replay (recorded: who, when, why, which messages)",
        description=(
            "The messages are chosen now and taken procedure by procedure, in order, at "
            "`rate_per_second`; the replay runs in the background (follow it at the `Location` "
            "given). A message already registered is not delivered twice: the registry's "
            "idempotency key stays the message id." + _NO_AUTH
        ),
    )
    async def start_replay(
        body: ReplayIn, response: Response, operator: Integrator = None
    ) -> ReplaySummaryOut:
        selection = body.selection()
        reason = _reason(body.reason)
        by = _who(operator, body.requested_by)
        summary = await run_in_threadpool(
            replays.start, body.mode, selection, reason, by, body.rate_per_second
        )
        response.headers["Location"] = f"/api/v1/replays/{summary.replay_id}"
        return summary_out(summary)

    @router.get(
        "/api/v1/replays",
        response_model=ReplayListOut,
        responses=_ERRORS,
        summary="The replays, newest first",
    )
    async def list_replays(
        limit: Annotated[int, Query(ge=1, le=500)] = 50, _operator: Viewer = None
    ) -> ReplayListOut:
        found = await run_in_threadpool(replays.history, limit)
        return ReplayListOut(items=[summary_out(s) for s in found])

    @router.get(
        "/api/v1/replays/{replay_id}",
        response_model=ReplaySummaryOut,
        responses={**_UNKNOWN},
        summary="A replay and its progress",
    )
    async def get_replay(replay_id: ReplayId, _operator: Viewer = None) -> ReplaySummaryOut:
        return summary_out(await run_in_threadpool(replays.get, replay_id))

    @router.get(
        "/api/v1/replays/{replay_id}/items",
        response_model=ReplayItemsOut,
        responses={**_UNKNOWN, **_ERRORS},
        summary="A replay's messages in the order it takes them, with what came of each",
    )
    async def get_replay_items(
        replay_id: ReplayId,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
        offset: Annotated[int, Query(ge=0)] = 0,
        _operator: Viewer = None,
    ) -> ReplayItemsOut:
        found = await run_in_threadpool(replays.items, replay_id, limit, offset)
        return ReplayItemsOut.model_validate({"items": found}, from_attributes=True)


def _install_controls(router: APIRouter, container: Container) -> None:
    replays = container.replays
    controls: dict[str, tuple[Callable[[str, str], ReplaySummary], str]] = {
        "pause": (replays.pause, "Pause a running replay (it keeps its place)"),
        "resume": (replays.resume, "Resume a paused replay where it stopped"),
        "cancel": (replays.cancel, "Cancel a replay: the messages it has not reached stay as they are"),
    }
    for verb, (control, summary) in controls.items():
        router.add_api_route(
            f"/api/v1/replays/{{replay_id}}/{verb}",
            _control_handler(control),
            methods=["POST"],
            response_model=ReplaySummaryOut,
            responses={**_UNKNOWN, **_CONFLICT, **_ERRORS},
            name=f"{verb}_replay",
            summary=summary,
            description="Recorded with the replay's events: who, when." + _NO_AUTH,
        )


def _control_handler(
    control: Callable[[str, str], ReplaySummary],
) -> Callable[[str, ControlIn], Coroutine[Any, Any, ReplaySummaryOut]]:
    async def handle(replay_id: ReplayId, body: ControlIn, operator: Integrator = None) -> ReplaySummaryOut:
        return summary_out(await run_in_threadpool(control, replay_id, _who(operator, body.by)))

    return handle


def _install_message_replay(router: APIRouter, container: Container) -> None:
    replays = container.replays
    store = container.store

    @router.post(
        "/api/v1/messages/{receipt_id}/replay",
        status_code=202,
        response_model=ReplaySummaryOut | PreviewOut,
        responses={
            200: {"model": PreviewOut, "description": "dry_run: the preview; nothing changed"},
            404: {"model": ApiErrorOut, "description": "No message has this receipt id (MESSAGE_UNKNOWN)"},
            **_ERRORS,
        },
        tags=["messages"],
        summary="Replay one message (or, with dry_run, see what a replay would do to it)",
        description="A replay of one message, recorded like any other." + _NO_AUTH,
    )
    async def replay_message(
        receipt_id: Annotated[str, Path(examples=[EXAMPLE_RECEIPT])],
        body: MessageReplayIn,
        response: Response,
        operator: Integrator = None,
    ) -> Any:
        if await run_in_threadpool(store.receipt, receipt_id) is None:
            unknown = ErrorDetail("MESSAGE_UNKNOWN", f"No message has the receipt id {receipt_id}.")
            return error_response(404, [unknown])
        selection = Selection(receipt_ids=(receipt_id,))
        if body.dry_run:
            response.status_code = 200
            return preview_out(await run_in_threadpool(replays.preview, body.mode, selection))
        reason = _reason(body.reason)
        by = _who(operator, body.requested_by)
        summary = await run_in_threadpool(replays.start, body.mode, selection, reason, by)
        response.headers["Location"] = f"/api/v1/replays/{summary.replay_id}"
        return summary_out(summary)

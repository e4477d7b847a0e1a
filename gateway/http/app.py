"""The gateway's HTTP server: REST intake, receipts, SOAP intake, health."""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from gateway import console
from gateway.composition import Container
from gateway.errors import ErrorDetail, TooLarge
from gateway.http import admin_routes, messages_routes, replay_routes, soap_routes
from gateway.http.auth import AuthFailure, Gatekeeper, failure_response
from gateway.http.bodies import is_xml, read_capped
from gateway.http.direct import DirectRoutes, Endpoint
from gateway.http.threads import IntakeThreads
from gateway.http.views import (
    ReceiptDetailOut,
    ReceiptOut,
    RejectionOut,
    ValidationOut,
    receipt_out,
    rejection_out,
    validation_out,
)
from replay.service import ReplayRunner


def _sample(container: Container, agency: str) -> str:
    """The OpenAPI request example of an agency: the outline of its last registered format."""
    fmt = [f for f in container.formats.all() if f.agency == agency][-1]
    where = f"schemas/{fmt.agency}/v{fmt.version}/ and tests/fixtures/{fmt.agency}/v{fmt.version}/valid/"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<{fmt.root} xmlns="{fmt.namespace}" schemaVersion="{fmt.version}.0">\n'
        f"  <!-- ... see {where} -->\n"
        f"</{fmt.root}>"
    )


DESCRIPTION = """Saisine receives procedure messages from gendarmerie units and police services,
validates them (hardened XML parser, XSD, business rules), maps them to the court's case
model and stores them durably before answering with a receipt.

Every rejection lists **every** error found, each with `code`, `message`, `line`, `column`
and `path`. Error codes are listed in `docs/error-codes.md`.

Senders authenticate with `Authorization: Bearer <token>` (or a client certificate at the TLS
proxy) and send only for their own units; operators use their own token (or the console's
session). Refusals: 401 `AUTH_REQUIRED`/`AUTH_INVALID`, 403 `UNIT_NOT_ALLOWED`,
`AGENCY_NOT_ALLOWED`, `ROLE_FORBIDDEN`, 429 `RATE_LIMITED` with `Retry-After`
(`docs/security.md`)."""


def _intake_responses() -> dict[int | str, dict[str, Any]]:
    return {
        202: {"model": ReceiptOut, "description": "Accepted and stored: the receipt"},
        200: {
            "model": ReceiptOut,
            "description": "The same bytes were already accepted: the original receipt, `repeat: true`",
        },
        400: {
            "model": RejectionOut,
            "description": "Not well-formed, or refused by the hardened parser",
        },
        409: {
            "model": RejectionOut,
            "description": "This message id was accepted with other content",
        },
        401: {"model": RejectionOut, "description": "No sender credentials, or unknown, expired, revoked"},
        403: {
            "model": RejectionOut,
            "description": "The message declares a unit this credential may not send for",
        },
        413: {"model": RejectionOut, "description": "Body larger than the configured cap"},
        415: {"model": RejectionOut, "description": "Content type is not XML"},
        429: {"model": RejectionOut, "description": "Too many messages from this sender: see Retry-After"},
        422: {
            "model": RejectionOut,
            "description": "XML, but not a valid message (schema or business rules)",
        },
    }


async def _read_xml(request: Request, limit: int) -> tuple[bytes, tuple[int, ErrorDetail] | None]:
    """The body, read under the size cap, and why it is refused before parsing (413, 415), if it is."""
    try:
        body = await read_capped(request, limit)
    except TooLarge as exc:
        return b"", (413, exc.errors[0])
    if not is_xml(request.headers.get("content-type")):
        error = ErrorDetail("CONTENT_TYPE_UNSUPPORTED", "Send the message as application/xml (or text/xml).")
        return body, (415, error)
    return body, None


def _intake_handler(
    container: Container, agency: str, threads: IntakeThreads, keeper: Gatekeeper
) -> Callable[[Request], Awaitable[JSONResponse]]:
    intake = container.intake
    limit = container.settings.max_body_bytes

    async def submit_procedure(request: Request) -> JSONResponse:
        try:  # who is sending, before reading the body (gateway.http.auth)
            sender = await keeper.sender_for(request, agency)
        except AuthFailure as failure:  # answered here: this endpoint runs outside FastAPI's handlers
            return failure_response(failure)
        units = sender.units if sender is not None else None
        body, refused = await _read_xml(request, limit)
        if refused is not None:
            status, error = refused
            # too large: not kept (only how much was read); wrong content type: kept as received
            size, raw = (limit, None) if status == 413 else (len(body), body)
            receipt = await run_in_threadpool(intake.record_refused, agency, "rest", error, size, raw)
            return JSONResponse(rejection_out(receipt), status_code=status)
        submit = functools.partial(intake.submit, units=units)
        outcome = await threads.run(submit, agency, body, "rest")
        if outcome.http_status in (200, 202):
            return JSONResponse(receipt_out(outcome.receipt, outcome.repeat), status_code=outcome.http_status)
        return JSONResponse(rejection_out(outcome.receipt), status_code=outcome.http_status)

    submit_procedure.__doc__ = f"Submit a {agency} procedure message (XML)."
    return submit_procedure


def _validate_handler(
    container: Container, agency: str, threads: IntakeThreads, keeper: Gatekeeper
) -> Callable[[Request], Awaitable[JSONResponse]]:
    checker = container.intake.checker
    limit = container.settings.max_body_bytes

    async def validate_procedure(request: Request) -> JSONResponse:
        try:
            await keeper.sender_for(request, agency)
        except AuthFailure as failure:
            return failure_response(failure)
        body, refused = await _read_xml(request, limit)
        if refused is not None:
            status, error = refused
            return JSONResponse(validation_out(status, [error]), status_code=status)
        # the same threads as the intake: a check costs what an intake costs
        verdict = await threads.run(checker.evaluate, body, agency)
        status = 200 if verdict.accepted else verdict.http_status
        return JSONResponse(validation_out(status, verdict.errors, verdict), status_code=status)

    validate_procedure.__doc__ = (
        f"Check a {agency} procedure message as the intake would, and store nothing: "
        "the mapped case as the court would receive it, or every error."
    )
    return validate_procedure


def _lifespan(
    container: Container, run_worker: bool, threads: IntakeThreads
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start the delivery worker with the server; on stop, let in-flight deliveries finish."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = container.worker() if run_worker else None
        thread = threading.Thread(target=worker.run, name="delivery-worker", daemon=True) if worker else None
        # running replays are carried out beside the worker (replay.service)
        replaying = worker is not None and container.settings.replay_runner_enabled
        runner = ReplayRunner(container.replays) if replaying else None
        runner_thread = (
            threading.Thread(target=runner.run, name="replay-runner", daemon=True) if runner else None
        )
        for started in (thread, runner_thread):
            if started:
                started.start()
        try:
            yield
        finally:
            if runner and runner_thread:
                runner.stop()
                await run_in_threadpool(runner_thread.join)
            if worker and thread:
                worker.stop()
                await run_in_threadpool(thread.join)
            await run_in_threadpool(threads.close)  # submissions in progress finish first

    return lifespan


async def _refused(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthFailure)
    return failure_response(exc)


def settle_collector() -> None:
    """Tune the garbage collector for serving, once the application is built.

    What start-up built (compiled schemas, models, routes, the engine) lives as long as the
    process: frozen out of the collector's sight. A message makes a few thousand short-lived
    objects, freed by reference counting; collecting every 700 allocations (the default)
    walked the live messages of every thread about once per message, for nothing. The ingest
    benchmark's bound (bench/bound_server.py) is served the same way."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def create_app(container: Container, run_worker: bool = False) -> FastAPI:
    """The ASGI application for a wired container (see gateway.composition.build)."""
    # REST and SOAP submissions share a few threads (settings.intake_threads) rather than
    # Starlette's forty: a message is checked and mapped holding the GIL, and threads
    # beyond two stretch the serialized write of each message by contending for it.
    threads = IntakeThreads(container.settings.intake_threads)
    app = FastAPI(
        title="Saisine",
        version="1",
        description=DESCRIPTION,
        lifespan=_lifespan(container, run_worker, threads),
    )
    app.state.container = container
    # who is calling (gateway.http.auth): senders on the intake, operators on the rest
    app.state.gatekeeper = keeper = Gatekeeper(container.settings, container.credentials)
    app.add_exception_handler(AuthFailure, _refused)
    direct: dict[str, Endpoint] = {}  # the XML endpoints, answered by DirectRoutes

    for agency in sorted({f.agency for f in container.formats.all() if "rest" in f.transports}):
        example = _sample(container, agency)
        validate_endpoint = direct[f"/api/v1/{agency}/procedures/validate"] = _validate_handler(
            container, agency, threads, keeper
        )
        submit_endpoint = direct[f"/api/v1/{agency}/procedures"] = _intake_handler(
            container, agency, threads, keeper
        )
        app.add_api_route(
            f"/api/v1/{agency}/procedures/validate",
            validate_endpoint,
            methods=["POST"],
            response_model=None,
            responses={
                200: {"model": ValidationOut, "description": "Valid: the mapped case; nothing stored"},
                400: {"model": ValidationOut, "description": "Refused by the hardened parser"},
                413: {"model": ValidationOut, "description": "Body larger than the configured cap"},
                415: {"model": ValidationOut, "description": "Content type is not XML"},
                422: {"model": ValidationOut, "description": "Invalid: every error; nothing stored"},
            },
            tags=[agency],
            name=f"validate_{agency}_procedure",
            summary=f"Check a {agency} procedure message without sending it",
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/xml": {"schema": {"type": "string"}, "example": example}},
                }
            },
        )
        app.add_api_route(
            f"/api/v1/{agency}/procedures",
            submit_endpoint,
            methods=["POST"],
            status_code=202,
            response_model=None,
            responses=_intake_responses(),
            tags=[agency],
            name=f"submit_{agency}_procedure",
            summary=f"Submit a {agency} procedure message",
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/xml": {"schema": {"type": "string"}, "example": example}},
                }
            },
        )

    # The routes above document the XML endpoints; their requests are answered in front of
    # FastAPI's routing by the same endpoints (gateway/http/direct.py).
    app.add_middleware(DirectRoutes, routes=direct)

    @app.get(
        "/api/v1/receipts/{receipt_id}",
        response_model=ReceiptDetailOut,
        responses={404: {"description": "No such receipt"}},
        tags=["receipts"],
        summary="A receipt's status and history",
    )
    async def get_receipt(receipt_id: str, request: Request) -> JSONResponse:
        sender = await keeper.sender_for(request, None)
        receipt = await run_in_threadpool(container.store.receipt, receipt_id)
        if receipt is None or (sender is not None and not sender.may_send_for(receipt.unit_code)):
            # another unit's receipt is unknown to this one: receipt ids cannot be probed
            return JSONResponse({"detail": "No such receipt", "receipt_id": receipt_id}, status_code=404)
        return JSONResponse(receipt_out(receipt, history=True))

    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="The store is reachable and the schemas are loaded")
    async def readyz() -> JSONResponse:
        checks: dict[str, Any] = {
            "formats": [f.name for f in container.formats.all()],
            "registry": {"endpoint": container.breaker.endpoint, "circuit": container.breaker.state},
        }
        try:
            await run_in_threadpool(container.store.ping)
            checks["store"] = "ok"
        except Exception as exc:  # any failure means "not ready"; the reason is reported
            checks["store"] = f"unreachable: {type(exc).__name__}"
        ready = checks["store"] == "ok" and bool(checks["formats"])
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(container.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    soap_routes.install(app, container, threads)
    messages_routes.install(app, container)
    replay_routes.install(app, container)
    admin_routes.install(app, container)
    console.install(app, container)
    return app

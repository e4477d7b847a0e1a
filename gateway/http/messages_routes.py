"""The operators' read API: find messages (`GET /api/v1/messages`) and explain one
(`GET /api/v1/messages/{receipt_id}`). Reads only; nothing here is logged but the route."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gateway.audit import CONSULTATION, Entry
from gateway.auth.credentials import Operator, Role
from gateway.composition import Container
from gateway.errors import ErrorDetail
from gateway.http.auth import actor, operator_with
from gateway.http.views import ErrorOut
from gateway.store.dashboard import list_dead_letters
from gateway.store.queries import (
    MAX_LIMIT,
    Cursor,
    InvalidCursor,
    MessageFilter,
    list_messages,
    message_detail,
    without_personal_data,
)

_OPERATORS = (
    "\n\nFor operators (`Authorization: Bearer` with an operator token, or a console session); "
    "role viewer at least."
)
_EXAMPLE_RECEIPT = "0b6f3c8e-3f7d-4c59-9d43-4c8a7c1b2f10"


class MessageSummaryOut(BaseModel):
    receipt_id: str = Field(examples=[_EXAMPLE_RECEIPT])
    message_id: str | None = Field(default=None, examples=["5f0c2a5e-8a3b-4f4e-9a56-0c1d2e3f4a5b"])
    agency: str = Field(examples=["gendarmerie"])
    sender: str = Field(examples=["gendarmerie:00691234"])
    transport: str = Field(examples=["rest"])
    format: str | None = Field(default=None, examples=["gendarmerie/v1"])
    schema_version: str | None = Field(default=None, examples=["1.0"])
    message_kind: str | None = Field(default=None, examples=["PROCEDURE_INITIALE"])
    unit_code: str | None = Field(default=None, examples=["00691234"])
    procedure_number: str | None = Field(default=None, examples=["2026/000123"])
    tribunal_code: str | None = Field(default=None, examples=["TJ75056"])
    status: str = Field(examples=["dead_letter"])
    http_status: int = Field(examples=[202])
    numero_parquet: str | None = Field(default=None, examples=["TJ75056-2026-0000042"])
    received_at: datetime
    updated_at: datetime
    error_codes: list[str] = Field(default_factory=list, examples=[["NATINF_UNKNOWN"]])


class MessagePageOut(BaseModel):
    items: list[MessageSummaryOut]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page"
    )


class TimelineEntryOut(BaseModel):
    at: datetime
    source: str = Field(examples=["attempt"], description="event, or attempt (a call to the registry)")
    kind: str = Field(examples=["delivery_attempt"])
    attempt: int | None = Field(default=None, description="Attempt number, for an attempt")
    outcome: str | None = Field(
        default=None, examples=["retriable"], description="registered, retriable, fatal"
    )
    duration_ms: int | None = Field(default=None, examples=[184], description="How long the registry took")
    detail: dict[str, Any] = Field(
        default_factory=dict, description="The registry's answer, or the event's data"
    )


class CaseOut(BaseModel):
    revision: int = Field(examples=[1])
    schema_version: str | None = Field(default=None, examples=["1.0"])
    mapping_version: str = Field(examples=["gendarmerie-v1.0"])
    created_at: datetime
    affaire: dict[str, Any] = Field(description="The mapped case, as the court receives it")


class DeliveryOut(BaseModel):
    status: str = Field(examples=["pending"], description="pending, held, registered, dead_letter")
    kind: str = Field(examples=["initiale"])
    attempts: int = Field(examples=[2])
    next_attempt_at: datetime | None = None
    numero_parquet: str | None = Field(default=None, examples=["TJ75056-2026-0000042"])
    registered_at: datetime | None = None
    last_error: str | None = Field(default=None, examples=["REGISTRY_UNAVAILABLE: 503"])
    created_at: datetime
    updated_at: datetime


class MessageDetailOut(MessageSummaryOut):
    mapping_version: str | None = Field(default=None, examples=["gendarmerie-v1.0"])
    sha256: str
    size: int = Field(examples=[4096])
    raw: str | None = Field(default=None, description="The message as received")
    raw_encoding: str | None = Field(
        default=None, examples=["utf-8"], description="utf-8 (raw is the text) or base64 (raw is not UTF-8)"
    )
    errors: list[ErrorOut] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    case: CaseOut | None = None
    delivery: DeliveryOut | None = None
    timeline: list[TimelineEntryOut] = Field(default_factory=list)
    personal_data: str = Field(
        default="shown",
        examples=["withheld"],
        description="shown; withheld (state a `purpose` to see the raw message, the case and the "
        "errors' texts); purged (past its retention: only hashes and metadata are kept)",
    )


class ApiErrorOut(BaseModel):
    status: str = Field(examples=["not_found"])
    errors: list[ErrorOut]


def _raw(data: bytes | None) -> tuple[str | None, str | None]:
    if data is None:
        return None, None
    try:
        return bytes(data).decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def detail_out(found: dict[str, Any], withhold: bool = False) -> MessageDetailOut:
    """The message page; ``withhold`` leaves out what carries personal data."""
    shown = "purged" if found.get("purged_at") is not None else "shown"
    if withhold:
        found, shown = without_personal_data(found), "withheld"
    raw, encoding = _raw(found.pop("raw"))
    codes = sorted({str(e["code"]) for e in found["errors"]})
    return MessageDetailOut.model_validate(
        {**found, "raw": raw, "raw_encoding": encoding, "error_codes": codes, "personal_data": shown}
    )


def _error(status: int, word: str, code: str, message: str) -> JSONResponse:
    body = {"status": word, "errors": [ErrorDetail(code, message).as_dict()]}
    return JSONResponse(body, status_code=status)


def install(app: FastAPI, container: Container) -> None:
    """Add the message list and the message page to ``app``."""
    engine = container.store.engine

    @app.get(
        "/api/v1/messages",
        response_model=MessagePageOut,
        responses={400: {"model": ApiErrorOut, "description": "The cursor is not one this API gave"}},
        tags=["messages"],
        summary="Find messages by status, sender, procedure, error code or date",
        description=(
            "Messages newest first (by reception time, then by storage order), filtered by every "
            "parameter given, a page at a time: pass the `next_cursor` of one page as `cursor` "
            "to get the next. `received_from` is inclusive, `received_to` exclusive (ISO 8601; "
            "without a zone, UTC)." + _OPERATORS
        ),
    )
    async def list_messages_route(
        status: Annotated[str | None, Query(examples=["dead_letter"])] = None,
        agency: Annotated[str | None, Query(examples=["gendarmerie"])] = None,
        unit: Annotated[str | None, Query(description="Sending unit code", examples=["00691234"])] = None,
        format: Annotated[str | None, Query(examples=["gendarmerie/v1"])] = None,
        schema_version: Annotated[str | None, Query(examples=["1.0"])] = None,
        error_code: Annotated[
            str | None, Query(description="One of the message's error codes", examples=["NATINF_UNKNOWN"])
        ] = None,
        tribunal: Annotated[str | None, Query(examples=["TJ75056"])] = None,
        procedure_number: Annotated[
            str | None, Query(description="Numéro de procédure", examples=["2026/000123"])
        ] = None,
        numero_parquet: Annotated[str | None, Query(examples=["TJ75056-2026-0000042"])] = None,
        received_from: Annotated[datetime | None, Query(examples=["2026-11-01T00:00:00Z"])] = None,
        received_to: Annotated[datetime | None, Query(examples=["2026-12-01T00:00:00Z"])] = None,
        dead_letter_reason: Annotated[
            str | None,
            Query(
                description="Dead letters whose delivery ended with this code (the registry's, or "
                "RETRIES_EXHAUSTED); not one of the message's own error codes",
                examples=["UNKNOWN_TRIBUNAL"],
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        cursor: Annotated[str | None, Query(description="The `next_cursor` of the previous page")] = None,
        _operator: Annotated[Operator | None, Depends(operator_with(Role.VIEWER))] = None,
    ) -> Any:
        try:
            after = Cursor.decode(cursor) if cursor else None
        except InvalidCursor:
            return _error(400, "invalid", "CURSOR_INVALID", "Pass a next_cursor exactly as a page gave it.")
        where = MessageFilter(
            status=status,
            agency=agency,
            unit_code=unit,
            format=format,
            schema_version=schema_version,
            error_code=error_code,
            tribunal_code=tribunal,
            procedure_number=procedure_number,
            numero_parquet=numero_parquet,
            received_from=received_from,
            received_to=received_to,
        )
        if dead_letter_reason:
            page = await run_in_threadpool(list_dead_letters, engine, dead_letter_reason, where, limit, after)
        else:
            page = await run_in_threadpool(list_messages, engine, where, limit, after)
        return MessagePageOut.model_validate({"items": page.items, "next_cursor": page.next_cursor})

    @app.get(
        "/api/v1/messages/{receipt_id}",
        response_model=MessageDetailOut,
        responses={404: {"model": ApiErrorOut, "description": "No message has this receipt id"}},
        tags=["messages"],
        summary="One message in full: raw bytes, errors, mapped case, timeline, delivery",
        description=(
            "The message as received (text, or base64 when it is not UTF-8), every error, the "
            "mapped case, the timeline of its events and of each call to the registry (outcome, "
            "answer, duration), its schema and mapping versions and its delivery state." + _OPERATORS
        ),
    )
    async def get_message(
        receipt_id: str,
        request: Request,
        purpose: Annotated[
            str | None,
            Query(max_length=500, description="Why the personal data is consulted (recorded; name no one)"),
        ] = None,
        operator: Annotated[Operator | None, Depends(operator_with(Role.VIEWER))] = None,
    ) -> Any:
        found = await run_in_threadpool(message_detail, engine, receipt_id, container.store.cipher)
        if found is None:
            return _error(404, "not_found", "MESSAGE_UNKNOWN", f"No message has the receipt id {receipt_id}.")
        purpose = (purpose or "").strip() or None
        if operator is not None and purpose is None:
            return detail_out(found, withhold=True)  # no personal data shown: nothing to record
        # the consultation is recorded before anything is shown (EU directive 2016/680, art. 25)
        detail = {"purpose": purpose} if purpose is not None else {}
        entry = Entry(CONSULTATION, actor(request, operator), receipt_id, container.clock(), detail)
        await run_in_threadpool(container.store.audit.record, entry)
        return detail_out(found)

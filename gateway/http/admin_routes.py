"""The administrators' API: sender credentials (list, add, revoke) and the settings in force.

Administrator role only. What `saisine senders add|list|revoke` does on the server, for an
administrator's tools: a new token is in the answer once and never again; every change is an
audit record naming the administrator.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from gateway.auth.credentials import CredentialError, Operator, Role, Sender
from gateway.composition import Container
from gateway.errors import ErrorDetail
from gateway.http.auth import actor, operator_with

Administrator = Annotated[Operator | None, Depends(operator_with(Role.ADMINISTRATOR))]
_WHO = "\n\nAdministrator role (`Authorization: Bearer` with an operator token)."
# settings never shown, even to an administrator: keys, and what may carry a password
_SECRET = {"payload_keys", "database_url"}


class SenderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agency: str = Field(examples=["gendarmerie"])
    units: list[str] = Field(min_length=1, max_length=200, examples=[["00741234"]])
    name: str | None = Field(default=None, max_length=128, examples=["BTA Thônes"])
    certificate: str | None = Field(
        default=None, max_length=500, description="The client certificate subject the TLS proxy passes"
    )
    token: bool = Field(default=True, description="Make a token (false: certificate only)")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class SenderOut(BaseModel):
    id: str
    name: str
    agency: str
    units: list[str]
    token_hint: str | None = Field(default=None, description="The token's first characters, to tell it apart")
    certificate: str | None = None
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    state: str = Field(examples=["active"], description="active, expired or revoked")


class NewSenderOut(SenderOut):
    token: str | None = Field(default=None, description="Shown this once: it is not stored")


def _out(sender: Sender, now: datetime) -> dict[str, Any]:
    state = "active" if sender.active(now) else ("revoked" if sender.revoked_at else "expired")
    return {**asdict(sender), "units": list(sender.units), "state": state}


def _refused(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"status": "refused", "errors": [ErrorDetail(code, message).as_dict()]}, status)


def install(app: FastAPI, container: Container) -> None:
    credentials = container.credentials
    agencies = container.formats.agencies()

    @app.get("/api/v1/senders", response_model=list[SenderOut], tags=["administration"], description=_WHO)
    async def list_senders(_operator: Administrator = None) -> Any:
        """Every sender credential (no secret: a token's first characters at most)."""
        now = datetime.now(UTC)
        return [_out(s, now) for s in await run_in_threadpool(credentials.senders)]

    @app.post(
        "/api/v1/senders",
        status_code=201,
        response_model=NewSenderOut,
        tags=["administration"],
        description="The new token is in this answer only." + _WHO,
    )
    async def add_sender(body: SenderIn, request: Request, operator: Administrator = None) -> Any:
        """Add a sender credential for an agency and its units."""
        if body.agency not in agencies:
            return _refused(
                422, "SENDER_INVALID", f"Unknown agency {body.agency!r}: {', '.join(sorted(agencies))}."
            )
        expires = datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
        try:
            sender, token = await run_in_threadpool(
                credentials.add_sender,
                body.agency,
                body.units,
                body.name,
                body.certificate,
                body.token,
                expires,
                actor(request, operator),
            )
        except CredentialError as exc:
            return _refused(422, "SENDER_INVALID", str(exc))
        return {**_out(sender, datetime.now(UTC)), "token": token}

    @app.post(
        "/api/v1/senders/{sender_id}/revoke",
        response_model=SenderOut,
        tags=["administration"],
        description="Its token and certificate stop working (within the credential cache time)." + _WHO,
    )
    async def revoke_sender(sender_id: str, request: Request, operator: Administrator = None) -> Any:
        """Revoke a sender credential."""
        try:
            sender = await run_in_threadpool(credentials.revoke_sender, sender_id, actor(request, operator))
        except CredentialError as exc:
            return _refused(404, "SENDER_UNKNOWN", str(exc))
        return _out(sender, datetime.now(UTC))

    @app.get("/api/v1/settings", tags=["administration"], description=_WHO)
    async def settings_in_force(_operator: Administrator = None) -> dict[str, Any]:
        """The settings in force (from the environment, SAISINE_*), secrets left out."""
        values = container.settings.model_dump(mode="json")
        return {key: value for key, value in values.items() if key not in _SECRET}

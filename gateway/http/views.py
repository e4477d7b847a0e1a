"""The JSON shapes of the REST API (documented in OpenAPI through these models)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from gateway.errors import ErrorDetail
from gateway.ports import Receipt

if TYPE_CHECKING:
    from gateway.intake import Evaluation


class ErrorOut(BaseModel):
    code: str = Field(examples=["NATINF_UNKNOWN"])
    message: str = Field(examples=["NATINF 99999 is not in the reference list."])
    line: int | None = Field(default=None, examples=[42])
    column: int | None = None
    path: str | None = Field(default=None, examples=["/Procedure/Infractions/Infraction[1]/Natinf"])


class ReasonOut(BaseModel):
    code: str = Field(examples=["UNKNOWN_TRIBUNAL"])
    message: str = Field(examples=["tribunal TJ99999 is not served by this registry"])


class EventOut(BaseModel):
    at: datetime
    kind: str = Field(examples=["accepted"])
    detail: dict[str, Any] = Field(default_factory=dict)


class ReceiptOut(BaseModel):
    receipt_id: str = Field(examples=["0b6f3c8e-3f7d-4c59-9d43-4c8a7c1b2f10"])
    message_id: str | None = Field(default=None, examples=["5f0c2a5e-8a3b-4f4e-9a56-0c1d2e3f4a5b"])
    status: str = Field(
        examples=["accepted"],
        description="accepted, rejected, delivering, registered, held, dead_letter",
    )
    repeat: bool = Field(default=False, description="True when the same bytes were already accepted")
    received_at: datetime
    format: str | None = Field(default=None, examples=["gendarmerie/v1"])
    numero_parquet: str | None = Field(
        default=None, examples=["TJ75056-2026-0000042"], description="Set once the court registered the case"
    )
    registered_at: datetime | None = Field(default=None, description="When the court registered it")
    reason: ReasonOut | None = Field(default=None, description="Why a dead letter or held message stands")
    warnings: list[str] = Field(default_factory=list)
    errors: list[ErrorOut] = Field(default_factory=list)
    links: dict[str, str] = Field(default_factory=dict)


class ReceiptDetailOut(ReceiptOut):
    history: list[EventOut] = Field(default_factory=list)


class RejectionOut(BaseModel):
    status: str = Field(default="rejected", examples=["rejected"])
    receipt_id: str | None = Field(default=None, description="Where the rejection is kept")
    message_id: str | None = None
    errors: list[ErrorOut]


def receipt_out(receipt: Receipt, repeat: bool = False, history: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "receipt_id": receipt.receipt_id,
        "message_id": receipt.message_id,
        "status": receipt.status,
        "repeat": repeat,
        "received_at": receipt.received_at.isoformat(),
        "format": receipt.format,
        "numero_parquet": receipt.numero_parquet,
        "registered_at": receipt.registered_at.isoformat() if receipt.registered_at else None,
        "reason": {"code": reason[0], "message": reason[1]} if (reason := receipt.reason) else None,
        "warnings": receipt.warnings,
        "errors": [e.as_dict() for e in receipt.errors],
        "links": {"receipt": f"/api/v1/receipts/{receipt.receipt_id}"},
    }
    if history:
        body["history"] = [
            {"at": e.at.isoformat(), "kind": e.kind, "detail": e.detail} for e in receipt.history
        ]
    return body


def rejection_out(receipt: Receipt) -> dict[str, Any]:
    return {
        "status": "rejected",
        "receipt_id": receipt.receipt_id,
        "message_id": receipt.message_id,
        "errors": [e.as_dict() for e in receipt.errors],
    }


class ValidationOut(BaseModel):
    status: str = Field(examples=["valid"], description="valid or invalid; nothing is stored either way")
    format: str | None = Field(default=None, examples=["gendarmerie/v1"])
    warnings: list[str] = Field(default_factory=list)
    case: dict[str, Any] | None = Field(default=None, description="The court case the message maps to")
    errors: list[ErrorOut] = Field(default_factory=list)


def validation_out(
    status: int, errors: list[ErrorDetail], verdict: Evaluation | None = None
) -> dict[str, Any]:
    fmt = verdict.fmt if verdict is not None else None
    case = verdict.case if verdict is not None else None
    return {
        "status": "valid" if status == 200 else "invalid",
        "format": fmt.name if fmt else None,
        "warnings": verdict.warnings if verdict is not None else [],
        "case": case.model_dump(mode="json") if case is not None else None,
        "errors": [e.as_dict() for e in errors],
    }

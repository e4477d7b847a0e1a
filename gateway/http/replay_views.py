"""The JSON shapes of the replay API (`gateway/http/replay_routes.py`), documented in OpenAPI
through these models: the request bodies, and the service's records (:mod:`replay.model`) as
answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.store.queries import MessageFilter
from replay.model import Preview, ReplayError, ReplaySummary, Selection

EXAMPLE_REPLAY = "7d1e5a2c-9b0f-4c3e-8a61-2f4b5c6d7e8f"
EXAMPLE_RECEIPT = "0b6f3c8e-3f7d-4c59-9d43-4c8a7c1b2f10"
_REASON = "The registry refused every case on 2026-11-28 (tribunal list out of date); fixed upstream."
MAX_PREVIEW = 10_000

# ---------------------------------------------------------------------------------------------
# request bodies


class FiltersIn(BaseModel):
    """The message list's filters (`GET /api/v1/messages`); every one given must match."""

    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(default=None, examples=["dead_letter"])
    agency: str | None = Field(default=None, examples=["gendarmerie"])
    unit_code: str | None = Field(default=None, examples=["00691234"])
    format: str | None = Field(default=None, examples=["gendarmerie/v1"])
    schema_version: str | None = Field(default=None, examples=["1.0"])
    error_code: str | None = Field(default=None, examples=["NATINF_UNKNOWN"])
    tribunal_code: str | None = Field(default=None, examples=["TJ75056"])
    procedure_number: str | None = Field(default=None, examples=["2026/000123"])
    numero_parquet: str | None = Field(default=None, examples=["TJ75056-2026-0000042"])
    received_from: datetime | None = Field(default=None, description="Inclusive (ISO 8601; UTC if no zone)")
    received_to: datetime | None = Field(default=None, description="Exclusive (ISO 8601; UTC if no zone)")

    def to_filter(self) -> MessageFilter:
        return MessageFilter(**self.model_dump())


class SelectionIn(BaseModel):
    """Which messages: `receipt_ids`, or `filters` (not both)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["redeliver", "reprocess"] = Field(
        description="redeliver the stored case as it is (the registry was at fault), or reprocess "
        "the raw bytes with today's schemas, rules and mappings (our side was at fault)",
        examples=["redeliver"],
    )
    receipt_ids: list[str] | None = Field(default=None, min_length=1, examples=[[EXAMPLE_RECEIPT]])
    filters: FiltersIn | None = None

    def selection(self) -> Selection:
        """The service's selection; both ids and filters is refused here (REPLAY_INVALID)."""
        if self.receipt_ids and self.filters is not None:
            raise ReplayError("Choose the messages by receipt_ids or by filters, not both.")
        if self.receipt_ids:
            return Selection(receipt_ids=tuple(self.receipt_ids))
        return Selection(filter=self.filters.to_filter() if self.filters is not None else None)


class PreviewIn(SelectionIn):
    limit: int = Field(
        default=1000, ge=1, le=MAX_PREVIEW, description="Items listed at most; the counts cover all"
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"mode": "redeliver", "filters": {"status": "dead_letter"}}]},
    )


class ReplayIn(SelectionIn):
    reason: str = Field(max_length=1000, description="Why (required, recorded)", examples=[_REASON])
    requested_by: str | None = Field(
        default=None,
        max_length=128,
        description="Who asks (recorded). With operator authentication on, the authenticated "
        "operator is recorded instead; without it, this is required",
        examples=["m.durand"],
    )
    rate_per_second: float | None = Field(
        default=None, gt=0, le=10_000, description="Messages sent on per second (default: settings)"
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "mode": "redeliver",
                    "filters": {"status": "dead_letter", "tribunal_code": "TJ75056"},
                    "reason": _REASON,
                    "requested_by": "m.durand",
                    "rate_per_second": 10,
                }
            ]
        },
    )


class ControlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(
        default=None,
        max_length=128,
        description="Who (recorded); the authenticated operator when operator authentication is on",
        examples=["m.durand"],
    )


class MessageReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["redeliver", "reprocess"] = Field(examples=["reprocess"])
    reason: str | None = Field(
        default=None, max_length=1000, description="Why (required unless dry_run)", examples=[_REASON]
    )
    requested_by: str | None = Field(
        default=None,
        max_length=128,
        description="Who asks (required unless dry_run, or the authenticated operator)",
        examples=["m.durand"],
    )
    dry_run: bool = Field(default=False, description="Answer the preview and change nothing")


# ---------------------------------------------------------------------------------------------
# answers


class ChangeOut(BaseModel):
    path: str = Field(examples=["/infractions/0/natinf"], description="JSON Pointer in the case")
    old: Any = Field(examples=["7322"])
    new: Any = Field(examples=["27773"])


class PlannedItemOut(BaseModel):
    receipt_id: str = Field(examples=[EXAMPLE_RECEIPT])
    message_id: str | None = Field(default=None, examples=["5f0c2a5e-8a3b-4f4e-9a56-0c1d2e3f4a5b"])
    procedure_key: str | None = Field(default=None, examples=["00691234/2026/000123"])
    status: str = Field(examples=["dead_letter"], description="The message's status now")
    action: str = Field(
        examples=["requeue"], description="requeue, revise, accept, still_rejected, refused, skip"
    )
    reason: str = Field(default="", examples=["dead letter: its case goes to the registry again"])
    errors: list[dict[str, Any]] = Field(default_factory=list, description="reprocess: the new errors")
    changes: list[ChangeOut] = Field(default_factory=list, description="reprocess: stored case -> new")
    revision: int | None = Field(default=None, description="reprocess: the case revision it creates")


class PreviewOut(BaseModel):
    mode: str = Field(examples=["redeliver"])
    total: int = Field(examples=[42], description="Messages selected")
    counts: dict[str, int] = Field(examples=[{"requeue": 40, "skip": 2}], description="Action -> messages")
    truncated: bool = Field(default=False, description="Items were cut at `limit`; the counts cover all")
    items: list[PlannedItemOut] = Field(description="In the order the replay would take them")


class ReplaySummaryOut(BaseModel):
    replay_id: str = Field(examples=[EXAMPLE_REPLAY])
    mode: str = Field(examples=["redeliver"])
    reason: str = Field(examples=[_REASON])
    requested_by: str = Field(examples=["m.durand"])
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    status: str = Field(examples=["running"], description="running, paused, cancelled, completed")
    selection: dict[str, Any] = Field(examples=[{"filter": {"status": "dead_letter"}}])
    rate_per_second: float = Field(examples=[20.0])
    total: int = Field(examples=[42])
    done: int = Field(examples=[17], description="Messages reached so far")
    counts: dict[str, int] = Field(
        examples=[{"pending": 25, "requeue": 16, "skip": 1}], description="Item state or action -> messages"
    )
    deliveries: dict[str, int] = Field(
        examples=[{"registered": 15, "pending": 1}],
        description="What became of the messages it sent to the registry: delivery status -> messages",
    )
    events: list[dict[str, Any]] = Field(
        default_factory=list, description="paused, resumed, cancelled: by whom, when"
    )
    links: dict[str, str] = Field(default_factory=dict)


class ReplayListOut(BaseModel):
    items: list[ReplaySummaryOut]


class ReplayItemOut(BaseModel):
    position: int = Field(examples=[1])
    receipt_id: str = Field(examples=[EXAMPLE_RECEIPT])
    state: str = Field(examples=["done"], description="pending, done, cancelled")
    action: str | None = Field(default=None, examples=["requeue"])
    reason: str = Field(default="")
    at: datetime | None = None
    delivery_status: str | None = Field(default=None, examples=["registered"])


class ReplayItemsOut(BaseModel):
    items: list[ReplayItemOut]


def preview_out(preview: Preview) -> PreviewOut:
    return PreviewOut.model_validate(preview, from_attributes=True)


def summary_out(summary: ReplaySummary) -> ReplaySummaryOut:
    out = ReplaySummaryOut.model_validate(summary, from_attributes=True)
    out.links = {
        "self": f"/api/v1/replays/{summary.replay_id}",
        "items": f"/api/v1/replays/{summary.replay_id}/items",
    }
    return out

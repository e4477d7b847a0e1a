"""The intake pipeline: from received bytes to a stored message and a receipt.

parse (hardened) -> detect format -> XSD -> business rules -> map -> store -> receipt.
Every message is stored, accepted or not; only an accepted one carries a case.
The transports (REST, SOAP, CLI) call :meth:`Intake.submit` or :meth:`Intake.evaluate`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from lxml import etree

from gateway.codes import CODES
from gateway.errors import ErrorDetail, RefusedInput
from gateway.formats import FormatRegistry, MessageHeader, SenderFormat
from gateway.locations import path_of
from gateway.model import Affaire
from gateway.natinf import NatinfReference
from gateway.ports import (
    Clock,
    DuplicateAccepted,
    Event,
    IntakeObserver,
    MessageStore,
    NewMessage,
    Receipt,
    Status,
)
from gateway.rules import RuleContext, apply_rules
from gateway.validation import validate
from gateway.xmlparse import ParseLimits, parse

log = structlog.get_logger("saisine.intake")


@dataclass
class Evaluation:
    """The verdict on one message, before anything is stored."""

    http_status: int
    errors: list[ErrorDetail] = field(default_factory=list)
    fmt: SenderFormat | None = None
    header: MessageHeader = field(default_factory=MessageHeader)
    case: Affaire | None = None
    schema_version: str | None = None

    @property
    def accepted(self) -> bool:
        return self.case is not None

    @property
    def codes(self) -> list[str]:
        return sorted({e.code for e in self.errors})

    @property
    def warnings(self) -> list[str]:
        """What the sender should know although the message is accepted (a deprecated format)."""
        notice = self.fmt.deprecation_notice() if self.fmt is not None else None
        return [notice] if notice else []


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a transport answers: the receipt, the HTTP status and whether it is a repeat."""

    receipt: Receipt
    http_status: int
    repeat: bool = False


def _refuse_unit(result: Evaluation, units: Collection[str]) -> None:
    """The sender may not send for the unit the message declares: 403, whatever else is wrong."""
    declared = result.header.unit_code
    result.case = None
    result.http_status = 403
    result.errors = [
        ErrorDetail(
            "UNIT_NOT_ALLOWED",
            f"This credential sends for unit(s) {', '.join(sorted(units))}; the message declares "
            f"{'unit ' + declared if declared else 'no readable unit'}.",
        )
    ]


def _status_for(errors: list[ErrorDetail]) -> int:
    return max(CODES[e.code].http_status if e.code in CODES else 422 for e in errors)


class Checker:
    """Parse, validate, check the rules and map, storing nothing (CLI, dry runs, intake)."""

    def __init__(
        self,
        formats: FormatRegistry,
        natinf: NatinfReference,
        clock: Clock,
        limits: ParseLimits | None = None,
        clock_skew_seconds: int = 300,
    ) -> None:
        self.formats = formats
        self.natinf = natinf
        self.clock = clock
        self.limits = limits or ParseLimits()
        self.clock_skew = timedelta(seconds=clock_skew_seconds)

    # ------------------------------------------------------------ evaluate

    def evaluate(
        self, data: bytes, agency: str | None = None, root: etree._Element | None = None
    ) -> Evaluation:
        """Parse, validate, check the rules and map; store nothing."""
        if root is None:
            if not data.strip():
                return Evaluation(400, [ErrorDetail("BODY_EMPTY", "The body is empty.")])
            try:
                root = parse(data, self.limits)
            except RefusedInput as refused:
                return Evaluation(_status_for(refused.errors), refused.errors)
        fmt = self.formats.detect(root)
        if fmt is None or (agency is not None and fmt.agency != agency):
            return Evaluation(422, [self._unknown_format(root, agency)])
        result = Evaluation(422, fmt=fmt, schema_version=root.get("schemaVersion"))
        result.errors = validate(self.formats.schema(fmt), root)
        if result.errors:
            result.header = fmt.read_header(root)  # best effort, on a tree that may be anything
            return result
        try:
            ctx = RuleContext(natinf=self.natinf, now=self.clock(), clock_skew=self.clock_skew)
            reading = fmt.read(root)  # once, for the header, the facts and the case
            result.header = fmt.header_of(reading) if fmt.header_of else fmt.read_header(root)
            result.errors = apply_rules(fmt.read_facts(reading), ctx)
            if not result.errors:
                result.case = fmt.map_case(reading)
                result.http_status = 202
        except Exception as exc:  # a bug of ours must not lose the message: it is kept as failed
            log.error("message_processing_failed", format=fmt.name, error_type=type(exc).__name__)
            if result.header == MessageHeader():  # failed before the header was read from the reading
                result.header = fmt.read_header(root)
            result.http_status = 500
            result.errors = [ErrorDetail("INTERNAL_ERROR", "The gateway failed on this message; it is kept.")]
        return result

    def _unknown_format(self, root: etree._Element, agency: str | None) -> ErrorDetail:
        qname = etree.QName(root)
        known = ", ".join(
            f"{{{f.namespace}}}{f.root}" for f in self.formats.all() if agency in (None, f.agency)
        )
        other = self.formats.detect(root)  # a message of another agency sent to the wrong service
        hint = f" It is a {other.name} message: send it to the {other.agency}'s service." if other else ""
        return ErrorDetail(
            "FORMAT_UNKNOWN",
            f"Root element {qname.localname} in namespace '{qname.namespace or ''}' is not a known "
            f"message format{f' of the {agency}' if agency else ''}; expected one of: {known}.{hint}",
            line=root.sourceline,
            path=path_of(root),  # inside a SOAP request, from its Envelope
        )


class Intake:
    """Evaluate a received message, store it (accepted or not) and answer with a receipt."""

    def __init__(self, checker: Checker, store: MessageStore, observer: IntakeObserver | None = None) -> None:
        self.checker = checker
        self.store = store
        self.observer = observer
        self.clock = checker.clock
        self.limits = checker.limits

    def submit(
        self,
        agency: str,
        data: bytes,
        transport: str,
        root: etree._Element | None = None,
        units: Collection[str] | None = None,
    ) -> Outcome:
        """Evaluate and store a message; answer with its receipt (the original one for a repeat).

        ``units``: the unit codes the authenticated sender may send for (None: not checked, as
        for a local command); a message declaring another unit is refused and kept."""
        sha = hashlib.sha256(data).hexdigest()
        result = self.checker.evaluate(data, agency, root)
        if units is not None and result.header.unit_code not in units:
            _refuse_unit(result, units)
        header = result.header
        message_id = header.message_id.lower() if header.message_id else None
        sender = f"{agency}:{header.unit_code or 'unknown'}"
        receipt_id = str(uuid.uuid4())
        with structlog.contextvars.bound_contextvars(
            receipt_id=receipt_id, message_id=message_id, sender=sender, transport=transport
        ):
            log.info("message_received", size=len(data), sha256=sha)
            message = self._record(agency, sender, transport, data, sha, result, receipt_id)
            try:
                # No look-up first: the store refuses a second accepted (sender, message id)
                # in the same transaction, so a repeat costs one refused insert, and a new
                # message (nearly all of them) no extra query.
                receipt = self.store.save(message)
            except DuplicateAccepted:  # sent before, or a concurrent twin won: decide against it
                assert message_id is not None
                repeat = self._against_original(sender, message_id, sha, result)
                if repeat is not None:
                    return repeat
                receipt = self.store.save(
                    self._record(agency, sender, transport, data, sha, result, receipt_id)
                )
            if result.accepted:
                log.info("message_accepted", format=message.format, kind=message.message_kind)
            else:
                log.info("message_rejected", codes=result.codes, http_status=result.http_status)
            if self.observer:
                self.observer.message(agency, transport, result.accepted, result.codes)
            return Outcome(receipt, result.http_status)

    def _against_original(self, sender: str, message_id: str, sha: str, result: Evaluation) -> Outcome | None:
        """Same bytes again: the original receipt. Other bytes: turn ``result`` into a 409."""
        original = self.store.find_accepted(sender, message_id)
        if original is None:
            return None
        if original.sha256 == sha:
            self.store.add_event(original.receipt_id, Event(self.clock(), "repeat_received"))
            log.info("message_repeat", original_receipt=original.receipt_id)
            return Outcome(original, 200, repeat=True)
        result.case = None
        result.http_status = 409
        result.errors = [
            ErrorDetail(
                "MESSAGE_ID_CONFLICT",
                f"Message id {message_id} was already accepted with other content "
                f"(receipt {original.receipt_id}); send new content under a new message id.",
            )
        ]
        return None

    def _record(
        self,
        agency: str,
        sender: str,
        transport: str,
        data: bytes,
        sha: str,
        result: Evaluation,
        receipt_id: str,
    ) -> NewMessage:
        header, fmt = result.header, result.fmt
        now = self.clock()
        status = Status.ACCEPTED if result.accepted else Status.REJECTED
        if result.http_status >= 500:
            status = Status.FAILED
        events = [Event(now, "received", {"transport": transport, "size": len(data)})]
        if result.accepted:
            events += [
                Event(now, "validated", {"format": fmt.name if fmt else None}),
                Event(now, "accepted"),
            ]
        else:
            events.append(Event(now, "rejected", {"codes": result.codes}))
        return NewMessage(
            receipt_id=receipt_id,
            agency=agency,
            sender=sender,
            transport=transport,
            status=status,
            http_status=result.http_status,
            raw=data,
            sha256=sha,
            size=len(data),
            received_at=now,
            errors=result.errors,
            events=events,
            format=fmt.name if fmt else None,
            schema_version=result.schema_version,
            mapping_version=fmt.mapping_version if fmt and result.accepted else None,
            message_id=header.message_id.lower() if header.message_id else None,
            message_kind=header.kind,
            unit_code=header.unit_code,
            procedure_number=header.procedure_number,
            tribunal_code=header.tribunal_code,
            case=result.case,
            warnings=result.warnings,
        )

    def record_refused(
        self, agency: str, transport: str, error: ErrorDetail, size: int, raw: bytes | None = None
    ) -> Receipt:
        """Keep a body refused before the pipeline (too large: not kept; wrong content type: kept)."""
        now = self.clock()
        receipt_id = str(uuid.uuid4())
        message = NewMessage(
            receipt_id=receipt_id,
            agency=agency,
            sender=f"{agency}:unknown",
            transport=transport,
            status=Status.REJECTED,
            http_status=CODES[error.code].http_status,
            raw=raw,
            sha256=hashlib.sha256(raw).hexdigest() if raw is not None else "",
            size=size,
            received_at=now,
            errors=[error],
            events=[Event(now, "rejected", {"codes": [error.code], "bytes_read": size})],
        )
        with structlog.contextvars.bound_contextvars(receipt_id=receipt_id, transport=transport):
            log.info("message_rejected", codes=[error.code], bytes_read=size)
        if self.observer:
            self.observer.message(agency, transport, False, [error.code])
        return self.store.save(message)

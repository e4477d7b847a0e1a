"""SOAP 1.1 intake endpoints (``/soap/<agency>``), one per declared SOAP service.

The envelope goes through the same hardened parser as REST bodies; the
procedure inside the Body is validated in place, so error lines and paths are
those of the request the sender built. Faults carry the same structured error
list as REST rejections, and every refused request is kept as a rejection,
whether the parser, the envelope (:func:`gateway.soap.read_envelope`) or the
procedure refused it. WS-Addressing ``ReplyTo``/``FaultTo`` are never followed:
the answer always goes back on the request's own connection.
"""

from __future__ import annotations

import functools

from fastapi import FastAPI, Request, Response
from lxml import etree
from starlette.concurrency import run_in_threadpool

from gateway.auth.credentials import Sender
from gateway.composition import Container
from gateway.errors import ErrorDetail, RefusedInput, TooLarge
from gateway.formats import SoapService
from gateway.http.auth import AuthFailure, gatekeeper
from gateway.http.bodies import read_capped
from gateway.http.threads import IntakeThreads
from gateway.locations import path_of
from gateway.ports import Receipt
from gateway.soap import SoapFault, build_fault, build_response, read_envelope, wsdl_with_address
from gateway.xmlparse import parse

SOAP_XML = "text/xml; charset=utf-8"


def _receipt_element(ns: str, tag: str, receipt: Receipt, repeat: bool, history: bool) -> etree._Element:
    def sub(parent: etree._Element, name: str, text: str | None) -> None:
        if text is not None:
            etree.SubElement(parent, f"{{{ns}}}{name}").text = text

    root = etree.Element(f"{{{ns}}}{tag}", nsmap={"gi": ns})
    sub(root, "receiptId", receipt.receipt_id)
    sub(root, "messageId", receipt.message_id)
    sub(root, "status", receipt.status)
    sub(root, "repeat", "true" if repeat else "false")
    sub(root, "receivedAt", receipt.received_at.isoformat())
    sub(root, "numeroParquet", receipt.numero_parquet)
    sub(root, "registeredAt", receipt.registered_at.isoformat() if receipt.registered_at else None)
    if reason := receipt.reason:
        sub(root, "reasonCode", reason[0])
        sub(root, "reason", reason[1])
    if receipt.warnings:
        warnings = etree.SubElement(root, f"{{{ns}}}warnings")
        for text in receipt.warnings:
            sub(warnings, "warning", text)
    if history:
        hist = etree.SubElement(root, f"{{{ns}}}history")
        for event in receipt.history:
            item = etree.SubElement(hist, f"{{{ns}}}event")
            sub(item, "at", event.at.isoformat())
            sub(item, "kind", event.kind)
            if event.detail:
                sub(item, "detail", ", ".join(f"{k}={v}" for k, v in sorted(event.detail.items())))
    return root


class _SoapEndpoint:
    def __init__(self, container: Container, service: SoapService, threads: IntakeThreads) -> None:
        self.threads = threads  # the intake's threads, shared with REST (gateway.http.app)
        self.container = container
        self.service = service
        self.ns = service.namespace
        self.wsdl = service.wsdl_path.read_bytes()
        self.operations = {
            "SubmitProcedureRequest": f"{service.action_prefix}SubmitProcedure",
            "GetReceiptStatusRequest": f"{service.action_prefix}GetReceiptStatus",
        }

    def fault(self, fault: SoapFault, status: int = 500, headers: dict[str, str] | None = None) -> Response:
        return Response(build_fault(fault, self.ns), status_code=status, media_type=SOAP_XML, headers=headers)

    def ok(self, payload: etree._Element) -> Response:
        return Response(build_response(payload), status_code=200, media_type=SOAP_XML)

    async def post(self, request: Request) -> Response:
        agency = self.service.agency
        intake = self.container.intake
        try:  # who is sending, before reading the body (gateway.http.auth)
            sender = await gatekeeper(request).sender_for(request, agency)
        except AuthFailure as failure:
            refusal = SoapFault("Client", failure.message, code=failure.code)
            return self.fault(refusal, failure.status, failure.headers)
        try:
            body = await read_capped(request, self.container.settings.max_body_bytes)
        except TooLarge as exc:
            limit = self.container.settings.max_body_bytes
            await run_in_threadpool(intake.record_refused, agency, "soap", exc.errors[0], limit)
            return self.fault(SoapFault("Client", "Message too large", errors=exc.errors))
        if not body.strip():
            empty = ErrorDetail("BODY_EMPTY", "The body is empty.")
            return await self.refused(SoapFault("Client", "Message refused", errors=[empty]), body)
        try:  # on the intake's threads, as every parse of received bytes
            root = await self.threads.run(parse, body, intake.limits)
        except RefusedInput as refused:  # kept with its error, without parsing it a second time
            return await self.refused(SoapFault("Client", "Message refused", errors=refused.errors), body)
        try:
            call = read_envelope(root, request.headers.get("soapaction"), self.operations, namespace=self.ns)
        except SoapFault as fault:
            return await self.refused(fault, body)
        if call.operation == "GetReceiptStatusRequest":
            return await self.receipt_status(call.body_child, sender)
        return await self.submit(call.body_child, body, sender)

    async def refused(self, fault: SoapFault, body: bytes) -> Response:
        """Keep the request as a rejection with the fault's error, then answer the fault."""
        error = fault.details()[0]
        await run_in_threadpool(
            self.container.intake.record_refused, self.service.agency, "soap", error, len(body), body
        )
        return self.fault(fault)

    async def submit(self, request_el: etree._Element, body: bytes, sender: Sender | None) -> Response:
        elements = [child for child in request_el if isinstance(child.tag, str)]
        if len(elements) != 1:  # the WSDL's xs:any: exactly one procedure, never a second one unchecked
            code = "SCHEMA_ELEMENT_MISSING" if not elements else "SCHEMA_ELEMENT_UNEXPECTED"
            message = (
                f"SubmitProcedureRequest must contain exactly one procedure message; it has {len(elements)}."
            )
            located = elements[1] if elements else request_el
            error = ErrorDetail(code, message, line=located.sourceline, path=path_of(located))
            return await self.refused(SoapFault("Client", "Message rejected", errors=[error]), body)
        procedure = elements[0]
        raw = etree.tostring(procedure, encoding="UTF-8", xml_declaration=True)
        units = sender.units if sender is not None else None
        submit = functools.partial(self.container.intake.submit, units=units)
        outcome = await self.threads.run(submit, self.service.agency, raw, "soap", procedure)
        if outcome.http_status in (200, 202):
            return self.ok(
                _receipt_element(self.ns, "SubmitProcedureResponse", outcome.receipt, outcome.repeat, False)
            )
        return self.fault(SoapFault("Client", "Message rejected", errors=outcome.receipt.errors))

    async def receipt_status(self, request_el: etree._Element, sender: Sender | None) -> Response:
        receipt_id = (request_el.findtext(f"{{{self.ns}}}receiptId") or "").strip()
        receipt = await run_in_threadpool(self.container.store.receipt, receipt_id)
        if receipt is None or (sender is not None and not sender.may_send_for(receipt.unit_code)):
            # another unit's receipt is unknown to this one: ids cannot be probed
            return self.fault(SoapFault("Client", "No such receipt", code="RECEIPT_NOT_FOUND"))
        return self.ok(_receipt_element(self.ns, "GetReceiptStatusResponse", receipt, False, True))

    async def get(self, request: Request) -> Response:
        base = self.container.settings.public_url or str(request.base_url).rstrip("/")
        address = f"{base.rstrip('/')}/soap/{self.service.agency}"
        return Response(wsdl_with_address(self.wsdl, address), media_type="text/xml; charset=utf-8")


def install(app: FastAPI, container: Container, threads: IntakeThreads) -> None:
    """Mount ``POST /soap/<agency>`` and ``GET /soap/<agency>?wsdl`` for each SOAP service."""
    for service in container.soap_services:
        endpoint = _SoapEndpoint(container, service, threads)
        path = f"/soap/{service.agency}"
        app.add_api_route(path, endpoint.post, methods=["POST"], include_in_schema=False)
        app.add_api_route(path, endpoint.get, methods=["GET"], include_in_schema=False)

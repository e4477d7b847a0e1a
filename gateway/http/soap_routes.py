"""SOAP 1.1 intake endpoints (``/soap/<agency>``), one per declared SOAP service.

The envelope goes through the same hardened parser as REST bodies; the
procedure inside the Body is validated in place, so error lines and paths are
those of the request the sender built. Faults carry the same structured error
list as REST rejections.
"""

from __future__ import annotations

import anyio
from fastapi import FastAPI, Request, Response
from lxml import etree
from starlette.concurrency import run_in_threadpool

from gateway.composition import Container
from gateway.errors import ErrorDetail, RefusedInput, TooLarge
from gateway.formats import SoapService
from gateway.http.bodies import read_capped
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
    def __init__(self, container: Container, service: SoapService, limiter: anyio.CapacityLimiter) -> None:
        self.limiter = limiter  # the intake's threads, shared with REST (gateway.http.app)
        self.container = container
        self.service = service
        self.ns = service.namespace
        self.wsdl = service.wsdl_path.read_bytes()
        self.operations = {
            "SubmitProcedureRequest": f"{service.action_prefix}SubmitProcedure",
            "GetReceiptStatusRequest": f"{service.action_prefix}GetReceiptStatus",
        }

    def fault(self, fault: SoapFault) -> Response:
        return Response(build_fault(fault, self.ns), status_code=500, media_type=SOAP_XML)

    def ok(self, payload: etree._Element) -> Response:
        return Response(build_response(payload), status_code=200, media_type=SOAP_XML)

    async def post(self, request: Request) -> Response:
        agency = self.service.agency
        intake = self.container.intake
        try:
            body = await read_capped(request, self.container.settings.max_body_bytes)
        except TooLarge as exc:
            limit = self.container.settings.max_body_bytes
            await run_in_threadpool(intake.record_refused, agency, "soap", exc.errors[0], limit)
            return self.fault(SoapFault("Client", "Message too large", errors=exc.errors))
        try:
            root = parse(body, intake.limits)
        except RefusedInput:
            outcome = await anyio.to_thread.run_sync(  # kept with its errors
                intake.submit, agency, body, "soap", limiter=self.limiter
            )
            return self.fault(SoapFault("Client", "Message refused", errors=outcome.receipt.errors))
        try:
            call = read_envelope(root, request.headers.get("soapaction"), self.operations, namespace=self.ns)
        except SoapFault as fault:
            return self.fault(fault)
        if call.operation == "GetReceiptStatusRequest":
            return await self.receipt_status(call.body_child)
        return await self.submit(call.body_child)

    async def submit(self, request_el: etree._Element) -> Response:
        procedure = next((child for child in request_el if isinstance(child.tag, str)), None)
        if procedure is None:
            missing = ErrorDetail(
                "SCHEMA_ELEMENT_MISSING",
                "SubmitProcedureRequest must contain the procedure message.",
            )
            return self.fault(SoapFault("Client", "Message rejected", errors=[missing]))
        raw = etree.tostring(procedure, encoding="UTF-8", xml_declaration=True)
        outcome = await anyio.to_thread.run_sync(
            self.container.intake.submit, self.service.agency, raw, "soap", procedure, limiter=self.limiter
        )
        if outcome.http_status in (200, 202):
            return self.ok(
                _receipt_element(self.ns, "SubmitProcedureResponse", outcome.receipt, outcome.repeat, False)
            )
        return self.fault(SoapFault("Client", "Message rejected", errors=outcome.receipt.errors))

    async def receipt_status(self, request_el: etree._Element) -> Response:
        receipt_id = (request_el.findtext(f"{{{self.ns}}}receiptId") or "").strip()
        receipt = await run_in_threadpool(self.container.store.receipt, receipt_id)
        if receipt is None:
            return self.fault(SoapFault("Client", "No such receipt", code="RECEIPT_NOT_FOUND"))
        return self.ok(_receipt_element(self.ns, "GetReceiptStatusResponse", receipt, False, True))

    async def get(self, request: Request) -> Response:
        base = self.container.settings.public_url or str(request.base_url).rstrip("/")
        address = f"{base.rstrip('/')}/soap/{self.service.agency}"
        return Response(wsdl_with_address(self.wsdl, address), media_type="text/xml; charset=utf-8")


def install(app: FastAPI, container: Container, limiter: anyio.CapacityLimiter) -> None:
    """Mount ``POST /soap/<agency>`` and ``GET /soap/<agency>?wsdl`` for each SOAP service."""
    for service in container.soap_services:
        endpoint = _SoapEndpoint(container, service, limiter)
        path = f"/soap/{service.agency}"
        app.add_api_route(path, endpoint.post, methods=["POST"], include_in_schema=False)
        app.add_api_route(path, endpoint.get, methods=["GET"], include_in_schema=False)

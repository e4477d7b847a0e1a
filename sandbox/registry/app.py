"""The reference court registry: registry.wsdl over SOAP 1.1, a clerk's page, fault injection.

Routes (one port; the admin and JSON routes have no authentication: sandbox only)::

    POST   /soap/registry        RegisterAffaire, AddComplement (SOAP 1.1)
    GET    /soap/registry?wsdl   the WSDL, its address set to this server
    GET    /soap/affaire.xsd     the schema the WSDL imports (relative location)
    GET    /  and  /cases        the pre-filled cases received, as a clerk sees them
    GET    /api/cases            the same, as JSON
    GET    /api/stats            calls by operation and outcome since start
    GET|POST|DELETE /admin/faults  the current injected fault

A request is checked as the gateway's own SOAP endpoint checks its own: size
cap, the one hardened parser, :func:`gateway.soap.read_envelope`, then the
whole request element is validated against the WSDL's schema (which imports
affaire.xsd). A refusal is a Client fault whose detail is the WSDL's
``RegistryFault`` (reasonCode, reason).
"""

from __future__ import annotations

import asyncio
import csv
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from lxml import etree
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gateway.errors import ErrorDetail, RefusedInput, TooLarge
from gateway.http.bodies import read_capped
from gateway.paths import PROJECT_ROOT, SCHEMAS_DIR
from gateway.soap import (
    BODY,
    ENVELOPE,
    SOAP_ENV_NS,
    SoapFault,
    SoapRequest,
    build_response,
    read_envelope,
    wsdl_with_address,
)
from gateway.validation import validate
from gateway.xmlparse import parse
from sandbox.registry.faults import FaultInjector, FaultMode, FaultPlan
from sandbox.registry.pages import render_cases
from sandbox.registry.store import KeyConflict, Registration, RegistryStore, UnknownAffaire

REGISTRY_NS = "urn:saisine:court:registry:v1"
AFFAIRE_NS = "urn:saisine:court:affaire:v1"
XS_NS = "http://www.w3.org/2001/XMLSchema"
OPERATIONS = {
    "RegisterAffaireRequest": f"{REGISTRY_NS}#RegisterAffaire",
    "AddComplementRequest": f"{REGISTRY_NS}#AddComplement",
}
SOAP_XML = "text/xml; charset=utf-8"
MAX_REASON_ERRORS = 10


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RegistrySettings:
    """Everything the registry needs, built once by its caller (CLI or tests)."""

    database: Path
    tribunals_csv: Path = PROJECT_ROOT / "sandbox" / "tribunals.csv"
    wsdl: Path = SCHEMAS_DIR / "court" / "v1" / "registry.wsdl"
    public_url: str | None = None  # base URL written in the WSDL; default: the request's
    max_body_bytes: int = 20 * 1024 * 1024
    initial_fault: FaultPlan | None = None
    clock: Callable[[], datetime] = field(default=_utcnow)


def load_tribunals(path: Path) -> dict[str, str]:
    """Tribunal code -> name, from a ``code;name`` CSV."""
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["code"].strip(): row["name"].strip() for row in csv.DictReader(handle, delimiter=";")}


def request_schema(wsdl: Path) -> etree.XMLSchema:
    """The schema embedded in our own (trusted, local) WSDL; its import of affaire.xsd
    resolves beside the WSDL file."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    document = etree.parse(str(wsdl.resolve()), parser)
    return etree.XMLSchema(document.find(f".//{{{XS_NS}}}schema"))


def self_contained_wsdl(wsdl: Path) -> bytes:
    """registry.wsdl with affaire.xsd inlined in wsdl:types and the import's schemaLocation
    dropped: a client loading it by URL (zeep with ``forbid_external``) needs no second fetch."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    document = etree.parse(str(wsdl.resolve()), parser)
    registry_schema = document.find(f".//{{{XS_NS}}}schema")
    for imported in registry_schema.iterfind(f"{{{XS_NS}}}import"):
        location = imported.attrib.pop("schemaLocation", None)
        if location is not None:
            affaire = etree.parse(str(wsdl.resolve().parent / location), parser).getroot()
            registry_schema.addprevious(affaire)
    data: bytes = etree.tostring(document, encoding="UTF-8", xml_declaration=True)
    return data


class Refused(Exception):
    """The registry cannot accept the request: a Client fault with a reason code."""

    def __init__(self, reason_code: str, reason: str, faultcode: str = "Client") -> None:
        super().__init__(f"{reason_code}: {reason}")
        self.reason_code = reason_code
        self.reason = reason
        self.faultcode = faultcode


def fault_envelope(faultcode: str, reason_code: str | None, reason: str) -> bytes:
    """A SOAP 1.1 Fault; its detail (when ``reason_code``) is the WSDL's RegistryFault."""
    envelope = etree.Element(ENVELOPE, nsmap={"soapenv": SOAP_ENV_NS})
    fault = etree.SubElement(etree.SubElement(envelope, BODY), f"{{{SOAP_ENV_NS}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soapenv:{faultcode}"
    etree.SubElement(fault, "faultstring").text = reason
    if reason_code is not None:
        detail = etree.SubElement(etree.SubElement(fault, "detail"), f"{{{REGISTRY_NS}}}RegistryFault")
        etree.SubElement(detail, f"{{{REGISTRY_NS}}}reasonCode").text = reason_code
        etree.SubElement(detail, f"{{{REGISTRY_NS}}}reason").text = reason
    data: bytes = etree.tostring(envelope, encoding="UTF-8", xml_declaration=True)
    return data


def _describe(errors: list[ErrorDetail]) -> str:
    shown = [
        " ".join(part for part in (f"line {e.line}" if e.line else "", e.path or "", e.message) if part)
        for e in errors[:MAX_REASON_ERRORS]
    ]
    more = f" (+{len(errors) - MAX_REASON_ERRORS} more)" if len(errors) > MAX_REASON_ERRORS else ""
    return "; ".join(shown) + more


class Stats:
    """Calls by (operation, outcome) and injected faults by mode, since start (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str]] = Counter()
        self._reasons: Counter[str] = Counter()
        self._injected: Counter[str] = Counter()
        self.started_at = _utcnow()

    def call(self, operation: str, outcome: str, reason_code: str | None = None) -> None:
        with self._lock:
            self._calls[operation, outcome] += 1
            if reason_code:
                self._reasons[reason_code] += 1

    def injected(self, mode: FaultMode) -> None:
        with self._lock:
            self._injected[mode.value] += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            operations: dict[str, dict[str, int]] = {}
            for (operation, outcome), n in sorted(self._calls.items()):
                operations.setdefault(operation, {})[outcome] = n
            return {
                "started_at": self.started_at.isoformat(timespec="seconds"),
                "operations": operations,
                "fault_reasons": dict(sorted(self._reasons.items())),
                "injected": dict(sorted(self._injected.items())),
            }


class RegistryService:
    """The registry's answers to SOAP requests, independent of HTTP (runs in a worker thread)."""

    def __init__(self, settings: RegistrySettings, store: RegistryStore, stats: Stats) -> None:
        self.store = store
        self.stats = stats
        self.clock = settings.clock
        self.tribunals = load_tribunals(settings.tribunals_csv)
        self.schema = request_schema(settings.wsdl)

    def call(self, body: bytes, soap_action: str | None) -> tuple[int, bytes]:
        """HTTP status and SOAP envelope answering ``body``."""
        operation = "unknown"
        try:
            request = self._read(body, soap_action)
            operation = request.operation.removesuffix("Request")
            registration = self._dispatch(operation, request.body_child)
        except Refused as refused:
            self.stats.call(operation, f"fault_{refused.faultcode.lower()}", refused.reason_code)
            code = None if refused.faultcode == "MustUnderstand" else refused.reason_code
            return 500, fault_envelope(refused.faultcode, code, refused.reason)
        self.stats.call(operation, registration.outcome)
        return 200, build_response(_registration_element(f"{operation}Response", registration))

    def _read(self, body: bytes, soap_action: str | None) -> SoapRequest:
        try:
            root = parse(body)
        except RefusedInput as exc:
            raise Refused(exc.errors[0].code, _describe(exc.errors)) from None
        try:
            return read_envelope(root, soap_action, OPERATIONS, namespace=REGISTRY_NS)
        except SoapFault as fault:
            raise Refused(fault.code or "SOAP_CLIENT_ERROR", fault.faultstring, fault.faultcode) from None

    def _dispatch(self, operation: str, element: etree._Element) -> Registration:
        errors = validate(self.schema, element)
        if errors:
            raise Refused("INVALID_AFFAIRE", _describe(errors))
        slot = "Affaire" if operation == "RegisterAffaire" else "Complement"
        affaire = element.find(f"{{{AFFAIRE_NS}}}{slot}")
        if affaire is None:
            raise Refused("INVALID_AFFAIRE", f"{operation}Request must hold one aff:{slot} element.")
        tribunal = (affaire.findtext(f"{{{AFFAIRE_NS}}}tribunal_code") or "").strip()
        if tribunal not in self.tribunals:
            raise Refused("UNKNOWN_TRIBUNAL", f"Tribunal {tribunal!r} is not known to this registry.")
        key = (element.findtext(f"{{{REGISTRY_NS}}}idempotencyKey") or "").strip()
        xml = etree.tostring(affaire, encoding="unicode")
        try:
            revision = int(element.findtext(f"{{{REGISTRY_NS}}}revision") or 1)
            if operation == "RegisterAffaire":
                return self.store.register_affaire(key, revision, tribunal, xml, self.clock())
            numero = (element.findtext(f"{{{REGISTRY_NS}}}numeroParquet") or "").strip()
            return self.store.add_complement(key, numero, xml, self.clock(), revision)
        except KeyConflict as exc:
            raise Refused("IDEMPOTENCY_KEY_CONFLICT", str(exc)) from None
        except UnknownAffaire as exc:
            raise Refused("UNKNOWN_AFFAIRE", str(exc)) from None


def _registration_element(tag: str, registration: Registration) -> etree._Element:
    root = etree.Element(f"{{{REGISTRY_NS}}}{tag}", nsmap={"reg": REGISTRY_NS})
    etree.SubElement(root, f"{{{REGISTRY_NS}}}numeroParquet").text = registration.numero_parquet
    etree.SubElement(root, f"{{{REGISTRY_NS}}}registeredAt").text = registration.registered_at
    etree.SubElement(root, f"{{{REGISTRY_NS}}}repeat").text = "true" if registration.repeat else "false"
    return root


class FaultRequest(BaseModel):
    """Body of ``POST /admin/faults``."""

    mode: FaultMode
    duration_s: float | None = Field(default=None, gt=0)
    count: int | None = Field(default=None, ge=1)
    delay_ms: int = Field(default=200, ge=0)
    retry_after_s: int = Field(default=5, ge=0)
    timeout_s: float = Field(default=30.0, gt=0)


class RegistryApp:
    """The HTTP side: fault injection around :class:`RegistryService`, pages, admin."""

    def __init__(self, settings: RegistrySettings) -> None:
        self.settings = settings
        self.store = RegistryStore(settings.database)
        self.stats = Stats()
        self.service = RegistryService(settings, self.store, self.stats)
        self.faults = FaultInjector()
        if settings.initial_fault is not None:
            self.faults.set(settings.initial_fault)
        self.stopping = asyncio.Event()
        self.wsdl = self_contained_wsdl(settings.wsdl)
        self.affaire_xsd = (settings.wsdl.parent / "affaire.xsd").read_bytes()

    def start(self) -> None:
        """Server start-up: a fresh stop signal, so a server stopped and started again holds
        answers again (an asyncio event is also bound to the loop that first waited on it)."""
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        """Server shutdown: end every held-back answer now (call in the event loop)."""
        self.stopping.set()

    async def soap(self, request: Request) -> Response:
        try:
            body = await read_capped(request, self.settings.max_body_bytes)
        except TooLarge as exc:
            self.stats.call("unknown", "fault_client", "BODY_TOO_LARGE")
            return self._soap(500, fault_envelope("Client", "BODY_TOO_LARGE", exc.errors[0].message))
        plan = self.faults.take()
        if plan is not None:
            self.stats.injected(plan.mode)
            early = await self._misbehave(plan, request)
            if early is not None:
                return early
        status, answer = await run_in_threadpool(self.service.call, body, request.headers.get("soapaction"))
        if plan is not None and plan.mode is FaultMode.TIMEOUT:
            # registered, but the answer is held back: the client's retry must get repeat=true
            await self._pause(request, plan.timeout_s)
        return self._soap(status, answer)

    async def _misbehave(self, plan: FaultPlan, request: Request) -> Response | None:
        """The injected answer, or None to go on (after a delay in ``slow`` mode)."""
        if plan.mode is FaultMode.UNAVAILABLE:
            headers = {"Retry-After": str(plan.retry_after_s)}
            return PlainTextResponse("Registry unavailable (maintenance).", 503, headers=headers)
        if plan.mode is FaultMode.SERVER_FAULT:
            return self._soap(500, fault_envelope("Server", "REGISTRY_ERROR", "Internal registry error."))
        if plan.mode is FaultMode.CLOSE:
            return await _drop_connection(request)
        if plan.mode is FaultMode.SLOW:
            await self._pause(request, plan.delay_ms / 1000)
        return None

    async def _pause(self, request: Request, seconds: float) -> None:
        """Sleep, ending early if the client hangs up or the server shuts down."""
        waits = [
            asyncio.ensure_future(asyncio.sleep(seconds)),
            asyncio.ensure_future(self.stopping.wait()),
            asyncio.ensure_future(_disconnected(request)),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    @staticmethod
    def _soap(status: int, body: bytes) -> Response:
        return Response(body, status_code=status, media_type=SOAP_XML)

    def wsdl_for(self, request: Request) -> Response:
        base = (self.settings.public_url or str(request.base_url)).rstrip("/")
        return Response(wsdl_with_address(self.wsdl, f"{base}/soap/registry"), media_type=SOAP_XML)

    def cases(self) -> list[dict[str, Any]]:
        return [
            {
                "numero_parquet": row.numero_parquet,
                "tribunal_code": row.tribunal_code,
                "idempotency_key": row.idempotency_key,
                "revision": row.revision,
                "received_at": row.received_at,
                "complements": row.complements,
            }
            for row in self.store.cases()
        ]


async def _disconnected(request: Request) -> None:
    # once the body is read, the server's receive() only returns when the client leaves
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _drop_connection(request: Request) -> Response:
    """Close the TCP connection without a byte of answer (the client sees it reset).

    ASGI has no way to say this; uvicorn's ``receive`` is a method of its
    request cycle, which holds the transport. Under another server, an
    exception instead: that server answers 500 or drops the connection itself.
    """
    cycle = getattr(request.receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("connection dropped on purpose (fault injection)")
    transport.abort()
    await asyncio.sleep(0)  # let uvicorn see the connection lost: it then sends nothing
    return Response(status_code=204)


def create_registry_app(settings: RegistrySettings) -> FastAPI:
    """The registry's ASGI app; ``app.state.registry`` is its :class:`RegistryApp`."""
    registry = RegistryApp(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        registry.store.close()

    app = FastAPI(
        title="Saisine reference court registry (sandbox)",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.registry = registry
    _install_routes(app, registry)
    return app


def _install_routes(app: FastAPI, registry: RegistryApp) -> None:
    app.add_api_route("/soap/registry", registry.soap, methods=["POST"], include_in_schema=False)
    app.add_api_route("/soap/registry", registry.wsdl_for, methods=["GET"], include_in_schema=False)

    @app.get("/soap/affaire.xsd", include_in_schema=False)
    def affaire_xsd() -> Response:
        return Response(registry.affaire_xsd, media_type="application/xml")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    @app.get("/cases", response_class=HTMLResponse, include_in_schema=False)
    def cases_page() -> HTMLResponse:
        html = render_cases(registry.store.cases(), registry.service.tribunals, registry.faults.status())
        return HTMLResponse(html)

    @app.get("/api/cases")
    def api_cases() -> list[dict[str, Any]]:
        return registry.cases()

    @app.get("/api/stats")
    def api_stats() -> dict[str, Any]:
        return registry.stats.as_dict()

    @app.get("/admin/faults")
    def get_fault() -> dict[str, Any]:
        return registry.faults.status()

    @app.post("/admin/faults")
    def set_fault(body: FaultRequest) -> dict[str, Any]:
        try:
            registry.faults.set(FaultPlan(**body.model_dump()))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return registry.faults.status()

    @app.delete("/admin/faults")
    def clear_fault() -> dict[str, Any]:
        registry.faults.clear()
        return registry.faults.status()

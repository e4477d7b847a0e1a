"""The court registry over SOAP, with zeep: the adapter behind :class:`gateway.ports.CourtRegistry`.

The WSDL is loaded from the local file (``forbid_dtd``, ``forbid_external``), the
service address set from configuration, and every call has explicit connect and
read timeouts. :func:`classify` is the one function that decides what a failure
means: retriable (connection refused or reset, timeout, HTTP 5xx or 429, SOAP
Server fault, or an answer we cannot read) or fatal (SOAP Client fault: the
registry refused the case, with its reason code).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests
import zeep
import zeep.exceptions

from gateway.court_xml import affaire_to_xml
from gateway.errors import Fatal, Retriable
from gateway.model import Affaire
from gateway.ports import DeliveryTask, Registration

REGISTRY_NS = "urn:saisine:court:registry:v1"
BINDING = f"{{{REGISTRY_NS}}}CourtRegistrySoapBinding"
RETRY_STATUSES = {429, 502, 503, 504}


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _Transport(zeep.Transport):
    """zeep's transport, turning throttling answers into Retriable with their Retry-After."""

    def post(self, address: str, message: bytes, headers: dict[str, str]) -> requests.Response:
        response: requests.Response = super().post(address, message, headers)
        if response.status_code in RETRY_STATUSES:
            raise Retriable(
                f"HTTP {response.status_code}",
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        return response


def _read_environment_once(session: requests.Session, address: str) -> None:
    """Proxies and CA bundle from the environment, read once for our one endpoint. Left to
    itself, requests reads them (a walk through ``os.environ``, ``.netrc`` look-ups) on every
    call: about a tenth of a delivery's CPU."""
    found = session.merge_environment_settings(address, {}, None, None, None)
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    session.trust_env = False


def _fault_reason(fault: zeep.exceptions.Fault) -> tuple[str, str]:
    detail = fault.detail
    if detail is not None:
        code = detail.find(f".//{{{REGISTRY_NS}}}reasonCode")
        reason = detail.find(f".//{{{REGISTRY_NS}}}reason")
        if code is not None and code.text:
            return code.text.strip(), (reason.text or "").strip() if reason is not None else ""
    return "REGISTRY_REFUSED", str(fault.message or "")


def classify(exc: BaseException) -> Retriable | Fatal:
    """What a failed registry call means for the delivery (see the module docstring)."""
    if isinstance(exc, Retriable | Fatal):
        return exc
    if isinstance(exc, zeep.exceptions.Fault):
        code = str(exc.code or "")
        if code.endswith("Client"):
            return Fatal(*_fault_reason(exc))
        return Retriable(f"SOAP fault {code or 'Server'}")
    if isinstance(exc, requests.exceptions.Timeout):
        return Retriable("timeout")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return Retriable("connection failed")
    if isinstance(exc, zeep.exceptions.TransportError):
        return Retriable(f"HTTP {exc.status_code}")
    # an answer we cannot read (not XML, wrong shape): the registry or a proxy is unwell;
    # retrying is safe (idempotency key) and ends in a dead letter if it persists
    return Retriable(f"unreadable answer: {type(exc).__name__}")


class ZeepCourtRegistry:
    """The court registry reached with zeep; one client per thread (zeep is not thread-safe)."""

    def __init__(
        self, wsdl: Path, address: str, connect_timeout: float = 5.0, read_timeout: float = 30.0
    ) -> None:
        self.endpoint = address
        self.wsdl = wsdl
        self.timeouts = (connect_timeout, read_timeout)
        self._local = threading.local()

    def _service(self) -> Any:
        service = getattr(self._local, "service", None)
        if service is None:
            settings = zeep.Settings(forbid_dtd=True, forbid_external=True, strict=True)
            transport = _Transport(operation_timeout=self.timeouts, timeout=self.timeouts)
            _read_environment_once(transport.session, self.endpoint)
            client = zeep.Client(str(self.wsdl), settings=settings, transport=transport)
            service = client.create_service(BINDING, self.endpoint)
            self._local.client, self._local.service = client, service
        return service

    def register(self, task: DeliveryTask) -> Registration:
        affaire = Affaire.model_validate(task.affaire)
        try:
            if task.kind == "complement":
                answer = self._service().AddComplement(
                    idempotencyKey=task.message_id,
                    numeroParquet=task.numero_parquet,
                    revision=task.revision,
                    _value_1=affaire_to_xml(affaire, "Complement"),
                )
            else:
                answer = self._service().RegisterAffaire(
                    idempotencyKey=task.message_id, revision=task.revision, _value_1=affaire_to_xml(affaire)
                )
        except Exception as exc:
            raise classify(exc) from exc
        return Registration(
            numero_parquet=str(answer.numeroParquet),
            registered_at=answer.registeredAt,
            repeat=bool(getattr(answer, "repeat", False)),
        )

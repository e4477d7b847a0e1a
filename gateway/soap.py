"""SOAP 1.1 envelopes, framework-free: read a request, build a response or a fault.

The HTTP layer parses the body with the one hardened parser
(:func:`gateway.xmlparse.parse`) and hands the root here; this module never
parses received bytes. :func:`read_envelope` applies the SOAP rules of
``../shared/security.md``: a SOAP 1.1 Envelope, exactly one Body child naming
a known operation, a SOAPAction that does not contradict it, a Header of
bounded size (:data:`MAX_HEADER_CHARS`), and a ``MustUnderstand`` fault for
any header the sender says we must understand (we understand none). Faults
carry the same :class:`ErrorDetail` list as every other rejection, as a
``ValidationFault`` detail (see the intake WSDL).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from lxml import etree

from gateway.errors import ErrorDetail

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12_NS = "http://schemas.xmlsoap.org/wsdl/soap12/"
ENVELOPE = f"{{{SOAP_ENV_NS}}}Envelope"
HEADER = f"{{{SOAP_ENV_NS}}}Header"
BODY = f"{{{SOAP_ENV_NS}}}Body"
MUST_UNDERSTAND = f"{{{SOAP_ENV_NS}}}mustUnderstand"

# A legitimate Header (WS-Addressing, a WS-Security token with its certificate and signature)
# stays well under this; the parser's limits do not stop an 8 MB Header of plain text.
MAX_HEADER_CHARS = 64 * 1024

FaultCode = Literal["Client", "Server", "MustUnderstand", "VersionMismatch"]

_DEFAULT_CODES: dict[str, str] = {
    "Client": "SOAP_CLIENT_ERROR",
    "Server": "SOAP_SERVER_ERROR",
    "MustUnderstand": "SOAP_MUST_UNDERSTAND",
    "VersionMismatch": "SOAP_VERSION_MISMATCH",
}


class SoapFault(Exception):
    """A SOAP 1.1 Fault to send back: Client (fix the request), Server (retry later),
    MustUnderstand (a mandatory header we do not support), VersionMismatch (not SOAP 1.1)."""

    def __init__(
        self,
        faultcode: FaultCode,
        faultstring: str,
        errors: list[ErrorDetail] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(f"{faultcode}: {faultstring}")
        self.faultcode: FaultCode = faultcode
        self.faultstring = faultstring
        self.errors: list[ErrorDetail] = list(errors or [])
        self.code = code

    @property
    def status(self) -> str:
        """``rejected`` when the sender must change the request, ``error`` when it may retry."""
        return "error" if self.faultcode == "Server" else "rejected"

    def details(self) -> list[ErrorDetail]:
        """The errors to report: never empty, the fault's own code standing in for none."""
        if self.errors:
            return list(self.errors)
        return [ErrorDetail(self.code or _DEFAULT_CODES[self.faultcode], self.faultstring)]


@dataclass(frozen=True, slots=True)
class SoapRequest:
    """A checked request: the operation (local name of the Body child) and its element."""

    operation: str
    body_child: etree._Element
    headers: list[etree._Element] = field(default_factory=list)


def read_envelope(
    root: etree._Element,
    soap_action: str | None,
    operations: dict[str, str],
    namespace: str | None = None,
    max_header_chars: int = MAX_HEADER_CHARS,
) -> SoapRequest:
    """Check an already-parsed SOAP 1.1 request and return its operation, or raise SoapFault.

    ``operations`` maps each accepted Body child local name to its soapAction;
    with ``namespace``, the Body child must also be in that namespace.
    """
    header, body = _envelope_parts(root)
    if header is not None:
        _check_header_size(header, max_header_chars)
    headers = _children(header) if header is not None else []
    _check_must_understand(headers)
    # WS-Addressing ReplyTo / FaultTo (and any other header) are deliberately
    # ignored: never followed, the answer always goes back on the same HTTP
    # connection, so a request cannot make the gateway call an address it chose.
    child = _single_body_child(body)
    operation = _operation(child, operations, namespace)
    _check_soap_action(soap_action, operations[operation], operation)
    return SoapRequest(operation=operation, body_child=child, headers=headers)


def _children(element: etree._Element) -> list[etree._Element]:
    """Element children only: comments (and PIs, refused earlier by the parser) are skipped."""
    return [child for child in element if isinstance(child.tag, str)]


def _client(code: str, message: str, node: etree._Element | None = None) -> SoapFault:
    line = _line(node) if node is not None else None
    path = _path(node) if node is not None else None
    return SoapFault("Client", message, errors=[ErrorDetail(code, message, line=line, path=path)], code=code)


def _line(node: etree._Element) -> int | None:
    line: object = node.sourceline  # None for a tree built in memory
    return line if isinstance(line, int) else None


def _path(node: etree._Element) -> str:
    """A readable location (``/Envelope/Body/SubmitProcedureRequest``), local names only."""
    names = [etree.QName(n).localname for n in (node, *node.iterancestors())]
    return "/" + "/".join(reversed(names))


def _envelope_parts(root: etree._Element) -> tuple[etree._Element | None, etree._Element]:
    """The optional Header and the Body, in that order and nothing else (WS-I BP R1011)."""
    if not isinstance(root.tag, str) or etree.QName(root).localname != "Envelope":
        raise _client("SOAP_NOT_ENVELOPE", "The document is not a SOAP Envelope.", root)
    if root.tag != ENVELOPE:
        message = f"Only SOAP 1.1 is supported (Envelope namespace {SOAP_ENV_NS})."
        error = ErrorDetail("SOAP_VERSION_MISMATCH", message, line=_line(root), path=_path(root))
        raise SoapFault("VersionMismatch", message, errors=[error], code=error.code)
    children = _children(root)
    header = children.pop(0) if children and children[0].tag == HEADER else None
    if not children or children[0].tag != BODY:
        raise _client("SOAP_BODY_MISSING", "The Envelope has no Body (after an optional Header).", root)
    if len(children) > 1:
        raise _client("SOAP_ENVELOPE_INVALID", "Nothing may follow the Body in the Envelope.", children[1])
    return header, children[0]


def _check_header_size(header: etree._Element, limit: int) -> None:
    """Refuse a Header whose names, attributes and text add up to more than ``limit`` characters."""
    size = 0
    for node in header.iter():
        size += len(node.text or "") + len(node.tail or "")
        if isinstance(node.tag, str):
            size += len(node.tag) + sum(len(k) + len(v) for k, v in node.items())
        if size > limit:
            message = f"The SOAP Header is larger than {limit} characters."
            raise _client("SOAP_HEADER_TOO_LARGE", message, header)


def _check_must_understand(headers: list[etree._Element]) -> None:
    # The gateway understands no header block, so any mandatory one is refused.
    for block in headers:
        if (block.get(MUST_UNDERSTAND) or "").strip() in ("1", "true"):
            name = etree.QName(block)
            message = f"Header {{{name.namespace or ''}}}{name.localname} is not understood."
            error = ErrorDetail("SOAP_MUST_UNDERSTAND", message, line=_line(block), path=_path(block))
            raise SoapFault("MustUnderstand", message, errors=[error], code=error.code)


def _single_body_child(body: etree._Element) -> etree._Element:
    children = _children(body)
    if not children:
        raise _client("SOAP_BODY_EMPTY", "The Body must contain exactly one element; it has none.", body)
    if len(children) > 1:
        message = f"The Body must contain exactly one element; it has {len(children)}."
        raise _client("SOAP_BODY_MULTIPLE", message, children[1])
    return children[0]


def _operation(child: etree._Element, operations: dict[str, str], namespace: str | None) -> str:
    name = etree.QName(child)
    if name.localname not in operations or (namespace is not None and name.namespace != namespace):
        expected = ", ".join(sorted(operations))
        found = f"{{{name.namespace or ''}}}{name.localname}"
        message = f"Unknown operation {found}; expected one of: {expected}."
        raise _client("SOAP_OPERATION_UNKNOWN", message, child)
    return str(name.localname)


def _check_soap_action(soap_action: str | None, expected: str, operation: str) -> None:
    """An empty or absent SOAPAction is allowed; a non-empty one must name the Body's operation."""
    action = (soap_action or "").strip()
    if len(action) >= 2 and action[0] == action[-1] == '"':
        action = action[1:-1].strip()
    if action and action != expected:
        message = f"SOAPAction {action!r} contradicts the Body's operation {operation} ({expected!r})."
        raise SoapFault(
            "Client",
            message,
            errors=[ErrorDetail("SOAP_ACTION_MISMATCH", message)],
            code="SOAP_ACTION_MISMATCH",
        )


def _envelope() -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(ENVELOPE, nsmap={"soapenv": SOAP_ENV_NS})
    return envelope, etree.SubElement(envelope, BODY)


def _serialize(envelope: etree._Element) -> bytes:
    data: bytes = etree.tostring(envelope, encoding="UTF-8", xml_declaration=True)
    return data


def build_response(payload: etree._Element) -> bytes:
    """A SOAP 1.1 response envelope whose Body holds a copy of ``payload``."""
    envelope, body = _envelope()
    body.append(copy.deepcopy(payload))
    return _serialize(envelope)


def build_fault(fault: SoapFault, detail_ns: str) -> bytes:
    """A SOAP 1.1 Fault envelope; its detail is a ``ValidationFault`` in ``detail_ns``.

    A MustUnderstand fault has no detail: SOAP 1.1 (section 4.4) reserves
    detail for errors of the Body, and the faultstring names the header.
    """
    envelope, body = _envelope()
    element = etree.SubElement(body, f"{{{SOAP_ENV_NS}}}Fault")
    # faultcode, faultstring and detail are unqualified in SOAP 1.1.
    etree.SubElement(element, "faultcode").text = f"soapenv:{fault.faultcode}"
    etree.SubElement(element, "faultstring").text = fault.faultstring
    if fault.faultcode != "MustUnderstand":
        detail = etree.SubElement(element, "detail")
        detail.append(validation_fault(fault, detail_ns))
    return _serialize(envelope)


def validation_fault(fault: SoapFault, ns: str) -> etree._Element:
    """The ``ValidationFault`` element of the intake WSDL: status, then one ``error`` per detail."""
    root = etree.Element(f"{{{ns}}}ValidationFault", nsmap={"v": ns})
    etree.SubElement(root, f"{{{ns}}}status").text = fault.status
    for error in fault.details():
        item = etree.SubElement(root, f"{{{ns}}}error")
        for name in ("code", "message", "line", "column", "path"):
            value = getattr(error, name)
            if value is not None:
                etree.SubElement(item, f"{{{ns}}}{name}").text = str(value)
    return root


def wsdl_with_address(wsdl_bytes: bytes, address: str) -> bytes:
    """Our own WSDL with every soap:address location set to ``address`` (http or https)."""
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) address: {address!r}")
    # Our own, trusted file; still parsed without DTD, entities or network.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(wsdl_bytes, parser=parser)
    for ns in (WSDL_SOAP_NS, WSDL_SOAP12_NS):
        for element in root.iter(f"{{{ns}}}address"):
            element.set("location", address)
    return _serialize(root)

"""Reading a police v1 message: its namespace, header, local date-times and attributes."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.formats import MessageHeader
from gateway.localtime import resolve, zone
from mappings.police_v1.codes import NO_MIS_EN_CAUSE, SUMMER
from mappings.xmlread import Document, Node, Reader, collapse

NAMESPACE = "urn:saisine:police:procedure:v1"
DEFAULT_ZONE = "Europe/Paris"
# The values of the schema's FuseauHoraireType, loaded at import: a gateway whose time zone
# database lacks one fails at start-up, not on the first message from Cayenne.
ZONES = {
    name: zone(name)
    for name in (
        "Europe/Paris",
        "America/Guadeloupe",
        "America/Martinique",
        "America/Cayenne",
        "Indian/Reunion",
        "Indian/Mayotte",
        "America/Miquelon",
    )
}
R = Reader(NAMESPACE)


def zone_name(root: Any) -> str:
    """The IANA zone of the message's local date-times (root ``fuseauHoraire``)."""
    return str(root.get("fuseauHoraire") or DEFAULT_ZONE).strip()


def message_zone(root: Any) -> ZoneInfo:
    """The zone of the message's local date-times (a schema-valid message names one of ``ZONES``)."""
    return ZONES.get(zone_name(root)) or zone(zone_name(root))


def written(el: Any) -> datetime:
    """A local date-time element as written: a naive datetime."""
    return datetime.fromisoformat(str(el.text).strip())


def summer(el: Any) -> bool | None:
    """The element's summer (``ETE``) or winter (``HIVER``) time indicator, if any."""
    return SUMMER.get((el.get("heure") or "").strip())


def instant(el: Any, tz: ZoneInfo) -> datetime:
    """The instant a local date-time element denotes (see :func:`gateway.localtime.resolve`)."""
    return resolve(written(el), tz, summer(el))


def attr_of(el: Any, name: str) -> str | None:
    """An attribute's value, whitespace collapsed; None when the element or value is absent."""
    value = el.get(name) if el is not None else None
    if value is None:
        return None
    return collapse(value) or None


def attr(node: Node | None, name: str) -> str | None:
    return attr_of(node[0] if node is not None else None, name)


def ids(el: Any, attribute: str) -> list[str]:
    """The identifiers of a list attribute (``auteurs="P1 P2"``)."""
    value = collapse(el.get(attribute) or "")
    return value.split(" ") if value else []


def must(node: Node | None) -> Node:
    if node is None:
        raise ValueError("required element missing: the schema should have refused it")
    return node


def no_mis_en_cause(node: Node | None) -> str | None:
    """The court's reason code for an ``absenceMisEnCause`` element, if there is one."""
    return NO_MIS_EN_CAUSE[str(node[0].get("motif")).strip()] if node is not None else None


def tribunal_code(juridiction: Any) -> str:
    """The court's tribunal code: ``TJ`` and the INSEE code of its seat."""
    return f"TJ{str(juridiction.get('inseeSiege')).strip()}"


def siren(node: Node) -> tuple[Any, str]:
    """The element the SIREN is read from, and the SIREN (with a SIRET alone, its first nine digits)."""
    found = R.el(node, "siren")
    if found is None:
        found = must(R.el(node, "siret"))
    return found[0], str(found[0].text).strip()[:9]


def read_header(root: Any) -> MessageHeader:
    """Identifiers of the message, best effort: the document may be invalid."""
    service = root.find(R.q("identification/service"))
    seat = root.find(R.q("cadre/juridiction"))
    sent_el = root.find(R.q("entete/emisLe"))
    try:
        sent_at = instant(sent_el, message_zone(root)) if sent_el is not None else None
    except (ValueError, LookupError):  # a malformed date-time or an unknown zone
        sent_at = None
    return MessageHeader(
        message_id=R.find_text(root, "entete/idMessage"),
        kind=R.find_text(root, "entete/typeEnvoi"),
        unit_code=attr_of(service, "code"),
        procedure_number=R.find_text(root, "identification/numeroProcedure"),
        tribunal_code=tribunal_code(seat) if attr_of(seat, "inseeSiege") else None,
        sent_at=sent_at,
    )


def read(root: Any) -> Document:
    """The schema-valid message read once, for ``read_facts`` and ``map_case``."""
    return R.read(root)

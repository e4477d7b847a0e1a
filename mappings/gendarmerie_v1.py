"""Gendarmerie procedure message v1 -> court case (affaire). Pure functions.

Mapping version: see ``MAPPING_VERSION``; it is recorded on every case.
What the court model cannot carry is listed in ``docs/mappings/gendarmerie-v1.md``
(nothing is dropped silently).
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.facts import (
    CustodyFact,
    InfractionFact,
    LegalIdFact,
    PersonFact,
    PieceFact,
    ProcedureFacts,
    Value,
)
from gateway.formats import MessageHeader
from gateway.locations import ElementLoc
from gateway.model import (
    Affaire,
    Cadre,
    CourtRole,
    MeasureKind,
    MessageKind,
    Nature,
    Participation,
    most_serious,
)
from gateway.rules import decode_base64
from mappings.xmlread import Document, Node, Reader, collapse, parse_date, parse_datetime

NAMESPACE = "urn:saisine:gendarmerie:procedure:v1"
MAPPING_VERSION = "gendarmerie-v1.0"
R = Reader(NAMESPACE)

_KINDS = {"PROCEDURE_INITIALE": MessageKind.INITIALE, "COMPLEMENT": MessageKind.COMPLEMENT}


# MessageHeader field -> where the message keeps it (v2 renames one of these paths).
HEADER_PATHS = {
    "message_id": "Envelope/MessageId",
    "kind": "Envelope/MessageType",
    "unit_code": "Identification/Unit/Code",
    "procedure_number": "Identification/ProcedureNumber",
    "tribunal_code": "Cadre/Tribunal/Code",
}


def header_at(reader: Reader, root: etree._Element, paths: dict[str, str]) -> MessageHeader:
    """Identifiers of the message, best effort (the document may be invalid), read at ``paths``."""
    sent = reader.find_text(root, "Envelope/SentAt")
    try:
        sent_at = parse_datetime(sent) if sent else None
    except ValueError:
        sent_at = None
    return MessageHeader(
        **{field: reader.find_text(root, path) for field, path in paths.items()}, sent_at=sent_at
    )


def read_header(root: etree._Element) -> MessageHeader:
    """Identifiers of the message, best effort: the document may be invalid."""
    return header_at(R, root, HEADER_PATHS)


def header_in(reader: Reader, doc: Document, paths: dict[str, str]) -> MessageHeader:
    """:func:`header_at` on the reading of a schema-valid message: each field is the one element
    at its path, found by look-ups in the reading (what ElementPath would find first)."""
    root = doc.root
    sent = reader.text(root, "Envelope/SentAt")
    try:
        sent_at = parse_datetime(sent) if sent else None
    except ValueError:  # a valid xs:dateTime Python cannot hold (a year past 9999): as header_at
        sent_at = None
    return MessageHeader(**{field: reader.text(root, path) for field, path in paths.items()}, sent_at=sent_at)


def header_of(doc: Document) -> MessageHeader:
    """The header of a schema-valid message from its reading (:func:`read`)."""
    return header_in(R, doc, HEADER_PATHS)


def read(root: etree._Element) -> Document:
    """The schema-valid message read once, for :func:`read_facts` and :func:`map_case`."""
    return R.read(root)


def _document(message: Document | etree._Element) -> Document:
    """What :func:`read` made of the message, or the element tree itself (read now)."""
    return message if isinstance(message, Document) else R.read(message)


# ---------------------------------------------------------------- facts


def _must(value: Value[str] | None) -> Value[str]:
    if value is None:
        raise ValueError("required element missing: the schema should have refused it")
    return value


def _must_dt(node: Node, path: str) -> Value:  # type: ignore[type-arg]
    value = R.value_dt(node, path)
    if value is None:
        raise ValueError(f"{path} missing: the schema should have refused it")
    return value


def _person_fact(node: Node) -> PersonFact:
    natural = R.name(node) == "NaturalPerson"
    role = CourtRole[R.req(node, "Role")]
    return PersonFact(id=R.attr(node, "id"), role=role.value, natural=natural)


def _infraction_fact(node: Node) -> InfractionFact:
    nature = _el(node, "Nature")
    return InfractionFact(
        id=R.attr(node, "id"),
        natinf=_must(R.value(node, "Natinf")),
        nature=Value(Nature[R.req(node, "Nature")], ElementLoc(nature[0])),
    )


def _custody_fact(node: Node) -> CustodyFact:
    return CustodyFact(
        person_ref=R.attr(node, "personRef"),
        start=_must_dt(node, "Start"),
        end=R.value_dt(node, "End"),
        extensions=[_must_dt(ext, "At") for ext in R.all(node, "Extensions/Extension")],
    )


def _piece_fact(node: Node) -> PieceFact:
    content = R.el(node, "Content")
    return PieceFact(
        number=R.attr(node, "number"),
        sha256=R.req(node, "Sha256"),
        size=int(R.req(node, "Size")),
        content=decode_base64(content[0].text or "") if content is not None else None,
    )


_DATED = ("SentAt", "SaisineDate", "Start", "End", "At", "DateTime", "SeizedAt", "DecidedAt")


def _dated(found: dict[str, list[Any]]) -> list[Value]:  # type: ignore[type-arg]
    """Every date and date-time of the message, for the 'not in the future' rule."""
    values: list[Value] = []  # type: ignore[type-arg]
    for name in _DATED:  # plain loops: a comprehension per name costs a call each (Python 3.11)
        for e in found[name]:
            text = e.text  # read once: each .text makes a new string
            if text:
                values.append(Value(parse_datetime(text), ElementLoc(e)))
    for e in found["BirthDate"]:
        text = e.text
        if text:
            values.append(Value(parse_date(text), ElementLoc(e)))
    return values


def read_facts(message: Document | etree._Element) -> ProcedureFacts:
    """The facts the business rules check, with their locations."""
    doc = _document(message)
    root = doc.root
    found = doc.by_name(*_DATED, "BirthDate", "CommuneInsee")
    scelles = R.all(root, "Scelles/Scelle")
    return ProcedureFacts(
        kind=_KINDS[R.req(root, "Envelope/MessageType")],
        sent_at=_must_dt(root, "Envelope/SentAt"),
        saisine_at=_must_dt(root, "Cadre/SaisineDate"),
        faits_start=R.value_dt(root, "Faits/Start"),
        faits_end=R.value_dt(root, "Faits/End"),
        no_mis_en_cause_reason=R.text(root, "NoMisEnCauseReason/Code"),
        persons=[_person_fact(p) for p in R.all(root, "Persons/*")],
        infractions=[_infraction_fact(i) for i in R.all(root, "Infractions/Infraction")],
        charged=[R.attr(c, "personRef") for c in R.all(root, "Infractions/Infraction/Charges/Charge")],
        person_refs=[R.attr(m, "personRef") for m in R.all(root, "Measures/Measure")],
        custody=[_custody_fact(g) for g in R.all(root, "GardesAVue/GardeAVue")],
        arrested=[
            R.attr(p, "id") for p in R.all(root, "Persons/NaturalPerson") if R.el(p, "Arrest") is not None
        ],
        infraction_refs=[R.attr(s, "infractionRef") for s in scelles],
        communes=[Value((e.text or "").strip(), ElementLoc(e)) for e in found["CommuneInsee"]],
        dates=_dated(found),
        legal_ids=[
            LegalIdFact(siren=_must(R.value(p, "Siren")), siret=R.value(p, "Siret"))
            for p in R.all(root, "Persons/LegalPerson")
        ],
        scelle_numbers=[R.attr(s, "number") for s in scelles],
        pieces=[_piece_fact(p) for p in R.all(root, "Pieces/Piece")],
    )


def _el(parent: Node, path: str) -> Node:
    found = R.el(parent, path)
    if found is None:
        raise ValueError(f"{path} missing: the schema should have refused it")
    return found


def _get(node: Node, attribute: str) -> str:
    """An attribute as its xs:token type reads it (the schema allows surrounding whitespace)."""
    return collapse(str(node[0].get(attribute)))


# ---------------------------------------------------------------- mapping
#
# Each section is mapped to the fields of its court model as a plain dict, and the whole
# affaire is validated once (``Affaire.model_validate``): one call into pydantic's core
# instead of one model constructor per address, party or line, for the same checks.
# The models forbid unknown fields, so a misspelt key fails as surely as a wrong keyword.

Fields = dict[str, Any]


def _address(node: Node | None) -> Fields | None:
    if node is None:
        return None
    return {
        "lines": R.texts(node, "Line"),
        "postal_code": R.text(node, "PostalCode"),
        "commune_insee": R.text(node, "CommuneInsee"),
        "commune_name": R.text(node, "CommuneName"),
        "country": R.text(node, "Country"),
    }


def _place(node: Node) -> Fields:
    return {
        "commune_insee": R.req(node, "CommuneInsee"),
        "commune_name": R.text(node, "CommuneName"),
        "address": _address(R.el(node, "Address")),
    }


def _identity_document(node: Node | None) -> Fields | None:
    if node is None:
        return None
    return {
        "kind": R.req(node, "Type").lower(),
        "number": R.req(node, "Number"),
        "issuing_country": R.text(node, "IssuingCountry"),
    }


def _arrest(node: Node | None) -> Fields | None:
    if node is None:
        return None
    return {"at": parse_datetime(R.req(node, "DateTime")), "place": _place(_el(node, "Place"))}


def _natural(node: Node) -> Fields:
    birth = R.text(node, "BirthDate")
    return {
        "birth_name": R.req(node, "BirthName"),
        "usage_name": R.text(node, "UsageName"),
        "given_names": R.texts(node, "GivenNames/GivenName"),
        "aliases": R.texts(node, "Aliases/Alias"),
        "sex": R.text(node, "Sex"),
        "birth_date": parse_date(birth) if birth else None,
        "birth_commune_insee": R.text(node, "BirthPlace/CommuneInsee"),
        "birth_country": R.text(node, "BirthPlace/Country"),
        "nationality": R.text(node, "Nationality"),
        "address": _address(R.el(node, "Address")),
        "profession": R.text(node, "Profession"),
        "identity_document": _identity_document(R.el(node, "IdentityDocument")),
        "arrest": _arrest(R.el(node, "Arrest")),
    }


def _legal(node: Node) -> Fields:
    return {
        "company_name": R.req(node, "CompanyName"),
        "legal_form": R.text(node, "LegalForm"),
        "siren": R.req(node, "Siren"),
        "siret": R.text(node, "Siret"),
        "head_office": _address(R.el(node, "HeadOffice")),
    }


def _partie(node: Node) -> Fields:
    natural = R.name(node) == "NaturalPerson"
    return {
        "ref": _get(node, "id"),
        "role": CourtRole[R.req(node, "Role")],
        "natural": _natural(node) if natural else None,
        "legal": None if natural else _legal(node),
    }


def _infraction(node: Node) -> Fields:
    return {
        "ref": _get(node, "id"),
        "natinf": R.req(node, "Natinf").lstrip("0") or "0",
        "qualification": R.req(node, "Qualification"),
        "nature": Nature[R.req(node, "Nature")],
        "counts": int(R.text(node, "Counts") or 1),
    }


def _preventions(charged: list[tuple[Fields, Node]], faits: Fields | None) -> list[Fields]:
    """One line per (infraction, charge), from the infractions already mapped."""
    lines = []
    for inf, node in charged:
        for charge in R.all(node, "Charges/Charge"):
            lines.append(
                {
                    "partie_ref": _get(charge, "personRef"),
                    "infraction_ref": inf["ref"],
                    "natinf": inf["natinf"],
                    "qualification": inf["qualification"],
                    "nature": inf["nature"],
                    "participation": Participation[_get(charge, "participation")],
                    "counts": inf["counts"],
                    "faits_start": faits["start"] if faits else None,
                    "faits_end": faits["end"] if faits else None,
                    "place": faits["place"] if faits else None,
                }
            )
    return lines


def _garde_a_vue(node: Node) -> Fields:
    return {
        "partie_ref": _get(node, "personRef"),
        "kind": MeasureKind.GARDE_A_VUE,
        "decided_at": parse_datetime(R.req(node, "Start")),
        "place": R.text(node, "Place"),
        "end": R.dt(node, "End"),
        "extensions": [
            {"at": parse_datetime(R.req(x, "At")), "authorised_by": R.req(x, "AuthorisedBy")}
            for x in R.all(node, "Extensions/Extension")
        ],
        "minor": R.req(node, "Minor") in ("true", "1"),
        "outcome": (R.text(node, "Outcome") or "").lower() or None,
    }


def _measure(node: Node) -> Fields:
    return {
        "partie_ref": _get(node, "personRef"),
        "kind": MeasureKind[R.req(node, "Type")],
        "decided_at": parse_datetime(R.req(node, "DecidedAt")),
        "hearing_at": R.dt(node, "HearingAt"),
        "details": R.text(node, "Details"),
    }


def _scelle(node: Node) -> Fields:
    return {
        "number": _get(node, "number"),
        "nature": R.req(node, "Nature"),
        "vehicle_registration": R.text(node, "VehicleRegistration"),
        "seized_at": parse_datetime(R.req(node, "SeizedAt")),
        "seizure_place": _place(_el(node, "SeizurePlace")),
        "custodian": R.req(node, "Custodian"),
        "infraction_ref": _get(node, "infractionRef"),
    }


def _piece(node: Node) -> Fields:
    return {
        "number": int(_get(node, "number")),
        "title": R.req(node, "Title"),
        "media_type": R.req(node, "MediaType"),
        "sha256": R.req(node, "Sha256"),
        "size": int(R.req(node, "Size")),
        "inline": R.el(node, "Content") is not None,
        "reference": R.text(node, "Reference"),
    }


def _faits(root: Node) -> Fields | None:
    node = R.el(root, "Faits")
    if node is None:
        return None
    return {
        "start": parse_datetime(R.req(node, "Start")),
        "end": R.dt(node, "End"),
        "place": _place(_el(node, "Place")),
        "summary": R.req(node, "Summary"),
    }


def _originator(root: Node) -> Fields:
    ident = _el(root, "Identification")
    return {
        "agency": "gendarmerie",
        "unit_code": R.req(ident, "Unit/Code"),
        "unit_name": R.req(ident, "Unit/Name"),
        "officer_name": R.req(ident, "Officer/Name"),
        "officer_quality": R.req(ident, "Officer/Quality"),
        "officer_rank": R.text(ident, "Officer/Rank"),
        "officer_id": R.text(ident, "Officer/Matricule"),
    }


def _source(root: Node) -> Fields:
    return {
        "agency": "gendarmerie",
        "format": "gendarmerie/v1",
        "schema_version": _get(root, "schemaVersion"),
        "mapping_version": MAPPING_VERSION,
        "message_id": R.req(root, "Envelope/MessageId").lower(),
        "sent_at": parse_datetime(R.req(root, "Envelope/SentAt")),
        "software": f"{R.req(root, 'Envelope/Software/Name')} {R.req(root, 'Envelope/Software/Version')}",
    }


def map_case(message: Document | etree._Element) -> Affaire:
    """The court case for a schema-valid, rule-valid gendarmerie v1 message."""
    root = _document(message).root
    faits = _faits(root)
    charged = [(_infraction(i), i) for i in R.all(root, "Infractions/Infraction")]
    infractions = [inf for inf, _ in charged]
    scelles = [_scelle(s) for s in R.all(root, "Scelles/Scelle")]
    mesures = [_garde_a_vue(g) for g in R.all(root, "GardesAVue/GardeAVue")]
    mesures += [_measure(m) for m in R.all(root, "Measures/Measure")]
    return Affaire.model_validate(
        {
            "kind": _KINDS[R.req(root, "Envelope/MessageType")],
            "tribunal_code": R.req(root, "Cadre/Tribunal/Code"),
            "tribunal_name": R.req(root, "Cadre/Tribunal/Name"),
            "procedure_numbers": [R.req(root, "Identification/ProcedureNumber")],
            "originator": _originator(root),
            "cadre": Cadre[R.req(root, "Cadre/Type")],
            "saisine_at": parse_datetime(R.req(root, "Cadre/SaisineDate")),
            "faits": faits,
            "nature": most_serious([i["nature"] for i in infractions]),
            "has_scelles": bool(scelles),
            "no_mis_en_cause_reason": (R.text(root, "NoMisEnCauseReason/Code") or "").lower() or None,
            "infractions": infractions,
            "parties": [_partie(p) for p in R.all(root, "Persons/*")],
            "preventions": _preventions(charged, faits),
            "mesures": mesures,
            "scelles": scelles,
            "pieces": [_piece(p) for p in R.all(root, "Pieces/Piece")],
            "source": _source(root),
        }
    )

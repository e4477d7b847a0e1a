"""Gendarmerie procedure message v1 -> court case (affaire). Pure functions.

Mapping version: see ``MAPPING_VERSION``; it is recorded on every case.
What the court model cannot carry is listed in ``docs/mappings/gendarmerie-v1.md``
(nothing is dropped silently).
"""

from __future__ import annotations

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
from gateway.locations import loc
from gateway.model import (
    Address,
    Affaire,
    Arrest,
    Cadre,
    CourtRole,
    Extension,
    Faits,
    IdentityDocument,
    Infraction,
    LegalPerson,
    MeasureKind,
    MessageKind,
    Mesure,
    NaturalPerson,
    Nature,
    Originator,
    Participation,
    Partie,
    Piece,
    Place,
    Prevention,
    Scelle,
    SourceInfo,
    most_serious,
)
from gateway.rules import decode_base64
from mappings.xmlread import Reader, parse_date, parse_datetime

NAMESPACE = "urn:saisine:gendarmerie:procedure:v1"
MAPPING_VERSION = "gendarmerie-v1.0"
R = Reader(NAMESPACE)

_KINDS = {"PROCEDURE_INITIALE": MessageKind.INITIALE, "COMPLEMENT": MessageKind.COMPLEMENT}


def read_header(root: etree._Element) -> MessageHeader:
    """Identifiers of the message, best effort: the document may be invalid."""
    sent = R.text(root, "Envelope/SentAt")
    try:
        sent_at = parse_datetime(sent) if sent else None
    except ValueError:
        sent_at = None
    return MessageHeader(
        message_id=R.text(root, "Envelope/MessageId"),
        kind=R.text(root, "Envelope/MessageType"),
        unit_code=R.text(root, "Identification/Unit/Code"),
        procedure_number=R.text(root, "Identification/ProcedureNumber"),
        tribunal_code=R.text(root, "Cadre/Tribunal/Code"),
        sent_at=sent_at,
    )


# ---------------------------------------------------------------- facts


def _must(value: Value[str] | None) -> Value[str]:
    if value is None:
        raise ValueError("required element missing: the schema should have refused it")
    return value


def _must_dt(root: etree._Element, path: str) -> Value:  # type: ignore[type-arg]
    value = R.value_dt(root, path)
    if value is None:
        raise ValueError(f"{path} missing: the schema should have refused it")
    return value


def _person_fact(el: etree._Element) -> PersonFact:
    natural = etree.QName(el).localname == "NaturalPerson"
    role = CourtRole[R.req(el, "Role")]
    return PersonFact(id=R.attr(el, "id"), role=role.value, natural=natural)


def _custody_fact(el: etree._Element) -> CustodyFact:
    return CustodyFact(
        person_ref=R.attr(el, "personRef"),
        start=_must_dt(el, "Start"),
        end=R.value_dt(el, "End"),
        extensions=[_must_dt(ext, "At") for ext in R.all(el, "Extensions/Extension")],
    )


def _piece_fact(el: etree._Element) -> PieceFact:
    content = R.el(el, "Content")
    return PieceFact(
        number=R.attr(el, "number"),
        sha256=R.req(el, "Sha256"),
        size=int(R.req(el, "Size")),
        content=decode_base64(content.text or "") if content is not None else None,
    )


def _dated(root: etree._Element) -> list[Value]:  # type: ignore[type-arg]
    """Every date and date-time of the message, for the 'not in the future' rule."""
    names = ("SentAt", "SaisineDate", "Start", "End", "At", "DateTime", "SeizedAt", "DecidedAt")
    values: list[Value] = []  # type: ignore[type-arg]
    for name in names:
        values += [
            Value(parse_datetime(e.text), loc(e)) for e in root.iter(f"{{{NAMESPACE}}}{name}") if e.text
        ]
    values += [Value(parse_date(e.text), loc(e)) for e in root.iter(f"{{{NAMESPACE}}}BirthDate") if e.text]
    return values


def read_facts(root: etree._Element) -> ProcedureFacts:
    """The facts the business rules check, with their locations."""
    reason = R.text(root, "NoMisEnCauseReason/Code")
    return ProcedureFacts(
        kind=_KINDS[R.req(root, "Envelope/MessageType")],
        sent_at=_must_dt(root, "Envelope/SentAt"),
        saisine_at=_must_dt(root, "Cadre/SaisineDate"),
        faits_start=R.value_dt(root, "Faits/Start"),
        faits_end=R.value_dt(root, "Faits/End"),
        no_mis_en_cause_reason=reason,
        persons=[_person_fact(p) for p in R.all(root, "Persons/*")],
        infractions=[
            InfractionFact(
                id=R.attr(i, "id"),
                natinf=_must(R.value(i, "Natinf")),
                nature=Value(Nature[R.req(i, "Nature")], loc(_el(i, "Nature"))),
            )
            for i in R.all(root, "Infractions/Infraction")
        ],
        charged=[R.attr(c, "personRef") for c in R.all(root, "Infractions/Infraction/Charges/Charge")],
        person_refs=[R.attr(m, "personRef") for m in R.all(root, "Measures/Measure")],
        custody=[_custody_fact(g) for g in R.all(root, "GardesAVue/GardeAVue")],
        arrested=[
            R.attr(p, "id") for p in R.all(root, "Persons/NaturalPerson") if R.el(p, "Arrest") is not None
        ],
        infraction_refs=[R.attr(s, "infractionRef") for s in R.all(root, "Scelles/Scelle")],
        communes=[Value((e.text or "").strip(), loc(e)) for e in root.iter(f"{{{NAMESPACE}}}CommuneInsee")],
        dates=_dated(root),
        legal_ids=[
            LegalIdFact(siren=_must(R.value(p, "Siren")), siret=R.value(p, "Siret"))
            for p in R.all(root, "Persons/LegalPerson")
        ],
        scelle_numbers=[R.attr(s, "number") for s in R.all(root, "Scelles/Scelle")],
        pieces=[_piece_fact(p) for p in R.all(root, "Pieces/Piece")],
    )


def _el(parent: etree._Element, path: str) -> etree._Element:
    found = R.el(parent, path)
    if found is None:
        raise ValueError(f"{path} missing: the schema should have refused it")
    return found


# ---------------------------------------------------------------- mapping


def _address(el: etree._Element | None) -> Address | None:
    if el is None:
        return None
    return Address(
        lines=R.texts(el, "Line"),
        postal_code=R.text(el, "PostalCode"),
        commune_insee=R.text(el, "CommuneInsee"),
        commune_name=R.text(el, "CommuneName"),
        country=R.text(el, "Country"),
    )


def _place(el: etree._Element) -> Place:
    return Place(
        commune_insee=R.req(el, "CommuneInsee"),
        commune_name=R.text(el, "CommuneName"),
        address=_address(R.el(el, "Address")),
    )


def _natural(el: etree._Element) -> NaturalPerson:
    doc = R.el(el, "IdentityDocument")
    arrest = R.el(el, "Arrest")
    birth = R.text(el, "BirthDate")
    return NaturalPerson(
        birth_name=R.req(el, "BirthName"),
        usage_name=R.text(el, "UsageName"),
        given_names=R.texts(el, "GivenNames/GivenName"),
        aliases=R.texts(el, "Aliases/Alias"),
        sex=R.text(el, "Sex"),
        birth_date=parse_date(birth) if birth else None,
        birth_commune_insee=R.text(el, "BirthPlace/CommuneInsee"),
        birth_country=R.text(el, "BirthPlace/Country"),
        nationality=R.text(el, "Nationality"),
        address=_address(R.el(el, "Address")),
        profession=R.text(el, "Profession"),
        identity_document=None
        if doc is None
        else IdentityDocument(
            kind=R.req(doc, "Type").lower(),
            number=R.req(doc, "Number"),
            issuing_country=R.text(doc, "IssuingCountry"),
        ),
        arrest=None
        if arrest is None
        else Arrest(at=parse_datetime(R.req(arrest, "DateTime")), place=_place(_el(arrest, "Place"))),
    )


def _legal(el: etree._Element) -> LegalPerson:
    return LegalPerson(
        company_name=R.req(el, "CompanyName"),
        legal_form=R.text(el, "LegalForm"),
        siren=R.req(el, "Siren"),
        siret=R.text(el, "Siret"),
        head_office=_address(R.el(el, "HeadOffice")),
    )


def _partie(el: etree._Element) -> Partie:
    natural = etree.QName(el).localname == "NaturalPerson"
    return Partie(
        ref=str(el.get("id")),
        role=CourtRole[R.req(el, "Role")],
        natural=_natural(el) if natural else None,
        legal=None if natural else _legal(el),
    )


def _infraction(el: etree._Element) -> Infraction:
    return Infraction(
        ref=str(el.get("id")),
        natinf=R.req(el, "Natinf").lstrip("0") or "0",
        qualification=R.req(el, "Qualification"),
        nature=Nature[R.req(el, "Nature")],
        counts=int(R.text(el, "Counts") or 1),
    )


def _preventions(root: etree._Element, faits: Faits | None) -> list[Prevention]:
    lines = []
    for el in R.all(root, "Infractions/Infraction"):
        inf = _infraction(el)
        for charge in R.all(el, "Charges/Charge"):
            lines.append(
                Prevention(
                    partie_ref=str(charge.get("personRef")),
                    infraction_ref=inf.ref,
                    natinf=inf.natinf,
                    qualification=inf.qualification,
                    nature=inf.nature,
                    participation=Participation[str(charge.get("participation"))],
                    counts=inf.counts,
                    faits_start=faits.start if faits else None,
                    faits_end=faits.end if faits else None,
                    place=faits.place if faits else None,
                )
            )
    return lines


def _garde_a_vue(el: etree._Element) -> Mesure:
    return Mesure(
        partie_ref=str(el.get("personRef")),
        kind=MeasureKind.GARDE_A_VUE,
        decided_at=parse_datetime(R.req(el, "Start")),
        place=R.text(el, "Place"),
        end=R.dt(el, "End"),
        extensions=[
            Extension(at=parse_datetime(R.req(x, "At")), authorised_by=R.req(x, "AuthorisedBy"))
            for x in R.all(el, "Extensions/Extension")
        ],
        minor=R.req(el, "Minor") in ("true", "1"),
        outcome=(R.text(el, "Outcome") or "").lower() or None,
    )


def _measure(el: etree._Element) -> Mesure:
    return Mesure(
        partie_ref=str(el.get("personRef")),
        kind=MeasureKind[R.req(el, "Type")],
        decided_at=parse_datetime(R.req(el, "DecidedAt")),
        hearing_at=R.dt(el, "HearingAt"),
        details=R.text(el, "Details"),
    )


def _scelle(el: etree._Element) -> Scelle:
    return Scelle(
        number=str(el.get("number")),
        nature=R.req(el, "Nature"),
        vehicle_registration=R.text(el, "VehicleRegistration"),
        seized_at=parse_datetime(R.req(el, "SeizedAt")),
        seizure_place=_place(_el(el, "SeizurePlace")),
        custodian=R.req(el, "Custodian"),
        infraction_ref=str(el.get("infractionRef")),
    )


def _piece(el: etree._Element) -> Piece:
    content = R.el(el, "Content")
    return Piece(
        number=int(str(el.get("number"))),
        title=R.req(el, "Title"),
        media_type=R.req(el, "MediaType"),
        sha256=R.req(el, "Sha256"),
        size=int(R.req(el, "Size")),
        inline=content is not None,
        reference=R.text(el, "Reference"),
    )


def _faits(root: etree._Element) -> Faits | None:
    el = R.el(root, "Faits")
    if el is None:
        return None
    return Faits(
        start=parse_datetime(R.req(el, "Start")),
        end=R.dt(el, "End"),
        place=_place(_el(el, "Place")),
        summary=R.req(el, "Summary"),
    )


def _originator(root: etree._Element) -> Originator:
    ident = _el(root, "Identification")
    return Originator(
        agency="gendarmerie",
        unit_code=R.req(ident, "Unit/Code"),
        unit_name=R.req(ident, "Unit/Name"),
        officer_name=R.req(ident, "Officer/Name"),
        officer_quality=R.req(ident, "Officer/Quality"),
        officer_rank=R.text(ident, "Officer/Rank"),
        officer_id=R.text(ident, "Officer/Matricule"),
    )


def _source(root: etree._Element) -> SourceInfo:
    return SourceInfo(
        agency="gendarmerie",
        format="gendarmerie/v1",
        schema_version=str(root.get("schemaVersion")),
        mapping_version=MAPPING_VERSION,
        message_id=R.req(root, "Envelope/MessageId").lower(),
        sent_at=parse_datetime(R.req(root, "Envelope/SentAt")),
        software=f"{R.req(root, 'Envelope/Software/Name')} {R.req(root, 'Envelope/Software/Version')}",
    )


def map_case(root: etree._Element) -> Affaire:
    """The court case for a schema-valid, rule-valid gendarmerie v1 message."""
    faits = _faits(root)
    infractions = [_infraction(i) for i in R.all(root, "Infractions/Infraction")]
    scelles = [_scelle(s) for s in R.all(root, "Scelles/Scelle")]
    mesures = [_garde_a_vue(g) for g in R.all(root, "GardesAVue/GardeAVue")]
    mesures += [_measure(m) for m in R.all(root, "Measures/Measure")]
    return Affaire(
        kind=_KINDS[R.req(root, "Envelope/MessageType")],
        tribunal_code=R.req(root, "Cadre/Tribunal/Code"),
        tribunal_name=R.req(root, "Cadre/Tribunal/Name"),
        procedure_numbers=[R.req(root, "Identification/ProcedureNumber")],
        originator=_originator(root),
        cadre=Cadre[R.req(root, "Cadre/Type")],
        saisine_at=parse_datetime(R.req(root, "Cadre/SaisineDate")),
        faits=faits,
        nature=most_serious([i.nature for i in infractions]),
        has_scelles=bool(scelles),
        no_mis_en_cause_reason=(R.text(root, "NoMisEnCauseReason/Code") or "").lower() or None,
        infractions=infractions,
        parties=[_partie(p) for p in R.all(root, "Persons/*")],
        preventions=_preventions(root, faits),
        mesures=mesures,
        scelles=scelles,
        pieces=[_piece(p) for p in R.all(root, "Pieces/Piece")],
        source=_source(root),
    )

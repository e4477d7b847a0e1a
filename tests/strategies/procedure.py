"""Coherent procedures, initial or complément, that every business rule accepts.

``procedures()`` draws a procedure: dates in a fixed past window (faits before saisine before
sending, nothing in the future), references that resolve, only mis en cause charged or held,
gardes à vue with their extensions inside their period, NATINF codes in force with their
nature, valid SIREN/SIRET, pièces whose digest and size match their inline content. Optional
parts are present or absent and repeated parts repeated up to what the schema allows.

The blocks are drawn by plain functions over module-level strategies (building strategies per
draw would triple the cost of an example).
"""

from __future__ import annotations

import functools
import hashlib
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import TypeVar

from hypothesis import strategies as st

from gateway.model import Cadre, CourtRole, MeasureKind, MessageKind, Participation
from tests.strategies.spec import (
    AddressSpec,
    ArrestSpec,
    ChargeSpec,
    ExtensionSpec,
    FaitsSpec,
    GardeAVueSpec,
    IdentityDocumentSpec,
    InfractionSpec,
    LegalPersonSpec,
    MeasureSpec,
    NaturalPersonSpec,
    OfficerSpec,
    PersonSpec,
    PieceSpec,
    PlaceSpec,
    ProcedureSpec,
    ScelleSpec,
)
from tests.strategies.values import (
    COMMUNES,
    COUNTRIES,
    DIGITS,
    EARLIEST,
    GIVEN_NAMES,
    HEX,
    LATEST,
    LOCAL_IDS,
    NATINF_IN_FORCE,
    SCELLE_NUMBERS,
    SENDER_OFFSETS_MINUTES,
    SIRENS,
    SURNAMES,
    VEHICLE_REGISTRATIONS,
    chars,
    joined,
    moment,
    rarely,
    siret,
    texts,
)

T = TypeVar("T")
Events = tuple[datetime, datetime]  # when things can happen: from the faits to the sending

_BOOL = st.booleans()
_COUNTRIES = st.sampled_from(COUNTRIES)
_POSTAL_CODES = chars(DIGITS, 5)
_LINES = st.lists(texts(60), max_size=3)
_IDENTITY_DOCUMENTS = st.builds(
    IdentityDocumentSpec,
    kind=st.sampled_from(("carte_identite", "passeport", "titre_sejour", "permis_conduire", "autre")),
    number=chars("ABCDEFGHJKLMNPRSTUVWXYZ0123456789", 6, 12),
    issuing_country=st.none() | _COUNTRIES,
)
_GIVEN_NAME_LISTS = st.lists(GIVEN_NAMES, min_size=1, max_size=10)
_ALIAS_LISTS = st.lists(texts(40), max_size=20)
_BIRTH_PLACES = st.sampled_from(("none", "commune", "country"))
_LEGAL_FORMS = st.sampled_from(("SAS", "SARL", "SA", "EURL", "SASU", "SCI", "SNC", "Association loi 1901"))
_TRADES = st.sampled_from(("Transports", "Boulangerie", "Garage", "Société", "Aéroclub", "L'Atelier"))
_NATINF = st.sampled_from(NATINF_IN_FORCE)
_COUNTS = st.integers(1, 50)
_PARTICIPATIONS = st.sampled_from(Participation)
_OUTCOMES = st.sampled_from(("libere", "defere"))
_EXTENSION_COUNTS = st.integers(0, 4)
_MEASURE_KINDS = st.sampled_from([k for k in MeasureKind if k != MeasureKind.GARDE_A_VUE])
_MEDIA_TYPES = st.sampled_from(
    ("application/pdf", "text/plain", "image/jpeg", "audio/mpeg", "application/vnd.oasis.opendocument.text")
)
_PIECE_WAYS = st.sampled_from(("inline", "reference", "listed"))
_CONTENTS = st.binary(max_size=600)
_SHA256 = chars(HEX, 64)
_SIZES = st.integers(0, 2**40)
_PIECE_NUMBERS = st.lists(st.integers(1, 10**6), max_size=5, unique=True)
_SCELLE_NUMBER_LISTS = st.lists(SCELLE_NUMBERS, max_size=5, unique=True)
_PERSON_KINDS = st.lists(st.sampled_from(("natural", "legal", "natural")), max_size=8)
_OFFSETS = st.sampled_from(SENDER_OFFSETS_MINUTES)
_VERSIONS = joined(chars(DIGITS, 1, 2), ".", chars(DIGITS, 1, 2), ".", chars(DIGITS, 1, 3))
_SOFTWARE = st.sampled_from(("LRPGN", "LRPGN NG", "Pulsar")) | texts(40)
_RANKS = st.sampled_from(("Gendarme", "Maréchal des logis-chef", "Adjudant", "Capitaine"))
_REASONS = st.sampled_from(("auteur_inconnu", "recherches_en_cours", "deces"))
_SEXES = st.sampled_from(("M", "F"))
_DAYS_BEFORE = st.integers(0, 80 * 366)
_DAYS_BEFORE_SAISINE = st.integers(0, 30)
_INFRACTION_COUNTS = st.integers(0, 3)
_MEASURE_COUNTS = st.integers(0, 2)
_KINDS = st.sampled_from(MessageKind)
_CADRES = st.sampled_from(Cadre)
_QUALITIES = st.sampled_from(("OPJ", "APJ"))
_UNIT_CODES = chars(DIGITS, 5, 8)
_MATRICULES = chars(DIGITS, 6, 8)
_UUIDS = st.uuids()
_PROCEDURE_NUMBERS = st.integers(1, 99_999)

SOURCE_ROLES = (CourtRole.MIS_EN_CAUSE, CourtRole.VICTIME, CourtRole.TEMOIN, CourtRole.PLAIGNANT)


@functools.cache
def _masks(count: int) -> st.SearchStrategy[int]:
    return st.integers(0, 2**count - 1)


def present(draw: st.DrawFn, *parts: str) -> set[str]:
    """Which optional parts are present, drawn as one choice (it shrinks towards none of them)."""
    mask = draw(_masks(len(parts)))
    return {part for i, part in enumerate(parts) if mask >> i & 1}


def address(draw: st.DrawFn) -> AddressSpec:
    """Every part optional, as in the schema (an empty address is valid)."""
    has = present(draw, "lines", "postal code", "commune", "commune name", "country")
    return AddressSpec(
        lines=tuple(draw(_LINES)) if "lines" in has else (),
        postal_code=draw(_POSTAL_CODES) if "postal code" in has else None,
        commune_insee=draw(COMMUNES) if "commune" in has else None,
        commune_name=draw(SURNAMES) if "commune name" in has else None,
        country=draw(_COUNTRIES) if "country" in has else None,
    )


def place(draw: st.DrawFn) -> PlaceSpec:
    has = present(draw, "name", "address")
    return PlaceSpec(
        draw(COMMUNES),
        draw(SURNAMES) if "name" in has else None,
        address(draw) if "address" in has else None,
    )


_NATURAL_PARTS = (
    "usage name",
    "sex",
    "birth date",
    "nationality",
    "address",
    "profession",
    "identity document",
    "arrest",
)


def natural_person(draw: st.DrawFn, id: str, role: CourtRole, events: Events) -> NaturalPersonSpec:
    has = present(draw, *_NATURAL_PARTS)
    born = draw(_BIRTH_PLACES)
    latest_birth = (events[0] - timedelta(days=366 * 10)).date()
    return NaturalPersonSpec(
        id=id,
        role=role,
        birth_name=draw(SURNAMES),
        usage_name=draw(SURNAMES) if "usage name" in has else None,
        given_names=tuple(draw(_GIVEN_NAME_LISTS)),
        aliases=tuple(draw(_ALIAS_LISTS)) if rarely(draw, 4) else (),
        sex=draw(_SEXES) if "sex" in has else None,
        birth_date=latest_birth - timedelta(days=draw(_DAYS_BEFORE)) if "birth date" in has else None,
        birth_commune_insee=draw(COMMUNES) if born == "commune" else None,
        birth_country=draw(_COUNTRIES) if born == "country" else None,
        nationality=draw(_COUNTRIES) if "nationality" in has else None,
        address=address(draw) if "address" in has else None,
        profession=draw(texts(60)) if "profession" in has else None,
        identity_document=draw(_IDENTITY_DOCUMENTS) if "identity document" in has else None,
        arrest=ArrestSpec(moment(draw, *events, _tz(events)), place(draw))
        if "arrest" in has and role == CourtRole.MIS_EN_CAUSE  # only a mis en cause is arrested
        else None,
    )


def legal_person(draw: st.DrawFn, id: str, role: CourtRole) -> LegalPersonSpec:
    has = present(draw, "legal form", "siret", "head office")
    siren = draw(SIRENS)
    return LegalPersonSpec(
        id=id,
        role=role,
        company_name=f"{draw(_TRADES)} {draw(SURNAMES)}",
        legal_form=draw(_LEGAL_FORMS) if "legal form" in has else None,
        siren=siren,
        siret=siret(draw, siren) if "siret" in has else None,
        head_office=address(draw) if "head office" in has else None,
    )


def infraction(draw: st.DrawFn, id: str, mis_en_cause: list[str]) -> InfractionSpec:
    """An offence in force, charged (or not) to mis en cause only."""
    entry = draw(_NATINF)
    charged = [p for p in mis_en_cause if draw(_BOOL)]
    return InfractionSpec(
        id=id,
        natinf=entry.code,
        qualification=entry.qualification,
        nature=entry.nature,
        counts=draw(_COUNTS) if draw(_BOOL) else None,
        charges=tuple(ChargeSpec(p, draw(_PARTICIPATIONS)) for p in charged),
    )


def _age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _tz(events: Events) -> tzinfo:
    zone = events[0].tzinfo
    assert zone is not None
    return zone


def garde_a_vue(draw: st.DrawFn, person: NaturalPersonSpec, events: Events) -> GardeAVueSpec:
    """Start, an end after the start (or still running), up to four extensions inside the period."""
    tz = _tz(events)
    start = moment(draw, *events, tz)
    end = None
    if events[1] - start >= timedelta(seconds=1) and draw(_BOOL):
        end = moment(draw, start + timedelta(seconds=1), min(events[1], start + timedelta(hours=144)), tz)
    at = sorted(moment(draw, start, end or events[1], tz) for _ in range(draw(_EXTENSION_COUNTS)))
    birth = person.birth_date
    return GardeAVueSpec(
        person_id=person.id,
        place=draw(texts(120)),
        start=start,
        extensions=tuple(ExtensionSpec(when, draw(texts(120))) for when in at),
        end=end,
        minor=_age_on(birth, start.date()) < 18 if birth else draw(_BOOL),
        outcome=draw(_OUTCOMES) if draw(_BOOL) else None,
    )


def measure(draw: st.DrawFn, person_id: str, events: Events) -> MeasureSpec:
    tz = _tz(events)
    decided = moment(draw, *events, tz)
    # a hearing is usually ahead, possibly after today: the rules do not date-check it
    hearing = moment(draw, decided, decided + timedelta(days=200), tz) if draw(_BOOL) else None
    return MeasureSpec(
        person_id, draw(_MEASURE_KINDS), decided, hearing, draw(texts(500)) if draw(_BOOL) else None
    )


def scelle(draw: st.DrawFn, number: str, infraction_ids: list[str], events: Events) -> ScelleSpec:
    return ScelleSpec(
        number=number,
        infraction_id=draw(st.sampled_from(infraction_ids)),
        nature=draw(texts(120)),
        vehicle_registration=draw(VEHICLE_REGISTRATIONS) if draw(_BOOL) else None,
        seized_at=moment(draw, *events, _tz(events)),
        seizure_place=place(draw),
        custodian=draw(texts(120)),
    )


def piece(draw: st.DrawFn, number: int, unit_code: str) -> PieceSpec:
    """Inline (digest and size of the content), by reference, or listed only (any digest)."""
    way = draw(_PIECE_WAYS)
    content = draw(_CONTENTS) if way == "inline" else None
    references = (
        f"urn:saisine:piece:{unit_code}:{number}",
        f"https://depot.example.gouv.fr/pieces/{unit_code}/{number}.pdf",
    )
    return PieceSpec(
        number=number,
        title=draw(texts(120)),
        media_type=draw(_MEDIA_TYPES),
        sha256=draw(_SHA256) if content is None else hashlib.sha256(content).hexdigest(),
        size=draw(_SIZES) if content is None else len(content),
        content=content,
        reference=references[draw(_BOOL)] if way == "reference" else None,
    )


def faits(draw: st.DrawFn, saisine_at: datetime, sent_at: datetime, tz: tzinfo) -> FaitsSpec:
    start = moment(draw, saisine_at - timedelta(days=400), saisine_at, tz)
    return FaitsSpec(
        start=start,
        end=moment(draw, start, sent_at, tz) if draw(_BOOL) else None,
        place=place(draw),
        summary=draw(texts(500)),
    )


@functools.cache
def _unique_ids(count: int) -> st.SearchStrategy[list[str]]:
    return st.lists(LOCAL_IDS, min_size=count, max_size=count, unique=True)


def persons(
    draw: st.DrawFn, kinds: list[str], ids: list[str], roles: st.SearchStrategy[CourtRole], events: Events
) -> list[PersonSpec]:
    drawn: list[PersonSpec] = []
    for kind, id in zip(kinds, ids, strict=True):
        role = draw(roles)
        natural = kind == "natural"
        drawn.append(natural_person(draw, id, role, events) if natural else legal_person(draw, id, role))
    return drawn


@st.composite
def procedures(draw: st.DrawFn, roles: tuple[CourtRole, ...] = SOURCE_ROLES) -> ProcedureSpec:
    """A coherent procedure (initial or complément) that every rule accepts."""
    tz = timezone(timedelta(minutes=draw(_OFFSETS)))
    kind = draw(_KINDS)
    sent_at = moment(draw, EARLIEST + timedelta(days=400), LATEST, tz)
    saisine_at = moment(draw, sent_at - timedelta(days=60), sent_at, tz)
    the_faits = faits(draw, saisine_at, sent_at, tz) if not rarely(draw, 4) else None
    start = the_faits.start if the_faits else saisine_at - timedelta(days=draw(_DAYS_BEFORE_SAISINE))
    events = (start, sent_at)

    kinds = draw(_PERSON_KINDS)
    n_infractions = draw(_INFRACTION_COUNTS) + (kind == MessageKind.INITIALE)
    ids = draw(_unique_ids(len(kinds) + n_infractions))  # one namespace for persons and offences
    the_persons = persons(draw, kinds, ids[: len(kinds)], st.sampled_from(roles), events)
    mec = [p.id for p in the_persons if p.role == CourtRole.MIS_EN_CAUSE]
    held = [
        p
        for p in the_persons
        if isinstance(p, NaturalPersonSpec) and p.role == CourtRole.MIS_EN_CAUSE and draw(_BOOL)
    ]
    the_infractions = [infraction(draw, id, mec) for id in ids[len(kinds) :]]
    reason = None
    if not mec and (kind == MessageKind.INITIALE or draw(_BOOL)):
        reason = draw(_REASONS)
    numbers = draw(_SCELLE_NUMBER_LISTS) if the_infractions else []
    unit_code = draw(_UNIT_CODES)
    return ProcedureSpec(
        message_id=str(draw(_UUIDS)),
        kind=kind,
        software_name=draw(_SOFTWARE),
        software_version=draw(_VERSIONS),
        sent_at=sent_at,
        procedure_number=f"{draw(_PROCEDURE_NUMBERS):05d}/{saisine_at.year}",
        unit_code=unit_code,
        unit_name=f"Brigade de {draw(SURNAMES)}",
        officer=OfficerSpec(
            quality=draw(_QUALITIES),
            name=f"{draw(GIVEN_NAMES)} {draw(SURNAMES)}",
            matricule=draw(_MATRICULES),
            rank=draw(_RANKS) if draw(_BOOL) else None,
        ),
        cadre=draw(_CADRES),
        saisine_at=saisine_at,
        tribunal_code=f"TJ{draw(COMMUNES)}",
        tribunal_name=f"Tribunal judiciaire de {draw(SURNAMES)}",
        faits=the_faits,
        infractions=tuple(the_infractions),
        persons=tuple(the_persons),
        no_mis_en_cause_reason=reason,
        no_mis_en_cause_comment=draw(texts(500)) if reason and draw(_BOOL) else None,
        gardes_a_vue=tuple(garde_a_vue(draw, p, events) for p in held),
        measures=tuple(measure(draw, p, events) for p in mec for _ in range(draw(_MEASURE_COUNTS))),
        scelles=tuple(scelle(draw, n, [i.id for i in the_infractions], events) for n in numbers),
        pieces=tuple(piece(draw, n, unit_code) for n in draw(_PIECE_NUMBERS)),
    )

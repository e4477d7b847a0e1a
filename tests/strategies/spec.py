"""A procedure's facts in the court's terms, whatever the sender format: what the court must receive.

Values are canonical (NATINF without leading zeros, codes without padding, court vocabularies);
a format's strategy module chooses how to write them as its schema allows, and the property
tests compare the mapped court case with the spec.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from gateway.model import Cadre, CourtRole, MeasureKind, MessageKind, Nature, Participation

T = TypeVar("T")


@dataclass(frozen=True)
class AddressSpec:
    lines: tuple[str, ...] = ()
    postal_code: str | None = None
    commune_insee: str | None = None
    commune_name: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class PlaceSpec:
    commune_insee: str
    commune_name: str | None = None
    address: AddressSpec | None = None


@dataclass(frozen=True)
class IdentityDocumentSpec:
    kind: str  # court value: carte_identite, passeport, titre_sejour, permis_conduire, autre
    number: str
    issuing_country: str | None = None


@dataclass(frozen=True)
class ArrestSpec:
    at: datetime
    place: PlaceSpec


@dataclass(frozen=True)
class NaturalPersonSpec:
    id: str
    role: CourtRole
    birth_name: str
    given_names: tuple[str, ...]
    usage_name: str | None = None
    aliases: tuple[str, ...] = ()
    sex: str | None = None  # "M" or "F"
    birth_date: date | None = None
    birth_commune_insee: str | None = None
    birth_country: str | None = None
    nationality: str | None = None
    address: AddressSpec | None = None
    profession: str | None = None
    identity_document: IdentityDocumentSpec | None = None
    arrest: ArrestSpec | None = None


@dataclass(frozen=True)
class LegalPersonSpec:
    id: str
    role: CourtRole
    company_name: str
    siren: str
    legal_form: str | None = None
    siret: str | None = None
    head_office: AddressSpec | None = None


PersonSpec = NaturalPersonSpec | LegalPersonSpec


@dataclass(frozen=True)
class ChargeSpec:
    person_id: str
    participation: Participation


@dataclass(frozen=True)
class InfractionSpec:
    id: str
    natinf: str  # canonical: no leading zeros
    qualification: str
    nature: Nature
    counts: int | None = None  # None: not written (the court reads 1)
    charges: tuple[ChargeSpec, ...] = ()


@dataclass(frozen=True)
class ExtensionSpec:
    at: datetime
    authorised_by: str


@dataclass(frozen=True)
class GardeAVueSpec:
    person_id: str
    place: str
    start: datetime
    minor: bool
    extensions: tuple[ExtensionSpec, ...] = ()
    end: datetime | None = None
    outcome: str | None = None  # court value: libere, defere


@dataclass(frozen=True)
class MeasureSpec:
    person_id: str
    kind: MeasureKind  # never GARDE_A_VUE: gardes à vue are GardeAVueSpec
    decided_at: datetime
    hearing_at: datetime | None = None
    details: str | None = None


@dataclass(frozen=True)
class ScelleSpec:
    number: str
    infraction_id: str
    nature: str
    seized_at: datetime
    seizure_place: PlaceSpec
    custodian: str
    vehicle_registration: str | None = None


@dataclass(frozen=True)
class PieceSpec:
    number: int
    title: str
    media_type: str
    sha256: str
    size: int
    content: bytes | None = None  # sent inline
    reference: str | None = None  # or sent by reference (or neither)


@dataclass(frozen=True)
class FaitsSpec:
    start: datetime
    place: PlaceSpec
    summary: str
    end: datetime | None = None


@dataclass(frozen=True)
class OfficerSpec:
    quality: str  # OPJ or APJ
    name: str
    matricule: str
    rank: str | None = None


@dataclass(frozen=True)
class ProcedureSpec:
    message_id: str  # UUID, lower case
    kind: MessageKind
    software_name: str
    software_version: str
    sent_at: datetime
    procedure_number: str  # NNNNN/AAAA
    unit_code: str
    unit_name: str
    officer: OfficerSpec
    cadre: Cadre
    saisine_at: datetime
    tribunal_code: str
    tribunal_name: str
    faits: FaitsSpec | None = None
    infractions: tuple[InfractionSpec, ...] = ()
    persons: tuple[PersonSpec, ...] = ()
    no_mis_en_cause_reason: str | None = None  # court value: auteur_inconnu, recherches_en_cours, deces
    no_mis_en_cause_comment: str | None = None
    gardes_a_vue: tuple[GardeAVueSpec, ...] = ()
    measures: tuple[MeasureSpec, ...] = ()
    scelles: tuple[ScelleSpec, ...] = ()
    pieces: tuple[PieceSpec, ...] = ()

    def person_ids(self) -> set[str]:
        return {p.id for p in self.persons}

    def ids(self) -> set[str]:
        """Every identifier of a person or an offence (one namespace in the rules)."""
        return self.person_ids() | {i.id for i in self.infractions}

    def mis_en_cause(self, natural_only: bool = False) -> list[PersonSpec]:
        return [
            p
            for p in self.persons
            if p.role == CourtRole.MIS_EN_CAUSE and (isinstance(p, NaturalPersonSpec) or not natural_only)
        ]


def map_datetimes(value: T, change: Callable[[datetime], datetime]) -> T:
    """``value`` (a spec or any part of one) with ``change`` applied to every date-time in it.

    Dates (birth dates) are left alone. Applying the same shift to every moment keeps every
    order the rules check, which is how a format moves a procedure onto a daylight-saving change.
    """
    if isinstance(value, datetime):
        return change(value)  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(map_datetimes(item, change) for item in value)  # type: ignore[return-value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: map_datetimes(getattr(value, f.name), change) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)  # type: ignore[return-value]
    return value


def moments_of(spec: ProcedureSpec) -> list[datetime]:
    """Every date-time of the procedure (in no particular order)."""
    found: list[datetime] = []
    map_datetimes(spec, lambda moment: found.append(moment) or moment)  # type: ignore[func-returns-value]
    return found

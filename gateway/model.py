"""The court case model (affaire): the one shape every sender format maps to.

It mirrors what the bureau d'ordre registers (see docs/contracts.md and
``schemas/court/v1/affaire.xsd``, whose element names are these field names).
The registry assigns the numéro parquet; until then it is ``None``.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MessageKind(StrEnum):
    """Whether a message opens a procedure or supplements one already sent."""

    INITIALE = "initiale"
    COMPLEMENT = "complement"


class Cadre(StrEnum):
    ENQUETE_PRELIMINAIRE = "enquete_preliminaire"
    FLAGRANCE = "flagrance"
    COMMISSION_ROGATOIRE = "commission_rogatoire"


class Nature(StrEnum):
    CRIME = "crime"
    DELIT = "delit"
    CONTRAVENTION_1 = "contravention_1"
    CONTRAVENTION_2 = "contravention_2"
    CONTRAVENTION_3 = "contravention_3"
    CONTRAVENTION_4 = "contravention_4"
    CONTRAVENTION_5 = "contravention_5"


class CourtRole(StrEnum):
    MIS_EN_CAUSE = "mis_en_cause"
    VICTIME = "victime"
    TEMOIN = "temoin"
    PLAIGNANT = "plaignant"
    CIVILEMENT_RESPONSABLE = "civilement_responsable"


class Participation(StrEnum):
    AUTEUR = "auteur"
    COAUTEUR = "coauteur"
    COMPLICE = "complice"


class MeasureKind(StrEnum):
    GARDE_A_VUE = "garde_a_vue"
    CONTROLE_JUDICIAIRE = "controle_judiciaire"
    CONVOCATION_OPJ = "convocation_opj"
    DEFEREMENT = "deferement"


class Address(_Model):
    lines: list[str] = Field(default_factory=list)
    postal_code: str | None = None
    commune_insee: str | None = None
    commune_name: str | None = None
    country: str | None = None


class Place(_Model):
    commune_insee: str
    commune_name: str | None = None
    address: Address | None = None


class Originator(_Model):
    """The unit or service that wrote the procedure, and its signing officer."""

    agency: str
    unit_code: str
    unit_name: str
    officer_name: str
    officer_quality: str
    officer_rank: str | None = None
    officer_id: str | None = None


class IdentityDocument(_Model):
    kind: str
    number: str
    issuing_country: str | None = None


class Arrest(_Model):
    at: datetime
    place: Place


class NaturalPerson(_Model):
    birth_name: str
    usage_name: str | None = None
    given_names: list[str]
    aliases: list[str] = Field(default_factory=list)
    sex: str | None = None
    birth_date: date | None = None
    birth_commune_insee: str | None = None
    birth_country: str | None = None
    nationality: str | None = None
    address: Address | None = None
    profession: str | None = None
    identity_document: IdentityDocument | None = None
    arrest: Arrest | None = None


class LegalPerson(_Model):
    company_name: str
    legal_form: str | None = None
    siren: str
    siret: str | None = None
    head_office: Address | None = None


class Partie(_Model):
    """A party to the affaire: exactly one of ``natural`` and ``legal`` is set."""

    ref: str
    role: CourtRole
    natural: NaturalPerson | None = None
    legal: LegalPerson | None = None


class Prevention(_Model):
    """One line per (mis en cause, offence): what the parquet will prosecute."""

    partie_ref: str
    infraction_ref: str
    natinf: str
    qualification: str
    nature: Nature
    participation: Participation
    counts: int = 1
    faits_start: datetime | None = None
    faits_end: datetime | None = None
    place: Place | None = None


class Infraction(_Model):
    """An offence as declared, kept even when no one is charged with it yet."""

    ref: str
    natinf: str
    qualification: str
    nature: Nature
    counts: int = 1


class Extension(_Model):
    at: datetime
    authorised_by: str


class Mesure(_Model):
    partie_ref: str
    kind: MeasureKind
    decided_at: datetime
    place: str | None = None
    end: datetime | None = None
    extensions: list[Extension] = Field(default_factory=list)
    minor: bool | None = None
    outcome: str | None = None
    hearing_at: datetime | None = None
    details: str | None = None


class Scelle(_Model):
    number: str
    nature: str
    vehicle_registration: str | None = None
    seized_at: datetime
    seizure_place: Place
    custodian: str
    infraction_ref: str


class Piece(_Model):
    number: int
    title: str
    media_type: str
    sha256: str
    size: int
    inline: bool = False
    reference: str | None = None


class Faits(_Model):
    start: datetime
    end: datetime | None = None
    place: Place
    summary: str


class SourceInfo(_Model):
    """Where the case came from: format, versions, the sender's message."""

    agency: str
    format: str
    schema_version: str
    mapping_version: str
    message_id: str
    sent_at: datetime
    software: str


class Affaire(_Model):
    """A pre-filled court case, as the bureau d'ordre will register it."""

    kind: MessageKind
    numero_parquet: str | None = None
    tribunal_code: str
    tribunal_name: str
    procedure_numbers: list[str]
    originator: Originator
    cadre: Cadre
    saisine_at: datetime
    faits: Faits | None = None
    nature: Nature | None = None
    has_scelles: bool
    no_mis_en_cause_reason: str | None = None
    infractions: list[Infraction] = Field(default_factory=list)
    parties: list[Partie] = Field(default_factory=list)
    preventions: list[Prevention] = Field(default_factory=list)
    mesures: list[Mesure] = Field(default_factory=list)
    scelles: list[Scelle] = Field(default_factory=list)
    pieces: list[Piece] = Field(default_factory=list)
    source: SourceInfo


NATURE_GRAVITY = {
    Nature.CONTRAVENTION_1: 1,
    Nature.CONTRAVENTION_2: 2,
    Nature.CONTRAVENTION_3: 3,
    Nature.CONTRAVENTION_4: 4,
    Nature.CONTRAVENTION_5: 5,
    Nature.DELIT: 6,
    Nature.CRIME: 7,
}


def most_serious(natures: list[Nature]) -> Nature | None:
    """The nature of an affaire is that of its most serious offence."""
    return max(natures, key=NATURE_GRAVITY.__getitem__, default=None)

"""Police procedure messages, v1 (``schemas/police/v1/procedure.xsd``), for property tests.

The same procedures as the gendarmerie's, written with the police's habits
(``docs/mappings/police-v1.md``): local date-times without offset in the message's time zone
(``fuseauHoraire``), with the ``heure="HIVER"`` indicator where the autumn hour repeats and
sometimes an agreeing one elsewhere; persons listed once and offences naming the persons charged
in ``auteurs``/``coauteurs``/``complices``; the police's code lists; ``PN-`` service codes and
seven-digit RIO matricules; the tribunal by the INSEE code of its seat; names as a keyboard types
them (decomposed accents, typographic apostrophes, doubled spaces, spaces around hyphens), given
names on one comma-separated line; a SIRET alone when it carries the SIREN; digests in capitals.

Procedures are drawn to the second (the format has no fractions), and now and then moved as a
whole onto an autumn daylight-saving change in Paris so that some of their moments fall in the
repeated hour. Two corruptions only this format can express break the rules on local times.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st
from lxml import etree

from gateway.model import CourtRole
from tests.strategies import FormatStrategy
from tests.strategies.procedure import SOURCE_ROLES, procedures
from tests.strategies.spec import (
    AddressSpec,
    GardeAVueSpec,
    InfractionSpec,
    LegalPersonSpec,
    MeasureSpec,
    NaturalPersonSpec,
    PersonSpec,
    PieceSpec,
    PlaceSpec,
    ProcedureSpec,
    ScelleSpec,
    map_datetimes,
    moments_of,
)
from tests.strategies.values import DIGITS, NOW, SURNAMES, chars, joined, rarely
from tests.strategies.xmlwriting import XmlWriter

NAMESPACE = "urn:saisine:police:procedure:v1"
ROLES = (*SOURCE_ROLES, CourtRole.CIVILEMENT_RESPONSABLE)
PARIS = "Europe/Paris"
ZONES = (
    PARIS,
    "America/Guadeloupe",
    "America/Martinique",
    "America/Cayenne",
    "Indian/Reunion",
    "Indian/Mayotte",
    "America/Miquelon",
)

# The police's code for each court value (docs/mappings/police-v1.md, "Vocabularies").
_KINDS = {"initiale": "INITIAL", "complement": "COMPLEMENT"}
_CADRES = {"enquete_preliminaire": "PREL", "flagrance": "FLAG", "commission_rogatoire": "CR"}
_ROLES = {
    "mis_en_cause": "MEC",
    "victime": "VIC",
    "temoin": "TEM",
    "plaignant": "PLA",
    "civilement_responsable": "CIV",
}
_NATURES = {"crime": "CRI", "delit": "DEL", **{f"contravention_{n}": f"C{n}" for n in range(1, 6)}}
_PARTICIPATIONS = {"auteur": "auteurs", "coauteur": "coauteurs", "complice": "complices"}
_MEASURES = {"controle_judiciaire": "CJ", "convocation_opj": "COPJ", "deferement": "DEF"}
_OUTCOMES = {"libere": "REMISE_EN_LIBERTE", "defere": "DEFEREMENT"}
_REASONS = {
    "auteur_inconnu": "AUTEUR_NON_IDENTIFIE",
    "recherches_en_cours": "AUTEUR_RECHERCHE",
    "deces": "AUTEUR_DECEDE",
}
_DOCUMENTS = {
    "carte_identite": "CNI",
    "passeport": "PASSEPORT",
    "titre_sejour": "TITRE_SEJOUR",
    "permis_conduire": "PERMIS",
    "autre": "AUTRE",
}
_SEXES = {"M": "1", "F": "2"}

_ZONE_CHOICES = st.sampled_from((None, PARIS, PARIS, *ZONES))  # None: the attribute left out (Paris)
_APOSTROPHES = ("’", "‘", "ʼ", "´", "`")
_SEPARATORS = (", ", ",", " , ", ",  ")
_SPACED_HYPHENS = (" - ", "- ", " -")
_LIST_SEPARATORS = (" ", "  ", "\t")
_BIRTH_COMMUNE_NAMES = (None, "Ajaccio", "Saint-Denis", "Pointe-à-Pitre", "L'Haÿ-les-Roses")
_DEPARTMENTS = st.sampled_from(("69", "13", "75", "06", "2A", "2B", "974", "971", "973", "01", "95"))
_SERVICE_TYPES = chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 2, 4)
_SERVICE_CODES = joined("PN-", _DEPARTMENTS, "-", _SERVICE_TYPES, "-", chars(DIGITS, 3))
_RIO = chars(DIGITS, 7)
_ALIASES = st.lists(SURNAMES, min_size=1, max_size=3)
_SECONDS_IN_TWO_HOURS = st.integers(0, 2 * 3600 - 1)
_SECONDS_IN_AN_HOUR = st.integers(0, 3600 - 1)
_HOUR = timedelta(hours=1)


# ---------------------------------------------------------------- daylight-saving changes in Paris


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month, 31)  # March and October
    return last - timedelta(days=(last.weekday() - 6) % 7)


def _paris_changes(month: int) -> list[datetime]:
    """When clocks change in Paris (01:00 UTC on the last Sunday of March or October)."""
    return [datetime.combine(_last_sunday(y, month), time(1), UTC) for y in range(2000, NOW.year + 1)]


def _change_before(moment: datetime, month: int) -> datetime:
    """The latest change of ``month`` whose hour is over by ``moment``."""
    return max(change for change in _paris_changes(month) if change + _HOUR <= moment)


def _shifted(spec: ProcedureSpec, delta: timedelta) -> ProcedureSpec:
    return map_datetimes(spec, lambda moment: moment + delta)


# ---------------------------------------------------------------- procedures


def _canonical_name(name: str) -> str:
    return name.replace("’", "'")  # the court's apostrophe; the writer types others


def _police_person(draw: st.DrawFn, person: PersonSpec) -> PersonSpec:
    if isinstance(person, LegalPersonSpec):
        return person
    return dataclasses.replace(
        person,
        birth_name=_canonical_name(person.birth_name),
        usage_name=person.usage_name and _canonical_name(person.usage_name),
        given_names=tuple(_canonical_name(g) for g in person.given_names),
        # aliases are names to the police (normalised as such): drawn as names
        aliases=tuple(_canonical_name(a) for a in draw(_ALIASES)) if person.aliases else (),
    )


@st.composite
def police_procedures(draw: st.DrawFn) -> ProcedureSpec:
    """Procedures as the police format carries them: to the second, police codes, canonical names."""
    spec = map_datetimes(draw(procedures(roles=ROLES)), lambda moment: moment.replace(microsecond=0))
    spec = dataclasses.replace(
        spec,
        unit_code=draw(_SERVICE_CODES),
        officer=dataclasses.replace(
            spec.officer, name=_canonical_name(spec.officer.name), matricule=draw(_RIO)
        ),
        persons=tuple(_police_person(draw, p) for p in spec.persons),
    )
    if rarely(draw, 3):  # onto the repeated autumn hour in Paris, first or second occurrence
        moments = moments_of(spec)
        target = moments[draw(st.integers(0, len(moments) - 1))]
        change = _change_before(target, 10)
        landing = change - _HOUR + timedelta(seconds=draw(_SECONDS_IN_TWO_HOURS))
        spec = _shifted(spec, landing - target)
    return spec


# ---------------------------------------------------------------- the message


class Writer(XmlWriter):
    """Builds one police v1 message; ``twist`` writes one instant wrongly, on purpose."""

    namespace = NAMESPACE
    prefixes = (None, "p", "pol")
    variations = (*XmlWriter.variations, "indicators", "names", "lists")

    def __init__(self, draw: st.DrawFn, zone: str | None, twist: tuple[str, datetime] | None = None) -> None:
        super().__init__(draw)
        self.zone_attribute = zone
        self.zone = ZoneInfo(zone or PARIS)
        self.twist = twist

    # ------------------------------------------------------------ lexical forms

    def when(self, parent: etree._Element, name: str, value: datetime) -> None:
        """A local date-time: the wall clock in the message's zone, marked where it must be."""
        local = value.astimezone(self.zone)
        other = local.replace(fold=1 - local.fold)
        repeated = other.utcoffset() != local.utcoffset()
        indicator = None
        if local.fold == 1:
            indicator = "HIVER"  # the second occurrence of the repeated hour: must be said
        elif repeated and self.vary("indicators", 0.5):
            indicator = "ETE"
        elif self.vary("indicators", 0.2):
            indicator = "ETE" if local.dst() else "HIVER"  # an indicator that agrees
        written = local
        if self.twist is not None and self.twist[1] == value:
            kind = self.twist[0]
            if kind == "skipped":
                written, indicator = local - _HOUR, None  # the wall clock jumped over it
            else:
                indicator = "HIVER" if local.dst() else "ETE"
        el = self.sub(parent, name, self.token(written.strftime("%Y-%m-%dT%H:%M:%S")))
        if indicator:
            el.set("heure", self.token(indicator))

    def name(self, value: str, limit: int = 120) -> str:
        """A name as a keyboard may type it; the court gets it back normalised."""
        typed = value
        if self.vary("names"):
            typed = unicodedata.normalize("NFD", typed)
        if self.vary("names", 0.5):
            typed = typed.replace("'", self.pick(_APOSTROPHES))
        if self.vary("names"):
            typed = typed.replace(" ", "  ").replace("-", self.pick(_SPACED_HYPHENS))
        return typed if len(typed) <= limit else value

    def sha256(self, value: str) -> str:
        return self.token(value.upper() if self.vary("capitals") else value)

    # ------------------------------------------------------------ blocks

    def address(self, parent: etree._Element, name: str, a: AddressSpec | None) -> None:
        if a is None:
            return
        el = self.sub(parent, name)
        for line in a.lines:
            self.sub(el, "ligne", line)
        self.opt(el, "codePostal", a.postal_code and self.token(a.postal_code))
        if a.commune_insee is not None or a.commune_name is not None:
            commune = self.sub(el, "commune", a.commune_name)
            if a.commune_insee is not None:
                self.attr(commune, "insee", a.commune_insee)
        self.opt(el, "pays", a.country and self.token(a.country))

    def place(self, parent: etree._Element, name: str, p: PlaceSpec) -> None:
        el = self.sub(parent, name)
        self.attr(el, "insee", p.commune_insee)
        if p.commune_name is not None:
            el.set("commune", p.commune_name)
        self.address(el, "adresse", p.address)

    def natural(self, parent: etree._Element, p: NaturalPersonSpec) -> None:
        el = self.sub(parent, "personnePhysique")
        self.attr(el, "id", p.id)
        self.sub(el, "qualite", self.token(_ROLES[p.role]))
        self.sub(el, "nomNaissance", self.name(p.birth_name))
        self.opt(el, "nomUsage", p.usage_name and self.name(p.usage_name))
        separator = self.pick(_SEPARATORS) if self.varied["names"] else ", "
        typed = separator.join(self.name(g) for g in p.given_names)
        self.sub(el, "prenoms", typed if len(typed) <= 250 else ", ".join(p.given_names))
        for alias in p.aliases:
            self.sub(el, "alias", self.name(alias))
        self.opt(el, "sexe", p.sex and self.token(_SEXES[p.sex]))
        if p.birth_date or p.birth_commune_insee or p.birth_country or self.vary("layout", 0.1):
            birth = self.sub(el, "naissance")
            self.opt(birth, "date", p.birth_date and self.date(p.birth_date))
            if p.birth_commune_insee:  # its name, if written, is not carried by the court case
                commune = self.sub(birth, "commune", self.pick(_BIRTH_COMMUNE_NAMES))
                self.attr(commune, "insee", p.birth_commune_insee)
            self.opt(birth, "pays", p.birth_country and self.token(p.birth_country))
        self.opt(el, "nationalite", p.nationality and self.token(p.nationality))
        self.address(el, "adresse", p.address)
        self.opt(el, "profession", p.profession)
        if p.identity_document:
            doc = self.sub(el, "pieceIdentite")
            self.attr(doc, "type", _DOCUMENTS[p.identity_document.kind])
            doc.set("numero", p.identity_document.number)
            if p.identity_document.issuing_country:
                self.attr(doc, "paysEmetteur", p.identity_document.issuing_country)
        if p.arrest:
            arrest = self.sub(el, "interpellation")
            self.when(arrest, "le", p.arrest.at)
            self.place(arrest, "lieu", p.arrest.place)

    def legal(self, parent: etree._Element, p: LegalPersonSpec) -> None:
        el = self.sub(parent, "personneMorale")
        self.attr(el, "id", p.id)
        self.sub(el, "qualite", self.token(_ROLES[p.role]))
        self.sub(el, "raisonSociale", p.company_name)
        self.opt(el, "formeJuridique", p.legal_form)
        siret_alone = p.siret is not None and p.siret.startswith(p.siren) and self.vary("numbers", 0.5)
        if not siret_alone:
            self.sub(el, "siren", self.token(p.siren))
        self.opt(el, "siret", p.siret and self.token(p.siret))
        self.address(el, "siege", p.head_office)

    def person(self, parent: etree._Element, p: PersonSpec) -> None:
        if isinstance(p, NaturalPersonSpec):
            self.natural(parent, p)
        else:
            self.legal(parent, p)

    def infraction(self, parent: etree._Element, i: InfractionSpec) -> None:
        el = self.sub(parent, "infraction")
        self.attr(el, "id", i.id)
        for participation, attribute in _PARTICIPATIONS.items():
            charged = [c.person_id for c in i.charges if c.participation == participation]
            if charged:
                separator = self.pick(_LIST_SEPARATORS) if self.varied["lists"] else " "
                self.attr(el, attribute, separator.join(charged))
        self.sub(el, "natinf", self.natinf(i.natinf))
        self.sub(el, "libelle", i.qualification)
        self.sub(el, "nature", self.token(_NATURES[i.nature]))
        self.opt(el, "nombreFaits", None if i.counts is None else self.integer(i.counts))

    def garde_a_vue(self, parent: etree._Element, g: GardeAVueSpec) -> None:
        el = self.sub(parent, "gardeAVue")
        self.attr(el, "personne", g.person_id)
        el.set("mineur", self.boolean(g.minor))
        self.sub(el, "lieu", g.place)
        self.when(el, "debut", g.start)
        for x in g.extensions:
            extension = self.sub(el, "prolongation")
            self.when(extension, "le", x.at)
            self.sub(extension, "autoriseePar", x.authorised_by)
        if g.end is not None:
            self.when(el, "fin", g.end)
        self.opt(el, "issue", g.outcome and self.token(_OUTCOMES[g.outcome]))

    def measure(self, parent: etree._Element, m: MeasureSpec) -> None:
        el = self.sub(parent, "mesure")
        self.attr(el, "type", _MEASURES[m.kind])
        self.attr(el, "personne", m.person_id)
        self.when(el, "decideeLe", m.decided_at)
        if m.hearing_at is not None:
            self.when(el, "audienceLe", m.hearing_at)
        self.opt(el, "precisions", m.details)

    def scelle(self, parent: etree._Element, s: ScelleSpec) -> None:
        el = self.sub(parent, "scelle")
        self.attr(el, "numero", s.number)
        self.attr(el, "infraction", s.infraction_id)
        self.sub(el, "description", s.nature)
        self.opt(el, "immatriculation", s.vehicle_registration and self.token(s.vehicle_registration))
        self.when(el, "saisiLe", s.seized_at)
        self.place(el, "lieuSaisie", s.seizure_place)
        self.sub(el, "gardien", s.custodian)

    def piece(self, parent: etree._Element, p: PieceSpec) -> None:
        el = self.sub(parent, "piece")
        el.set("numero", self.integer(p.number))
        self.sub(el, "titre", p.title)
        self.sub(el, "typeMedia", self.token(p.media_type))
        self.sub(el, "empreinteSha256", self.sha256(p.sha256))
        self.sub(el, "taille", self.integer(p.size))
        if p.content is not None:
            self.sub(el, "contenu", self.base64(p.content))
        self.opt(el, "reference", p.reference and self.token(p.reference))

    def procedure(self, spec: ProcedureSpec) -> etree._Element:
        root = self.root("procedurePolice")
        root.set("schemaVersion", self.token(self.pick(("1.0", "1.3"))))
        if self.zone_attribute is not None:
            self.attr(root, "fuseauHoraire", self.zone_attribute)
        entete = self.sub(root, "entete")
        self.sub(entete, "idMessage", self.uuid(spec.message_id))
        self.sub(entete, "typeEnvoi", self.token(_KINDS[spec.kind]))
        software = self.sub(entete, "logiciel")
        software.set("nom", spec.software_name)
        software.set("version", spec.software_version)
        self.when(entete, "emisLe", spec.sent_at)

        ident = self.sub(root, "identification")
        self.sub(ident, "numeroProcedure", self.token(spec.procedure_number))
        service = self.sub(ident, "service", spec.unit_name)
        self.attr(service, "code", spec.unit_code)
        officer = self.sub(ident, "redacteur")
        self.attr(officer, "qualite", spec.officer.quality)
        self.attr(officer, "rio", spec.officer.matricule)
        self.sub(officer, "nom", self.name(spec.officer.name))
        self.opt(officer, "grade", spec.officer.rank)

        cadre = self.sub(root, "cadre")
        self.sub(cadre, "typeEnquete", self.token(_CADRES[spec.cadre]))
        self.when(cadre, "saisiLe", spec.saisine_at)
        juridiction = self.sub(cadre, "juridiction", spec.tribunal_name)
        self.attr(juridiction, "inseeSiege", spec.tribunal_code.removeprefix("TJ"))

        if spec.faits:
            faits = self.sub(root, "faits")
            self.when(faits, "debut", spec.faits.start)
            if spec.faits.end is not None:
                self.when(faits, "fin", spec.faits.end)
            self.place(faits, "lieu", spec.faits.place)
            self.sub(faits, "resume", spec.faits.summary)
        self.container(root, "personnes", spec.persons, self.person)
        if spec.no_mis_en_cause_reason:
            reason = self.sub(root, "absenceMisEnCause", spec.no_mis_en_cause_comment)
            self.attr(reason, "motif", _REASONS[spec.no_mis_en_cause_reason])
        self.container(root, "infractions", spec.infractions, self.infraction)
        self.container(root, "gardesAVue", spec.gardes_a_vue, self.garde_a_vue)
        self.container(root, "mesures", spec.measures, self.measure)
        self.container(root, "scelles", spec.scelles, self.scelle)
        self.container(root, "pieces", spec.pieces, self.piece)
        return root


@st.composite
def render(draw: st.DrawFn, spec: ProcedureSpec) -> bytes:
    """One police v1 message carrying ``spec``, in a time zone and lexical forms the schema allows."""
    writer = Writer(draw, draw(_ZONE_CHOICES))
    return writer.serialise(writer.procedure(spec))


# ---------------------------------------------------------------- corruptions of local times


@st.composite
def skipped_hour(draw: st.DrawFn, spec: ProcedureSpec) -> bytes:
    """The sending written in the hour skipped when clocks go forward in Paris (the procedure is
    moved as a whole so that its sending falls in the hour after the change)."""
    change = _change_before(spec.sent_at, 3)
    landing = change + timedelta(seconds=draw(_SECONDS_IN_AN_HOUR))
    moved = _shifted(spec, landing - spec.sent_at)
    writer = Writer(draw, draw(st.sampled_from((None, PARIS))), twist=("skipped", moved.sent_at))
    return writer.serialise(writer.procedure(moved))


@st.composite
def impossible_indicator(draw: st.DrawFn, spec: ProcedureSpec) -> bytes:
    """The sending marked with the other season's indicator (winter time in July, summer time in
    January or in a zone without summer time); never in the repeated hour, where both are right."""
    zone = draw(_ZONE_CHOICES)
    local = spec.sent_at.astimezone(ZoneInfo(zone or PARIS))
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        spec = _shifted(spec, -timedelta(days=1))
    writer = Writer(draw, zone, twist=("contradicted", spec.sent_at))
    return writer.serialise(writer.procedure(spec))


STRATEGY = FormatStrategy(
    name="police/v1",
    agency="police",
    procedures=police_procedures,
    render=render,
    corruptions={"DATE_LOCAL_NONEXISTENT": skipped_hour, "DATE_LOCAL_DST_MISMATCH": impossible_indicator},
)

"""Gendarmerie procedure messages, v1 (``schemas/gendarmerie/v1/procedure.xsd``), for property tests.

``render(spec)`` writes a :class:`ProcedureSpec` as a unit's software could send it, element by
element in the schema's order, optional elements present exactly when the spec has them. On top
of the lexical forms every writer draws (``xmlwriting``), date-times come with any UTC offset
for the same instant (``Z``, ``+00:00``, ``-00:00``...), fractional seconds, and ``24:00:00``
for midnight, all of which xs:dateTime allows; NATINF codes with leading zeros.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st
from lxml import etree

from gateway.model import MessageKind
from tests.strategies import FormatStrategy
from tests.strategies.procedure import (
    procedures,
)
from tests.strategies.spec import (
    AddressSpec,
    GardeAVueSpec,
    InfractionSpec,
    LegalPersonSpec,
    MeasureSpec,
    NaturalPersonSpec,
    PieceSpec,
    PlaceSpec,
    ProcedureSpec,
    ScelleSpec,
)
from tests.strategies.values import SENDER_OFFSETS_MINUTES
from tests.strategies.xmlwriting import XmlWriter

NAMESPACE = "urn:saisine:gendarmerie:procedure:v1"
_KINDS = {MessageKind.INITIALE: "PROCEDURE_INITIALE", MessageKind.COMPLEMENT: "COMPLEMENT"}


class Writer(XmlWriter):
    """Builds one v1 message; a later version of the format subclasses it and overrides what changed."""

    namespace = NAMESPACE
    prefixes = (None, "g", "gend")
    variations = (*XmlWriter.variations, "datetimes", "plates")
    versions = ("1.0", "1.1", "1.12")

    def datetime(self, value: datetime) -> str:
        """The sender's offset, or another one for the same instant; fractions; 24:00 for midnight."""
        if self.vary("datetimes", 0.25):
            value = value.astimezone(timezone(timedelta(minutes=self.pick(SENDER_OFFSETS_MINUTES))))
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        fraction = ""
        if value.microsecond:
            fraction = "." + f"{value.microsecond:06d}".rstrip("0")
            fraction += "0" * (self.rng.randint(1, 3) if self.vary("datetimes") else 0)
        elif value.time() == value.time().min and self.vary("datetimes", 0.5):
            text = (value - timedelta(days=1)).strftime("%Y-%m-%dT") + "24:00:00"  # xs:dateTime allows it
        elif self.vary("datetimes", 0.1):
            fraction = self.pick((".0", ".000"))
        offset = value.utcoffset() or timedelta(0)
        if offset:
            minutes = int(offset.total_seconds()) // 60
            zone = f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        else:
            zone = self.pick(("Z", "+00:00", "-00:00")) if self.varied["datetimes"] else "Z"
        return self.token(text + fraction + zone)

    # ------------------------------------------------------------ blocks

    def address(self, parent: etree._Element, name: str, a: AddressSpec | None) -> None:
        if a is None:
            return
        el = self.sub(parent, name)
        for line in a.lines:
            self.sub(el, "Line", line)
        self.opt(el, "PostalCode", a.postal_code and self.token(a.postal_code))
        self.opt(el, "CommuneInsee", a.commune_insee and self.token(a.commune_insee))
        self.opt(el, "CommuneName", a.commune_name)
        self.opt(el, "Country", a.country and self.token(a.country))

    def place(self, parent: etree._Element, name: str, p: PlaceSpec) -> None:
        el = self.sub(parent, name)
        self.address(el, "Address", p.address)
        self.sub(el, "CommuneInsee", self.token(p.commune_insee))
        self.opt(el, "CommuneName", p.commune_name)

    def infraction(self, parent: etree._Element, i: InfractionSpec) -> None:
        el = self.sub(parent, "Infraction")
        self.attr(el, "id", i.id)
        self.sub(el, "Natinf", self.natinf(i.natinf))
        self.sub(el, "Qualification", i.qualification)
        self.sub(el, "Nature", self.token(i.nature.name))
        self.opt(el, "Counts", None if i.counts is None else self.integer(i.counts))
        if i.charges:
            charges = self.sub(el, "Charges")
            for c in i.charges:
                charge = self.sub(charges, "Charge")
                self.attr(charge, "personRef", c.person_id)
                self.attr(charge, "participation", c.participation.name)

    def natural(self, parent: etree._Element, p: NaturalPersonSpec) -> None:
        el = self.sub(parent, "NaturalPerson")
        self.attr(el, "id", p.id)
        self.sub(el, "Role", self.token(p.role.name))
        self.sub(el, "BirthName", p.birth_name)
        self.opt(el, "UsageName", p.usage_name)
        names = self.sub(el, "GivenNames")
        for given in p.given_names:
            self.sub(names, "GivenName", given)
        if p.aliases:
            aliases = self.sub(el, "Aliases")
            for alias in p.aliases:
                self.sub(aliases, "Alias", alias)
        self.opt(el, "Sex", p.sex and self.token(p.sex))
        self.opt(el, "BirthDate", p.birth_date and self.date(p.birth_date))
        if p.birth_commune_insee or p.birth_country:
            birth = self.sub(el, "BirthPlace")
            self.opt(birth, "CommuneInsee", p.birth_commune_insee and self.token(p.birth_commune_insee))
            self.opt(birth, "Country", p.birth_country and self.token(p.birth_country))
        self.opt(el, "Nationality", p.nationality and self.token(p.nationality))
        self.address(el, "Address", p.address)
        self.opt(el, "Profession", p.profession)
        if p.identity_document:
            doc = self.sub(el, "IdentityDocument")
            self.sub(doc, "Type", self.token(p.identity_document.kind.upper()))
            self.sub(doc, "Number", p.identity_document.number)
            country = p.identity_document.issuing_country
            self.opt(doc, "IssuingCountry", country and self.token(country))
        if p.arrest:
            arrest = self.sub(el, "Arrest")
            self.sub(arrest, "DateTime", self.datetime(p.arrest.at))
            self.place(arrest, "Place", p.arrest.place)

    def legal(self, parent: etree._Element, p: LegalPersonSpec) -> None:
        el = self.sub(parent, "LegalPerson")
        self.attr(el, "id", p.id)
        self.sub(el, "Role", self.token(p.role.name))
        self.sub(el, "CompanyName", p.company_name)
        self.opt(el, "LegalForm", p.legal_form)
        self.sub(el, "Siren", self.token(p.siren))
        self.opt(el, "Siret", p.siret and self.token(p.siret))
        self.address(el, "HeadOffice", p.head_office)

    def garde_a_vue(self, parent: etree._Element, g: GardeAVueSpec) -> None:
        el = self.sub(parent, "GardeAVue")
        self.attr(el, "personRef", g.person_id)
        self.sub(el, "Place", g.place)
        self.sub(el, "Start", self.datetime(g.start))
        if g.extensions:
            extensions = self.sub(el, "Extensions")
            for x in g.extensions:
                ext = self.sub(extensions, "Extension")
                self.sub(ext, "At", self.datetime(x.at))
                self.sub(ext, "AuthorisedBy", x.authorised_by)
        self.opt(el, "End", g.end and self.datetime(g.end))
        self.sub(el, "Minor", self.boolean(g.minor))
        self.opt(el, "Outcome", g.outcome and self.token(g.outcome.upper()))

    def measure(self, parent: etree._Element, m: MeasureSpec) -> None:
        el = self.sub(parent, "Measure")
        self.attr(el, "personRef", m.person_id)
        self.sub(el, "Type", self.token(m.kind.name))
        self.sub(el, "DecidedAt", self.datetime(m.decided_at))
        self.opt(el, "HearingAt", m.hearing_at and self.datetime(m.hearing_at))
        self.opt(el, "Details", m.details)

    def scelle(self, parent: etree._Element, s: ScelleSpec) -> None:
        el = self.sub(parent, "Scelle")
        self.attr(el, "number", s.number)
        self.attr(el, "infractionRef", s.infraction_id)
        self.sub(el, "Nature", s.nature)
        if s.vehicle_registration:
            plate = s.vehicle_registration
            if self.vary("plates", 0.5):
                plate = plate.replace(" ", "  ")  # xs:token: runs of spaces collapse
            self.sub(el, "VehicleRegistration", self.token(plate))
        self.sub(el, "SeizedAt", self.datetime(s.seized_at))
        self.place(el, "SeizurePlace", s.seizure_place)
        self.sub(el, "Custodian", s.custodian)

    def piece(self, parent: etree._Element, p: PieceSpec) -> None:
        el = self.sub(parent, "Piece")
        el.set("number", self.integer(p.number))
        self.sub(el, "Title", p.title)
        self.sub(el, "MediaType", self.token(p.media_type))
        self.sub(el, "Sha256", self.token(p.sha256))
        self.sub(el, "Size", self.integer(p.size))
        if p.content is not None:
            self.sub(el, "Content", self.base64(p.content))
        self.opt(el, "Reference", p.reference and self.token(p.reference))

    # ------------------------------------------------------------ message

    def procedure(self, spec: ProcedureSpec) -> etree._Element:
        root = self.root("Procedure")
        root.set("schemaVersion", self.token(self.pick(self.versions)))
        env = self.sub(root, "Envelope")
        self.sub(env, "MessageId", self.uuid(spec.message_id))
        self.sub(env, "MessageType", self.token(_KINDS[spec.kind]))
        software = self.sub(env, "Software")
        self.sub(software, "Name", spec.software_name)
        self.sub(software, "Version", spec.software_version)
        self.sub(env, "SentAt", self.datetime(spec.sent_at))

        self.identification(root, spec)
        cadre = self.sub(root, "Cadre")
        self.sub(cadre, "Type", self.token(spec.cadre.name))
        self.sub(cadre, "SaisineDate", self.datetime(spec.saisine_at))
        tribunal = self.sub(cadre, "Tribunal")
        self.sub(tribunal, "Code", self.token(spec.tribunal_code))
        self.sub(tribunal, "Name", spec.tribunal_name)
        self.after_cadre(root, spec)

        if spec.faits:
            faits = self.sub(root, "Faits")
            self.sub(faits, "Start", self.datetime(spec.faits.start))
            self.opt(faits, "End", spec.faits.end and self.datetime(spec.faits.end))
            self.place(faits, "Place", spec.faits.place)
            self.sub(faits, "Summary", spec.faits.summary)
        self.container(root, "Infractions", spec.infractions, self.infraction)
        self.container(root, "Persons", spec.persons, self.person)
        if spec.no_mis_en_cause_reason:
            reason = self.sub(root, "NoMisEnCauseReason")
            self.sub(reason, "Code", self.token(spec.no_mis_en_cause_reason.upper()))
            self.opt(reason, "Comment", spec.no_mis_en_cause_comment)
        self.container(root, "GardesAVue", spec.gardes_a_vue, self.garde_a_vue)
        self.container(root, "Measures", spec.measures, self.measure)
        self.container(root, "Scelles", spec.scelles, self.scelle)
        self.container(root, "Pieces", spec.pieces, self.piece)
        return root

    def identification(self, root: etree._Element, spec: ProcedureSpec) -> None:
        ident = self.sub(root, "Identification")
        self.sub(ident, "ProcedureNumber", self.token(spec.procedure_number))
        unit = self.sub(ident, "Unit")
        self.sub(unit, "Code", self.token(spec.unit_code))
        self.sub(unit, "Name", spec.unit_name)
        officer = self.sub(ident, "Officer")
        self.sub(officer, "Quality", self.token(spec.officer.quality))
        self.opt(officer, "Rank", spec.officer.rank)
        self.sub(officer, "Name", spec.officer.name)
        self.sub(officer, "Matricule", spec.officer.matricule)

    def after_cadre(self, root: etree._Element, spec: ProcedureSpec) -> None:
        """Nothing in v1 (v2 adds a block here)."""

    def person(self, parent: etree._Element, p: NaturalPersonSpec | LegalPersonSpec) -> None:
        if isinstance(p, NaturalPersonSpec):
            self.natural(parent, p)
        else:
            self.legal(parent, p)


@st.composite
def render(draw: st.DrawFn, spec: ProcedureSpec) -> bytes:
    """One gendarmerie v1 message carrying ``spec``, in one of the lexical forms the schema allows."""
    writer = Writer(draw)
    return writer.serialise(writer.procedure(spec))


STRATEGY = FormatStrategy(name="gendarmerie/v1", agency="gendarmerie", procedures=procedures, render=render)

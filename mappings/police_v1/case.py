"""A police v1 message mapped to the court case (affaire). Pure functions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.model import (
    Address,
    Affaire,
    Arrest,
    Extension,
    Faits,
    IdentityDocument,
    Infraction,
    LegalPerson,
    MeasureKind,
    Mesure,
    NaturalPerson,
    Originator,
    Partie,
    Piece,
    Place,
    Prevention,
    Scelle,
    SourceInfo,
    most_serious,
)
from mappings.names import normalise_name, split_given_names
from mappings.police_v1.codes import (
    CADRES,
    DOCUMENTS,
    KINDS,
    MEASURES,
    NATURES,
    OUTCOMES,
    PARTICIPATIONS,
    ROLES,
    SEXES,
)
from mappings.police_v1.reading import (
    R,
    attr,
    ids,
    instant,
    message_zone,
    must,
    no_mis_en_cause,
    siren,
    tribunal_code,
)
from mappings.xmlread import Document, Node, collapse, parse_date

MAPPING_VERSION = "police-v1.0"


class _Mapper:
    """Maps one schema-valid, rule-valid message, in its time zone."""

    def __init__(self, doc: Document) -> None:
        self.node = doc.root
        self.tz = message_zone(doc.root[0])

    def at(self, node: Node, path: str) -> datetime:
        found = R.el(node, path)
        if found is None:
            raise ValueError(f"{path} missing: the schema should have refused it")
        return instant(found[0], self.tz)

    def maybe_at(self, node: Node, path: str) -> datetime | None:
        found = R.el(node, path)
        return None if found is None else instant(found[0], self.tz)

    def natural(self, p: Node) -> NaturalPerson:
        birth, usage = R.text(p, "naissance/date"), R.text(p, "nomUsage")
        doc = R.el(p, "pieceIdentite")
        arrest = R.el(p, "interpellation")
        return NaturalPerson(
            birth_name=normalise_name(R.req(p, "nomNaissance")),
            usage_name=normalise_name(usage) if usage else None,
            given_names=split_given_names(R.req(p, "prenoms")),
            aliases=[normalise_name(a) for a in R.texts(p, "alias")],
            sex=SEXES.get(R.text(p, "sexe") or ""),
            birth_date=parse_date(birth) if birth else None,
            birth_commune_insee=attr(R.el(p, "naissance/commune"), "insee"),
            birth_country=R.text(p, "naissance/pays"),
            nationality=R.text(p, "nationalite"),
            address=_address(R.el(p, "adresse")),
            profession=R.text(p, "profession"),
            identity_document=None if doc is None else _identity_document(doc[0]),
            arrest=None
            if arrest is None
            else Arrest(at=self.at(arrest, "le"), place=_place(must(R.el(arrest, "lieu")))),
        )

    def preventions(self, faits: Faits | None) -> list[Prevention]:
        lines = []
        for i in R.all(self.node, "infractions/infraction"):
            inf = _infraction(i)
            for attribute, participation in PARTICIPATIONS:
                lines += [
                    Prevention(
                        partie_ref=ref,
                        infraction_ref=inf.ref,
                        natinf=inf.natinf,
                        qualification=inf.qualification,
                        nature=inf.nature,
                        participation=participation,
                        counts=inf.counts,
                        faits_start=faits.start if faits else None,
                        faits_end=faits.end if faits else None,
                        place=faits.place if faits else None,
                    )
                    for ref in ids(i[0], attribute)
                ]
        return lines

    def garde_a_vue(self, g: Node) -> Mesure:
        el = g[0]
        return Mesure(
            partie_ref=str(el.get("personne")).strip(),
            kind=MeasureKind.GARDE_A_VUE,
            decided_at=self.at(g, "debut"),
            place=R.text(g, "lieu"),
            end=self.maybe_at(g, "fin"),
            extensions=[
                Extension(at=self.at(x, "le"), authorised_by=R.req(x, "autoriseePar"))
                for x in R.all(g, "prolongation")
            ],
            minor=str(el.get("mineur")).strip() in ("true", "1"),
            outcome=OUTCOMES.get(R.text(g, "issue") or ""),
        )

    def measure(self, m: Node) -> Mesure:
        el = m[0]
        return Mesure(
            partie_ref=str(el.get("personne")).strip(),
            kind=MEASURES[str(el.get("type")).strip()],
            decided_at=self.at(m, "decideeLe"),
            hearing_at=self.maybe_at(m, "audienceLe"),
            details=R.text(m, "precisions"),
        )

    def scelle(self, s: Node) -> Scelle:
        el = s[0]
        return Scelle(
            number=str(el.get("numero")).strip(),
            nature=R.req(s, "description"),
            vehicle_registration=R.text(s, "immatriculation"),
            seized_at=self.at(s, "saisiLe"),
            seizure_place=_place(must(R.el(s, "lieuSaisie"))),
            custodian=R.req(s, "gardien"),
            infraction_ref=str(el.get("infraction")).strip(),
        )

    def faits(self) -> Faits | None:
        f = R.el(self.node, "faits")
        if f is None:
            return None
        return Faits(
            start=self.at(f, "debut"),
            end=self.maybe_at(f, "fin"),
            place=_place(must(R.el(f, "lieu"))),
            summary=R.req(f, "resume"),
        )

    def source(self) -> SourceInfo:
        software = must(R.el(self.node, "entete/logiciel"))[0]
        return SourceInfo(
            agency="police",
            format="police/v1",
            schema_version=str(self.node[0].get("schemaVersion")).strip(),
            mapping_version=MAPPING_VERSION,
            message_id=R.req(self.node, "entete/idMessage").lower(),
            sent_at=self.at(self.node, "entete/emisLe"),
            software=f"{collapse(str(software.get('nom')))} {collapse(str(software.get('version')))}",
        )


def _commune_name(node: Node | None) -> str | None:
    if node is None or node[0].text is None:
        return None
    return collapse(node[0].text) or None


def _address(node: Node | None) -> Address | None:
    if node is None:
        return None
    commune = R.el(node, "commune")
    return Address(
        lines=R.texts(node, "ligne"),
        postal_code=R.text(node, "codePostal"),
        commune_insee=attr(commune, "insee"),
        commune_name=_commune_name(commune),
        country=R.text(node, "pays"),
    )


def _place(node: Node) -> Place:
    return Place(
        commune_insee=str(node[0].get("insee")).strip(),
        commune_name=attr(node, "commune"),
        address=_address(R.el(node, "adresse")),
    )


def _identity_document(el: Any) -> IdentityDocument:
    return IdentityDocument(
        kind=DOCUMENTS[str(el.get("type")).strip()],
        number=collapse(str(el.get("numero"))),
        issuing_country=(el.get("paysEmetteur") or "").strip() or None,
    )


def _legal(p: Node) -> LegalPerson:
    _, number = siren(p)
    return LegalPerson(
        company_name=R.req(p, "raisonSociale"),
        legal_form=R.text(p, "formeJuridique"),
        siren=number,
        siret=R.text(p, "siret"),
        head_office=_address(R.el(p, "siege")),
    )


def _infraction(i: Node) -> Infraction:
    return Infraction(
        ref=str(i[0].get("id")).strip(),
        natinf=R.req(i, "natinf").lstrip("0") or "0",
        qualification=R.req(i, "libelle"),
        nature=NATURES[R.req(i, "nature")],
        counts=int(R.text(i, "nombreFaits") or 1),
    )


def _piece(p: Node) -> Piece:
    return Piece(
        number=int(str(p[0].get("numero")).strip()),
        title=R.req(p, "titre"),
        media_type=R.req(p, "typeMedia"),
        sha256=R.req(p, "empreinteSha256").lower(),
        size=int(R.req(p, "taille")),
        inline=R.el(p, "contenu") is not None,
        reference=R.text(p, "reference"),
    )


def _originator(node: Node) -> Originator:
    service = must(R.el(node, "identification/service"))
    officer = must(R.el(node, "identification/redacteur"))
    return Originator(
        agency="police",
        unit_code=str(service[0].get("code")).strip(),
        unit_name=R.req(node, "identification/service"),
        officer_name=normalise_name(R.req(officer, "nom")),
        officer_quality=str(officer[0].get("qualite")).strip(),
        officer_rank=R.text(officer, "grade"),
        officer_id=str(officer[0].get("rio")).strip(),
    )


def _partie(m: _Mapper, p: Node) -> Partie:
    natural = R.name(p) == "personnePhysique"
    return Partie(
        ref=str(p[0].get("id")).strip(),
        role=ROLES[R.req(p, "qualite")],
        natural=m.natural(p) if natural else None,
        legal=None if natural else _legal(p),
    )


def map_case(doc: Document) -> Affaire:
    """The court case for a schema-valid, rule-valid police v1 message (``doc``: see :func:`read`)."""
    m, n = _Mapper(doc), doc.root
    faits = m.faits()
    infractions = [_infraction(i) for i in R.all(n, "infractions/infraction")]
    scelles = [m.scelle(s) for s in R.all(n, "scelles/scelle")]
    reason = R.el(n, "absenceMisEnCause")
    juridiction = must(R.el(n, "cadre/juridiction"))
    return Affaire(
        kind=KINDS[R.req(n, "entete/typeEnvoi")],
        tribunal_code=tribunal_code(juridiction[0]),
        tribunal_name=R.req(n, "cadre/juridiction"),
        procedure_numbers=[R.req(n, "identification/numeroProcedure")],
        originator=_originator(n),
        cadre=CADRES[R.req(n, "cadre/typeEnquete")],
        saisine_at=m.at(n, "cadre/saisiLe"),
        faits=faits,
        nature=most_serious([i.nature for i in infractions]),
        has_scelles=bool(scelles),
        no_mis_en_cause_reason=no_mis_en_cause(reason),
        infractions=infractions,
        parties=[_partie(m, p) for p in R.all(n, "personnes/*")],
        preventions=m.preventions(faits),
        mesures=[m.garde_a_vue(g) for g in R.all(n, "gardesAVue/gardeAVue")]
        + [m.measure(x) for x in R.all(n, "mesures/mesure")],
        scelles=scelles,
        pieces=[_piece(p) for p in R.all(n, "pieces/piece")],
        source=m.source(),
    )

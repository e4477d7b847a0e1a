"""The facts of a police v1 message that the business rules check (gateway/rules.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.facts import (
    CustodyFact,
    InfractionFact,
    LegalIdFact,
    LocalTimeFact,
    PersonFact,
    PieceFact,
    ProcedureFacts,
    Value,
)
from gateway.locations import loc
from gateway.rules import decode_base64
from mappings.police_v1.codes import KINDS, NATURES, PARTICIPATIONS, ROLES
from mappings.police_v1.reading import (
    NAMESPACE,
    R,
    ids,
    instant,
    message_zone,
    no_mis_en_cause,
    siren,
    summer,
    written,
    zone_name,
)
from mappings.xmlread import Document, Node, parse_date

# Local date-times checked against the clock ("not in the future"); a hearing date is not.
_PAST_TIMES = ("emisLe", "saisiLe", "debut", "fin", "le", "decideeLe")
_ALL_TIMES = (*_PAST_TIMES, "audienceLe")


class _Facts:
    """Reads the facts of one schema-valid message, in its time zone."""

    def __init__(self, doc: Document, root: Any) -> None:
        self.doc, self.node = doc, doc.root
        self.zone_name = zone_name(root)
        self.tz = message_zone(root)

    def at(self, node: Node | None) -> Value[datetime] | None:
        return None if node is None else Value(instant(node[0], self.tz), loc(node[0]))

    def must_at(self, node: Node, path: str) -> Value[datetime]:
        value = self.at(R.el(node, path))
        if value is None:
            raise ValueError(f"{path} missing: the schema should have refused it")
        return value

    def local_times(self) -> list[LocalTimeFact]:
        return [
            LocalTimeFact(Value(written(el), loc(el)), self.zone_name, summer(el))
            for name in _ALL_TIMES
            for el in self.doc.everywhere(name)
        ]

    def dates(self) -> list[Value[Any]]:
        values: list[Value[Any]] = [
            Value(instant(el, self.tz), loc(el)) for name in _PAST_TIMES for el in self.doc.everywhere(name)
        ]
        return values + [Value(parse_date(el.text), loc(el)) for el in self.doc.everywhere("date")]

    def charged(self) -> list[Value[str]]:
        return [
            Value(ref, loc(i[0]))
            for i in R.all(self.node, "infractions/infraction")
            for attribute, _ in PARTICIPATIONS
            for ref in ids(i[0], attribute)
        ]

    def communes(self, root: Any) -> list[Value[str]]:
        values = []
        for el in root.iter(f"{{{NAMESPACE}}}*"):
            for attribute in ("insee", "inseeSiege"):
                code = el.get(attribute)
                if code is not None:
                    values.append(Value(code.strip(), loc(el)))
        return values

    def custody(self, g: Node) -> CustodyFact:
        return CustodyFact(
            person_ref=R.attr(g, "personne"),
            start=self.must_at(g, "debut"),
            end=self.at(R.el(g, "fin")),
            extensions=[self.must_at(p, "le") for p in R.all(g, "prolongation")],
        )


def _person_fact(p: Node) -> PersonFact:
    return PersonFact(
        id=R.attr(p, "id"), role=ROLES[R.req(p, "qualite")].value, natural=R.name(p) == "personnePhysique"
    )


def _infraction_fact(i: Node) -> InfractionFact:
    natinf, nature = R.value(i, "natinf"), R.value(i, "nature")
    if natinf is None or nature is None:
        raise ValueError("natinf or nature missing: the schema should have refused it")
    return InfractionFact(id=R.attr(i, "id"), natinf=natinf, nature=Value(NATURES[nature.value], nature.loc))


def _legal_id_fact(p: Node) -> LegalIdFact:
    el, number = siren(p)
    return LegalIdFact(siren=Value(number, loc(el)), siret=R.value(p, "siret"))


def _piece_fact(p: Node) -> PieceFact:
    content = R.el(p, "contenu")
    return PieceFact(
        number=R.attr(p, "numero"),
        sha256=R.req(p, "empreinteSha256").lower(),
        size=int(R.req(p, "taille")),
        content=decode_base64(content[0].text or "") if content is not None else None,
    )


def read_facts(doc: Document) -> ProcedureFacts:
    """The facts the business rules check, with their locations (``doc``: see ``read``)."""
    root = doc.root[0]
    f, n = _Facts(doc, root), doc.root
    reason = R.el(n, "absenceMisEnCause")
    return ProcedureFacts(
        kind=KINDS[R.req(n, "entete/typeEnvoi")],
        sent_at=f.must_at(n, "entete/emisLe"),
        saisine_at=f.must_at(n, "cadre/saisiLe"),
        faits_start=f.at(R.el(n, "faits/debut")),
        faits_end=f.at(R.el(n, "faits/fin")),
        no_mis_en_cause_reason=no_mis_en_cause(reason),
        persons=[_person_fact(p) for p in R.all(n, "personnes/*")],
        infractions=[_infraction_fact(i) for i in R.all(n, "infractions/infraction")],
        charged=f.charged(),
        person_refs=[R.attr(m, "personne") for m in R.all(n, "mesures/mesure")],
        custody=[f.custody(g) for g in R.all(n, "gardesAVue/gardeAVue")],
        arrested=[
            R.attr(p, "id")
            for p in R.all(n, "personnes/personnePhysique")
            if R.el(p, "interpellation") is not None
        ],
        infraction_refs=[R.attr(s, "infraction") for s in R.all(n, "scelles/scelle")],
        communes=f.communes(root),
        dates=f.dates(),
        legal_ids=[_legal_id_fact(p) for p in R.all(n, "personnes/personneMorale")],
        scelle_numbers=[R.attr(s, "numero") for s in R.all(n, "scelles/scelle")],
        pieces=[_piece_fact(p) for p in R.all(n, "pieces/piece")],
        local_times=f.local_times(),
    )

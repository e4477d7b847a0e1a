"""Corruptions of references and completeness: who is named, charged, held; what an initial
procedure must declare; identifiers and numbers declared twice."""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st

from gateway.model import CourtRole, MeasureKind, MessageKind, Participation
from tests.strategies.corruptions.edits import (
    fresh_id,
    new_infraction,
    new_natural,
    replace_at,
    with_infraction,
    with_person,
)
from tests.strategies.spec import (
    ArrestSpec,
    ChargeSpec,
    GardeAVueSpec,
    LegalPersonSpec,
    MeasureSpec,
    NaturalPersonSpec,
    PieceSpec,
    PlaceSpec,
    ProcedureSpec,
    ScelleSpec,
)


@st.composite
def person_unresolved(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """A charge, a garde à vue or a measure names a person nobody declared."""
    ghost = fresh_id(spec, "NOBODY")
    sites = [("charge", i, c) for i, inf in enumerate(spec.infractions) for c in range(len(inf.charges))]
    sites += [("gav", i, 0) for i in range(len(spec.gardes_a_vue))]
    sites += [("measure", i, 0) for i in range(len(spec.measures))]
    site, i, c = draw(st.sampled_from([*sites, ("new", 0, 0)]))
    if site == "charge":
        inf = spec.infractions[i]
        charge = dataclasses.replace(inf.charges[c], person_id=ghost)
        inf = dataclasses.replace(inf, charges=replace_at(inf.charges, c, charge))
        return dataclasses.replace(spec, infractions=replace_at(spec.infractions, i, inf))
    if site == "gav":
        gav = dataclasses.replace(spec.gardes_a_vue[i], person_id=ghost)
        return dataclasses.replace(spec, gardes_a_vue=replace_at(spec.gardes_a_vue, i, gav))
    if site == "measure":
        measure = dataclasses.replace(spec.measures[i], person_id=ghost)
        return dataclasses.replace(spec, measures=replace_at(spec.measures, i, measure))
    measure = MeasureSpec(ghost, MeasureKind.CONVOCATION_OPJ, spec.saisine_at)
    return dataclasses.replace(spec, measures=(*spec.measures, measure))


@st.composite
def infraction_unresolved(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """A scellé names an offence nobody declared."""
    ghost = fresh_id(spec, "NOTHING")
    if spec.scelles and draw(st.booleans()):
        i = draw(st.integers(0, len(spec.scelles) - 1))
        scelle = dataclasses.replace(spec.scelles[i], infraction_id=ghost)
        return dataclasses.replace(spec, scelles=replace_at(spec.scelles, i, scelle))
    numbers = {s.number for s in spec.scelles}
    number = next(f"S{n}" for n in range(len(numbers) + 1) if f"S{n}" not in numbers)
    scelle = ScelleSpec(number, ghost, "Couteau", spec.saisine_at, PlaceSpec("2A004"), "Greffe")
    return dataclasses.replace(spec, scelles=(*spec.scelles, scelle))


@st.composite
def duplicate_id(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """A person or an offence declared under an identifier already used (same role: nothing else breaks)."""
    how = draw(st.sampled_from(("person twice", "offence twice", "offence named like a person", "new pair")))
    if how == "person twice" and spec.persons:
        return with_person(spec, draw(st.sampled_from(spec.persons)))
    if how == "offence twice" and spec.infractions:
        return dataclasses.replace(
            spec, infractions=(*spec.infractions, draw(st.sampled_from(spec.infractions)))
        )
    if how == "offence named like a person" and spec.persons:
        twin = dataclasses.replace(new_infraction(spec), id=draw(st.sampled_from(spec.persons)).id)
        return dataclasses.replace(spec, infractions=(*spec.infractions, twin))
    twin = new_infraction(spec)
    return dataclasses.replace(spec, infractions=(*spec.infractions, twin, twin))


@st.composite
def duplicate_number(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """Two scellés or two pièces share a number (the format may write the two numbers differently)."""
    if spec.scelles and draw(st.booleans()):
        return dataclasses.replace(spec, scelles=(*spec.scelles, draw(st.sampled_from(spec.scelles))))
    if spec.pieces:
        copy = dataclasses.replace(draw(st.sampled_from(spec.pieces)), title="Copie")
        return dataclasses.replace(spec, pieces=(*spec.pieces, copy))
    piece = PieceSpec(1, "Procès-verbal", "application/pdf", "0" * 64, 10)
    return dataclasses.replace(spec, pieces=(piece, piece))


@st.composite
def charge_not_mis_en_cause(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """A victim, witness or complainant (natural or legal) is charged with an offence."""
    others = [p for p in spec.persons if p.role != CourtRole.MIS_EN_CAUSE]
    if others:
        person = draw(st.sampled_from(others))
    else:
        person = new_natural(spec, draw(st.sampled_from((CourtRole.VICTIME, CourtRole.TEMOIN))))
        spec = with_person(spec, person)
    spec, _ = with_infraction(spec)
    i = draw(st.integers(0, len(spec.infractions) - 1))
    inf = spec.infractions[i]
    charge = ChargeSpec(person.id, draw(st.sampled_from(Participation)))
    inf = dataclasses.replace(inf, charges=(*inf.charges, charge))
    return dataclasses.replace(spec, infractions=replace_at(spec.infractions, i, inf))


@st.composite
def gav_person_invalid(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """A garde à vue or an arrest for someone who is not a natural mis en cause."""
    legal_mec = [
        p for p in spec.persons if isinstance(p, LegalPersonSpec) and p.role == CourtRole.MIS_EN_CAUSE
    ]
    not_mec = [p for p in spec.persons if p.role != CourtRole.MIS_EN_CAUSE]
    candidates = legal_mec + not_mec
    if candidates:
        person = draw(st.sampled_from(candidates))
    else:
        person = new_natural(spec, CourtRole.VICTIME)
        spec = with_person(spec, person)
    if isinstance(person, NaturalPersonSpec) and draw(st.booleans()):
        arrested = dataclasses.replace(person, arrest=ArrestSpec(spec.saisine_at, PlaceSpec("97411")))
        index = spec.persons.index(person)
        return dataclasses.replace(spec, persons=replace_at(spec.persons, index, arrested))
    gav = GardeAVueSpec(person.id, "Brigade", spec.saisine_at, minor=False)
    return dataclasses.replace(spec, gardes_a_vue=(*spec.gardes_a_vue, gav))


# ---------------------------------------------------------------- completeness


def infraction_missing(spec: ProcedureSpec) -> st.SearchStrategy[ProcedureSpec]:
    """An initial procedure without any offence (its scellés, which name offences, go too)."""
    reason = spec.no_mis_en_cause_reason
    if not spec.mis_en_cause() and reason is None:
        reason = "auteur_inconnu"
    return st.just(
        dataclasses.replace(
            spec, kind=MessageKind.INITIALE, infractions=(), scelles=(), no_mis_en_cause_reason=reason
        )
    )


def mis_en_cause_missing(spec: ProcedureSpec) -> st.SearchStrategy[ProcedureSpec]:
    """An initial procedure with no mis en cause and no reason why (what named them goes too)."""
    gone = {p.id for p in spec.mis_en_cause()}
    spec, _ = with_infraction(spec)
    without = dataclasses.replace(
        spec,
        kind=MessageKind.INITIALE,
        persons=tuple(p for p in spec.persons if p.id not in gone),
        infractions=tuple(
            dataclasses.replace(i, charges=tuple(c for c in i.charges if c.person_id not in gone))
            for i in spec.infractions
        ),
        gardes_a_vue=tuple(g for g in spec.gardes_a_vue if g.person_id not in gone),
        measures=tuple(m for m in spec.measures if m.person_id not in gone),
        no_mis_en_cause_reason=None,
        no_mis_en_cause_comment=None,
    )
    return st.just(without)

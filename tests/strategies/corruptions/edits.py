"""Small edits of a procedure spec that the corruptions share: replace an item, add a target."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from hypothesis import strategies as st

from gateway.model import CourtRole
from tests.strategies.spec import (
    FaitsSpec,
    InfractionSpec,
    LegalPersonSpec,
    NaturalPersonSpec,
    PersonSpec,
    PlaceSpec,
    ProcedureSpec,
)
from tests.strategies.values import NATINF_IN_FORCE, NOW

EARLIER_BY = st.integers(1, 90 * 24 * 3600).map(lambda s: timedelta(seconds=s))  # up to 90 days
FUTURE = st.integers(1, 730).map(lambda days: NOW + timedelta(days=days))  # beyond any clock skew


def replace_at(items: tuple, index: int, item: object) -> tuple:  # type: ignore[type-arg]
    return (*items[:index], item, *items[index + 1 :])


def fresh_id(spec: ProcedureSpec, stem: str = "X") -> str:
    taken = spec.ids()
    return next(f"{stem}{n}" for n in range(len(taken) + 1) if f"{stem}{n}" not in taken)


def with_person(spec: ProcedureSpec, person: PersonSpec) -> ProcedureSpec:
    return dataclasses.replace(spec, persons=(*spec.persons, person))


def new_natural(spec: ProcedureSpec, role: CourtRole) -> NaturalPersonSpec:
    return NaturalPersonSpec(id=fresh_id(spec, "P"), role=role, birth_name="Lefèvre", given_names=("Zoé",))


def new_legal(spec: ProcedureSpec, role: CourtRole) -> LegalPersonSpec:
    siren = "987654324"  # passes Luhn
    return LegalPersonSpec(fresh_id(spec, "PM"), role, "Transports d'Anse", siren, "SAS", siren + "00019")


def new_infraction(spec: ProcedureSpec) -> InfractionSpec:
    entry = NATINF_IN_FORCE[0]
    return InfractionSpec(fresh_id(spec, "I"), entry.code, entry.qualification, entry.nature)


def with_infraction(spec: ProcedureSpec) -> tuple[ProcedureSpec, int]:
    """The procedure with at least one offence, and the index of one to target."""
    if spec.infractions:
        return spec, 0
    return dataclasses.replace(spec, infractions=(new_infraction(spec),)), 0


def natural_mis_en_cause(spec: ProcedureSpec) -> tuple[ProcedureSpec, list[NaturalPersonSpec]]:
    found = [p for p in spec.persons if isinstance(p, NaturalPersonSpec) and p.role == CourtRole.MIS_EN_CAUSE]
    if found:
        return spec, found
    person = new_natural(spec, CourtRole.MIS_EN_CAUSE)
    return with_person(spec, person), [person]


def with_faits(spec: ProcedureSpec) -> FaitsSpec:
    if spec.faits:
        return spec.faits
    return FaitsSpec(start=spec.saisine_at - timedelta(hours=2), place=PlaceSpec("69264"), summary="Vol.")


def set_person(spec: ProcedureSpec, index: int, **changes: object) -> ProcedureSpec:
    person = dataclasses.replace(spec.persons[index], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(spec, persons=replace_at(spec.persons, index, person))

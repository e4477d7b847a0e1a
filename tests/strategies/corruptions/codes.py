"""Corruptions of codes and checksums: NATINF (unknown, withdrawn, of another nature), INSEE
communes, SIREN and SIRET, pièces whose inline content contradicts their digest or size."""

from __future__ import annotations

import dataclasses
import hashlib

from hypothesis import strategies as st

from gateway.model import CourtRole, Nature
from tests.strategies.corruptions.edits import (
    new_legal,
    replace_at,
    set_person,
    with_faits,
    with_infraction,
    with_person,
)
from tests.strategies.spec import (
    LegalPersonSpec,
    NaturalPersonSpec,
    PieceSpec,
    ProcedureSpec,
)
from tests.strategies.values import (
    DIGITS,
    LA_POSTE,
    NATINF,
    NATINF_WITHDRAWN,
    chars,
    luhn_complete,
    luhn_ok,
    siret_ok,
)

_KNOWN_NATINF = {e.code for e in NATINF}


def _natinf_target(draw: st.DrawFn, spec: ProcedureSpec) -> tuple[ProcedureSpec, int]:
    spec, _ = with_infraction(spec)
    return spec, draw(st.integers(0, len(spec.infractions) - 1))


def _set_infraction(spec: ProcedureSpec, index: int, **changes: object) -> ProcedureSpec:
    inf = dataclasses.replace(spec.infractions[index], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(spec, infractions=replace_at(spec.infractions, index, inf))


@st.composite
def natinf_unknown(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """An offence whose NATINF code is not in the reference list."""
    spec, i = _natinf_target(draw, spec)
    code = draw(st.integers(1, 99_999).map(str).filter(lambda c: c not in _KNOWN_NATINF))
    return _set_infraction(spec, i, natinf=code)


@st.composite
def natinf_not_in_force(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """An offence whose NATINF code was withdrawn (en_vigueur = non), with its right nature."""
    spec, i = _natinf_target(draw, spec)
    entry = draw(st.sampled_from(NATINF_WITHDRAWN))
    return _set_infraction(spec, i, natinf=entry.code, qualification=entry.qualification, nature=entry.nature)


@st.composite
def natinf_nature_mismatch(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """An offence declared with another nature than the reference list gives its NATINF code."""
    spec, i = _natinf_target(draw, spec)
    right = next(e.nature for e in NATINF if e.code == spec.infractions[i].natinf)
    return _set_infraction(spec, i, nature=draw(st.sampled_from([n for n in Nature if n != right])))


# ---------------------------------------------------------------- INSEE

# Schema-valid shapes ([0-9][0-9AB][0-9]{3}) that are no commune: old Corsica (20), no department
# 00/96/98/99, 97 outside 971-978, commune number 000, a letter after another digit than 2.
_BAD_COMMUNES = st.one_of(
    st.integers(1, 999).map(lambda n: f"20{n:03d}"),
    st.sampled_from(("00", "96", "98", "99")).flatmap(
        lambda d: st.integers(0, 999).map(lambda n: f"{d}{n:03d}")
    ),
    st.sampled_from(("970", "979")).flatmap(lambda d: st.integers(0, 99).map(lambda n: f"{d}{n:02d}")),
    st.sampled_from(("01", "2A", "2B", "75", "95")).map(lambda d: f"{d}000"),
    st.sampled_from(("971", "974", "976")).map(lambda d: f"{d}00"),
    st.sampled_from(("1A", "3B", "9A", "0B")).flatmap(
        lambda d: st.integers(1, 999).map(lambda n: f"{d}{n:03d}")
    ),
)


@st.composite
def insee_invalid(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """One commune code, of the faits or of a person's birth, is well shaped but no commune."""
    bad = draw(_BAD_COMMUNES)
    naturals = [i for i, p in enumerate(spec.persons) if isinstance(p, NaturalPersonSpec)]
    if naturals and draw(st.booleans()):
        index = draw(st.sampled_from(naturals))
        person = dataclasses.replace(spec.persons[index], birth_commune_insee=bad, birth_country=None)
        return dataclasses.replace(spec, persons=replace_at(spec.persons, index, person))
    faits = with_faits(spec)
    return dataclasses.replace(
        spec, faits=dataclasses.replace(faits, place=dataclasses.replace(faits.place, commune_insee=bad))
    )


# ---------------------------------------------------------------- SIREN / SIRET


def _legal_target(draw: st.DrawFn, spec: ProcedureSpec, with_siret: bool) -> tuple[ProcedureSpec, int]:
    found = [
        i
        for i, p in enumerate(spec.persons)
        if isinstance(p, LegalPersonSpec) and (p.siret is not None or not with_siret)
    ]
    if found:
        return spec, draw(st.sampled_from(found))
    spec = with_person(spec, new_legal(spec, draw(st.sampled_from((CourtRole.VICTIME, CourtRole.PLAIGNANT)))))
    return spec, len(spec.persons) - 1


def _digit_changed(digits: str, position: int, by: int) -> str:
    return digits[:position] + str((int(digits[position]) + by) % 10) + digits[position + 1 :]


@st.composite
def siren_invalid(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """One SIREN digit changed (Luhn catches it); its SIRET, if any, rebuilt on it and valid."""
    spec, i = _legal_target(draw, spec, with_siret=False)
    person = spec.persons[i]
    assert isinstance(person, LegalPersonSpec)
    siren = _digit_changed(person.siren, draw(st.integers(0, 8)), draw(st.integers(1, 9)))
    siret = None if person.siret is None else luhn_complete(siren + person.siret[9:13])
    return set_person(spec, i, siren=siren, siret=siret)


@st.composite
def siret_invalid(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """The SIRET's last digit changed so that neither Luhn nor La Poste's rule accepts it."""
    spec, i = _legal_target(draw, spec, with_siret=True)
    person = spec.persons[i]
    assert isinstance(person, LegalPersonSpec) and person.siret is not None
    siret = person.siret
    wrong = [_digit_changed(siret, 13, by) for by in range(1, 10)]
    return set_person(spec, i, siret=draw(st.sampled_from([w for w in wrong if not siret_ok(w)])))


@st.composite
def siret_siren_mismatch(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """A valid SIRET of another company than the SIREN says."""
    spec, i = _legal_target(draw, spec, with_siret=False)
    person = spec.persons[i]
    assert isinstance(person, LegalPersonSpec)
    other = draw(chars(DIGITS, 8).map(luhn_complete).filter(lambda s: s not in (person.siren, LA_POSTE)))
    siret = luhn_complete(other + draw(chars(DIGITS, 4)))
    assert luhn_ok(siret)
    return set_person(spec, i, siret=siret)


# ---------------------------------------------------------------- pièces


def _inline_target(draw: st.DrawFn, spec: ProcedureSpec) -> tuple[ProcedureSpec, int]:
    inline = [i for i, p in enumerate(spec.pieces) if p.content is not None]
    if inline:
        return spec, draw(st.sampled_from(inline))
    content = draw(st.binary(min_size=1, max_size=64))
    number = max((p.number for p in spec.pieces), default=0) + 1
    piece = PieceSpec(
        number, "Procès-verbal", "text/plain", hashlib.sha256(content).hexdigest(), len(content), content
    )
    return dataclasses.replace(spec, pieces=(*spec.pieces, piece)), len(spec.pieces)


@st.composite
def piece_digest_mismatch(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    spec, i = _inline_target(draw, spec)
    piece = spec.pieces[i]
    assert piece.content is not None
    other = hashlib.sha256(piece.content + b"x").hexdigest()
    return dataclasses.replace(
        spec, pieces=replace_at(spec.pieces, i, dataclasses.replace(piece, sha256=other))
    )


@st.composite
def piece_size_mismatch(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    spec, i = _inline_target(draw, spec)
    piece = spec.pieces[i]
    size = draw(st.integers(0, 10**6).filter(lambda n: n != piece.size))
    return dataclasses.replace(spec, pieces=replace_at(spec.pieces, i, dataclasses.replace(piece, size=size)))

"""Corruptions of dates: faits, saisine and sending out of order, a date in the future, a garde à
vue ending before it starts or extended outside its period."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from hypothesis import strategies as st

from tests.strategies.corruptions.edits import (
    EARLIER_BY,
    FUTURE,
    natural_mis_en_cause,
    replace_at,
    with_faits,
)
from tests.strategies.spec import (
    ExtensionSpec,
    GardeAVueSpec,
    NaturalPersonSpec,
    ProcedureSpec,
)

_SECOND = timedelta(seconds=1)


@st.composite
def faits_end_before_start(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    faits = with_faits(spec)
    end = faits.start - draw(EARLIER_BY)
    return dataclasses.replace(spec, faits=dataclasses.replace(faits, end=end))


@st.composite
def faits_after_saisine(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """The faits start after the saisine (still before the message was sent and before now)."""
    faits = with_faits(spec)
    latest = max(spec.sent_at, spec.saisine_at + _SECOND)
    span = int((latest - spec.saisine_at).total_seconds())
    start = spec.saisine_at + timedelta(seconds=draw(st.integers(1, span)))
    end = None if faits.end is None else max(faits.end, start)
    return dataclasses.replace(spec, faits=dataclasses.replace(faits, start=start, end=end))


@st.composite
def saisine_after_sent(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """The saisine is dated after the message was sent (not in the future)."""
    later = spec.sent_at + timedelta(seconds=draw(st.integers(1, 24 * 3600)))
    return dataclasses.replace(spec, saisine_at=later)


@st.composite
def date_in_future(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """One date beyond now and the clock skew: the sending, a seizure, a measure or a birth."""
    future = draw(FUTURE)
    sites = ["sent"]
    sites += ["scelle"] if spec.scelles else []
    sites += ["measure"] if spec.measures else []
    naturals = [i for i, p in enumerate(spec.persons) if isinstance(p, NaturalPersonSpec)]
    sites += ["birth"] if naturals else []
    site = draw(st.sampled_from(sites))
    if site == "scelle":
        i = draw(st.integers(0, len(spec.scelles) - 1))
        scelle = dataclasses.replace(spec.scelles[i], seized_at=future)
        return dataclasses.replace(spec, scelles=replace_at(spec.scelles, i, scelle))
    if site == "measure":
        i = draw(st.integers(0, len(spec.measures) - 1))
        measure = dataclasses.replace(spec.measures[i], decided_at=future, hearing_at=None)
        return dataclasses.replace(spec, measures=replace_at(spec.measures, i, measure))
    if site == "birth":
        i = draw(st.sampled_from(naturals))
        person = dataclasses.replace(spec.persons[i], birth_date=future.date())
        return dataclasses.replace(spec, persons=replace_at(spec.persons, i, person))
    return dataclasses.replace(spec, sent_at=future)


def _gav_target(draw: st.DrawFn, spec: ProcedureSpec) -> tuple[ProcedureSpec, int]:
    """The procedure with a garde à vue to corrupt (one added for a natural mis en cause if none)."""
    if spec.gardes_a_vue:
        return spec, draw(st.integers(0, len(spec.gardes_a_vue) - 1))
    spec, held = natural_mis_en_cause(spec)
    gav = GardeAVueSpec(draw(st.sampled_from(held)).id, "Brigade", spec.saisine_at, minor=False)
    return dataclasses.replace(spec, gardes_a_vue=(gav,)), 0


def _set_gav(spec: ProcedureSpec, index: int, gav: GardeAVueSpec) -> ProcedureSpec:
    return dataclasses.replace(spec, gardes_a_vue=replace_at(spec.gardes_a_vue, index, gav))


@st.composite
def gav_end_before_start(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """A garde à vue ends before it starts, or when it starts (its extensions go: they would be outside)."""
    spec, i = _gav_target(draw, spec)
    gav = spec.gardes_a_vue[i]
    end = gav.start - timedelta(seconds=draw(st.integers(0, 3 * 24 * 3600)))
    return _set_gav(spec, i, dataclasses.replace(gav, end=end, extensions=()))


@st.composite
def gav_extension_outside(draw: st.DrawFn, spec: ProcedureSpec) -> ProcedureSpec:
    """An extension before the garde à vue started, or after it ended (at most four, as the schema says)."""
    spec, i = _gav_target(draw, spec)
    gav = spec.gardes_a_vue[i]
    if gav.end is not None and gav.end < spec.sent_at and draw(st.booleans()):
        span = int((spec.sent_at - gav.end).total_seconds())
        at = gav.end + timedelta(seconds=draw(st.integers(1, max(span, 1))))
    else:
        at = gav.start - draw(EARLIER_BY)
    kept = gav.extensions[:3]
    extensions = tuple(sorted((*kept, ExtensionSpec(at, "Parquet")), key=lambda x: x.at))
    return _set_gav(spec, i, dataclasses.replace(gav, extensions=extensions))

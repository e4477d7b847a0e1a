"""What the business rules look at, read out of any sender format, with locations.

Each sender format's reader (in ``mappings/``) fills a :class:`ProcedureFacts`;
the rules in :mod:`gateway.rules` never see the source format, so one rule
serves every agency and version, and each error still points at the line and
path of the sender's own document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Generic, TypeVar

from gateway.model import MessageKind, Nature

T = TypeVar("T")


class Loc:
    """Where a value is in the sender's document: its line and readable path.

    Rules read a location only to report an error, and most values are never in one:
    a reader may hand out a subclass that works them out on first use
    (:class:`gateway.locations.ElementLoc`).
    """

    __slots__ = ("_line", "_path")

    def __init__(self, line: int | None = None, path: str | None = None) -> None:
        self._line = line
        self._path = path

    @property
    def line(self) -> int | None:
        return self._line

    @property
    def path(self) -> str | None:
        return self._path

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Loc):
            return NotImplemented
        return (self.line, self.path) == (other.line, other.path)

    def __hash__(self) -> int:
        return hash((self.line, self.path))

    def __repr__(self) -> str:
        return f"Loc(line={self.line!r}, path={self.path!r})"


# Not frozen: a reader makes about a hundred of these per message, and a frozen dataclass
# sets each field through object.__setattr__ (three times the cost). Nothing changes one.
@dataclass(slots=True)
class Value(Generic[T]):
    value: T
    loc: Loc


@dataclass(frozen=True, slots=True)
class PersonFact:
    id: Value[str]
    role: str  # a court role value (gateway.model.CourtRole)
    natural: bool


@dataclass(frozen=True, slots=True)
class InfractionFact:
    id: Value[str]
    natinf: Value[str]
    nature: Value[Nature]


@dataclass(frozen=True, slots=True)
class CustodyFact:
    person_ref: Value[str]
    start: Value[datetime]
    end: Value[datetime] | None
    extensions: list[Value[datetime]]


@dataclass(frozen=True, slots=True)
class LegalIdFact:
    siren: Value[str]
    siret: Value[str] | None


@dataclass(frozen=True, slots=True)
class PieceFact:
    number: Value[str]
    sha256: str
    size: int
    content: bytes | None


@dataclass(frozen=True, slots=True)
class LocalTimeFact:
    """A date-time the sender wrote without an offset: as written (naive), the IANA zone it
    is read in, and the sender's summer (True) or winter (False) time indicator, if any."""

    written: Value[datetime]
    zone: str
    summer: bool | None = None


@dataclass
class ProcedureFacts:
    kind: MessageKind
    sent_at: Value[datetime]
    saisine_at: Value[datetime]
    faits_start: Value[datetime] | None = None
    faits_end: Value[datetime] | None = None
    no_mis_en_cause_reason: str | None = None
    persons: list[PersonFact] = field(default_factory=list)
    infractions: list[InfractionFact] = field(default_factory=list)
    charged: list[Value[str]] = field(default_factory=list)  # person refs of charges
    person_refs: list[Value[str]] = field(default_factory=list)  # measures and other refs
    custody: list[CustodyFact] = field(default_factory=list)
    arrested: list[Value[str]] = field(default_factory=list)  # ids of persons with an arrest
    infraction_refs: list[Value[str]] = field(default_factory=list)
    communes: list[Value[str]] = field(default_factory=list)
    dates: list[Value[datetime | date]] = field(default_factory=list)
    legal_ids: list[LegalIdFact] = field(default_factory=list)
    scelle_numbers: list[Value[str]] = field(default_factory=list)
    pieces: list[PieceFact] = field(default_factory=list)
    local_times: list[LocalTimeFact] = field(default_factory=list)  # formats without offsets

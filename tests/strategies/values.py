"""Small values for generated procedures: names, texts, codes, SIREN/SIRET, NATINF, moments.

Everything respects the schemas and the business rules: INSEE communes of every kind
(metropolitan, 2A/2B, overseas), SIREN/SIRET passing their checksums (La Poste's rule included),
NATINF codes read from the sample list with their nature, moments in a fixed past window.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from hypothesis import strategies as st

from gateway.model import Nature
from gateway.settings import SAMPLE_NATINF

# ---------------------------------------------------------------- the time window

# Every generated moment is at most LATEST: two days before the test started, far from the
# rules' clock-skew limit however long the run. The window is fixed relative to now.
NOW = datetime.now(UTC).replace(microsecond=0)
LATEST = NOW - timedelta(days=2)
EARLIEST = LATEST - timedelta(days=3 * 365)

# Offsets senders write (metropole winter/summer, UTC, overseas departments and territories).
SENDER_OFFSETS_MINUTES = (60, 120, 0, 240, -240, -180, 180, 660, -600, 720, 330)


# ---------------------------------------------------------------- reference data


@dataclass(frozen=True)
class NatinfEntry:
    code: str
    qualification: str
    nature: Nature
    in_force: bool


def _nature(label: str) -> Nature:
    """The ministry's nature label ('Délit', 'Contravention de 4ème classe') as a court nature."""
    text = label.strip().lower()
    if text.startswith("crime"):
        return Nature.CRIME
    if text.startswith("d"):  # Délit
        return Nature.DELIT
    digit = next(c for c in text if c.isdigit())
    return Nature(f"contravention_{digit}")


def load_natinf(path: Path = SAMPLE_NATINF) -> list[NatinfEntry]:
    """The sample NATINF list, read on its own (not through the product's reader)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    return [
        NatinfEntry(
            code=row["natinf"].strip().lstrip("0"),
            qualification=row["qualification_simplifiee"].strip(),
            nature=_nature(row["nature"]),
            in_force=(row.get("en_vigueur") or "oui").strip().lower() != "non",
        )
        for row in rows
    ]


NATINF = load_natinf()
NATINF_IN_FORCE = [e for e in NATINF if e.in_force]
NATINF_WITHDRAWN = [e for e in NATINF if not e.in_force]

COUNTRIES = ("FR", "BE", "CH", "DE", "ES", "IT", "PT", "GB", "MA", "DZ", "TN", "SN", "CI", "RO", "PL", "BR")


# ---------------------------------------------------------------- small values

_LOWER = "abcdefghijklmnopqrstuvwxyzàâäçéèêëîïôöùûüÿœæ"
_PARTICLES = ("", "", "", "d'", "D'", "d’", "de ", "De ", "du ", "Le ", "La ", "L'", "O'", "N'", "Mc")
_FRENCH_TEXT = _LOWER + _LOWER.upper() + "0123456789  ,.;:!?'’«»()-/°%€\t\u00a0\u202f"
# What XML 1.0 allows on one line (the schema's ``.`` excludes line breaks); tabs come from above.
_ANY_CHAR = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff")
_XML_SPACE = " \t\r\n"


@functools.cache
def _one_in(n: int) -> st.SearchStrategy[int]:
    return st.integers(0, n - 1)


def rarely(draw: st.DrawFn, one_in: int = 8) -> bool:
    """True about once in ``one_in`` draws; shrinks to False (the plain form)."""
    return draw(_one_in(one_in)) == one_in - 1


_WORDS = st.text(_LOWER, min_size=1, max_size=10).map(lambda w: w[:1].upper() + w[1:])
_SURNAME_PARTS = st.tuples(
    st.sampled_from(_PARTICLES),
    st.sampled_from(("-", " ")),
    st.lists(_WORDS, min_size=1, max_size=3),
    _one_in(4),
)
# French names as written: accents, apostrophes, particles, compound names, sometimes in capitals.
SURNAMES = _SURNAME_PARTS.map(
    lambda t: (t[0] + t[1].join(t[2])).upper() if t[3] == 3 else t[0] + t[1].join(t[2])
)
GIVEN_NAMES = st.lists(_WORDS, min_size=1, max_size=2).map("-".join)


@functools.cache
def texts(max_size: int = 120) -> st.SearchStrategy[str]:
    """Free text on one line with at least one visible character: French, or any XML character."""
    french = st.text(_FRENCH_TEXT, min_size=1, max_size=max_size)
    anything = st.text(_ANY_CHAR, min_size=1, max_size=max_size)
    return (french | anything).filter(lambda s: bool(s.strip(_XML_SPACE)))


DIGITS = "0123456789"
HEX = "0123456789abcdef"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_UPPER_ALNUM = _LETTERS + DIGITS
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTVWXYZ"  # SIV plates skip I, O and U


def chars(alphabet: str, low: int, high: int | None = None) -> st.SearchStrategy[str]:
    """Strings of ``low`` to ``high`` (default ``low``) characters of ``alphabet``."""
    return st.text(alphabet, min_size=low, max_size=low if high is None else high)


def joined(*parts: st.SearchStrategy[str] | str) -> st.SearchStrategy[str]:
    """The concatenation of strings drawn from ``parts`` (a plain string stands for itself)."""
    return st.tuples(*(st.just(p) if isinstance(p, str) else p for p in parts)).map("".join)


# The schema's patterns: LocalIdType, the scellé number, VehicleRegistrationType (SIV or FNI).
_ALPHA = _LETTERS + _LETTERS.lower()
LOCAL_IDS = joined(chars(_ALPHA, 1), chars(_ALPHA + DIGITS + "_-", 0, 31))
SCELLE_NUMBERS = joined(chars(_UPPER_ALNUM, 1), chars(_UPPER_ALNUM + "/-", 0, 31))
_FNI_DEPARTMENTS = chars(DIGITS, 2) | st.sampled_from(("2A", "2B"))
VEHICLE_REGISTRATIONS = st.one_of(
    joined(chars(_PLATE_LETTERS, 2), "-", chars(DIGITS, 3), "-", chars(_PLATE_LETTERS, 2)),
    joined(chars(DIGITS, 1, 4), " ", chars(_LETTERS, 1, 3), " ", _FNI_DEPARTMENTS),
)


_METROPOLE = tuple(f"{d:02d}" for d in range(1, 96) if d != 20)
_COMMUNE_NUMBERS = st.integers(1, 999)
# A well-formed INSEE commune code: departments 01-95 but 20, 2A/2B, overseas 971-978.
COMMUNES = st.one_of(
    st.tuples(st.sampled_from(_METROPOLE), _COMMUNE_NUMBERS).map(lambda t: f"{t[0]}{t[1]:03d}"),
    st.tuples(st.sampled_from(("2A", "2B")), _COMMUNE_NUMBERS).map(lambda t: f"{t[0]}{t[1]:03d}"),
    st.tuples(st.integers(1, 8), st.integers(1, 99)).map(lambda t: f"97{t[0]}{t[1]:02d}"),
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        n = int(char) * (2 if index % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def luhn_complete(payload: str) -> str:
    """``payload`` followed by the one digit that makes the whole pass the Luhn checksum."""
    return next(payload + d for d in "0123456789" if luhn_ok(payload + d))


LA_POSTE = "356000000"


def siret_ok(siret: str) -> bool:
    """Luhn; La Poste's establishments (SIREN 356000000) sum their digits to 0 mod 5 instead."""
    if siret.startswith(LA_POSTE) and siret != "35600000000048":
        return sum(map(int, siret)) % 5 == 0
    return luhn_ok(siret)


@st.composite
def sirens(draw: st.DrawFn) -> str:
    if rarely(draw, 10):
        return LA_POSTE
    return luhn_complete(draw(chars(DIGITS, 8)))


SIRENS = sirens()


_NICS = chars(DIGITS, 4)


def siret(draw: st.DrawFn, siren: str) -> str:
    """A SIRET of the company ``siren``: its establishment number and the check digit."""
    nic = draw(_NICS)
    if siren == LA_POSTE:
        return next(siren + nic + d for d in "0123456789" if siret_ok(siren + nic + d))
    return luhn_complete(siren + nic)


# ---------------------------------------------------------------- moments


_FRACTION_MAX = 2**32
_FRACTION = st.integers(0, _FRACTION_MAX)
_GRAINS = st.sampled_from(("minute", "second", "hour", "midnight", "microsecond"))
_MICROSECONDS = st.integers(1, 999_999)


def moment(draw: st.DrawFn, lo: datetime, hi: datetime, tz: tzinfo) -> datetime:
    """A moment in [lo, hi] in the sender's offset, often round (minute, hour, midnight) as written."""
    span = max(0, int((hi - lo).total_seconds()))
    value = (lo + timedelta(seconds=span * draw(_FRACTION) // _FRACTION_MAX)).astimezone(tz)
    grain = draw(_GRAINS)
    if grain == "microsecond":
        candidate = value.replace(microsecond=draw(_MICROSECONDS))
    elif grain == "minute":
        candidate = value.replace(second=0, microsecond=0)
    elif grain == "hour":
        candidate = value.replace(minute=0, second=0, microsecond=0)
    elif grain == "midnight":
        candidate = value.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        candidate = value.replace(microsecond=0)
    return candidate if lo <= candidate <= hi else value

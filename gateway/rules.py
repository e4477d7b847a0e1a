"""Business rules: the second layer, after the schema, each rule with its own code.

Rules read :class:`~gateway.facts.ProcedureFacts`, never a source format, and
return every error they find (a sender fixes everything in one go).
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gateway.errors import ErrorDetail
from gateway.facts import Loc, ProcedureFacts, Value
from gateway.localtime import contradicts, exists, zone
from gateway.model import CourtRole, MessageKind
from gateway.natinf import NatinfReference

_OVERSEAS = {"971", "972", "973", "974", "975", "976", "977", "978"}


@dataclass(frozen=True, slots=True)
class RuleContext:
    natinf: NatinfReference
    now: datetime
    clock_skew: timedelta = timedelta(minutes=5)


Rule = Callable[[ProcedureFacts, RuleContext], Iterator[ErrorDetail]]


def _err(code: str, message: str, loc: Loc) -> ErrorDetail:
    return ErrorDetail(code=code, message=message, line=loc.line, path=loc.path)


def check_natinf(facts: ProcedureFacts, ctx: RuleContext) -> Iterator[ErrorDetail]:
    for inf in facts.infractions:
        entry = ctx.natinf.get(inf.natinf.value)
        code = inf.natinf.value
        if entry is None:
            yield _err("NATINF_UNKNOWN", f"NATINF {code} is not in the reference list.", inf.natinf.loc)
        elif not entry.in_force:
            yield _err("NATINF_NOT_IN_FORCE", f"NATINF {code} is no longer in force.", inf.natinf.loc)
        elif entry.nature is not None and entry.nature != inf.nature.value:
            yield _err(
                "NATINF_NATURE_MISMATCH",
                f"NATINF {code} is a {entry.nature.value}, not a {inf.nature.value.value}.",
                inf.nature.loc,
            )


def valid_insee_commune(code: str) -> bool:
    """Departments 01-19, 2A, 2B, 21-95 and 971-978; commune number not 000."""
    if len(code) != 5:
        return False
    if code[:2] in ("2A", "2B"):
        return code[2:].isdigit() and code[2:] != "000"
    if not code.isdigit():
        return False
    if code[:2] == "97":
        return code[:3] in _OVERSEAS and code[3:] != "00"
    return code[:2] not in ("00", "20", "96", "98", "99") and code[2:] != "000"


def check_communes(facts: ProcedureFacts, ctx: RuleContext) -> Iterator[ErrorDetail]:
    for commune in facts.communes:
        if not valid_insee_commune(commune.value):
            yield _err(
                "INSEE_COMMUNE_INVALID",
                f"{commune.value} is not an INSEE commune code.",
                commune.loc,
            )


def _aware(value: datetime | date) -> datetime | None:
    return value if isinstance(value, datetime) else None


def check_dates(facts: ProcedureFacts, ctx: RuleContext) -> Iterator[ErrorDetail]:
    start, end = facts.faits_start, facts.faits_end
    if start and end and end.value < start.value:
        yield _err("DATE_FAITS_END_BEFORE_START", "The faits end before they start.", end.loc)
    if start and start.value > facts.saisine_at.value:
        yield _err("DATE_FAITS_AFTER_SAISINE", "The faits start after the saisine.", start.loc)
    if facts.saisine_at.value > facts.sent_at.value:
        yield _err(
            "DATE_SAISINE_AFTER_SENT",
            "The saisine is after the message was sent.",
            facts.saisine_at.loc,
        )
    limit = ctx.now + ctx.clock_skew
    for when in facts.dates:
        moment = _aware(when.value)
        too_late = moment > limit if moment else when.value > limit.date()
        if too_late:
            yield _err("DATE_IN_FUTURE", f"{when.value.isoformat()} is in the future.", when.loc)
    for gav in facts.custody:
        if gav.end and gav.end.value <= gav.start.value:
            yield _err("DATE_GAV_END_BEFORE_START", "The garde à vue ends before it starts.", gav.end.loc)
        last = gav.end.value if gav.end else None
        for ext in gav.extensions:
            if ext.value < gav.start.value or (last is not None and ext.value > last):
                yield _err("DATE_GAV_EXTENSION_OUTSIDE", "Extension outside the garde à vue.", ext.loc)


def check_local_times(facts: ProcedureFacts, ctx: RuleContext) -> Iterator[ErrorDetail]:
    """A date-time written without offset must exist on the wall clock, and its summer or
    winter time indicator (if any) must be possible on that date (see gateway.localtime)."""
    for local in facts.local_times:
        tz, written = zone(local.zone), local.written.value
        if not exists(written, tz):
            yield _err(
                "DATE_LOCAL_NONEXISTENT",
                f"{written.isoformat()} does not exist in {local.zone}: "
                "clocks go forward over that hour (daylight-saving change).",
                local.written.loc,
            )
        elif local.summer is not None and contradicts(written, tz, local.summer):
            season = "summer" if local.summer else "winter"
            yield _err(
                "DATE_LOCAL_DST_MISMATCH",
                f"{written.isoformat()} is not in {season} time in {local.zone}.",
                local.written.loc,
            )


def _duplicates(values: list[Value[str]], code: str, what: str) -> Iterator[ErrorDetail]:
    counts = Counter(v.value for v in values)
    seen: set[str] = set()
    for v in values:
        if counts[v.value] > 1 and v.value in seen:
            yield _err(code, f"{what} {v.value} is declared more than once.", v.loc)
        seen.add(v.value)


def _as_integer(number: Value[str]) -> Value[str]:
    """A pièce number as the court reads it: "02" and "+2" are both pièce 2."""
    text = number.value.strip(" \t\r\n")
    canonical = str(int(text)) if text.lstrip("+-").isdigit() else text
    return Value(canonical, number.loc)


def check_references(facts: ProcedureFacts, ctx: RuleContext) -> Iterator[ErrorDetail]:
    ids = [p.id for p in facts.persons] + [i.id for i in facts.infractions]
    yield from _duplicates(ids, "REF_DUPLICATE_ID", "Identifier")
    yield from _duplicates(facts.scelle_numbers, "DUPLICATE_NUMBER", "Scellé number")
    yield from _duplicates([_as_integer(p.number) for p in facts.pieces], "DUPLICATE_NUMBER", "Pièce number")
    persons = {p.id.value: p for p in facts.persons}
    infractions = {i.id.value for i in facts.infractions}
    for ref in [*facts.charged, *facts.person_refs, *(g.person_ref for g in facts.custody)]:
        if ref.value not in persons:
            yield _err("REF_PERSON_UNRESOLVED", f"No person has the identifier {ref.value}.", ref.loc)
    for ref in facts.infraction_refs:
        if ref.value not in infractions:
            yield _err("REF_INFRACTION_UNRESOLVED", f"No offence has the identifier {ref.value}.", ref.loc)
    for ref in facts.charged:
        person = persons.get(ref.value)
        if person and person.role != CourtRole.MIS_EN_CAUSE:
            yield _err(
                "CHARGE_NOT_MIS_EN_CAUSE",
                f"{ref.value} is charged but is not a mis en cause.",
                ref.loc,
            )
    for ref in [*(g.person_ref for g in facts.custody), *facts.arrested]:
        person = persons.get(ref.value)
        if person and (not person.natural or person.role != CourtRole.MIS_EN_CAUSE):
            yield _err("GAV_PERSON_INVALID", f"{ref.value} is not a natural person mis en cause.", ref.loc)


def check_completeness(facts: ProcedureFacts, ctx: RuleContext) -> Iterator[ErrorDetail]:
    if facts.kind != MessageKind.INITIALE:
        return
    here = facts.sent_at.loc
    if not facts.infractions:
        yield _err("INFRACTION_MISSING", "An initial procedure declares at least one offence.", here)
    has_suspect = any(p.role == CourtRole.MIS_EN_CAUSE for p in facts.persons)
    if not has_suspect and not facts.no_mis_en_cause_reason:
        yield _err("MIS_EN_CAUSE_MISSING", "No mis en cause and no reason why there is none.", here)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum used by SIREN and SIRET numbers."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        n = int(char) * (2 if index % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def siret_valid(siret: str) -> bool:
    """Luhn, except La Poste's establishments (SIREN 356000000), which sum their digits to 0 mod 5."""
    if siret.startswith("356000000") and siret != "35600000000048":
        return sum(int(c) for c in siret) % 5 == 0
    return luhn_valid(siret)


def check_company_ids(facts: ProcedureFacts, ctx: RuleContext) -> Iterator[ErrorDetail]:
    for ids in facts.legal_ids:
        if not luhn_valid(ids.siren.value):
            yield _err(
                "SIREN_CHECKSUM_INVALID",
                f"SIREN {ids.siren.value} fails its checksum.",
                ids.siren.loc,
            )
        if ids.siret is None:
            continue
        if not siret_valid(ids.siret.value):
            yield _err(
                "SIRET_CHECKSUM_INVALID",
                f"SIRET {ids.siret.value} fails its checksum.",
                ids.siret.loc,
            )
        if not ids.siret.value.startswith(ids.siren.value):
            yield _err("SIRET_SIREN_MISMATCH", "The SIRET does not start with the SIREN.", ids.siret.loc)


def check_pieces(facts: ProcedureFacts, ctx: RuleContext) -> Iterator[ErrorDetail]:
    for piece in facts.pieces:
        if piece.content is None:
            continue
        if len(piece.content) != piece.size:
            yield _err(
                "PIECE_SIZE_MISMATCH",
                f"Pièce {piece.number.value}: {len(piece.content)} bytes, {piece.size} declared.",
                piece.number.loc,
            )
        if hashlib.sha256(piece.content).hexdigest() != piece.sha256:
            yield _err(
                "PIECE_DIGEST_MISMATCH",
                f"Pièce {piece.number.value}: content does not match its SHA-256.",
                piece.number.loc,
            )


RULES: tuple[Rule, ...] = (
    check_natinf,
    check_communes,
    check_dates,
    check_local_times,
    check_references,
    check_completeness,
    check_company_ids,
    check_pieces,
)


def apply_rules(facts: ProcedureFacts, ctx: RuleContext) -> list[ErrorDetail]:
    """Every business-rule error of a schema-valid message, sorted by line."""
    errors = [error for rule in RULES for error in rule(facts, ctx)]
    return sorted(errors, key=lambda e: e.line or 0)


def decode_base64(text: str) -> bytes:
    """Inline content as the schema's xs:base64Binary allows it (whitespace included)."""
    return base64.b64decode("".join(text.split()), validate=True)

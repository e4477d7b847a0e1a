"""Local date-times without offset (the police format): a defined outcome at both
daylight-saving changes, and the rule that rejects what cannot be resolved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from gateway.facts import Loc, LocalTimeFact, ProcedureFacts, Value
from gateway.localtime import contradicts, exists, is_ambiguous, resolve, zone
from gateway.model import MessageKind
from gateway.natinf import NatinfReference
from gateway.paths import SCHEMAS_DIR
from gateway.rules import RuleContext, check_local_times
from mappings.police_v1.reading import DEFAULT_ZONE, ZONES

PARIS = zone("Europe/Paris")
AUTUMN = datetime(2025, 10, 26, 2, 30)  # 03:00 summer time became 02:00 winter time
SPRING = datetime(2026, 3, 29, 2, 30)  # 02:00 winter time became 03:00 summer time


def test_repeated_autumn_hour_is_its_first_occurrence_by_default() -> None:
    """Without an indicator, 02:30 on the autumn night is the summer-time one (fold=0)."""
    assert is_ambiguous(AUTUMN, PARIS)
    assert resolve(AUTUMN, PARIS).isoformat() == "2025-10-26T02:30:00+02:00"
    assert resolve(AUTUMN, PARIS, summer=True).isoformat() == "2025-10-26T02:30:00+02:00"


def test_winter_indicator_picks_the_second_occurrence() -> None:
    """heure="HIVER" names the second 02:30, one hour later in real time."""
    first, second = resolve(AUTUMN, PARIS), resolve(AUTUMN, PARIS, summer=False)
    assert second.isoformat() == "2025-10-26T02:30:00+01:00"
    assert (second - first).total_seconds() == 3600


def test_resolved_times_compare_in_real_time() -> None:
    """02:10 winter time comes after 02:30 summer time (fixed offsets, not the zone's wall clock)."""
    assert resolve(datetime(2025, 10, 26, 2, 10), PARIS, summer=False) > resolve(AUTUMN, PARIS)
    assert resolve(AUTUMN, PARIS).tzinfo is not PARIS


def test_skipped_spring_hour_does_not_exist() -> None:
    """02:30 on the spring night never showed on a clock; the minutes around it did."""
    assert not exists(SPRING, PARIS)
    assert exists(datetime(2026, 3, 29, 1, 59, 59), PARIS) and exists(datetime(2026, 3, 29, 3, 0), PARIS)
    assert not is_ambiguous(SPRING, PARIS)


@pytest.mark.parametrize(
    ("local", "summer", "impossible"),
    [
        (datetime(2026, 7, 1, 12, 0), False, True),
        (datetime(2026, 7, 1, 12, 0), True, False),
        (datetime(2026, 1, 15, 12, 0), True, True),
        (AUTUMN, True, False),
        (AUTUMN, False, False),
    ],
)
def test_indicator_must_be_possible_on_its_date(local: datetime, summer: bool, impossible: bool) -> None:
    """Summer time in January, winter time in July are contradictions; both fit the repeated hour."""
    assert contradicts(local, PARIS, summer) is impossible


def test_zone_without_summer_time() -> None:
    """La Réunion is +04:00 all year: its winter (standard) time is always right, summer never."""
    reunion = zone("Indian/Reunion")
    assert resolve(SPRING, reunion).isoformat() == "2026-03-29T02:30:00+04:00"
    assert exists(SPRING, reunion) and not contradicts(SPRING, reunion, False)
    assert contradicts(SPRING, reunion, True)


def _facts(*local_times: LocalTimeFact) -> ProcedureFacts:
    sent = Value(datetime(2026, 4, 1, tzinfo=UTC), Loc(1, "/p/sent"))
    return ProcedureFacts(
        kind=MessageKind.INITIALE, sent_at=sent, saisine_at=sent, local_times=list(local_times)
    )


def test_rule_reports_nonexistent_and_contradicted_times_where_they_are() -> None:
    """One error per bad local time, with its own code and location; good ones pass."""
    ctx = RuleContext(natinf=NatinfReference.from_csv_text("natinf;q;nature\n"), now=datetime.now(UTC))
    facts = _facts(
        LocalTimeFact(Value(SPRING, Loc(10, "/p/a")), "Europe/Paris"),
        LocalTimeFact(Value(SPRING, Loc(11, "/p/b")), "Europe/Paris", summer=True),
        LocalTimeFact(Value(datetime(2026, 1, 15, 9, 0), Loc(12, "/p/c")), "Europe/Paris", summer=True),
        LocalTimeFact(Value(AUTUMN, Loc(13, "/p/d")), "Europe/Paris", summer=False),
        LocalTimeFact(Value(datetime(2026, 1, 15, 9, 0), Loc(14, "/p/e")), "Europe/Paris"),
    )
    errors = [(e.code, e.line, e.path) for e in check_local_times(facts, ctx)]
    assert errors == [
        ("DATE_LOCAL_NONEXISTENT", 10, "/p/a"),
        ("DATE_LOCAL_NONEXISTENT", 11, "/p/b"),
        ("DATE_LOCAL_DST_MISMATCH", 12, "/p/c"),
    ]


def test_every_zone_the_police_schema_allows_is_loaded() -> None:
    """The schema's fuseauHoraire values are exactly the zones the police mapping loads at start-up."""
    xsd = etree.parse(str(SCHEMAS_DIR / "police" / "v1" / "procedure.xsd"))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    allowed = xsd.xpath("//xs:simpleType[@name='FuseauHoraireType']//xs:enumeration/@value", namespaces=ns)
    default = xsd.xpath("//xs:attribute[@name='fuseauHoraire']/@default", namespaces=ns)
    assert set(allowed) == set(ZONES) and default == [DEFAULT_ZONE]

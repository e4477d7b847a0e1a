"""Local civil date-times (no offset) read in an IANA time zone, with a defined outcome
at the daylight-saving changes.

Some senders write date-times as the clock on the wall showed them. In a zone
with summer time, two hours a year are special:

- in spring one hour is skipped (02:00-03:00 does not exist in Europe/Paris on
  the last Sunday of March): such a time is an error (rule ``DATE_LOCAL_NONEXISTENT``);
- in autumn one hour happens twice (02:00-03:00, first in summer time, then in
  winter time): without an indicator it is the *first* occurrence (``fold=0``),
  with one it is the occurrence whose summer/winter time it names.

The result is always an aware datetime with a *fixed* offset, never one bound
to a ``ZoneInfo``: Python compares two datetimes of the same ``ZoneInfo`` by
wall time, ignoring ``fold``, which would misorder times across the change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo


@cache
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (loaded once); raises if the time zone database lacks it."""
    return ZoneInfo(name)


def _at(local: datetime, tz: ZoneInfo, fold: int) -> datetime:
    return local.replace(tzinfo=tz, fold=fold)


def exists(local: datetime, tz: ZoneInfo) -> bool:
    """False for a wall time skipped when clocks go forward."""
    aware = _at(local, tz, 0)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


def is_ambiguous(local: datetime, tz: ZoneInfo) -> bool:
    """True for a wall time that happens twice when clocks go back."""
    return exists(local, tz) and _at(local, tz, 0).utcoffset() != _at(local, tz, 1).utcoffset()


def is_summer_time(local: datetime, tz: ZoneInfo, fold: int = 0) -> bool:
    return bool(_at(local, tz, fold).dst())


def contradicts(local: datetime, tz: ZoneInfo, summer: bool) -> bool:
    """Whether a summer (``True``) or winter (``False``) time indicator is impossible here.

    In the repeated hour both are possible; elsewhere only the one in force is.
    """
    if is_ambiguous(local, tz):
        return False
    return is_summer_time(local, tz) != summer


def resolve(local: datetime, tz: ZoneInfo, summer: bool | None = None) -> datetime:
    """The instant a local wall time denotes, with a fixed offset.

    The repeated autumn hour is its first occurrence unless ``summer`` is
    ``False`` (winter time: the second one). A skipped spring time still gets
    an instant (that of ``fold=0``) so that other rules can run; the rule
    ``DATE_LOCAL_NONEXISTENT`` rejects the message.
    """
    fold = 0
    if summer is not None and is_ambiguous(local, tz):
        fold = 0 if is_summer_time(local, tz, 0) == summer else 1
    offset = _at(local, tz, fold).utcoffset() or timedelta(0)
    return local.replace(tzinfo=timezone(offset))

"""Time in China: every DingTalk timestamp is converted with an explicit Asia/Shanghai zone.

The host's zone never matters: a punch at 00:30 Beijing time is 16:30 UTC the day before, and
work dates are local midnights in China.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ms_to_datetime(ms: int) -> datetime:
    """Epoch milliseconds to an aware datetime in Asia/Shanghai."""
    return datetime.fromtimestamp(ms / 1000, tz=SHANGHAI)


def ms_to_date(ms: int) -> date:
    """Epoch ms of a DingTalk `workDate` (local midnight) to the calendar date in China."""
    return ms_to_datetime(ms).date()


def local_datetime(d: date, t: time = time(0, 0)) -> datetime:
    """A wall-clock date and time in China as an aware datetime."""
    return datetime.combine(d, t, tzinfo=SHANGHAI)


def date_to_ms(d: date, t: time = time(0, 0)) -> int:
    """A date (and optional wall time) in China to epoch milliseconds."""
    return int(local_datetime(d, t).timestamp() * 1000)


def dingtalk_date_string(d: date) -> str:
    """The `yyyy-MM-dd HH:mm:ss` form the legacy attendance APIs take (the time part is ignored)."""
    return f"{d.isoformat()} 00:00:00"


def today_in_china(now: datetime | None = None) -> date:
    """Today's date in China, whatever the host's zone."""
    return (now or datetime.now(tz=SHANGHAI)).astimezone(SHANGHAI).date()


def now_in_china() -> datetime:
    """The current time in China, to the millisecond (the lake's timestamp precision)."""
    now = datetime.now(tz=SHANGHAI)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def days(start: date, end: date) -> Iterator[date]:
    """Every date from start to end, both included."""
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def windows(start: date, end: date, span_days: int) -> Iterator[tuple[date, date]]:
    """Split start..end (inclusive) into consecutive windows of at most span_days days."""
    cursor = start
    while cursor <= end:
        stop = min(end, cursor + timedelta(days=span_days - 1))
        yield cursor, stop
        cursor = stop + timedelta(days=1)

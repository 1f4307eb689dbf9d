"""Which days are workdays, rest days or statutory holidays in China.

`chinese_calendar` first; for years it does not cover yet (it raises NotImplementedError past the
last year the State Council has published), `config/calendar.csv` (date,kind,name). Where neither
covers a date, `day_type` returns None and the caller falls back to DingTalk's own schedule.
"""

from __future__ import annotations

import csv
from datetime import date
from functools import lru_cache
from pathlib import Path

import chinese_calendar

from attendance_pipeline.config_files import ConfigError, open_config_csv

DAY_TYPES = ("workday", "restday", "holiday")
# `calendar_source` of a day typed Monday–Friday = workday: employees in no attendance group have
# no DingTalk schedule to fall back to when no calendar covers the date.
WEEKDAYS = "weekdays"


class WorkCalendar:
    """Day types from chinese_calendar, then a company-supplied calendar.csv."""

    def __init__(self, extra: dict[date, tuple[str, str]] | None = None) -> None:
        self._extra = extra or {}
        self._extra_years = {d.year for d in self._extra}

    @classmethod
    def load(cls, path: Path) -> WorkCalendar:
        """Read `calendar.csv` if present; errors name the line."""
        extra: dict[date, tuple[str, str]] = {}
        if path.exists():
            with open_config_csv(path) as handle:
                reader = csv.DictReader(handle)
                missing = {"date", "kind"} - set(reader.fieldnames or [])
                if missing:
                    raise ConfigError(
                        f"{path} line 1: missing column(s) {', '.join(sorted(missing))}"
                    )
                for line, row in enumerate(reader, start=2):
                    try:
                        day = date.fromisoformat((row["date"] or "").strip())
                    except ValueError:
                        raise ConfigError(
                            f"{path} line {line}: `date` {row['date']!r} is not YYYY-MM-DD"
                        ) from None
                    kind = (row["kind"] or "").strip()
                    if kind not in ("workday", "holiday"):
                        raise ConfigError(
                            f"{path} line {line}: `kind` must be workday or holiday, not {kind!r}"
                        )
                    extra[day] = (kind, (row.get("name") or "").strip())
        return cls(extra)

    def day_type(self, day: date) -> tuple[str, str] | None:
        """(day_type, source) or None when no calendar covers the date."""
        covered = _chinese_calendar(day)
        if covered is not None:
            return covered, "chinese_calendar"
        if day in self._extra:
            return self._extra[day][0], "calendar.csv"
        if day.year in self._extra_years:
            return ("restday" if day.weekday() >= 5 else "workday"), "calendar.csv"
        return None

    def day_type_without_schedule(self, day: date) -> tuple[str, str]:
        """(day_type, source) for someone without a DingTalk schedule: uncovered, Monday–Friday."""
        return self.day_type(day) or (("workday" if day.weekday() < 5 else "restday"), WEEKDAYS)

    def covers(self, day: date) -> bool:
        return self.day_type(day) is not None


@lru_cache(maxsize=4096)
def _chinese_calendar(day: date) -> str | None:
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    if not on_holiday:
        return "workday"
    return "holiday" if name else "restday"

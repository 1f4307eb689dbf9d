"""The company's calendar: statutory workdays (``chinese_calendar``, 调休 Saturdays included) and
local midnights, cached (a big company asks for the same days millions of times)."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar

from attendance_pipeline.simulators.dingtalk.company.draws import local_midnight_ms


class WorkCalendar:
    def __init__(self) -> None:
        self._workday_cache: dict[date, bool] = {}
        self._midnight_cache: dict[date, int] = {}
        self._week_days_cache: dict[tuple[int, int], tuple[date, ...]] = {}

    def is_workday(self, d: date) -> bool:
        """Statutory workday per chinese_calendar (调休 Saturdays included).

        Monday-Friday for dates the package does not cover (NotImplementedError).
        """
        cached = self._workday_cache.get(d)
        if cached is None:
            try:
                cached = bool(chinese_calendar.is_workday(d))
            except NotImplementedError:
                cached = d.weekday() < 5
            self._workday_cache[d] = cached
        return cached

    def midnight(self, d: date) -> int:
        ms = self._midnight_cache.get(d)
        if ms is None:
            ms = self._midnight_cache[d] = local_midnight_ms(d)
        return ms

    def week_workdays(self, iso_year: int, iso_week: int) -> tuple[date, ...]:
        key = (iso_year, iso_week)
        days = self._week_days_cache.get(key)
        if days is None:
            monday = date.fromisocalendar(iso_year, iso_week, 1)
            week = (monday + timedelta(days=i) for i in range(7))
            days = self._week_days_cache[key] = tuple(d for d in week if self.is_workday(d))
        return days

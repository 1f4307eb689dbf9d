"""The plan of one person's day, as generated before any clock is applied: two check points
(punched, missing, or covered by leave or a trip) and the approvals that begin that day.

Everything derives from ``(seed, person, date)``; multi-day events (leave or trips of 2-3
consecutive workdays, a half-day leave from one afternoon to the next morning) are decided per
(person, ISO week) and stay inside that week, so every day can find its event without history.
Days are drawn in the 09:00-18:00 shift and moved to the person's group's shift.

Draw indices: a day uses 0-14 for its events and 15 for the rare leave types and what an
overtime approval says becomes of it (调休/加班费); a week uses 0-4 for its event and 5-6 for a
rare leave type. Indices added later never move an older draw, so every person-day kept its
events when the subtypes were added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from attendance_pipeline.simulators.dingtalk.company.approvals import (
    LEAVE_SUBTYPES,
    RARE_LEAVE_SUBTYPES,
    Approval,
    ApprovalMaker,
    later_approval,
    leave_subtype,
    overtime_subtype,
)
from attendance_pipeline.simulators.dingtalk.company.draws import OFF_MINUTE, ON_MINUTE, Draw
from attendance_pipeline.simulators.dingtalk.company.groups import AttendanceGroup
from attendance_pipeline.simulators.dingtalk.company.workdays import WorkCalendar

SOURCES = ("ATM", "DING_ATM", "USER", "BEACON", "DING_ATM", "ATM")


@dataclass(frozen=True, slots=True)
class Point:
    """One scheduled check point as generated, before the clock is applied."""

    time_result: str
    location: str
    source: str
    minute: int | None  # punch minute after local midnight of the work date; None = no punch
    approval: Approval | None = None  # leave/trip covering the point
    fix: Approval | None = None  # a 补卡 approval that rewrites this point once visible


@dataclass(frozen=True, slots=True)
class DayPlan:
    points: tuple[Point, Point] | None  # None on rest days and before hiring
    approvals: tuple[Approval, ...]  # approvals that begin on this day (daily events only)


@dataclass(frozen=True, slots=True)
class WeekEvent:
    kind: str  # "leave" | "trip" | "halfday"
    days: tuple[date, ...]
    approval: Approval


NO_DAY = DayPlan(None, ())


def shifted(plan: DayPlan, minutes: int) -> DayPlan:
    """The same day ``minutes`` later: punches, hour approvals and 补卡 times move together, so
    lates, early leaves and covered points keep their meaning relative to the group's shift."""
    if plan.points is None:
        moved = tuple(later_approval(a, minutes) for a in plan.approvals)
        return DayPlan(None, tuple(a for a in moved if a is not None))
    cache: dict[str, Approval | None] = {}

    def move(appr: Approval | None) -> Approval | None:
        if appr is None:
            return None
        if appr.approve_id not in cache:
            cache[appr.approve_id] = later_approval(appr, minutes)
        return cache[appr.approve_id]

    on, off = (
        replace(
            p,
            minute=None if p.minute is None else p.minute + minutes,
            approval=move(p.approval),
            fix=move(p.fix),
        )
        for p in plan.points
    )
    approvals = tuple(a for a in (move(a) for a in plan.approvals) if a is not None)
    return DayPlan((on, off), approvals)


class DayPlanner:
    """Plans of the company's people, by index; multi-day events are cached per ISO week."""

    def __init__(
        self,
        seed: int,
        userids: list[str],
        hired: list[date],
        last_day: list[date | None],
        groups: Sequence[AttendanceGroup | None],
        calendar: WorkCalendar,
        approvals: ApprovalMaker,
    ) -> None:
        self.seed = seed
        self._userids = userids
        self._hired = hired
        self._last_day = last_day
        self._group = groups
        self._calendar = calendar
        self._approvals = approvals
        self._week_cache: dict[tuple[int, int, int], tuple[WeekEvent | None]] = {}

    def week_event(self, idx: int, iso_year: int, iso_week: int) -> WeekEvent | None:
        key = (idx, iso_year, iso_week)
        hit = self._week_cache.get(key)  # .get: safe while another thread clears the cache
        if hit is not None:
            return hit[0]
        if len(self._week_cache) > 500_000:  # bounded: long histories of big companies
            self._week_cache.clear()
        event = self._make_week_event(idx, iso_year, iso_week)
        self._week_cache[key] = (event,)
        return event

    def _make_week_event(self, idx: int, iso_year: int, iso_week: int) -> WeekEvent | None:
        dr = Draw(self.seed, "week", idx, iso_year, iso_week)
        if dr.u(0) >= 0.035:
            return None
        workdays = self._calendar.week_workdays(iso_year, iso_week)
        r = dr.u(1)
        kind = "leave" if r < 0.55 else "trip" if r < 0.8 else "halfday"
        length = 2 if kind == "halfday" or dr.u(2) < 0.5 else 3
        if len(workdays) < length:
            return None
        start = dr.randint(3, 0, len(workdays) - length)
        days = workdays[start : start + length]
        if days[0] < self._hired[idx]:
            return None
        last_day = self._last_day[idx]
        if last_day is not None and days[-1] > last_day:
            return None
        userid = self._userids[idx]
        first, last = days[0], days[-1]
        if kind == "leave":
            sub = LEAVE_SUBTYPES[dr.randint(4, 0, len(LEAVE_SUBTYPES) - 1)]
            if dr.u(5) < 0.1:  # 婚假, 陪产假, 丧假 run over several days
                sub = RARE_LEAVE_SUBTYPES[dr.randint(6, 0, len(RARE_LEAVE_SUBTYPES) - 1)]
            appr = self._approvals.make(
                userid, "wleave", first, biz_type=3, tag="请假", sub_type=sub, unit="day",
                begin=(first, ""), end=(last, ""),
            )  # fmt: skip
        elif kind == "trip":
            appr = self._approvals.make(
                userid, "wtrip", first, biz_type=2, tag="出差", unit="day",
                begin=(first, ""), end=(last, ""),
            )  # fmt: skip
        else:
            sub = LEAVE_SUBTYPES[dr.randint(4, 0, len(LEAVE_SUBTYPES) - 1)]
            appr = self._approvals.make(
                userid, "whalf", first, biz_type=3, tag="请假", sub_type=sub, unit="halfDay",
                begin=(first, "PM"), end=(last, "AM"),
            )  # fmt: skip
        return WeekEvent(kind, days, appr)

    def _punch(self, dr: Draw, i: int, minute: int, result: str = "Normal") -> Point:
        """A real punch; draws i and i+1 are used for source and location."""
        source = SOURCES[dr.randint(i, 0, len(SOURCES) - 1)]
        location = "Outside" if dr.u(i + 1) < 0.03 else "Normal"
        return Point(result, location, source, minute)

    @staticmethod
    def _covered(appr: Approval) -> Point:
        return Point("Normal", "Normal", "APPROVE", None, approval=appr)

    @staticmethod
    def _missing(fix: Approval | None = None) -> Point:
        return Point("NotSigned", "NotSigned", "SYSTEM", None, fix=fix)

    def day(self, idx: int, d: date) -> DayPlan:
        """The person's plan for one day, in their group's shift; no check points without one."""
        last_day = self._last_day[idx]
        if d < self._hired[idx] or (last_day is not None and d > last_day):
            return NO_DAY
        plan = self._day_in_standard_shift(idx, d)
        group = self._group[idx]
        if group is None:  # does not punch: no results, no 补卡; leave, trips and overtime stay
            kept = tuple(a for a in plan.approvals if a.biz_type != 4)
            return DayPlan(None, kept) if kept else NO_DAY
        if group.shift == 0:
            return plan
        return shifted(plan, group.shift)

    def _day_in_standard_shift(self, idx: int, d: date) -> DayPlan:
        userid = self._userids[idx]
        dr = Draw(self.seed, "day", idx, d.isoformat())
        if not self._calendar.is_workday(d):
            if dr.u(0) < 0.02:
                ot = self._approvals.make(
                    userid, "rest-ot", d, biz_type=1, tag="加班", unit="hour",
                    sub_type=overtime_subtype(dr.u(15)),
                    begin=(d, 600), end=(d, 990), calculate_model=0,
                )  # fmt: skip
                return DayPlan(None, (ot,))
            return NO_DAY

        iso = d.isocalendar()
        event = self.week_event(idx, iso[0], iso[1])
        if event is not None and d in event.days:
            appr = event.approval
            if event.kind != "halfday":
                return DayPlan((self._covered(appr), self._covered(appr)), ())
            if d == event.days[0]:  # afternoon off: OffDuty covered
                on = self._punch(dr, 2, dr.randint(1, 505, 540))
                return DayPlan((on, self._covered(appr)), ())
            off = self._punch(dr, 2, dr.randint(1, 1080, 1125))
            return DayPlan((self._covered(appr), off), ())

        on_min = dr.randint(1, 505, 540)
        off_min = dr.randint(2, 1080, 1125)
        on = self._punch(dr, 3, on_min)
        off = self._punch(dr, 5, off_min)
        approvals: list[Approval] = []
        r = dr.u(0)
        hour_sub = LEAVE_SUBTYPES[dr.randint(7, 0, len(LEAVE_SUBTYPES) - 1)]
        sub = leave_subtype(hour_sub, dr.u(15))  # rare types by the day or half day only
        ot_sub = overtime_subtype(dr.u(15))

        def hour(kind: str, tag: str, biz: int, b: int, e: int, model: int = 1) -> Approval:
            return self._approvals.make(
                userid, kind, d, biz_type=biz, tag=tag,
                sub_type=hour_sub if biz == 3 else ot_sub if biz == 1 else "",
                unit="hour", begin=(d, b), end=(d, e), calculate_model=model,
            )  # fmt: skip

        # Cumulative thresholds; the rest (~82%) is a normal day.
        if (r := r - 0.035) < 0:  # late
            on = self._punch(dr, 3, dr.randint(8, 545, 569), "Late")
        elif (r := r - 0.012) < 0:  # seriously late
            on = self._punch(dr, 3, dr.randint(8, 570, 640), "SeriousLate")
        elif (r := r - 0.02) < 0:  # early leave
            off = self._punch(dr, 5, dr.randint(9, 990, 1075), "Early")
        elif (r := r - 0.009) < 0:  # late and early
            if dr.u(10) < 0.6:
                on = self._punch(dr, 3, dr.randint(8, 545, 569), "Late")
            else:
                on = self._punch(dr, 3, dr.randint(8, 570, 620), "SeriousLate")
            off = self._punch(dr, 5, dr.randint(9, 990, 1075), "Early")
        elif (r := r - 0.028) < 0:  # one punch missing, sometimes fixed by 补卡 later
            missing_on = dr.u(8) < 0.5
            fix = None
            if dr.u(9) < 0.55:
                punch = dr.randint(10, 520, 540) if missing_on else dr.randint(10, 1080, 1110)
                fix = self._approvals.make(
                    userid, "buka", d, biz_type=4, tag="补卡", unit="hour",
                    begin=(d, punch), end=(d, punch), calculate_model=0,
                    visible_from=d + timedelta(days=dr.randint(11, 1, 5)),
                )  # fmt: skip
                approvals.append(fix)
            if missing_on:
                on = self._missing(fix)
            else:
                off = self._missing(fix)
        elif (r := r - 0.007) < 0:  # both missing
            on, off = self._missing(), self._missing()
        elif (r := r - 0.007) < 0:  # absence: 旷工 with no punch, or 旷工迟到 (very late)
            if dr.u(8) < 0.5:
                on = Point("Absenteeism", "NotSigned", "SYSTEM", None)
                off = self._missing()
            else:
                on = self._punch(dr, 3, dr.randint(9, 660, 780), "Absenteeism")
        elif (r := r - 0.012) < 0:  # single full-day leave
            appr = self._approvals.make(
                userid, "leave", d, biz_type=3, tag="请假", sub_type=sub, unit="day",
                begin=(d, ""), end=(d, ""),
            )  # fmt: skip
            approvals.append(appr)
            on, off = self._covered(appr), self._covered(appr)
        elif (r := r - 0.015) < 0:  # half-day leave
            half = "AM" if dr.u(8) < 0.5 else "PM"
            appr = self._approvals.make(
                userid, "half", d, biz_type=3, tag="请假", sub_type=sub, unit="halfDay",
                begin=(d, half), end=(d, half),
            )  # fmt: skip
            approvals.append(appr)
            if half == "AM":
                on = self._covered(appr)
            else:
                off = self._covered(appr)
        elif (r := r - 0.02) < 0:  # hourly leave
            b, e = ((840, 960), (660, 840), (960, 1080), (540, 660))[dr.randint(8, 0, 3)]
            appr = hour("hleave", "请假", 3, b, e)
            approvals.append(appr)
            if b <= ON_MINUTE <= e:
                on = self._covered(appr)
            if b <= OFF_MINUTE <= e:
                off = self._covered(appr)
        elif (r := r - 0.007) < 0:  # single-day business trip
            appr = self._approvals.make(
                userid, "trip", d, biz_type=2, tag="出差", unit="day",
                begin=(d, ""), end=(d, ""),
            )  # fmt: skip
            approvals.append(appr)
            on, off = self._covered(appr), self._covered(appr)
        elif (r := r - 0.011) < 0:  # partial trip (外出) by the hour
            b, e = ((840, 1080), (540, 720), (600, 900))[dr.randint(8, 0, 2)]
            appr = hour("outing", "外出", 2, b, e)
            approvals.append(appr)
            if b <= ON_MINUTE <= e:
                on = self._covered(appr)
            if b <= OFF_MINUTE <= e:
                off = self._covered(appr)
        elif (r := r - 0.008) < 0:  # worked past midnight: OffDuty punch on the next calendar day
            late_min = 1440 + dr.randint(8, 5, 90)
            off = self._punch(dr, 5, late_min)
            if dr.u(9) < 0.5:
                approvals.append(hour("ot-night", "加班", 1, 1140, late_min - 5, model=0))
        elif dr.u(12) < 0.045:  # evening overtime on an otherwise normal day
            end = (1230, 1290, 1320)[dr.randint(13, 0, 2)]
            approvals.append(hour("ot", "加班", 1, 1140, end, model=0))
            off = self._punch(dr, 5, end + dr.randint(14, 0, 10))
        return DayPlan((on, off), tuple(approvals))

"""DingTalk's smart report (智能考勤报表) as the simulated company computes it: the column list,
whose ids derive from the company seed, and each person-day's values. The values come from the
company's own results (``attendance``) and approvals (``approval_events``) at a clock, the way
DingTalk describes its columns. Nothing here uses the pipeline's rules.

Per person-day, at the clock ``today``. A day on or after ``today`` is all 0, because results
appear only after a day ends.

- 应出勤天数 is 1 on a scheduled workday: the person is in an attendance group, already hired,
  and not past their last work day. 休息天数 is 1 on that person's rest days.
- 出勤天数 is 1 when at least one check point has a real punch (a ``recordId``; a 补卡 punch
  counts once the 补卡 is visible).
- 工作时长 is the minutes from the OnDuty punch to the OffDuty punch, without the 12:00-13:00
  break, when both points were punched. Otherwise it is 0.
- 迟到次数/迟到时长 count an OnDuty ``Late`` or ``SeriousLate`` (严重迟到次数/严重迟到时长 only the
  latter), for ⌊(userCheckTime − baseCheckTime) / 60000⌋ minutes. A point fixed by a 补卡 is
  ``Normal`` and does not count. 早退次数/早退时长 do the same for an OffDuty ``Early``.
- 旷工天数 is 1 when the OnDuty result is ``Absenteeism``, or when both points are ``NotSigned``
  and no approval covers them. 旷工迟到次数 counts an ``Absenteeism`` point that has a punch. On
  any other day, 上班缺卡次数/下班缺卡次数 count the ``NotSigned`` points (points covered by
  leave, a trip or a 补卡 are not ``NotSigned``). 外勤次数 counts the points punched ``Outside``.
- 补卡次数 counts the visible 补卡 approvals (bizType 4) of the day.
- Overtime (bizType 1) is booked on the day the approval begins. Its hours are the approval's
  length rounded to 0.5 h, halves up. It goes to 工作日加班 on a statutory workday, to 节假日加班 on
  a statutory holiday (``chinese_calendar``: ``is_holiday`` with a holiday name), and to 休息日加班
  on any other day. 加班总时长 is the sum of the three.
- Leave (bizType 3, per type) and trips (bizType 2: 出差时长, or 外出时长 for 外出) are counted in
  hours, on scheduled workdays only. A whole day is the day's scheduled hours (8), each half day
  is half of that, and an hour unit is its overlap with the shift minus the break, rounded to
  0.5 h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import chinese_calendar

from attendance_pipeline.simulators.dingtalk.company.approvals import (
    LEAVE_SUBTYPES,
    RARE_LEAVE_SUBTYPES,
    Approval,
)
from attendance_pipeline.simulators.dingtalk.company.draws import (
    MS_PER_MINUTE,
    Draw,
    local_midnight_ms,
)
from attendance_pipeline.simulators.dingtalk.company.groups import AttendanceGroup

if TYPE_CHECKING:
    from attendance_pipeline.simulators.dingtalk.company import Company

HOUR_MS = 60 * MS_PER_MINUTE
BREAK_MINUTES = (12 * 60, 13 * 60)
ROUNDING_HOURS = 0.5
LEAVE_TYPES = (*LEAVE_SUBTYPES, *RARE_LEAVE_SUBTYPES)
COLUMN_ID_BASE = 377_000_000


@dataclass(frozen=True, slots=True)
class ReportColumn:
    """One report column: DingTalk's display name and the alias (the simulator's choice)."""

    name: str
    alias: str
    unit: str  # days | count | minutes | hours


COLUMNS: tuple[ReportColumn, ...] = (
    ReportColumn("应出勤天数", "should_attendance_days", "days"),
    ReportColumn("出勤天数", "attendance_days", "days"),
    ReportColumn("休息天数", "attendance_rest_days", "days"),
    ReportColumn("工作时长", "attendance_work_time", "minutes"),
    ReportColumn("迟到次数", "late_times", "count"),
    ReportColumn("迟到时长", "late_minute", "minutes"),
    ReportColumn("严重迟到次数", "serious_late_times", "count"),
    ReportColumn("严重迟到时长", "serious_late_minute", "minutes"),
    ReportColumn("旷工迟到次数", "absenteeism_late_times", "count"),
    ReportColumn("早退次数", "leave_early_times", "count"),
    ReportColumn("早退时长", "leave_early_minute", "minutes"),
    ReportColumn("上班缺卡次数", "on_work_lack_card_times", "count"),
    ReportColumn("下班缺卡次数", "off_work_lack_card_times", "count"),
    ReportColumn("旷工天数", "absenteeism_days", "days"),
    ReportColumn("外勤次数", "outside_times", "count"),
    ReportColumn("出差时长", "business_trip_duration", "hours"),
    ReportColumn("外出时长", "go_out_duration", "hours"),
    ReportColumn("工作日加班", "overtime_workday", "hours"),
    ReportColumn("休息日加班", "overtime_restday", "hours"),
    ReportColumn("节假日加班", "overtime_holiday", "hours"),
    ReportColumn("加班总时长", "overtime_duration", "hours"),
    ReportColumn("补卡次数", "making_up_lack_times", "count"),
)
ALIASES = tuple(c.alias for c in COLUMNS)
BY_NAME = {key: c for c in COLUMNS for key in (c.name, c.alias)}
OVERTIME_COLUMN = {
    "workday": "overtime_workday",
    "restday": "overtime_restday",
    "holiday": "overtime_holiday",
}


def column_ids(seed: int) -> dict[str, int]:
    """alias → column id. The ids are consecutive from a base drawn from the company seed, so
    they differ between companies like DingTalk's do."""
    base = COLUMN_ID_BASE + Draw(seed, "report-columns").randint(0, 1, 899_999) * 100
    return {c.alias: base + i for i, c in enumerate(COLUMNS)}


def columns_api(seed: int) -> list[dict[str, Any]]:
    """``getattcolumns``' ``result.columns``."""
    ids = column_ids(seed)
    return [
        {
            "id": ids[c.alias],
            "name": c.name,
            "alias": c.alias,
            "type": 0,
            "sub_type": 0,
            "status": 0,
            "expression_id": ids[c.alias] - 7000,
            "extension": None,
        }
        for c in COLUMNS
    ]


@dataclass(frozen=True, slots=True)
class DayReport:
    values: dict[str, float]  # alias → value
    leave: dict[str, float]  # leave type → hours


def day_class(company: Company, d: date) -> str:
    """workday, holiday (a statutory holiday with a name) or restday."""
    if company.is_workday(d):
        return "workday"
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(d)
    except NotImplementedError:
        return "restday"
    return "holiday" if on_holiday and name else "restday"


def day_report(company: Company, userid: str, d: date, today: date) -> DayReport:
    """One person-day's column values and leave hours by type, as seen at ``today``."""
    values = dict.fromkeys(ALIASES, 0.0)
    leave: dict[str, float] = {}
    if d >= today or not company.has_user(userid):
        return DayReport(values, leave)
    group = company.group_of(userid)
    records = company.attendance(userid, d, today)
    approvals = company.approval_events(userid, d, d, today)
    if records and group is not None:
        _points(values, records)
        shift = _Shift(d, group)
        for appr in approvals:
            if appr.biz_type == 3:
                kind = appr.sub_type or appr.tag_name
                leave[kind] = leave.get(kind, 0.0) + shift.hours(appr)
            elif appr.biz_type == 2:
                key = "go_out_duration" if appr.tag_name == "外出" else "business_trip_duration"
                values[key] += shift.hours(appr)
    elif group is not None and _employed(company, userid, d) and not company.is_workday(d):
        values["attendance_rest_days"] = 1.0
    for appr in approvals:
        if appr.first_day != d:
            continue
        if appr.biz_type == 1:
            hours = round_hours((appr.end_ms - appr.start_ms) / HOUR_MS)
            values[OVERTIME_COLUMN[day_class(company, d)]] += hours
        elif appr.biz_type == 4:
            values["making_up_lack_times"] += 1
    values["overtime_duration"] = sum(values[c] for c in OVERTIME_COLUMN.values())
    return DayReport(values, leave)


def round_hours(hours: float, step: float = ROUNDING_HOURS) -> float:
    """To the nearest multiple of ``step``, halves up."""
    return math.floor(hours / step + 0.5) * step


def _employed(company: Company, userid: str, d: date) -> bool:
    last = company.last_work_day(userid)
    return company.hired_date(userid) <= d and (last is None or d <= last)


def _points(values: dict[str, float], records: list[dict[str, Any]]) -> None:
    on, off = records  # OnDuty first
    values["should_attendance_days"] = 1.0
    values["attendance_days"] = 1.0 if any("recordId" in r for r in records) else 0.0
    values["outside_times"] = float(sum(r["locationResult"] == "Outside" for r in records))
    if "recordId" in on and "recordId" in off:
        lo, hi = on["userCheckTime"], off["userCheckTime"]
        midnight = on["workDate"]
        brk = _overlap(lo, hi, *(midnight + m * MS_PER_MINUTE for m in BREAK_MINUTES))
        values["attendance_work_time"] = float(max(0, hi - lo - brk) // MS_PER_MINUTE)
    absent = on["timeResult"] == "Absenteeism" or (
        on["timeResult"] == "NotSigned" and off["timeResult"] == "NotSigned"
    )
    if absent:
        values["absenteeism_days"] = 1.0
        if on["timeResult"] == "Absenteeism" and "recordId" in on:
            values["absenteeism_late_times"] = 1.0
    else:
        values["on_work_lack_card_times"] = float(on["timeResult"] == "NotSigned")
        values["off_work_lack_card_times"] = float(off["timeResult"] == "NotSigned")
    if on["timeResult"] in ("Late", "SeriousLate"):
        minutes = float((on["userCheckTime"] - on["baseCheckTime"]) // MS_PER_MINUTE)
        values["late_times"], values["late_minute"] = 1.0, minutes
        if on["timeResult"] == "SeriousLate":
            values["serious_late_times"], values["serious_late_minute"] = 1.0, minutes
    if off["timeResult"] == "Early":
        values["leave_early_times"] = 1.0
        values["leave_early_minute"] = float(
            (off["baseCheckTime"] - off["userCheckTime"]) // MS_PER_MINUTE
        )


def _overlap(lo: int, hi: int, a: int, b: int) -> int:
    return max(0, min(hi, b) - max(lo, a))


class _Shift:
    """One scheduled day of a group's shift: hours of leave or trips on it."""

    def __init__(self, d: date, group: AttendanceGroup) -> None:
        self.day = d
        midnight = local_midnight_ms(d)
        self.on_ms = midnight + group.on_minute * MS_PER_MINUTE
        self.off_ms = midnight + group.off_minute * MS_PER_MINUTE
        self.break_ms = tuple(midnight + m * MS_PER_MINUTE for m in BREAK_MINUTES)
        brk = _overlap(self.on_ms, self.off_ms, *self.break_ms)
        self.day_hours = (self.off_ms - self.on_ms - brk) / HOUR_MS

    def hours(self, appr: Approval) -> float:
        if appr.unit == "day":
            return self.day_hours if appr.first_day <= self.day <= appr.last_day else 0.0
        if appr.unit == "halfDay":
            first = (appr.first_day, appr.begin.endswith("PM"))
            last = (appr.last_day, appr.end.endswith("PM"))
            halves = sum(first <= (self.day, pm) <= last for pm in (False, True))
            return halves * self.day_hours / 2
        lo, hi = max(appr.start_ms, self.on_ms), min(appr.end_ms, self.off_ms)
        if hi <= lo:
            return 0.0
        return round_hours((hi - lo - _overlap(lo, hi, *self.break_ms)) / HOUR_MS)

"""Compact descriptions of users and days → the input frames of the effective-hours rules.

    c = Company("2026-11-01", "2026-11-30")
    c.day("2026-11-03", on=("Late", "09:17"), off=("Normal", "18:02"))
    c.leave("2026-11-04 AM", "2026-11-04 AM", unit="halfDay")
    c.row("2026-11-03")["effective_hours"]  # 7.0

Frames are built through the same parsers as the DingTalk ingest (`dingtalk.records`), so they
have exactly the lake's columns and dtypes. Times are "HH:MM" on the work date in China time
("24:30" is 00:30 the next day); the default shift is 09:00-18:00; users not declared with
`user()` are created on first use (department 10, title 工程师). The roster carries
`attendance_group_id` (9001, or null for `user(..., exempt=True)`), unless the company is built
with `attendance_groups=False` (a stored partition from before that column).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from attendance_pipeline.china_time import SHANGHAI, date_to_ms, days, local_datetime
from attendance_pipeline.dingtalk.records import approvals_frame, attendance_frame, roster_frame
from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.engine import derive_effective_hours
from attendance_pipeline.hours.reference import derive_frame
from attendance_pipeline.hours.rules import Rules

PULLED = datetime(2027, 2, 1, 3, 0, tzinfo=SHANGHAI)


def at(d: date, hhmm: str) -> datetime:
    """ "HH:MM" on day d in China time; hours past 23 run into the next days."""
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return local_datetime(d, time(0)) + timedelta(hours=hours, minutes=minutes)


def as_day(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


@dataclass(frozen=True)
class Pt:
    """One check point: its result, the punch time (default: the base time), how it was made."""

    result: str
    at: str | None = None
    source: str | None = None  # default ATM, SYSTEM for NotSigned
    approve_id: str | None = None
    proc_inst_id: str | None = None


PointSpec = Pt | tuple[str, str] | str | None


def as_point(spec: PointSpec) -> Pt | None:
    if spec is None or isinstance(spec, Pt):
        return spec
    if isinstance(spec, str):
        return Pt(spec)
    return Pt(spec[0], spec[1])


@dataclass(frozen=True)
class Shift:
    on: PointSpec
    off: PointSpec
    start: str = "09:00"
    end: str = "18:00"


class Company:
    """Users, check points, approvals and overrides over a window of days."""

    def __init__(
        self,
        first: str | date = "2026-11-01",
        last: str | date | None = None,
        *,
        attendance_groups: bool = True,
    ) -> None:
        self.first = as_day(first)
        self.attendance_groups = attendance_groups
        self.exempt: set[str] = set()  # users in no attendance group
        self.last = as_day(last) if last is not None else self.first + timedelta(days=29)
        self.users: dict[str, dict[str, Any]] = {}
        self.records: list[dict[str, Any]] = []
        self.approvals: list[dict[str, Any]] = []
        self.overrides: list[dict[str, Any]] = []
        self._ids = 0

    # ----------------------------------------------------------------- people

    def user(
        self,
        userid: str = "u1",
        *,
        name: str | None = None,
        dept_ids: tuple[int, ...] = (10,),
        title: str | None = "工程师",
        hired: str | date | None = None,
        active: bool = True,
        exempt: bool = False,
    ) -> Company:
        """Declare a user; `exempt`: in no attendance group (null `attendance_group_id`)."""
        user: dict[str, Any] = {
            "userid": userid,
            "name": name or f"员工{userid}",
            "dept_id_list": list(dept_ids),
            "active": active,
        }
        if title is not None:
            user["title"] = title
        if hired is not None:
            user["hired_date"] = date_to_ms(as_day(hired))
        self.users[userid] = user
        if exempt:
            self.exempt.add(userid)
        else:
            self.exempt.discard(userid)
        return self

    def _known(self, userid: str) -> None:
        if userid not in self.users:
            self.user(userid)

    # ----------------------------------------------------------------- check points

    def day(
        self,
        d: str | date,
        on: PointSpec = ("Normal", "08:55"),
        off: PointSpec = ("Normal", "18:05"),
        *,
        user: str = "u1",
        shifts: list[Shift] | None = None,
    ) -> Company:
        """A scheduled day: one 09:00-18:00 shift from `on`/`off`, or explicit `shifts`."""
        self._known(user)
        d = as_day(d)
        for shift in shifts if shifts is not None else [Shift(on, off)]:
            self.point(d, "OnDuty", shift.on, shift.start, user=user)
            self.point(d, "OffDuty", shift.off, shift.end, user=user)
        return self

    def point(
        self, d: str | date, check_type: str, spec: PointSpec, base: str, *, user: str = "u1"
    ) -> Company:
        self._known(user)
        point = as_point(spec)
        if point is None:
            return self
        d = as_day(d)
        self._ids += 1
        base_ms = int(at(d, base).timestamp() * 1000)
        signed = point.result != "NotSigned" or point.at is not None
        record: dict[str, Any] = {
            "id": 70_000 + self._ids,
            "userId": user,
            "workDate": date_to_ms(d),
            "checkType": check_type,
            "timeResult": point.result,
            "locationResult": "Normal" if signed else "NotSigned",
            "sourceType": point.source or ("ATM" if signed else "SYSTEM"),
            "baseCheckTime": base_ms,
            "userCheckTime": int(at(d, point.at).timestamp() * 1000) if point.at else base_ms,
            "groupId": 9001,
            "planId": 50_000 + self._ids,
        }
        if signed:
            record["recordId"] = 80_000 + self._ids
        if point.approve_id is not None:
            record["approveId"] = point.approve_id
        if point.proc_inst_id is not None:
            record["procInstId"] = point.proc_inst_id
        self.records.append(record)
        return self

    # ----------------------------------------------------------------- approvals

    def approval(
        self,
        biz_type: int,
        begin: str,
        end: str | None = None,
        *,
        unit: str = "day",
        sub_type: str = "",
        tag: str = "",
        user: str = "u1",
    ) -> Company:
        """`begin`/`end` in DingTalk's form for the unit: "2026-11-03", "2026-11-03 AM",
        "2026-11-03 14:00" (hour times may be "24:30" for 00:30 the next day)."""
        self._known(user)
        end = end or begin
        if unit == "hour":
            begin, end = (_minute_text(text) for text in (begin, end))
        self.approvals.append(
            {
                "approveId": f"ap{len(self.approvals) + 1:03d}",
                "userId": user,
                "bizType": biz_type,
                "subType": sub_type,
                "tagName": tag,
                "calculateModel": 1,
                "durationUnit": unit,
                "beginTime": begin,
                "endTime": end,
            }
        )
        return self

    def leave(
        self,
        begin: str,
        end: str | None = None,
        *,
        unit: str = "day",
        sub_type: str = "年假",
        user: str = "u1",
    ) -> Company:
        return self.approval(3, begin, end, unit=unit, sub_type=sub_type, tag="请假", user=user)

    def trip(
        self,
        begin: str,
        end: str | None = None,
        *,
        unit: str = "day",
        tag: str = "出差",
        user: str = "u1",
    ) -> Company:
        return self.approval(2, begin, end, unit=unit, tag=tag, user=user)

    def overtime(
        self, begin: str, end: str | None = None, *, unit: str = "hour", user: str = "u1"
    ) -> Company:
        return self.approval(1, begin, end, unit=unit, tag="加班", user=user)

    # ----------------------------------------------------------------- overrides

    def override(
        self,
        d: str | date,
        hours: float,
        *,
        reason: str = "补录 system outage",
        author: str = "王经理",
        user: str = "u1",
    ) -> Company:
        self._known(user)
        self.overrides.append(
            {
                "userid": user,
                "date": as_day(d),
                "hours": float(hours),
                "reason": reason,
                "author": author,
            }
        )
        return self

    # ----------------------------------------------------------------- frames and results

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(roster, attendance, approvals, overrides) as the pipeline stores and reads them."""
        if not self.users:
            self.user()
        roster = roster_frame(list(self.users.values()), days(self.first, self.last), PULLED)
        roster = roster.drop(columns="attendance_group_id", errors="ignore")
        if self.attendance_groups:
            groups = [None if u in self.exempt else 9001 for u in roster["userid"]]
            roster["attendance_group_id"] = pd.array(groups, dtype="Int64")
        attendance = attendance_frame(self.records, PULLED)
        approvals = approvals_frame(self.approvals, self.first, self.last, PULLED)
        overrides = pd.DataFrame(
            self.overrides, columns=["userid", "date", "hours", "reason", "author"]
        ).astype({"userid": "string", "hours": "float64", "reason": "string", "author": "string"})
        return roster, attendance, approvals, overrides

    def derive(
        self, rules: Rules | None = None, calendar: WorkCalendar | None = None
    ) -> pd.DataFrame:
        derive = IMPLEMENTATIONS[CURRENT[0]]
        return derive(*self.frames(), rules or Rules(), calendar or WorkCalendar())

    def row(
        self,
        d: str | date,
        user: str = "u1",
        *,
        rules: Rules | None = None,
        calendar: WorkCalendar | None = None,
    ) -> dict[str, Any]:
        """The derived row of one user-day (the window is derived whole)."""
        frame = self.derive(rules, calendar)
        return row_of(frame, d, user)


# Every case runs on both implementations of docs/rules.md (test_hours_rules.py switches this).
IMPLEMENTATIONS = {"reference": derive_frame, "engine": derive_effective_hours}
CURRENT = ["reference"]


def row_of(frame: pd.DataFrame, d: str | date, user: str = "u1") -> dict[str, Any]:
    hit = frame[(frame["userid"] == user) & (frame["work_date"] == as_day(d))]
    assert len(hit) == 1, f"expected one row for {user} on {d}, got {len(hit)}"
    # Missing values as None (a null dept_id reads back as NaN).
    return {key: _missing_as_none(value) for key, value in hit.iloc[0].items()}


def _missing_as_none(value: Any) -> Any:
    if isinstance(value, list | tuple | np.ndarray):
        return [dict(item) for item in value]  # leave_by_type
    return None if pd.isna(value) else value


def _minute_text(text: str) -> str:
    """'2026-11-03 24:30' → '2026-11-04 00:30' (DingTalk's own form)."""
    day, hhmm = text.split(" ")
    return at(as_day(day), hhmm).strftime("%Y-%m-%d %H:%M")

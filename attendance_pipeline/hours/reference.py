"""The reference implementation of `docs/rules.md`: one (employee, day) at a time, plain Python.

The vectorised engine (`hours/engine.py`) must produce the same rows; the tests, the quality
gate and the benchmark baseline use this module. Readability beats speed here.

Readings of `docs/rules.md` this module makes precise (the engine follows the same ones):

- Only `OnDuty`/`OffDuty` rows are check points; any other `check_type` is ignored everywhere.
- Each side is sorted by (`base_check_time`, `id`); a missing `base_check_time` sorts last and
  makes its shift's scheduled length 0 (and an `hour` approval never covers it).
- The missing side of an odd shift is a real `NotSigned` point at the other side's base time: it
  can be covered by leave/trip like any other point of its check type.
- "Set" (`proc_inst_id`, `approve_id`) means not null and not the empty string.
- Durations are integer epoch milliseconds; `hour` leave/trip/overtime is rounded on those
  (`n = floor(ms / step + 1/2)`, halves up). `halfDay` halves come from the `begin_time` /
  `end_time` strings. Overtime `halfDay` is `standard_day_hours / 2` per half.
- `rest` and `leave` use the (configurable) status hours of `rest` / `leave`, 0 by default.
- `>=` comparisons between hour sums allow 1e-9 h of float noise.
- The exception of an employee is the first one whose `match` hits them; it applies to a status
  only when it sets that status (a later matching exception is never consulted). On a multi-shift
  day `rule_id` is the exception's id when it set the hours of any shift status that was summed.
- Every reported hours column is rounded to 2 decimals the way numpy/pandas `round(2)` does.
- `OffDuty` `Absenteeism`, `OnDuty` `Early` and `OffDuty` `Late` are not in the per-shift list,
  so on their own they judge as `normal`.
- An exempt employee's check points (there should be none) are not read. Their day is one
  nominal `NOMINAL_SHIFT` on statutory workdays, none otherwise; on a rest day or holiday
  `rule_id` is `exempt` even when an exception sets exempt hours (those hours are not used).

Explanation (free text, but stable), parts joined by "; " then " → " and the outcome:

- for an exempt employee `in no attendance group (does not punch)`, then
  `no calendar covers the date: Monday–Friday are workdays` when none does and
  `not a workday (restday)` / `(holiday)` off workdays; for everyone else
  the check points shift by shift, `OnDuty Late 09:17, OffDuty Normal 18:02` (shifts joined by
  " / "; an approval-backed point reads `OnDuty NotSigned→Normal (approval) 09:00` or
  `OnDuty Normal (approval) 09:05`, the invented side of an odd shift `OffDuty missing`), or
  `rest day (no scheduled check points)`;
- the leave and trip approvals, `leave 年假 (day) 8 h, trip 出差 (halfDay) 4 h of 8 h scheduled`;
- `overtime 2.5 h` when there is overtime;
- the outcome `late → 7 h (rule late)`, or with a leave deduction
  `normal 8 h − 2 h leave → 6 h (rule normal)`.

An override reads `override 5 h by 王经理: 补录 system outage → override → 5 h (rule override)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from attendance_pipeline.china_time import SHANGHAI, date_to_ms
from attendance_pipeline.hours.calendar import WEEKDAYS, WorkCalendar
from attendance_pipeline.hours.reference_facts import day_facts
from attendance_pipeline.hours.rules import NOMINAL_SHIFT, ExceptionRule, Rules
from attendance_pipeline.schemas import EFFECTIVE_HOURS

HOUR_MS = 3_600_000
EPSILON_H = 1e-9
CHECK_TYPES = ("OnDuty", "OffDuty")
# Per-shift statuses, worst first (the tail of rules.STATUSES).
SHIFT_STATUSES = (
    "absent",
    "missing_punch",
    "late_and_early",
    "serious_late",
    "late",
    "early_leave",
    "normal",
)
APPROVAL_KINDS = {1: "overtime", 2: "trip", 3: "leave"}


# ------------------------------------------------------------------------------ small values


def _is_set(value: Any) -> bool:
    """Not null, not NaN/NA, not an empty string."""
    if value is None or value is pd.NA or value is pd.NaT:
        return False
    if isinstance(value, float) and np.isnan(value):
        return False
    return str(value) != ""


def _text(value: Any) -> str | None:
    return str(value) if _is_set(value) else None


def _ms(value: Any) -> int | None:
    """An instant as epoch milliseconds (naive values are China time), or None."""
    if not _is_set(value):
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(SHANGHAI)
    return int(stamp.value // 1_000_000)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def _hhmm(ms: int | None) -> str:
    if ms is None:
        return "--:--"
    return datetime.fromtimestamp(ms / 1000, tz=SHANGHAI).strftime("%H:%M")


def _round2(hours: float) -> float:
    """Two decimals, exactly as numpy (and so pandas `Series.round(2)`) rounds."""
    return float(np.round(hours, 2))


def _fmt(hours: float) -> str:
    return f"{_round2(hours):.2f}".rstrip("0").rstrip(".")


def _round_to_step(ms: int, step_hours: float) -> float:
    """Milliseconds to hours, to the nearest multiple of `step_hours`, halves rounding up."""
    step_ms = max(1, round(step_hours * HOUR_MS))
    steps = (2 * ms + step_ms) // (2 * step_ms)
    return steps * step_ms / HOUR_MS


def _overlap(a_start: int, a_end: int, b_start: int, b_end: int) -> int:
    return max(0, min(a_end, b_end) - max(a_start, b_start))


# ------------------------------------------------------------------------------ shifts


@dataclass
class _Point:
    check_type: str
    time_result: str
    base_ms: int | None
    user_ms: int | None
    backed_by_record: bool  # proc_inst_id / approve_id / source_type APPROVE
    invented: bool = False  # the missing side of an odd shift
    covered: bool = False  # by a leave or trip approval

    @property
    def result(self) -> str:
        """The time result after approval-backing."""
        return "Normal" if self.backed_by_record or self.covered else self.time_result

    def describe(self) -> str:
        if self.invented:
            return f"{self.check_type} missing"
        shown = self.time_result
        if self.backed_by_record or self.covered:
            changed = "→Normal" if self.time_result != "Normal" else ""
            shown = f"{self.time_result}{changed} (approval)"
        return f"{self.check_type} {shown} {_hhmm(self.user_ms)}"


@dataclass
class _Shift:
    on: _Point
    off: _Point
    scheduled_ms: int = 0
    interval: tuple[int, int] | None = None  # [OnDuty base, OffDuty base] when both known

    def status(self) -> str:
        on, off = self.on.result, self.off.result
        not_signed = (on == "NotSigned") + (off == "NotSigned")
        if on == "Absenteeism" or not_signed == 2:
            return "absent"
        if not_signed == 1:
            return "missing_punch"
        if on in ("Late", "SeriousLate") and off == "Early":
            return "late_and_early"
        if on == "SeriousLate":
            return "serious_late"
        if on == "Late":
            return "late"
        if off == "Early":
            return "early_leave"
        return "normal"


def _nominal_shift(work_date: date, rules: Rules) -> _Shift:
    """An exempt workday's one shift: NOMINAL_SHIFT less the break, no real check points."""
    start, end = (date_to_ms(work_date, t) for t in NOMINAL_SHIFT)
    break_start = date_to_ms(work_date, rules.break_.start)
    break_end = date_to_ms(work_date, rules.break_.end)
    return _Shift(
        on=_Point("OnDuty", "Normal", start, start, False, invented=True),
        off=_Point("OffDuty", "Normal", end, end, False, invented=True),
        scheduled_ms=end - start - _overlap(start, end, break_start, break_end),
        interval=(start, end),
    )


def _point(row: dict[str, Any]) -> _Point:
    return _Point(
        check_type=str(row["check_type"]),
        time_result=str(row.get("time_result")),
        base_ms=_ms(row.get("base_check_time")),
        user_ms=_ms(row.get("user_check_time")),
        backed_by_record=(
            _is_set(row.get("proc_inst_id"))
            or _is_set(row.get("approve_id"))
            or _text(row.get("source_type")) == "APPROVE"
        ),
    )


def _sort_key(row: dict[str, Any]) -> tuple[bool, int, int]:
    base = _ms(row.get("base_check_time"))
    return (base is None, base or 0, int(row["id"]) if _is_set(row.get("id")) else 0)


def _shifts(points: Sequence[dict[str, Any]], work_date: date, rules: Rules) -> list[_Shift]:
    """Pair the i-th OnDuty with the i-th OffDuty; invent a NotSigned for a missing side."""
    ordered = sorted(points, key=_sort_key)
    sides = {
        check_type: [_point(r) for r in ordered if r.get("check_type") == check_type]
        for check_type in CHECK_TYPES
    }
    break_start = date_to_ms(work_date, rules.break_.start)
    break_end = date_to_ms(work_date, rules.break_.end)
    shifts = []
    for i in range(max(len(sides["OnDuty"]), len(sides["OffDuty"]))):
        on = sides["OnDuty"][i] if i < len(sides["OnDuty"]) else None
        off = sides["OffDuty"][i] if i < len(sides["OffDuty"]) else None
        if on is None:
            assert off is not None
            on = _Point("OnDuty", "NotSigned", off.base_ms, off.base_ms, False, invented=True)
        if off is None:
            off = _Point("OffDuty", "NotSigned", on.base_ms, on.base_ms, False, invented=True)
        shift = _Shift(on, off)
        if on.base_ms is not None and off.base_ms is not None:
            shift.interval = (on.base_ms, off.base_ms)
            length = max(0, off.base_ms - on.base_ms)
            shift.scheduled_ms = length - _overlap(on.base_ms, off.base_ms, break_start, break_end)
        shifts.append(shift)
    return shifts


# ------------------------------------------------------------------------------ approvals


def _halves(approval: dict[str, Any], work_date: date) -> tuple[bool, bool]:
    """Which halves (first, second) of `work_date` a halfDay approval covers."""
    begin, end = str(approval["begin_time"]), str(approval["end_time"])
    try:
        begin_day, end_day = date.fromisoformat(begin[:10]), date.fromisoformat(end[:10])
        begin_half, end_half = begin[10:].strip().upper(), end[10:].strip().upper()
        if begin_half not in ("AM", "PM") or end_half not in ("AM", "PM"):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"approval {approval.get('approve_id')}: halfDay times {begin!r}..{end!r} "
            "must look like 'YYYY-MM-DD AM|PM'"
        ) from None
    if not begin_day <= work_date <= end_day:
        return False, False
    first = 0 if work_date > begin_day or begin_half == "AM" else 1
    last = 1 if work_date < end_day or end_half == "PM" else 0
    return first <= 0 <= last, first <= 1 <= last


@dataclass
class _Coverage:
    """What one leave/trip approval covers on the day."""

    kind: str  # "leave" | "trip"
    label: str
    unit: str
    hours: float
    covers: list[_Point] = field(default_factory=list)


def _cover(
    approval: dict[str, Any], shifts: list[_Shift], scheduled_hours: float, rules: Rules, d: date
) -> _Coverage:
    unit = str(approval.get("duration_unit"))
    kind = APPROVAL_KINDS[int(approval["biz_type"])]
    label = _text(approval.get("sub_type")) or _text(approval.get("tag_name")) or kind
    points = [p for s in shifts for p in (s.on, s.off)]
    cover = _Coverage(kind, label, unit, 0.0)
    if unit == "day":
        cover.hours, cover.covers = scheduled_hours, points
    elif unit == "halfDay":
        first, second = _halves(approval, d)
        cover.hours = scheduled_hours / 2 * (first + second)
        cover.covers = [
            p
            for p in points
            if (first and p.check_type == "OnDuty") or (second and p.check_type == "OffDuty")
        ]
    elif unit == "hour":
        begin, end = _ms(approval.get("begin_at")), _ms(approval.get("end_at"))
        if begin is None or end is None:
            return cover
        break_start = date_to_ms(d, rules.break_.start)
        break_end = date_to_ms(d, rules.break_.end)
        covered_ms = 0
        for shift in shifts:
            if shift.interval is None:
                continue
            start, stop = max(begin, shift.interval[0]), min(end, shift.interval[1])
            if stop > start:
                covered_ms += stop - start - _overlap(start, stop, break_start, break_end)
        cover.hours = _round_to_step(covered_ms, rules.hour_leave_rounding)
        cover.covers = [p for p in points if p.base_ms is not None and begin <= p.base_ms <= end]
    else:
        raise ValueError(f"approval {approval.get('approve_id')}: unknown duration_unit {unit!r}")
    return cover


def _overtime(approval: dict[str, Any], work_date: date, rules: Rules) -> float:
    """Overtime hours an approval adds on `work_date`: all of it on its start day, else 0."""
    begin = _ms(approval.get("begin_at"))
    start_day = (
        datetime.fromtimestamp(begin / 1000, tz=SHANGHAI).date()
        if begin is not None
        else date.fromisoformat(str(approval["begin_time"])[:10])
    )
    if start_day != work_date:
        return 0.0
    unit = str(approval.get("duration_unit"))
    begin_text, end_text = str(approval["begin_time"]), str(approval["end_time"])
    if unit == "hour":
        end = _ms(approval.get("end_at"))
        if begin is None or end is None:
            return 0.0
        return _round_to_step(max(0, end - begin), rules.hour_leave_rounding)
    if unit == "halfDay":
        begin_day, end_day = date.fromisoformat(begin_text[:10]), date.fromisoformat(end_text[:10])
        first = 0 if begin_text[10:].strip().upper() == "AM" else 1
        last = 0 if end_text[10:].strip().upper() == "AM" else 1
        halves = (end_day - begin_day).days * 2 + last - first + 1
        return max(0, halves) * rules.standard_day_hours / 2
    if unit == "day":
        begin_day, end_day = date.fromisoformat(begin_text[:10]), date.fromisoformat(end_text[:10])
        return max(0, (end_day - begin_day).days + 1) * rules.standard_day_hours
    raise ValueError(f"approval {approval.get('approve_id')}: unknown duration_unit {unit!r}")


def _approval_order(approval: dict[str, Any]) -> tuple[int, int, str]:
    return (
        int(approval["biz_type"]),
        _ms(approval.get("begin_at")) or 0,
        str(approval.get("approve_id")),
    )


# ------------------------------------------------------------------------------ one day


def matching_exception(
    rules: Rules, *, userid: str, dept_ids: Iterable[int], title: str | None
) -> ExceptionRule | None:
    """The first exception whose `match` lists one of the depts, the title or the userid."""
    depts = set(dept_ids)
    for exception in rules.exceptions:
        match = exception.match
        if (
            depts.intersection(match.dept_ids)
            or (title is not None and title in match.titles)
            or userid in match.userids
        ):
            return exception
    return None


def derive_day(
    *,
    userid: str,
    work_date: date,
    name: str | None,
    dept_ids: list[int],
    title: str | None,
    points: list[dict[str, Any]],
    approvals: list[dict[str, Any]],
    override: dict[str, Any] | None,
    rules: Rules,
    day_type: str,
    calendar_source: str,
    exempt: bool = False,
) -> dict[str, Any]:
    """One EFFECTIVE_HOURS row (a dict with exactly EFFECTIVE_HOURS.names as keys).

    `exempt`: the employee is in no attendance group (no schedule, no punches); their hours
    follow `day_type`.
    """
    if exempt:
        workday = day_type == "workday"
        shifts = [_nominal_shift(work_date, rules)] if workday else []
        scheduled_hours = rules.standard_day_hours if workday else 0.0
    else:
        points = [p for p in points if p.get("check_type") in CHECK_TYPES]
        shifts = _shifts(points, work_date, rules)
        scheduled_hours = sum(s.scheduled_ms for s in shifts) / HOUR_MS

    covers: list[_Coverage] = []
    overtime_hours = 0.0
    booked: list[tuple[dict[str, Any], float]] = []
    for approval in sorted(approvals, key=_approval_order):
        biz_type = int(approval["biz_type"])
        if biz_type == 1:
            booked.append((approval, _overtime(approval, work_date, rules)))
            overtime_hours += booked[-1][1]
        elif biz_type in (2, 3):
            cover = _cover(approval, shifts, scheduled_hours, rules, work_date)
            for point in cover.covers:
                point.covered = True
            covers.append(cover)
    leave_hours = min(scheduled_hours, sum(c.hours for c in covers if c.kind == "leave"))
    trip_hours = min(scheduled_hours, sum(c.hours for c in covers if c.kind == "trip"))

    exception = matching_exception(rules, userid=userid, dept_ids=dept_ids, title=title)

    def hours_of(status: str) -> float:
        return rules.hours_for(status, exception)

    def rule_of(*statuses: str) -> str:
        if exception is not None and any(s in exception.status_hours for s in statuses):
            return exception.id
        return statuses[0]

    context: list[str] = []
    if exempt:
        context.append("in no attendance group (does not punch)")
        if calendar_source == WEEKDAYS:
            context.append("no calendar covers the date: Monday–Friday are workdays")
        if day_type != "workday":
            context.append(f"not a workday ({day_type})")
    elif shifts:
        context.append(" / ".join(f"{s.on.describe()}, {s.off.describe()}" for s in shifts))
    else:
        context.append("rest day (no scheduled check points)")
    if covers:
        listed = ", ".join(f"{c.kind} {c.label} ({c.unit}) {_fmt(c.hours)} h" for c in covers)
        context.append(f"{listed} of {_fmt(scheduled_hours)} h scheduled")
    if overtime_hours > 0:
        context.append(f"overtime {_fmt(overtime_hours)} h")

    deduction: tuple[float, float] | None = None  # (hours before leave, leave hours)
    if override is not None:
        status, rule_id = "override", "override"
        effective = float(override["hours"])
        context = [
            f"override {_fmt(effective)} h by {_text(override.get('author')) or '?'}: "
            f"{_text(override.get('reason')) or ''}"
        ]
    elif scheduled_hours > 0 and leave_hours >= scheduled_hours - EPSILON_H:
        status = "leave"
        effective, rule_id = hours_of(status), rule_of(status)
    elif (
        scheduled_hours > 0
        and trip_hours > 0
        and leave_hours + trip_hours >= scheduled_hours - EPSILON_H
    ):
        status = "business_trip"
        before = hours_of(status)
        effective, rule_id = max(0.0, before - leave_hours), rule_of(status)
        if leave_hours > 0:
            deduction = (before, leave_hours)
    elif exempt:
        status = "exempt"
        if day_type == "workday":
            before = hours_of(status)
            effective, rule_id = max(0.0, before - leave_hours), rule_of(status)
            if leave_hours > 0:
                deduction = (before, leave_hours)
        else:
            effective, rule_id = 0.0, status
    elif not shifts:
        # (Leave and trips above need scheduled hours, which a day without shifts never has.)
        status = "rest"
        effective, rule_id = hours_of(status), rule_of(status)
    else:
        judged = [(s.status(), s.scheduled_ms / HOUR_MS) for s in shifts]
        status = min((st for st, _ in judged), key=SHIFT_STATUSES.index)
        before = sum(hours_of(st) * h / rules.standard_day_hours for st, h in judged)
        effective = max(0.0, before - leave_hours)
        rule_id = rule_of(status, *(st for st, _ in judged))
        if leave_hours > 0:
            deduction = (before, leave_hours)

    effective = _round2(effective)
    if deduction is not None:
        outcome = (
            f"{status} {_fmt(deduction[0])} h − {_fmt(deduction[1])} h leave → "
            f"{_fmt(effective)} h (rule {rule_id})"
        )
    else:
        outcome = f"{status} → {_fmt(effective)} h (rule {rule_id})"

    leave = [(c.label, c.hours) for c in covers if c.kind == "leave"]
    facts = day_facts(shifts, booked, leave, scheduled_hours, day_type, rules)
    row = {
        "userid": userid,
        "work_date": work_date,
        "name": name,
        "dept_id": int(dept_ids[0]) if len(dept_ids) else None,
        "day_type": day_type,
        "calendar_source": calendar_source,
        "status": status,
        "scheduled_hours": _round2(scheduled_hours),
        "leave_hours": _round2(leave_hours),
        "trip_hours": _round2(trip_hours),
        "overtime_hours": _round2(overtime_hours),
        "effective_hours": effective,
        "countable": effective > 0,
        "rule_id": rule_id,
        "rules_version": rules.version,
        "explanation": "; ".join(context) + " → " + outcome,
        **facts,
    }
    assert list(row) == EFFECTIVE_HOURS.names
    return row


# ------------------------------------------------------------------------------ a window


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [dict(r) for r in frame.to_dict("records")]


def _by_user(frame: pd.DataFrame, date_column: str) -> dict[str, pd.DataFrame]:
    """Split a frame by userid once, with its dates as `datetime.date` (keeps filtering cheap)."""
    if frame.empty:
        return {}
    frame = frame.assign(**{date_column: [_as_date(v) for v in frame[date_column]]})
    return {str(userid): part for userid, part in frame.groupby("userid", sort=False)}


def _dept_ids(value: Any) -> list[int]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [int(d) for d in value]


def derive_frame(
    roster: pd.DataFrame,
    attendance: pd.DataFrame,
    approvals: pd.DataFrame,
    overrides: pd.DataFrame,
    rules: Rules,
    calendar: WorkCalendar,
) -> pd.DataFrame:
    """The straightforward row-by-row implementation of `docs/rules.md`.

    For every active roster row (one per snapshot_date x userid) gather that user-day's check
    points, approvals and override with plain pandas filtering and call `derive_day`. Returns a
    frame with EFFECTIVE_HOURS columns (as the lake reads them back), sorted by (work_date,
    userid).
    """
    points_of = _by_user(attendance, "work_date")
    approvals_of = _by_user(approvals, "work_date")
    overrides_of = _by_user(overrides, "date")
    empty = pd.DataFrame()
    # Stored partitions from before the column have nobody exempt.
    has_groups = "attendance_group_id" in roster.columns
    rows = []
    for person in roster.to_dict("records"):
        active = person.get("active")
        if not (_is_set(active) and bool(active)):
            continue
        userid, work_date = str(person["userid"]), _as_date(person["snapshot_date"])
        user_points = points_of.get(userid, empty)
        user_approvals = approvals_of.get(userid, empty)
        user_overrides = overrides_of.get(userid, empty)
        day_points = _records(
            user_points[user_points["work_date"] == work_date] if len(user_points) else empty
        )
        day_approvals = _records(
            user_approvals[user_approvals["work_date"] == work_date]
            if len(user_approvals)
            else empty
        )
        day_overrides = _records(
            user_overrides[user_overrides["date"] == work_date] if len(user_overrides) else empty
        )
        exempt = has_groups and not _is_set(person.get("attendance_group_id"))
        known = (
            calendar.day_type_without_schedule(work_date)
            if exempt
            else calendar.day_type(work_date)
        )
        if known is None:
            relevant = [p for p in day_points if p.get("check_type") in CHECK_TYPES]
            known = ("workday" if relevant else "restday"), "dingtalk_schedule"
        rows.append(
            derive_day(
                userid=userid,
                work_date=work_date,
                name=_text(person.get("name")),
                dept_ids=_dept_ids(person.get("dept_ids")),
                title=_text(person.get("title")),
                points=day_points,
                approvals=day_approvals,
                override=day_overrides[0] if day_overrides else None,
                rules=rules,
                day_type=known[0],
                calendar_source=known[1],
                exempt=exempt,
            )
        )
    rows.sort(key=lambda r: (r["work_date"], r["userid"]))
    return pa.Table.from_pylist(rows, schema=EFFECTIVE_HOURS).to_pandas()

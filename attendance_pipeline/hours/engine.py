"""The effective-hours engine: vectorised pandas/numpy over a whole window (no Dagster).

It implements `docs/rules.md` column-wise: check points → shifts → per-shift status → per-day
status and hours, with leave/trip coverage from interval arithmetic on epoch milliseconds. The
one-day-at-a-time `reference.py` implements the same page; tests and a quality gate hold the two
to the same rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from attendance_pipeline.hours import facts, texts
from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.rules import DEFAULT_STATUS_HOURS, NOMINAL_SHIFT, STATUSES, Rules
from attendance_pipeline.schemas import EFFECTIVE_HOURS

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
SHIFT_STATUSES = ("absent", "missing_punch", "late_and_early", "serious_late", "late",
                  "early_leave", "normal")  # fmt: skip
STATUS_ORDER = pd.Index(list(STATUSES))  # precedence: a lower position wins
# Statuses whose hours are the status hours themselves (less leave), not judged from points.
SIMPLE_STATUSES = ["exempt", "rest", "leave", "business_trip"]


def derive_effective_hours(
    roster: pd.DataFrame,
    attendance: pd.DataFrame,
    approvals: pd.DataFrame,
    overrides: pd.DataFrame,
    rules: Rules,
    calendar: WorkCalendar,
) -> pd.DataFrame:
    """One row per active rostered employee per day, with EFFECTIVE_HOURS columns."""
    if roster.empty:
        return EFFECTIVE_HOURS.empty_table().to_pandas()
    # Inside the engine the join keys are integers: a user is its position in the sorted userids
    # (so sorting by it sorts by userid; an unknown one is -1 and joins nothing), a work date its
    # day number since 1970-01-01. Joins on them are several times faster than on strings and
    # date objects. The output has userids and dates again.
    users = pd.Index(roster["userid"].astype(str).unique()).sort_values()
    roster = roster.assign(
        userid=_user_codes(users, roster["userid"]),
        snapshot_date=_day_numbers(roster["snapshot_date"]),
    )
    attendance = attendance.assign(
        userid=_user_codes(users, attendance["userid"]),
        work_date=_day_numbers(attendance["work_date"]),
    )
    approvals = approvals.assign(
        userid=_user_codes(users, approvals["userid"]),
        work_date=_day_numbers(approvals["work_date"]),
    )
    overrides = overrides.assign(
        userid=_user_codes(users, overrides["userid"]), date=_day_numbers(overrides["date"])
    )
    days = _base(roster)
    if days.empty:
        return EFFECTIVE_HOURS.empty_table().to_pandas()
    days["midnight_ms"] = _local_midnight_ms(days["work_date"])
    key = ["userid", "work_date"]

    # Exempt employees (in no attendance group) have no schedule: their check points, if any
    # reached us, are not read; on statutory workdays they get a nominal standard day.
    points = _points(attendance, days)
    shifts = _shifts(points, rules)
    sched = shifts.groupby(key, sort=False)["sched_h"].sum().rename("scheduled_hours")
    days = days.merge(sched, on=key, how="left")
    days["scheduled_hours"] = days["scheduled_hours"].fillna(0.0)
    days["n_points"] = (
        days.merge(points.groupby(key, sort=False).size().rename("n"), on=key, how="left")["n"]
        .fillna(0)
        .to_numpy()
    )
    days["day_type"], days["calendar_source"] = _day_types(days, calendar)
    days["exempt_workday"] = days["exempt"] & (days["day_type"] == "workday")
    days.loc[days["exempt_workday"], "scheduled_hours"] = rules.standard_day_hours

    nominal = _nominal_shifts(days[days["exempt_workday"]], rules)
    cover, ot_rows, leave_rows = _coverage(approvals, days, shifts, nominal, rules)
    days = days.merge(cover, on=key, how="left")
    for column in ("leave_hours", "trip_hours", "overtime_hours"):
        days[column] = days[column].astype(float).fillna(0.0)
    days["leave_hours"] = np.minimum(days["leave_hours"], days["scheduled_hours"])
    days["trip_hours"] = np.minimum(days["trip_hours"], days["scheduled_hours"])

    # Per-shift status from approval-backed results, then the worst shift per day.
    exc_index = _exception_index(days, rules, users)
    days["exc"] = exc_index
    shifts = shifts.merge(days[[*key, "exc"]], on=key, how="inner")
    table = _hours_table(rules)
    shift_status = _shift_status(shifts)
    shifts["status"] = shift_status
    shifts["hours"] = (
        table[shifts["exc"].to_numpy() + 1, _lookup(shift_status, STATUS_CODES)]
        * shifts["sched_h"].to_numpy()
        / rules.standard_day_hours
    )
    shifts["rank"] = _lookup(shift_status, STATUS_ORDER)
    shifts["exc_set"] = _exception_sets(shifts["exc"].to_numpy(), shift_status, rules)
    grouped = shifts.groupby(key, sort=False)
    per_day = grouped.agg(
        point_hours=("hours", "sum"), rank=("rank", "min"), exc_set=("exc_set", "any")
    )
    per_day["text"] = texts.join_per_group(
        shifts["text"].tolist(), grouped.ngroup().to_numpy(), len(per_day)
    )
    ranks = per_day["rank"].to_numpy().astype(np.int64)
    per_day["point_status"] = np.asarray(STATUSES, dtype=object)[ranks]
    days = days.merge(per_day.drop(columns="rank"), on=key, how="left")

    days["scheduled_hours_raw"] = days["scheduled_hours"]
    days = _decide(days, overrides, rules, table)
    days = facts.add_facts(days, shifts, ot_rows, leave_rows, rules)
    days["explanation"] = texts.explain(days)
    days["rules_version"] = rules.version
    days["countable"] = days["effective_hours"] > 0
    out = days[EFFECTIVE_HOURS.names].sort_values(["work_date", "userid"], kind="stable")
    out["work_date"] = _dates(out["work_date"])
    out["userid"] = users[out["userid"].to_numpy(np.int64)].array
    return out.reset_index(drop=True)


def _user_codes(users: pd.Index, userids: pd.Series) -> np.ndarray:
    """Each userid's position in `users` (-1: not there)."""
    return users.get_indexer(userids.astype(str)).astype(np.int64)


def _day_numbers(column: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 of a date column (date objects, timestamps or ISO strings)."""
    if len(column) == 0:
        return np.zeros(0, dtype=np.int64)
    stamps = pd.to_datetime(column).to_numpy().astype("datetime64[D]")
    return stamps.astype(np.int64)


def _dates(numbers: pd.Series) -> np.ndarray:
    """The `datetime.date` of each day number."""
    return numbers.to_numpy(np.int64).astype("datetime64[D]").astype(object)


# --------------------------------------------------------------------------- inputs


def _base(roster: pd.DataFrame) -> pd.DataFrame:
    active = roster[roster["active"].fillna(True).astype(bool)]
    days = pd.DataFrame(
        {
            "userid": active["userid"].array,
            "work_date": active["snapshot_date"].array,
            "name": active["name"].array,
            "title": active["title"].array,
            "dept_ids": active["dept_ids"].array,
        }
    )
    days["dept_id"] = _first_dept(days["dept_ids"])
    # In no attendance group: the column is there and null (stored partitions from before the
    # column have nobody exempt).
    if "attendance_group_id" in active.columns:
        days["exempt"] = active["attendance_group_id"].isna().to_numpy(dtype=bool)
    else:
        days["exempt"] = False
    return days.drop_duplicates(["userid", "work_date"]).reset_index(drop=True)


def _first_dept(dept_ids: pd.Series) -> np.ndarray:
    """Each list's first department id: int64, or float64 with NaN where a list is empty."""
    lists = pa.array(dept_ids.to_numpy(object), type=pa.list_(pa.int64()))
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy()
    firsts = pc.list_flatten(pc.list_slice(lists, 0, 1)).to_numpy()
    if (lengths > 0).all():
        return firsts.astype(np.int64)
    out = np.full(len(lists), np.nan)
    out[lengths > 0] = firsts
    return out


def _local_midnight_ms(day_numbers: pd.Series) -> np.ndarray:
    # China has kept UTC+8 without daylight saving since 1991.
    return day_numbers.to_numpy(np.int64) * DAY_MS - 8 * HOUR_MS


def _ms(column: pd.Series) -> np.ndarray:
    """Epoch milliseconds of an aware timestamp column."""
    utc = pd.to_datetime(column, utc=True).dt.tz_localize(None)
    return utc.to_numpy().astype("datetime64[ms]").astype(np.int64)


def _points(attendance: pd.DataFrame, days: pd.DataFrame) -> pd.DataFrame:
    """The OnDuty/OffDuty check points of the days' people, but none of an exempt day."""
    key = ["userid", "work_date"]
    scheduled = days.loc[~days["exempt"], key]
    frame = attendance[
        attendance["userid"].isin(scheduled["userid"].unique())
        & attendance["check_type"].isin(["OnDuty", "OffDuty"])
    ]
    points = pd.DataFrame(
        {
            "userid": frame["userid"].array,
            "work_date": frame["work_date"].array,
            "check_type": frame["check_type"].array,
            "time_result": frame["time_result"].array,
            "base_ms": _ms(frame["base_check_time"]),
            "user_ms": _ms(frame["user_check_time"]),
            "id": frame["id"].to_numpy(),
            "backed": (
                (frame["proc_inst_id"].fillna("") != "")
                | (frame["approve_id"].fillna("") != "")
                | (frame["source_type"] == "APPROVE")
            ).to_numpy(),
        }
    )
    if len(points) and days["exempt"].any():
        points = points.merge(scheduled, on=key, how="inner")
    points = points.sort_values(
        ["userid", "work_date", "check_type", "base_ms", "id"], kind="stable"
    )
    points["shift"] = points.groupby(["userid", "work_date", "check_type"], sort=False).cumcount()
    return points.reset_index(drop=True)


def _shifts(points: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """One row per (user, day, shift) with both sides; a missing side is NotSigned."""
    key = ["userid", "work_date", "shift"]
    cols = ["time_result", "base_ms", "user_ms", "backed"]
    on = points[points["check_type"] == "OnDuty"][[*key, *cols]].add_prefix("on_")
    off = points[points["check_type"] == "OffDuty"][[*key, *cols]].add_prefix("off_")
    on = on.rename(columns={f"on_{k}": k for k in key})
    off = off.rename(columns={f"off_{k}": k for k in key})
    shifts = on.merge(off, on=key, how="outer")
    for side, other in (("on", "off"), ("off", "on")):
        missing = shifts[f"{side}_base_ms"].isna()
        shifts.loc[missing, f"{side}_time_result"] = "NotSigned"
        shifts.loc[missing, f"{side}_base_ms"] = shifts.loc[missing, f"{other}_base_ms"]
        shifts.loc[missing, f"{side}_user_ms"] = shifts.loc[missing, f"{other}_base_ms"]
        shifts.loc[missing, f"{side}_backed"] = False
        shifts[f"{side}_present"] = ~missing
        shifts[f"{side}_covered"] = False
    for column in ("on_base_ms", "off_base_ms", "on_user_ms", "off_user_ms"):
        shifts[column] = shifts[column].astype(np.int64)
    shifts["on_backed"] = shifts["on_backed"].astype(bool)
    shifts["off_backed"] = shifts["off_backed"].astype(bool)
    midnight = _local_midnight_ms(shifts["work_date"])
    break_start = midnight + _clock_ms(rules.break_.start)
    break_end = midnight + _clock_ms(rules.break_.end)
    on_ms, off_ms = shifts["on_base_ms"].to_numpy(), shifts["off_base_ms"].to_numpy()
    length = np.maximum(0, off_ms - on_ms) - _overlap(on_ms, off_ms, break_start, break_end)
    shifts["sched_h"] = length / HOUR_MS
    shifts["break_start"], shifts["break_end"] = break_start, break_end
    return shifts.sort_values(key, kind="stable").reset_index(drop=True)


def _nominal_shifts(days: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """The nominal shift (NOMINAL_SHIFT, the rules' break) of each exempt workday in `days`."""
    midnight = days["midnight_ms"].to_numpy(np.int64)
    return pd.DataFrame(
        {
            "userid": days["userid"].array,
            "work_date": days["work_date"].array,
            "on_base_ms": midnight + _clock_ms(NOMINAL_SHIFT[0]),
            "off_base_ms": midnight + _clock_ms(NOMINAL_SHIFT[1]),
            "break_start": midnight + _clock_ms(rules.break_.start),
            "break_end": midnight + _clock_ms(rules.break_.end),
        }
    )


def _clock_ms(value: object) -> int:
    return (value.hour * 60 + value.minute) * 60_000  # type: ignore[attr-defined]


def _overlap(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray) -> np.ndarray:
    return np.maximum(0, np.minimum(a1, b1) - np.maximum(a0, b0))


def _round_step(hours: np.ndarray, step: float) -> np.ndarray:
    return np.floor(np.asarray(hours, dtype=float) / step + 0.5 + 1e-9) * step


# --------------------------------------------------------------------------- approvals


def _coverage(
    approvals: pd.DataFrame,
    days: pd.DataFrame,
    shifts: pd.DataFrame,
    nominal: pd.DataFrame,
    rules: Rules,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Leave/trip hours and overtime per day; marks covered check points as backed. Also the
    booked overtime approvals (key, overtime_hours, sub_type, tag_name) and the leave approvals'
    covered hours (key, label, hours) for `facts`.

    `nominal` holds the shifts of exempt workdays (no check points) that hourly approvals are
    measured against.
    """
    key = ["userid", "work_date"]
    empty = (
        pd.DataFrame(columns=[*key, "leave_hours", "trip_hours", "overtime_hours", "leave_text"]),
        pd.DataFrame(columns=[*key, "overtime_hours", "sub_type", "tag_name"]),
        pd.DataFrame(columns=[*key, "label", "hours"]),
    )
    if approvals.empty:
        shifts["text"] = texts.shift_text(shifts)
        return empty
    ap = approvals[approvals["biz_type"].isin([1, 2, 3])].copy()
    ap = ap.merge(days[[*key, "scheduled_hours", "midnight_ms"]], on=key, how="inner")
    if ap.empty:
        shifts["text"] = texts.shift_text(shifts)
        return empty
    ap["begin_ms"], ap["end_ms"] = _ms(ap["begin_at"]), _ms(ap["end_at"])
    day_str = np.datetime_as_string(ap["work_date"].to_numpy(np.int64).astype("datetime64[D]"))
    begin_day, end_day = ap["begin_time"].str[:10], ap["end_time"].str[:10]
    half = ap["duration_unit"] == "halfDay"
    ap["first_half"] = ~(half & (day_str == begin_day) & ap["begin_time"].str.endswith("PM"))
    ap["second_half"] = ~(half & (day_str == end_day) & ap["end_time"].str.endswith("AM"))

    # Hour units: overlap with each shift's scheduled interval, minus the break.
    cover = ap[ap["biz_type"].isin([2, 3])]
    hourly = cover[cover["duration_unit"] == "hour"][[*key, "approve_id", "begin_ms", "end_ms"]]
    intervals = [*key, "on_base_ms", "off_base_ms", "break_start", "break_end"]
    hourly = hourly.merge(pd.concat([shifts[intervals], nominal[intervals]]), on=key)
    b0, b1 = hourly["begin_ms"].to_numpy(), hourly["end_ms"].to_numpy()
    s0, s1 = hourly["on_base_ms"].to_numpy(), hourly["off_base_ms"].to_numpy()
    k0, k1 = hourly["break_start"].to_numpy(), hourly["break_end"].to_numpy()
    lo, hi = np.maximum(b0, s0), np.minimum(b1, s1)
    hourly["ms"] = np.maximum(0, hi - lo) - _overlap(lo, np.maximum(lo, hi), k0, k1)
    hour_cover = hourly.groupby([*key, "approve_id"], sort=False)["ms"].sum() / HOUR_MS
    cover = cover.merge(hour_cover.rename("hour_h"), on=[*key, "approve_id"], how="left")
    halves = cover["first_half"].astype(int) + cover["second_half"].astype(int)
    covered = np.select(
        [cover["duration_unit"] == "day", cover["duration_unit"] == "halfDay"],
        [cover["scheduled_hours"], cover["scheduled_hours"] / 2 * halves],
        default=_round_step(cover["hour_h"].fillna(0.0), rules.hour_leave_rounding),
    )
    cover = cover.assign(
        leave_hours=np.where(cover["biz_type"] == 3, covered, 0.0),
        trip_hours=np.where(cover["biz_type"] == 2, covered, 0.0),
    )
    cover["label"] = [
        _label(sub, tag, _kind(biz))
        for biz, sub, tag in zip(
            cover["biz_type"].tolist(),
            cover["sub_type"].tolist(),
            cover["tag_name"].tolist(),
            strict=True,
        )
    ]
    cover["text"] = [
        f"{_kind(biz)} {label} ({unit}) {hours} h"
        for biz, label, unit, hours in zip(
            cover["biz_type"].tolist(),
            cover["label"].tolist(),
            cover["duration_unit"].tolist(),
            texts.fmt_all(covered),
            strict=True,
        )
    ]
    _mark_covered_points(cover, shifts)
    shifts["text"] = texts.shift_text(shifts)

    overtime = ap[(ap["biz_type"] == 1) & (ap["begin_ms"] >= ap["midnight_ms"])]
    overtime = overtime[overtime["begin_ms"] < overtime["midnight_ms"] + DAY_MS]
    ot_hours = np.select(
        [overtime["duration_unit"] == "hour", overtime["duration_unit"] == "halfDay"],
        [
            _round_step(
                (overtime["end_ms"] - overtime["begin_ms"]) / HOUR_MS, rules.hour_leave_rounding
            ),
            (overtime["end_ms"] - overtime["begin_ms"])
            / (12 * HOUR_MS)
            * rules.standard_day_hours
            / 2,
        ],
        default=(overtime["end_ms"] - overtime["begin_ms"]) / DAY_MS * rules.standard_day_hours,
    )
    overtime = overtime[[*key, "sub_type", "tag_name"]].assign(overtime_hours=ot_hours)

    cover = cover.sort_values([*key, "biz_type", "begin_ms", "approve_id"], kind="stable")
    leave_rows = cover.loc[cover["biz_type"] == 3, [*key, "label", "leave_hours"]]
    grouped = cover.groupby(key, sort=False)
    sums = grouped.agg(
        leave_hours=("leave_hours", "sum"),
        trip_hours=("trip_hours", "sum"),
        sched=("scheduled_hours", "first"),
    )
    group = grouped.ngroup().to_numpy()
    joined = texts.join_per_group(cover["text"].tolist(), group, len(sums), ", ")
    sums["leave_text"] = [
        f"{text} of {sched} h scheduled"
        for text, sched in zip(joined, texts.fmt_all(sums["sched"]), strict=True)
    ]
    sums = sums.drop(columns="sched")
    ot = overtime.groupby(key, sort=False)["overtime_hours"].sum()
    leave_rows = leave_rows.rename(columns={"leave_hours": "hours"})
    return sums.join(ot, how="outer").reset_index(), overtime, leave_rows


def _kind(biz_type: int) -> str:
    return "leave" if biz_type == 3 else "trip"


def _label(sub_type: object, tag_name: object, kind: str) -> str:
    for value in (sub_type, tag_name):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return kind


def _mark_covered_points(cover: pd.DataFrame, shifts: pd.DataFrame) -> None:
    """Set on_backed/off_backed for shift sides inside a leave or trip."""
    key = ["userid", "work_date"]
    joined = cover[
        [*key, "duration_unit", "first_half", "second_half", "begin_ms", "end_ms"]
    ].merge(
        shifts[[*key, "shift", "on_base_ms", "off_base_ms"]].reset_index(),
        on=key,
    )
    if joined.empty:
        return
    unit = joined["duration_unit"]
    for side, half in (("on", "first_half"), ("off", "second_half")):
        base = joined[f"{side}_base_ms"]
        inside = (
            (unit == "day")
            | ((unit == "halfDay") & joined[half])
            | ((unit == "hour") & (base >= joined["begin_ms"]) & (base <= joined["end_ms"]))
        )
        rows = joined.loc[inside, "index"].unique()
        shifts.loc[rows, f"{side}_covered"] = True


# --------------------------------------------------------------------------- status


def _shift_status(shifts: pd.DataFrame) -> np.ndarray:
    on_backed = shifts["on_backed"] | shifts["on_covered"]
    off_backed = shifts["off_backed"] | shifts["off_covered"]
    on = np.where(on_backed, "Normal", shifts["on_time_result"].astype(str))
    off = np.where(off_backed, "Normal", shifts["off_time_result"].astype(str))
    on_late = (on == "Late") | (on == "SeriousLate")
    return np.select(
        [
            (on == "Absenteeism") | ((on == "NotSigned") & (off == "NotSigned")),
            (on == "NotSigned") ^ (off == "NotSigned"),
            on_late & (off == "Early"),
            on == "SeriousLate",
            on == "Late",
            off == "Early",
        ],
        list(SHIFT_STATUSES[:-1]),
        default="normal",
    )


def _hours_table(rules: Rules) -> np.ndarray:
    """Row 0: the base rules; row i+1: exception i (falling back to the base)."""
    statuses = list(DEFAULT_STATUS_HOURS)
    rows = [[rules.hours_for(s, None) for s in statuses]]
    rows += [[rules.hours_for(s, exc) for s in statuses] for exc in rules.exceptions]
    return np.asarray(rows, dtype=float)


STATUS_CODES = pd.Index(list(DEFAULT_STATUS_HOURS))


def _lookup(values: np.ndarray | pd.Series, index: pd.Index) -> np.ndarray:
    """Each value's position in `index` (hashed once per distinct value); KeyError if absent."""
    codes, distinct = pd.factorize(np.asarray(values, dtype=object))
    positions = index.get_indexer(distinct)
    if (positions < 0).any():
        raise KeyError(f"unknown value {distinct[int(np.argmin(positions))]!r}")
    return positions[codes].astype(np.int64)


def _exception_index(days: pd.DataFrame, rules: Rules, users: pd.Index) -> np.ndarray:
    index = np.full(len(days), -1, dtype=np.int64)
    for i, exc in reversed(list(enumerate(rules.exceptions))):
        depts = set(exc.match.dept_ids)
        matches = (
            days["userid"].isin(users.get_indexer(list(exc.match.userids)))
            | days["title"].isin(exc.match.titles)
            | days["dept_ids"].map(
                lambda ids, d=depts: bool(d) and ids is not None and any(x in d for x in ids)
            )
        ).to_numpy()
        index[matches] = i
    return index


def _exception_sets(exc: np.ndarray, statuses: np.ndarray, rules: Rules) -> np.ndarray:
    """Whether the employee's exception sets the hours of each status."""
    sets = np.zeros(len(exc), dtype=bool)
    for i, exception in enumerate(rules.exceptions):
        sets |= (exc == i) & np.isin(statuses, list(exception.status_hours))
    return sets


def _decide(
    days: pd.DataFrame, overrides: pd.DataFrame, rules: Rules, table: np.ndarray
) -> pd.DataFrame:
    key = ["userid", "work_date"]
    ov = overrides.rename(columns={"date": "work_date", "hours": "override_hours"})
    days = days.merge(ov[[*key, "override_hours", "reason", "author"]], on=key, how="left")
    sched, leave, trip = days["scheduled_hours"], days["leave_hours"], days["trip_hours"]
    eps = 1e-9  # hour sums compared with float noise allowed, as in the reference
    # Leave and trips need scheduled hours, which a non-exempt day without check points never
    # has: testing them before `rest` is the rules page's order.
    conditions = [
        days["override_hours"].notna(),
        (sched > 0) & (leave >= sched - eps),
        (sched > 0) & (trip > 0) & (leave + trip >= sched - eps),
        days["exempt"],
        days["n_points"] == 0,
    ]
    status = np.select(
        conditions, ["override", "leave", "business_trip", "exempt", "rest"], default=""
    )
    status = np.where(status == "", days["point_status"].fillna("normal"), status)
    exc = days["exc"].to_numpy()
    row = exc + 1
    simple = np.isin(status, SIMPLE_STATUSES)
    simple_hours = table[row, _lookup(np.where(simple, status, "normal"), STATUS_CODES)]
    # An exempt rest day or holiday earns nothing, whatever the exempt hours.
    exempt_off = (status == "exempt") & ~days["exempt_workday"].to_numpy(dtype=bool)
    hours = np.select(
        [
            status == "override",
            exempt_off,
            status == "rest",
            status == "leave",
            np.isin(status, ["business_trip", "exempt"]),
        ],
        [
            days["override_hours"].fillna(0.0),
            0.0,
            simple_hours,
            simple_hours,
            np.maximum(0.0, simple_hours - leave),
        ],
        default=np.maximum(0.0, days["point_hours"].astype(float).fillna(0.0) - leave),
    )
    days["status"] = status
    days["effective_hours"] = np.round(hours, 2)
    days["leave_hours"] = np.round(leave, 2)
    days["trip_hours"] = np.round(trip, 2)
    days["scheduled_hours"] = np.round(sched, 2)
    days["overtime_hours"] = np.round(days["overtime_hours"], 2)
    # rule_id: the exception's id when it set the hours of this status, else the status.
    exc_ids = np.asarray(["", *(e.id for e in rules.exceptions)], dtype=object)
    judged = ~np.isin(status, ["override", *SIMPLE_STATUSES])
    sets_status = (_exception_sets(exc, status, rules) & ~exempt_off) | (
        judged & days["exc_set"].fillna(False).astype(bool).to_numpy()
    )
    days["before_leave"] = np.where(
        np.isin(status, ["business_trip", "exempt"]),
        np.where(exempt_off, 0.0, simple_hours),
        days["point_hours"].astype(float).fillna(0.0),
    )
    days["rule_id"] = np.where(
        status == "override", "override", np.where(sets_status, exc_ids[row], status)
    )
    return days


def _day_types(days: pd.DataFrame, calendar: WorkCalendar) -> tuple[np.ndarray, np.ndarray]:
    """(day_type, calendar_source) per day: the calendars, else (exempt) Monday–Friday, else
    DingTalk's schedule (check points ⇒ workday). The calendar is asked once per date."""
    numbers, inverse = np.unique(days["work_date"].to_numpy(np.int64), return_inverse=True)
    dates = _dates(pd.Series(numbers)).tolist()
    found = [calendar.day_type(day) for day in dates]
    fallback = [calendar.day_type_without_schedule(day) for day in dates]
    covered = np.asarray([f is not None for f in found])[inverse]
    pick = [(f or fb) for f, fb in zip(found, fallback, strict=True)]
    kinds = np.asarray([p[0] for p in pick], dtype=object)[inverse]
    sources = np.asarray([p[1] for p in pick], dtype=object)[inverse]
    exempt = days["exempt"].to_numpy(bool)
    by_schedule = ~covered & ~exempt
    has_points = days["n_points"].to_numpy() > 0
    kinds = np.where(by_schedule, np.where(has_points, "workday", "restday"), kinds)
    sources = np.where(by_schedule, "dingtalk_schedule", sources)
    return kinds.astype(object), sources.astype(object)

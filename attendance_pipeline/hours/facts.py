"""Per-day payroll facts beside the effective hours (docs/payroll.md), vectorised.

The engine calls `add_facts` once its days are decided; `reference_facts.py` derives the same
facts one day at a time. They describe what DingTalk recorded, the way its monthly summary counts
it, so overrides do not change them:

- overtime by class (劳动法 art. 44): each overtime approval's hours (as in `overtime_hours`) go to
  the class of the day they are booked on (`day_type`: workday, incl. 调休 make-up days; restday;
  holiday). The approval's `sub_type`/`tag_name` saying 调休 or 加班费 decides what becomes of them,
  else `rules.overtime.<class>.compensation`: 调休 hours go to `overtime_lieu_hours` (1:1), paid
  hours x the class's rate to `overtime_pay_hours`;
- `leave_by_type`: each leave approval's covered hours by label (`sub_type`, else `tag_name`,
  else `leave`), scaled down with `leave_hours` when they sum past the scheduled hours, and in
  days of the day's scheduled hours;
- per shift, after approval-backing: an OnDuty `Late`/`SeriousLate` is one late, for
  ⌊(user − base) / 1 min⌋ minutes; an OffDuty `Early` one early leave, ⌊(base − user) / 1 min⌋; an
  absent shift is its share of the day's scheduled hours in `absenteeism_days`; on the other
  shifts each `NotSigned` side (an invented one too) is one missing punch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from attendance_pipeline.hours.rules import Rules

OVERTIME_CLASSES = ("workday", "restday", "holiday")
LIEU_WORD, PAY_WORD = "调休", "加班费"
COUNT_COLUMNS = (
    "late_count",
    "late_minutes",
    "early_leave_count",
    "early_leave_minutes",
    "missing_punch_count",
)
HOUR_COLUMNS = (
    "overtime_workday_hours",
    "overtime_restday_hours",
    "overtime_holiday_hours",
    "overtime_lieu_hours",
    "overtime_pay_hours",
    "absenteeism_days",
)
MINUTE_MS = 60_000


def round2(value: float) -> float:
    """Two decimals, exactly as numpy (and so the engine's column rounding) rounds.

    numpy's `round(x, 2)` is `rint(x * 100) / 100`; Python's `round` to an integer is the same
    round-half-even `rint`, without numpy's per-call overhead (this runs per leave entry)."""
    return round(float(value) * 100.0) / 100.0


def compensation(sub_type: object, tag_name: object, default: str) -> str:
    """`lieu` or `pay`: what the approval says (调休 / 加班费), else the class's default."""
    for value in (sub_type, tag_name):
        if isinstance(value, str):
            if LIEU_WORD in value:
                return "lieu"
            if PAY_WORD in value:
                return "pay"
    return default


def leave_entries(by_label: dict[str, float], scheduled_hours: float) -> list[dict[str, Any]]:
    """`leave_by_type` of one day from the covered hours per label (summed in approval order)."""
    total = sum(by_label.values())
    scale = min(1.0, scheduled_hours / total) if total > 0 else 0.0
    entries = []
    for label in sorted(by_label):
        hours = by_label[label] * scale
        if round2(hours) <= 0:
            continue
        days = hours / scheduled_hours if scheduled_hours > 0 else 0.0
        entries.append({"leave_type": label, "hours": round2(hours), "days": round2(days)})
    return entries


def add_facts(
    days: pd.DataFrame,
    shifts: pd.DataFrame,
    overtime: pd.DataFrame,
    leave: pd.DataFrame,
    rules: Rules,
) -> pd.DataFrame:
    """`days` with the fact columns. `shifts` as the engine judged them (on/off time results,
    backed/covered flags, base/user ms, sched_h); `overtime`: key, overtime_hours, sub_type,
    tag_name per booked approval; `leave`: key, label, hours per leave approval."""
    key = ["userid", "work_date"]
    out = days.copy()
    per_shift = _shift_facts(shifts)
    out = out.merge(per_shift, on=key, how="left")
    for column in COUNT_COLUMNS:
        out[column] = out[column].fillna(0).astype(np.int64)
    sched = out["scheduled_hours_raw"].to_numpy(float)
    absent_h = out["absent_h"].fillna(0.0).to_numpy(float)
    absent_n = out["absent_n"].fillna(0).to_numpy(float)
    n = out["n_shifts"].fillna(0).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(sched > 0, absent_h / sched, np.where(n > 0, absent_n / n, 0.0))
    out["absenteeism_days"] = np.round(share, 2)
    out = out.drop(columns=["absent_h", "absent_n", "n_shifts"])

    out = out.merge(_overtime_facts(overtime, out[[*key, "day_type"]], rules), on=key, how="left")
    for column in HOUR_COLUMNS[:5]:
        out[column] = np.round(out[column].astype(float).fillna(0.0), 2)
    out["leave_by_type"] = _leave_lists(leave, out)
    return out


def _shift_facts(shifts: pd.DataFrame) -> pd.DataFrame:
    key = ["userid", "work_date"]
    if shifts.empty:
        return pd.DataFrame(columns=[*key, *COUNT_COLUMNS, "absent_h", "absent_n", "n_shifts"])
    on_ok = (shifts["on_backed"] | shifts["on_covered"]).to_numpy(bool)
    off_ok = (shifts["off_backed"] | shifts["off_covered"]).to_numpy(bool)
    on = np.where(on_ok, "Normal", shifts["on_time_result"].astype(str).to_numpy())
    off = np.where(off_ok, "Normal", shifts["off_time_result"].astype(str).to_numpy())
    late = (on == "Late") | (on == "SeriousLate")
    early = off == "Early"
    absent = (on == "Absenteeism") | ((on == "NotSigned") & (off == "NotSigned"))
    on_user, on_base = (
        shifts["on_user_ms"].to_numpy(np.int64),
        shifts["on_base_ms"].to_numpy(np.int64),
    )
    off_user, off_base = (
        shifts["off_user_ms"].to_numpy(np.int64),
        shifts["off_base_ms"].to_numpy(np.int64),
    )
    frame = pd.DataFrame(
        {
            "userid": shifts["userid"].array,
            "work_date": shifts["work_date"].array,
            "late_count": late.astype(np.int64),
            "late_minutes": np.where(late, np.maximum(0, on_user - on_base) // MINUTE_MS, 0),
            "early_leave_count": early.astype(np.int64),
            "early_leave_minutes": np.where(
                early, np.maximum(0, off_base - off_user) // MINUTE_MS, 0
            ),
            "missing_punch_count": np.where(
                absent, 0, (on == "NotSigned").astype(np.int64) + (off == "NotSigned")
            ),
            "absent_h": np.where(absent, shifts["sched_h"].to_numpy(float), 0.0),
            "absent_n": absent.astype(np.int64),
            "n_shifts": 1,
        }
    )
    return frame.groupby(key, sort=False).sum().reset_index()


def _overtime_facts(overtime: pd.DataFrame, day_types: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    key = ["userid", "work_date"]
    columns = [*key, *HOUR_COLUMNS[:5]]
    if overtime.empty:
        return pd.DataFrame(columns=columns)
    ot = overtime.merge(day_types, on=key, how="inner")
    if ot.empty:
        return pd.DataFrame(columns=columns)
    hours = ot["overtime_hours"].to_numpy(float)
    klass = ot["day_type"].to_numpy(object)
    defaults = {c: rules.overtime.of(c) for c in OVERTIME_CLASSES}
    comp = np.asarray(
        [
            compensation(sub, tag, defaults[k].compensation)
            for sub, tag, k in zip(ot["sub_type"], ot["tag_name"], klass, strict=True)
        ],
        dtype=object,
    )
    rate = np.asarray([defaults[k].rate for k in klass], dtype=float)
    frame = ot[key].copy()
    for c in OVERTIME_CLASSES:
        frame[f"overtime_{c}_hours"] = np.where(klass == c, hours, 0.0)
    frame["overtime_lieu_hours"] = np.where(comp == "lieu", hours, 0.0)
    frame["overtime_pay_hours"] = np.where(comp == "pay", hours * rate, 0.0)
    return frame.groupby(key, sort=False).sum().reset_index()


def _leave_lists(leave: pd.DataFrame, days: pd.DataFrame) -> list[list[dict[str, Any]]]:
    key = ["userid", "work_date"]
    # Days without leave share one empty list (nothing appends to a day's list afterwards).
    lists: list[list[dict[str, Any]]] = [[]] * len(days)
    if leave.empty:
        return lists
    # Only a day with leave hours can list any (a zero sum, or no scheduled hours, lists none).
    with_leave = days[key].assign(row=np.arange(len(days)))[days["leave_hours"].to_numpy() > 0]
    rows = with_leave.merge(leave, on=key, how="inner", sort=False)
    rows = rows.sort_values("row", kind="stable")  # approval order within each day is kept
    by_day: dict[int, dict[str, float]] = {}
    for row, label, hours in zip(
        rows["row"].tolist(),
        rows["label"].tolist(),
        rows["hours"].astype(float).tolist(),
        strict=True,
    ):
        labels = by_day.setdefault(row, {})
        labels[label] = labels.get(label, 0.0) + hours
    sched = days["scheduled_hours_raw"].to_numpy(float)
    for row, labels in by_day.items():
        lists[row] = leave_entries(labels, sched[row])
    return lists

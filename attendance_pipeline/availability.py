"""Who is away: available hours per person per day for the next days, and why not (no Dagster).

Inputs are what DingTalk plans and has approved for the future:

- the planned shifts of each day (legacy `listschedule`): a person with check points planned has
  a shift between the first OnDuty and the last OffDuty, less the break (`rules.break`); a person
  in an attendance group with nothing planned has the day off. People in no attendance group (no
  schedule) follow the calendar (`calendar.csv`, then chinese_calendar, then Monday–Friday) with
  the nominal 09:00–18:00 day, as the hours rules do for `exempt` days;
- approved leave (biz_type 3) and trips (biz_type 2) overlapping the days, measured against that
  shift as the hours rules measure them (docs/rules.md): `day` covers the shift, `halfDay` half
  of it (AM the first half, PM the second), `hour` its overlap, rounded to the rules' step.

`available_hours` = planned − leave − trip (never below 0). A trip counts as away: the person is
working, but not for the team. Overtime and 补卡 approvals do not change availability.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd

from attendance_pipeline.china_time import SHANGHAI, date_to_ms, days
from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.rules import NOMINAL_SHIFT, Rules
from attendance_pipeline.schemas import TEAM_AVAILABILITY

HOUR_MS = 3_600_000
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
AWAY_KINDS = {2: "trip", 3: "leave"}
STATUSES = ("available", "partly_away", "away", "rest", "left")


def horizon(as_of: date, days_ahead: int) -> tuple[date, date]:
    """The days covered: the day after `as_of` and the `days_ahead - 1` days after it."""
    return as_of + timedelta(days=1), as_of + timedelta(days=days_ahead)


def next_week(as_of: date) -> tuple[date, date]:
    """Monday and Sunday of the ISO week after `as_of`'s."""
    monday = as_of - timedelta(days=as_of.weekday()) + timedelta(days=7)
    return monday, monday + timedelta(days=6)


@dataclass(frozen=True)
class _Shift:
    start_ms: int
    end_ms: int
    hours: float


def _clock(text: str, where: str) -> datetime:
    try:
        return datetime.strptime(str(text).strip()[:19], "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=SHANGHAI
        )
    except ValueError:
        raise ValueError(
            f"{where}: plan_check_time {text!r} is not 'yyyy-MM-dd HH:mm:ss'"
        ) from None


def planned_shifts(
    schedules: Mapping[date, Sequence[Mapping[str, Any]]],
) -> dict[tuple[str, date], tuple[int, int]]:
    """(userid, day) → (first OnDuty, last OffDuty) in epoch ms, from `listschedule` replies."""
    found: dict[tuple[str, date], tuple[int, int]] = {}
    for day, plans in schedules.items():
        ons: dict[str, list[int]] = {}
        offs: dict[str, list[int]] = {}
        for plan in plans:
            where = f"listschedule {day} userid {plan.get('userid')}"
            at = int(_clock(str(plan["plan_check_time"]), where).timestamp() * 1000)
            side = ons if plan["check_type"] == "OnDuty" else offs
            side.setdefault(str(plan["userid"]), []).append(at)
        for userid in ons.keys() | offs.keys():
            points = ons.get(userid, []) + offs.get(userid, [])
            start = min(ons.get(userid, points))
            end = max(offs.get(userid, points))
            found[(userid, day)] = (start, end)
    return found


def _shift(start_ms: int, end_ms: int, day: date, rules: Rules) -> _Shift:
    rest = _overlap(start_ms, end_ms, *_break(day, rules))
    return _Shift(start_ms, end_ms, round(max(0, end_ms - start_ms - rest) / HOUR_MS, 2))


def _break(day: date, rules: Rules) -> tuple[int, int]:
    return date_to_ms(day, rules.break_.start), date_to_ms(day, rules.break_.end)


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0))


def _ints(value: Any) -> list[int]:
    """A list column's value (a list, a NumPy array from Parquet, or null) as ints."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    return [int(v) for v in value]


def _ms(value: Any) -> int:
    return int(pd.Timestamp(value).timestamp() * 1000)


def _away(approval: Mapping[str, Any], shift: _Shift, day: date, rules: Rules) -> tuple[float, str]:
    """Hours of the shift the approval covers on `day`, and when ("全天", "上午", "14:00–16:00")."""
    unit = str(approval["duration_unit"])
    if unit == "day":
        return shift.hours, "全天"
    if unit == "halfDay":
        begin, end = str(approval["begin_time"]), str(approval["end_time"])
        first = day > date.fromisoformat(begin[:10]) or begin[10:].strip().upper() == "AM"
        second = day < date.fromisoformat(end[:10]) or end[10:].strip().upper() == "PM"
        if first and second:
            return shift.hours, "全天"
        return shift.hours / 2 * (first + second), "上午" if first else "下午"
    begin_ms, end_ms = _ms(approval["begin_at"]), _ms(approval["end_at"])
    start, stop = max(begin_ms, shift.start_ms), min(end_ms, shift.end_ms)
    if stop <= start:
        return 0.0, ""
    covered = stop - start - _overlap(start, stop, *_break(day, rules))
    step = rules.hour_leave_rounding
    hours = round(covered / HOUR_MS / step) * step
    if start <= shift.start_ms and stop >= shift.end_ms:
        return shift.hours, "全天"
    noon = date_to_ms(day, time(12, 0))
    if stop <= noon and start <= shift.start_ms:
        return hours, "上午"
    if start >= noon and stop >= shift.end_ms:
        return hours, "下午"
    fmt = "%H:%M"
    when = (
        f"{datetime.fromtimestamp(start / 1000, SHANGHAI):{fmt}}–"
        f"{datetime.fromtimestamp(stop / 1000, SHANGHAI):{fmt}}"
    )
    return hours, when


def _label(approval: Mapping[str, Any]) -> str:
    if int(approval["biz_type"]) == 2:
        return "出差"
    for key in ("sub_type", "tag_name"):
        value = approval.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "请假"


def team_availability(
    roster: pd.DataFrame,
    schedules: Mapping[date, Sequence[Mapping[str, Any]]],
    approvals: pd.DataFrame,
    calendar: WorkCalendar,
    rules: Rules,
    as_of: date,
    days_ahead: int,
    pulled_at: datetime,
    scheduled_until: date | None = None,
) -> pd.DataFrame:
    """One row per person of `roster` (one snapshot) per day of `horizon(as_of, days_ahead)`.

    `approvals` has the `raw_approvals` columns (one row per approval and day). Days after
    `scheduled_until` (default: the whole horizon) have no DingTalk schedule to read and follow
    the calendar for everyone."""
    first, last = horizon(as_of, days_ahead)
    scheduled_until = scheduled_until or last
    shifts = planned_shifts(schedules)
    by_person_day: dict[tuple[str, date], list[Mapping[str, Any]]] = {}
    for row in approvals.to_dict("records"):
        if int(row["biz_type"]) in AWAY_KINDS:
            day = pd.Timestamp(row["work_date"]).date()
            by_person_day.setdefault((str(row["userid"]), day), []).append(row)
    rows: list[dict[str, Any]] = []
    people = roster.drop_duplicates("userid").sort_values("userid")
    for person in people.to_dict("records"):
        userid = str(person["userid"])
        in_group = pd.notna(person.get("attendance_group_id"))
        last_day = person.get("last_work_date")
        last_day = pd.Timestamp(last_day).date() if pd.notna(last_day) else None
        dept_ids = _ints(person.get("dept_ids"))
        for day in days(first, last):
            day_type, source = calendar.day_type_without_schedule(day)
            base = {
                "as_of": as_of,
                "work_date": day,
                "weekday": WEEKDAYS[day.weekday()],
                "userid": userid,
                "name": person.get("name"),
                "dept_id": int(dept_ids[0]) if dept_ids else None,
                "day_type": day_type,
                "leave_hours": 0.0,
                "trip_hours": 0.0,
                "approve_ids": [],
                "pulled_at": pulled_at,
            }
            if last_day is not None and day > last_day:
                rows.append(
                    {**base, "planned_hours": 0.0, "available_hours": 0.0, "status": "left",
                     "reason": f"已离职 (最后工作日 {last_day})", "source": "roster"}
                )  # fmt: skip
                continue
            shift: _Shift | None
            if in_group and day <= scheduled_until:
                source = "dingtalk_schedule"
                planned = shifts.get((userid, day))
                shift = _shift(*planned, day, rules) if planned else None
            elif day_type == "workday":
                start, end = (date_to_ms(day, t) for t in NOMINAL_SHIFT)
                shift = _shift(start, end, day, rules)
            else:
                shift = None
            if shift is None:
                reason = "节假日" if day_type == "holiday" else "休息"
                rows.append(
                    {**base, "planned_hours": 0.0, "available_hours": 0.0, "status": "rest",
                     "reason": reason, "source": source}
                )  # fmt: skip
                continue
            rows.append(
                _person_day(base, shift, by_person_day.get((userid, day), []), rules, source)
            )
    frame = pd.DataFrame(rows, columns=TEAM_AVAILABILITY.names)
    return frame


def _person_day(
    base: dict[str, Any],
    shift: _Shift,
    approvals: Iterable[Mapping[str, Any]],
    rules: Rules,
    source: str,
) -> dict[str, Any]:
    hours = {"leave": 0.0, "trip": 0.0}
    reasons: list[str] = []
    ids: list[str] = []
    day = base["work_date"]
    for approval in sorted(approvals, key=lambda a: (str(a["begin_time"]), str(a["approve_id"]))):
        covered, when = _away(approval, shift, day, rules)
        if covered <= 0:
            continue
        hours[AWAY_KINDS[int(approval["biz_type"])]] += covered
        reasons.append(f"{when}{_label(approval)}")
        ids.append(str(approval["approve_id"]))
    away = min(shift.hours, hours["leave"] + hours["trip"])
    available = round(shift.hours - away, 2)
    status = "available" if away == 0 else "away" if available == 0 else "partly_away"
    return {
        **base,
        "planned_hours": shift.hours,
        "leave_hours": round(hours["leave"], 2),
        "trip_hours": round(hours["trip"], 2),
        "available_hours": available,
        "status": status,
        "reason": "、".join(reasons),
        "approve_ids": ids,
        "source": source,
    }


# ------------------------------------------------------------------------------ the PM views


def team_members(
    roster: pd.DataFrame, departments: Iterable[int], users: Iterable[str]
) -> set[str]:
    """Userids in any of `departments` (sub-departments included) or listed in `users`."""
    wanted = set(departments)
    members = {str(u) for u in users}
    for person in roster.drop_duplicates("userid").to_dict("records"):
        ancestors = _ints(person.get("dept_ancestors")) + _ints(person.get("dept_ids"))
        if wanted & set(ancestors):
            members.add(str(person["userid"]))
    return members


def away_summary(frame: pd.DataFrame, start: date, end: date, members: set[str] | None) -> str:
    """ "张三 周三全天年假, 李四 周四下午出差" for start..end (people in name order); "" if
    nobody in `members` (None: everyone) is away."""
    days_of = pd.to_datetime(frame["work_date"]).dt.date
    away = frame[
        frame["status"].isin(["away", "partly_away"]) & (days_of >= start) & (days_of <= end)
    ]
    if members is not None:
        away = away[away["userid"].isin(members)]
    parts = []
    for (name, _), person in away.sort_values(["name", "userid", "work_date"]).groupby(
        ["name", "userid"], sort=False
    ):
        days_text = "、".join(
            f"{w}{r}" for w, r in zip(person["weekday"], person["reason"], strict=True)
        )
        parts.append(f"{name} {days_text}")
    return ", ".join(parts)


def week_message(
    frame: pd.DataFrame, team: str, as_of: date, members: set[str] | None
) -> tuple[str, str]:
    """(title, markdown) of the robot message about next week for one team."""
    monday, sunday = next_week(as_of)
    summary = away_summary(frame, monday, sunday, members)
    days_of = pd.to_datetime(frame["work_date"]).dt.date
    week = frame[(days_of >= monday) & (days_of <= sunday)]
    if members is not None:
        week = week[week["userid"].isin(members)]
    planned, available = float(week["planned_hours"].sum()), float(week["available_hours"].sum())
    title = f"{team} 下周可用工时"
    text = (
        f"### {team}: 下周 ({monday:%m-%d} – {sunday:%m-%d})\n\n"
        f"下周: {summary or '全员在岗'}\n\n"
        f"- 可用工时 {available:g} / 计划 {planned:g} h ({week['userid'].nunique()} 人)\n"
        f"- 截至 {as_of}，来自钉钉排班与已通过的审批"
    )
    return title, text


CELL_COLOURS = {
    "available": "#d8ecd3", "partly_away": "#f7d9a8", "away": "#f2a6a6", "rest": "#eeeeee",
    "left": "#cccccc",
}  # fmt: skip


def render_html(frame: pd.DataFrame, title: str) -> str:
    """A self-contained page: available hours per day as an SVG bar chart, then a person × day
    grid coloured by status with the reason in each cell (no plotting dependency)."""
    if frame.empty:
        escaped = html.escape(title)
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{escaped}</title></head>"
            f"<body><h1>{escaped}</h1><p>Nobody in the roster.</p></body></html>"
        )
    work_days = sorted(pd.to_datetime(frame["work_date"]).dt.date.unique())
    totals = frame.groupby(pd.to_datetime(frame["work_date"]).dt.date)[
        ["planned_hours", "available_hours"]
    ].sum()
    width, bar, top = 60, 40, 160.0
    peak = float(totals["planned_hours"].max()) or 1.0
    svg = []
    for i, day in enumerate(work_days):
        x = 20 + i * width
        planned, available = (
            float(totals.loc[day, c]) for c in ("planned_hours", "available_hours")
        )
        hp, ha = top * planned / peak, top * available / peak
        svg.append(
            f'<rect x="{x}" y="{20 + top - hp:.1f}" width="{bar}" height="{hp:.1f}" fill="#f2a6a6">'
            f"<title>{day}: planned {planned:g} h</title></rect>"
            f'<rect x="{x}" y="{20 + top - ha:.1f}" width="{bar}" height="{ha:.1f}" fill="#59a14f">'
            f"<title>{day}: available {available:g} h</title></rect>"
            f'<text x="{x}" y="{top + 38}">{day:%m-%d}</text>'
            f'<text x="{x}" y="{top + 54}">{WEEKDAYS[day.weekday()]}</text>'
        )
    header = "".join(f"<th>{d:%m-%d}<br>{WEEKDAYS[d.weekday()]}</th>" for d in work_days)
    body = []
    for (name, userid), person in frame.sort_values(["name", "userid"]).groupby(
        ["name", "userid"], sort=False
    ):
        cells = {pd.Timestamp(r.work_date).date(): r for r in person.itertuples(index=False)}
        tds = []
        for day in work_days:
            r = cells.get(day)
            if r is None:
                tds.append("<td></td>")
                continue
            text = f"{r.available_hours:g} h" + (
                f"<br>{html.escape(str(r.reason))}" if r.reason else ""
            )
            tds.append(
                f"<td style='background:{CELL_COLOURS.get(str(r.status), '#fff')}'>{text}</td>"
            )
        body.append(f"<tr><th>{html.escape(str(name or userid))}</th>{''.join(tds)}</tr>")
    return (
        f"<!doctype html><html lang='zh'><head><meta charset='utf-8'><title>{html.escape(title)}"
        "</title><style>body{font-family:sans-serif;margin:24px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px;text-align:center}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>"
        "<p>Green: available hours; red: planned hours away (leave or trip).</p>"
        f"<svg width='{40 + width * len(work_days)}' height='{top + 70}' "
        f"xmlns='http://www.w3.org/2000/svg' font-size='12'>{''.join(svg)}</svg>"
        f"<table><tr><th></th>{header}</tr>{''.join(body)}</table></body></html>"
    )


def daily_chart(frame: pd.DataFrame) -> str:
    """Markdown: per day, available of planned hours as a bar, and who is away (for the UI)."""
    if frame.empty:
        return "Nobody in the roster."
    lines = ["| day | available / planned h | | away |", "|---|---:|---|---|"]
    for day, rows in frame.groupby(pd.to_datetime(frame["work_date"]).dt.date):
        planned, available = (
            float(rows["planned_hours"].sum()),
            float(rows["available_hours"].sum()),
        )
        share = available / planned if planned else 0.0
        blocks = "█" * round(share * 20) + "░" * (20 - round(share * 20)) if planned else "休息"
        away = rows[rows["status"].isin(["away", "partly_away"])]
        who = ", ".join(f"{n} {r}" for n, r in zip(away["name"], away["reason"], strict=True))
        lines.append(
            f"| {day} {WEEKDAYS[day.weekday()]} | {available:g} / {planned:g} | {blocks} | "
            f"{who[:200] or '—'} |"
        )
    return "\n".join(lines)

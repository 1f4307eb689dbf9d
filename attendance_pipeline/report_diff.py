"""DingTalk's own 考勤报表 beside payroll: pull its computed columns, then reconcile (no Dagster).

`pull_report` reads DingTalk's smart-report columns for each person and day of a month (column
ids are per company and found by name or alias, never hard-coded); `reconcile` compares them
with the pipeline's per-day facts in `effective_hours`, per person, month and measure, and names
the days that explain each difference. docs/payroll.md lists the measures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from attendance_pipeline.china_time import now_in_china
from attendance_pipeline.dingtalk.client import DingTalkClient
from attendance_pipeline.dingtalk.report import find_columns
from attendance_pipeline.schemas import TS
from attendance_pipeline.vocabulary import Blocks
from attendance_pipeline.warehouse import replace_rows, table_exists

DINGTALK_REPORT = pa.schema(
    [
        ("month", pa.string()),
        ("userid", pa.string()),
        ("work_date", pa.date32()),
        ("measure", pa.string()),
        ("column_name", pa.string()),  # DingTalk's column (or leave type) name
        ("column_id", pa.int64()),  # null for leave columns (read by name)
        ("value", pa.float64()),
        (
            "pulled_on",
            pa.date32(),
        ),  # DingTalk's today at the pull (the 15-day quirk counts from it)
        ("pulled_at", TS),
    ]
)

REPORT_DIFF = pa.schema(
    [
        ("month", pa.string()),
        ("userid", pa.string()),
        ("name", pa.string()),
        ("measure", pa.string()),
        ("column_name", pa.string()),
        ("unit", pa.string()),
        ("pipeline_value", pa.float64()),
        ("dingtalk_value", pa.float64()),
        ("difference", pa.float64()),  # pipeline - DingTalk
        ("tolerance", pa.float64()),
        ("within_tolerance", pa.bool_()),
        ("days", pa.list_(pa.date32())),  # the days whose values differ
        ("explanation", pa.string()),
        ("computed_at", TS),
    ]
)

# DingTalk returns 应出勤天数 as 0 for dates more than this many days before the call.
SHOULD_ATTEND_DAYS_WINDOW = 15


@dataclass(frozen=True)
class Measure:
    """One compared quantity: DingTalk's column(s) (summed) and the pipeline's per-day value."""

    key: str
    columns: tuple[tuple[str, ...], ...]  # each column: its name and aliases
    unit: str  # days | count | minutes | hours
    pipeline: str  # SQL over one `effective_hours` row


MEASURES: tuple[Measure, ...] = (
    Measure(
        "should_attendance_days",
        (("应出勤天数", "should_attendance_days"),),
        "days",
        "CASE WHEN status IN ('rest', 'exempt') THEN 0.0 ELSE 1.0 END",
    ),
    Measure("late_count", (("迟到次数", "late_times"),), "count", "late_count"),
    Measure("late_minutes", (("迟到时长", "late_minute"),), "minutes", "late_minutes"),
    Measure(
        "early_leave_count", (("早退次数", "leave_early_times"),), "count", "early_leave_count"
    ),
    Measure(
        "early_leave_minutes",
        (("早退时长", "leave_early_minute"),),
        "minutes",
        "early_leave_minutes",
    ),
    Measure(
        "missing_punch_count",
        (("上班缺卡次数", "on_work_lack_card_times"), ("下班缺卡次数", "off_work_lack_card_times")),
        "count",
        "missing_punch_count",
    ),
    Measure("absenteeism_days", (("旷工天数", "absenteeism_days"),), "days", "absenteeism_days"),
    Measure(
        "overtime_workday_hours",
        (("工作日加班", "overtime_workday", "work_day_overtime"),),
        "hours",
        "overtime_workday_hours",
    ),
    Measure(
        "overtime_restday_hours",
        (("休息日加班", "overtime_restday", "rest_day_overtime"),),
        "hours",
        "overtime_restday_hours",
    ),
    Measure(
        "overtime_holiday_hours",
        (("节假日加班", "overtime_holiday", "holiday_overtime"),),
        "hours",
        "overtime_holiday_hours",
    ),
)
LEAVE_PREFIX = "leave:"


def measure_names() -> list[str]:
    return [m.key for m in MEASURES]


def month_bounds(month: str) -> tuple[date, date]:
    first = date(int(month[:4]), int(month[5:7]), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def pull_report(
    client: DingTalkClient,
    userids: Sequence[str],
    month: str,
    leave_types: Iterable[str],
    pulled_on: date,
) -> pa.Table:
    """DingTalk's report values for `userids`, one row per person, day, measure and column
    (leave: one row per person, day and type with hours). Two metered calls per person, plus one
    for the column list; people are shared out over the client's worker pool."""
    start, end = month_bounds(month)
    wanted = {f"{m.key}#{i}": names for m in MEASURES for i, names in enumerate(m.columns)}
    found = find_columns(client.report_columns(), wanted)
    by_id = {int(col["id"]): (key.split("#")[0], str(col["name"])) for key, col in found.items()}
    now = now_in_china()
    people = sorted(set(userids))
    # A chunk of people at a time, each turned into Arrow at once: the per-day values as Python
    # dicts (~165k a month for 1,000 people) are never all alive together (issue 14's memory).
    columns, leave_names = sorted(by_id), sorted(set(leave_types))
    chunks = []
    for i in range(0, len(people), REPORT_CHUNK):
        pulled = client.report_rows(people[i : i + REPORT_CHUNK], columns, leave_names, start, end)
        chunks.append(_report_chunk(pulled, by_id, month, pulled_on, now))
    if not chunks:
        return DINGTALK_REPORT.empty_table()
    return pa.concat_tables(chunks)


REPORT_CHUNK = 100  # people per report_rows call


def _report_chunk(
    pulled: tuple[list[Any], list[Any]],
    by_id: dict[int, tuple[str, str]],
    month: str,
    pulled_on: date,
    now: datetime,
) -> pa.Table:
    values, leave = pulled
    rows: dict[str, list[object]] = {name: [] for name in DINGTALK_REPORT.names}

    def add(userid: str, day: date, measure: str, name: str, cid: int | None, value: float) -> None:
        for key, item in zip(
            DINGTALK_REPORT.names,
            (month, userid, day, measure, name, cid, value, pulled_on, now),
            strict=True,
        ):
            rows[key].append(item)

    for v in values:
        measure, name = by_id[v["column_id"]]
        add(v["userid"], v["work_date"], measure, name, v["column_id"], v["value"])
    for lv in leave:
        add(lv["userid"], lv["work_date"], LEAVE_PREFIX + lv["leave_type"], lv["leave_type"],
            None, lv["hours"])  # fmt: skip
    return pa.table(rows, schema=DINGTALK_REPORT)


def store_report(con: duckdb.DuckDBPyConnection, month: str, report: pa.Table) -> int:
    """Replace the month's `dingtalk_report` rows in one transaction."""
    return _replace(con, "dingtalk_report", DINGTALK_REPORT, month, report)


def _replace(
    con: duckdb.DuckDBPyConnection, name: str, schema: pa.Schema, month: str, rows: pa.Table
) -> int:
    return replace_rows(con, name, schema, rows, "month = ?", [month])


def reconcile(
    con: duckdb.DuckDBPyConnection,
    month: str,
    tolerance: dict[str, float],
    *,
    pulled_on: date | None = None,
) -> pa.Table:
    """Per person, month and measure where any day differs: both sums, the difference, whether
    it is within `tolerance[unit]`, the differing days and what the pipeline saw on them.

    应出勤天数 is compared only on days within 15 days before `pulled_on` (DingTalk answers 0
    for older days); days held back are named as such (their hours are not published yet).
    """
    if not table_exists(con, "dingtalk_report") or not table_exists(con, "effective_hours"):
        return REPORT_DIFF.empty_table()
    start, end = month_bounds(month)
    pulled = pulled_on or end
    quirk_from = pulled - timedelta(days=SHOULD_ATTEND_DAYS_WINDOW)
    units = {m.key: m.unit for m in MEASURES}
    pipeline_days = " UNION ALL ".join(
        f"SELECT userid, work_date, '{m.key}' AS measure, ({m.pipeline})::DOUBLE AS value "
        "FROM month_days"
        for m in MEASURES
    )
    held = (
        f"""SELECT userid, work_date, string_agg(DISTINCT "check", ', ') AS checks
            FROM held_back WHERE released_at IS NULL AND blocks = '{Blocks.ALL.value}'
            GROUP BY ALL"""
        if table_exists(con, "held_back")
        else "SELECT NULL::VARCHAR AS userid, NULL::DATE AS work_date, NULL AS checks LIMIT 0"
    )
    # DingTalk measures leave against a person's schedule: on a day in no attendance group
    # (exempt, docs/rules.md) it reports none, so leave is not compared there.
    unscheduled = (
        "SELECT userid, snapshot_date AS work_date FROM roster "
        "WHERE attendance_group_id IS NULL AND snapshot_date BETWEEN ? AND ?"
        if table_exists(con, "roster")
        else "SELECT NULL::VARCHAR AS userid, NULL::DATE AS work_date LIMIT 0"
    )
    unscheduled_params: list[object] = [start, end] if table_exists(con, "roster") else []
    unit_rows = ", ".join(f"('{k}', '{u}')" for k, u in units.items())
    tol_rows = ", ".join(f"('{u}', {float(t)})" for u, t in tolerance.items()) or "('none', 0)"
    result: pa.Table = con.sql(
        f"""
        WITH month_days AS (
            SELECT * FROM effective_hours WHERE work_date BETWEEN ? AND ?
        ),
        ours AS (
            {pipeline_days}
            UNION ALL
            SELECT userid, work_date, '{LEAVE_PREFIX}' || l.leave_type, l.hours FROM (
                SELECT userid, work_date, unnest(leave_by_type) AS l FROM month_days)
        ),
        theirs AS (
            SELECT userid, work_date, measure, sum(value) AS value
            FROM dingtalk_report WHERE month = ? GROUP BY ALL
        ),
        names AS (
            SELECT measure,
                   string_agg(DISTINCT column_name, '+' ORDER BY column_name) AS column_name
            FROM dingtalk_report WHERE month = ? GROUP BY ALL
        ),
        people AS (SELECT DISTINCT userid FROM theirs),
        compared AS (
            SELECT coalesce(o.userid, t.userid) AS userid,
                   coalesce(o.work_date, t.work_date) AS work_date,
                   coalesce(o.measure, t.measure) AS measure,
                   coalesce(o.value, 0) AS ours, coalesce(t.value, 0) AS theirs
            FROM (SELECT * FROM ours WHERE userid IN (SELECT userid FROM people)) o
            FULL OUTER JOIN theirs t
              ON o.userid = t.userid AND o.work_date = t.work_date AND o.measure = t.measure
        ),
        unscheduled AS ({unscheduled}),
        comparable AS (
            SELECT * FROM compared
            WHERE (measure NOT IN ('should_attendance_days') OR work_date >= ?)
              AND NOT (starts_with(measure, '{LEAVE_PREFIX}') AND EXISTS (
                  SELECT 1 FROM unscheduled x
                  WHERE x.userid = compared.userid AND x.work_date = compared.work_date))
        ),
        held AS ({held}),
        differing AS (SELECT * FROM comparable WHERE abs(ours - theirs) > 0.001),
        day_notes AS (
            SELECT c.*, d.status, d.explanation, h.checks
            FROM differing c
            LEFT JOIN month_days d USING (userid, work_date)
            LEFT JOIN held h USING (userid, work_date)
        ),
        units(measure, unit) AS (VALUES {unit_rows}),
        tolerances(unit, tolerance) AS (VALUES {tol_rows}),
        notes AS (
            SELECT userid, measure, list(work_date ORDER BY work_date) AS days,
                   string_agg(
                       strftime(work_date, '%Y-%m-%d') || ': pipeline ' || ours::VARCHAR
                       || ', DingTalk ' || theirs::VARCHAR || CASE
                           WHEN checks IS NOT NULL THEN ' (held back by ' || checks || ')'
                           WHEN status IS NULL THEN ' (no published day)'
                           ELSE ' (' || status || ': ' || coalesce(explanation, '') || ')' END,
                       '; ' ORDER BY work_date
                   ) AS explanation
            FROM day_notes GROUP BY userid, measure
        ),
        per_month AS (
            SELECT c.userid, c.measure, any_value(nm.column_name) AS column_name,
                   round(sum(c.ours), 2) AS pipeline_value,
                   round(sum(c.theirs), 2) AS dingtalk_value,
                   any_value(n.days) AS days, any_value(n.explanation) AS explanation
            FROM comparable c
            JOIN notes n USING (userid, measure)
            LEFT JOIN names nm USING (measure)
            GROUP BY c.userid, c.measure
        )
        SELECT ? AS month, p.userid, n.name, p.measure, p.column_name,
               coalesce(u.unit, 'hours') AS unit, p.pipeline_value, p.dingtalk_value,
               round(p.pipeline_value - p.dingtalk_value, 2) AS difference,
               coalesce(t.tolerance, 0) AS tolerance,
               abs(p.pipeline_value - p.dingtalk_value) <= coalesce(t.tolerance, 0) + 1e-9
                   AS within_tolerance,
               p.days, p.explanation, ?::TIMESTAMPTZ AS computed_at
        FROM per_month p
        LEFT JOIN units u USING (measure)
        LEFT JOIN tolerances t ON t.unit = coalesce(u.unit, 'hours')
        LEFT JOIN (SELECT userid, arg_max(name, work_date) AS name FROM month_days GROUP BY 1) n
          USING (userid)
        WHERE len(p.days) > 0
        ORDER BY p.userid, p.measure
        """,
        params=[start, end, month, month, *unscheduled_params, quirk_from, month, now_in_china()],
    ).to_arrow_table()
    return result.select(REPORT_DIFF.names).cast(REPORT_DIFF)


def store_diff(con: duckdb.DuckDBPyConnection, month: str, diff: pa.Table) -> int:
    """Replace the month's `dingtalk_report_diff` rows in one transaction."""
    return _replace(con, "dingtalk_report_diff", REPORT_DIFF, month, diff)

"""Payroll months in DuckDB: sums of effective hours, period locks and adjustment rows.

Plain SQL over the warehouse (no Dagster). A month is `open` until locked. Locking a month
freezes its `payroll_monthly` rows and snapshots its days (`payroll_locked_days`); from then on a
correction to one of those days (a 补卡 arriving late, an override) appears as an `adjustment`
row, with the original date, in the first open month after it, so finance can always explain a
difference.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pyarrow as pa

from attendance_pipeline.china_time import now_in_china
from attendance_pipeline.holdback import HELD_BACK
from attendance_pipeline.schemas import EFFECTIVE_HOURS, TS
from attendance_pipeline.vocabulary import LATE_STATUSES, Blocks
from attendance_pipeline.warehouse import ensure_table, replace_rows, scalar, table_exists

PAYROLL_MONTHLY = pa.schema(
    [
        ("month", pa.string()),
        ("userid", pa.string()),
        ("name", pa.string()),
        ("dept_id", pa.int64()),
        ("workdays", pa.int64()),
        ("effective_hours", pa.float64()),
        ("overtime_hours", pa.float64()),
        ("leave_hours", pa.float64()),
        ("late_days", pa.int64()),
        ("absent_days", pa.int64()),
        ("missing_punch_days", pa.int64()),
        # Days of the month held back by a gate (not in effective_hours yet; see `held_back`).
        ("pending_days", pa.int64()),
        ("locked", pa.bool_()),
        ("kind", pa.string()),  # regular | adjustment
        ("original_date", pa.date32()),  # the corrected day, on adjustment rows
        ("computed_at", TS),
    ]
)

PAYROLL_LOCKED_DAYS = pa.schema(
    [
        ("month", pa.string()),
        ("userid", pa.string()),
        ("work_date", pa.date32()),
        ("effective_hours", pa.float64()),
        ("overtime_hours", pa.float64()),
        ("leave_hours", pa.float64()),
        ("status", pa.string()),
    ]
)

PAYROLL_LOCKS = pa.schema([("month", pa.string()), ("locked_at", TS), ("locked_by", pa.string())])

LATE = "(" + ", ".join(f"'{s}'" for s in LATE_STATUSES) + ")"


class PayrollError(ValueError):
    """A payroll operation that cannot be done (e.g. locking a month with no rows)."""


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    ensure_table(con, "effective_hours", EFFECTIVE_HOURS)
    ensure_table(con, "payroll_monthly", PAYROLL_MONTHLY)
    ensure_table(con, "payroll_locked_days", PAYROLL_LOCKED_DAYS)
    ensure_table(con, "payroll_locks", PAYROLL_LOCKS)
    ensure_table(con, "held_back", HELD_BACK)


def locked_months(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Months locked so far (works on a read-only connection)."""
    if not table_exists(con, "payroll_locks"):
        return set()
    return {row[0] for row in con.execute("SELECT month FROM payroll_locks").fetchall()}


def first_open_after(month: str, locked: set[str]) -> str:
    candidate = next_month(month)
    while candidate in locked:
        candidate = next_month(candidate)
    return candidate


def compute_month(con: duckdb.DuckDBPyConnection, month: str) -> pa.Table:
    """Regular rows of an open month from `effective_hours`, plus its adjustment rows."""
    ensure_tables(con)
    locked = locked_months(con)
    if month in locked:
        raise PayrollError(f"payroll month {month} is locked; its rows do not change")
    now = now_in_china()
    # Everyone with published days, plus everyone whose days of the month are all held back, so
    # finance sees who is still pending.
    regular: pa.Table = con.sql(
        f"""
        WITH hours AS (
            SELECT userid,
                   arg_max(name, work_date) AS name, arg_max(dept_id, work_date) AS dept_id,
                   count(*) FILTER (
                       WHERE status <> 'rest' AND NOT (status = 'exempt' AND day_type <> 'workday')
                   ) AS workdays,
                   round(sum(effective_hours), 2) AS effective_hours,
                   round(sum(overtime_hours), 2) AS overtime_hours,
                   round(sum(leave_hours), 2) AS leave_hours,
                   count(*) FILTER (WHERE status IN {LATE}) AS late_days,
                   count(*) FILTER (WHERE status = 'absent') AS absent_days,
                   count(*) FILTER (WHERE status = 'missing_punch') AS missing_punch_days
            FROM effective_hours WHERE strftime(work_date, '%Y-%m') = ?
            GROUP BY userid
        ),
        pending AS (
            SELECT userid, arg_max(name, work_date) AS name,
                   count(DISTINCT work_date) AS pending_days
            FROM held_back
            WHERE released_at IS NULL AND blocks = '{Blocks.ALL.value}'
              AND strftime(work_date, '%Y-%m') = ?
            GROUP BY userid
        )
        SELECT ? AS month, coalesce(h.userid, p.userid) AS userid,
               coalesce(h.name, p.name) AS name, h.dept_id,
               coalesce(h.workdays, 0) AS workdays,
               coalesce(h.effective_hours, 0) AS effective_hours,
               coalesce(h.overtime_hours, 0) AS overtime_hours,
               coalesce(h.leave_hours, 0) AS leave_hours,
               coalesce(h.late_days, 0) AS late_days,
               coalesce(h.absent_days, 0) AS absent_days,
               coalesce(h.missing_punch_days, 0) AS missing_punch_days,
               coalesce(p.pending_days, 0) AS pending_days,
               false AS locked, 'regular' AS kind, NULL::DATE AS original_date,
               ?::TIMESTAMPTZ AS computed_at
        FROM hours h FULL OUTER JOIN pending p ON h.userid = p.userid
        ORDER BY userid
        """,
        params=[month, month, month, now],
    ).to_arrow_table()
    sources = sorted(m for m in locked if m < month and first_open_after(m, locked) == month)
    tables = [regular]
    if sources:
        tables.append(_adjustments(con, month, sources, now))
    return pa.concat_tables([t.select(PAYROLL_MONTHLY.names).cast(PAYROLL_MONTHLY) for t in tables])


def _adjustments(
    con: duckdb.DuckDBPyConnection, month: str, sources: list[str], now: datetime
) -> pa.Table:
    """Differences between today's hours and what locked months paid (incl. earlier adjustments)."""
    marks = ", ".join("?" for _ in sources)
    result: pa.Table = con.sql(
        f"""
        WITH paid AS (
            SELECT userid, work_date, effective_hours, overtime_hours, leave_hours
            FROM payroll_locked_days WHERE month IN ({marks})
            UNION ALL
            SELECT userid, original_date, effective_hours, overtime_hours, leave_hours
            FROM payroll_monthly
            WHERE kind = 'adjustment' AND locked AND strftime(original_date, '%Y-%m') IN ({marks})
        ),
        paid_by_day AS (
            SELECT userid, work_date, sum(effective_hours) AS eh, sum(overtime_hours) AS oh,
                   sum(leave_hours) AS lh
            FROM paid GROUP BY ALL
        ),
        now_by_day AS (
            SELECT userid, work_date, name, dept_id, status, effective_hours AS eh,
                   overtime_hours AS oh, leave_hours AS lh
            FROM effective_hours WHERE strftime(work_date, '%Y-%m') IN ({marks})
        )
        SELECT ? AS month, coalesce(n.userid, p.userid) AS userid, n.name, n.dept_id,
               0 AS workdays,
               round(coalesce(n.eh, 0) - coalesce(p.eh, 0), 2) AS effective_hours,
               round(coalesce(n.oh, 0) - coalesce(p.oh, 0), 2) AS overtime_hours,
               round(coalesce(n.lh, 0) - coalesce(p.lh, 0), 2) AS leave_hours,
               0 AS late_days, 0 AS absent_days, 0 AS missing_punch_days, 0 AS pending_days,
               false AS locked, 'adjustment' AS kind,
               coalesce(n.work_date, p.work_date) AS original_date,
               ?::TIMESTAMPTZ AS computed_at
        FROM now_by_day n FULL OUTER JOIN paid_by_day p
          ON n.userid = p.userid AND n.work_date = p.work_date
        WHERE abs(coalesce(n.eh, 0) - coalesce(p.eh, 0)) > 0.001
           OR abs(coalesce(n.oh, 0) - coalesce(p.oh, 0)) > 0.001
           OR abs(coalesce(n.lh, 0) - coalesce(p.lh, 0)) > 0.001
        ORDER BY original_date, userid
        """,
        params=[*sources, *sources, *sources, month, now],
    ).to_arrow_table()
    return result


def write_month(con: duckdb.DuckDBPyConnection, month: str, rows: pa.Table) -> int:
    """Replace an open month's rows in one transaction; returns the rows written (0 when the
    month already holds exactly these rows: a re-run leaves the table as it was, `computed_at`
    included)."""
    if month in locked_months(con):
        raise PayrollError(f"payroll month {month} is locked; its rows do not change")
    if _same_rows(con, month, rows):
        return 0
    return replace_rows(con, "payroll_monthly", PAYROLL_MONTHLY, rows, "month = ?", [month])


def _same_rows(con: duckdb.DuckDBPyConnection, month: str, rows: pa.Table) -> bool:
    columns = [n for n in PAYROLL_MONTHLY.names if n != "computed_at"]
    quoted = ", ".join(f'"{c}"' for c in columns)
    con.register("_candidate", rows)
    try:
        differing = scalar(
            con,
            f"""
            SELECT count(*) FROM (
                (SELECT {quoted} FROM payroll_monthly WHERE month = ?
                 EXCEPT ALL SELECT {quoted} FROM _candidate)
                UNION ALL
                (SELECT {quoted} FROM _candidate
                 EXCEPT ALL SELECT {quoted} FROM payroll_monthly WHERE month = ?))
            """,
            [month, month],
        )
    finally:
        con.unregister("_candidate")
    return differing == 0 and rows.num_rows > 0


def lock_month(con: duckdb.DuckDBPyConnection, month: str, by: str) -> int:
    """Freeze a month: its rows are marked locked and its days snapshotted. Returns rows locked."""
    ensure_tables(con)
    if month in locked_months(con):
        raise PayrollError(f"payroll month {month} is already locked")
    count = int(scalar(con, "SELECT count(*) FROM payroll_monthly WHERE month = ?", [month]))
    if count == 0:
        raise PayrollError(
            f"payroll month {month} has no rows yet: sync its days first, then lock it"
        )
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("UPDATE payroll_monthly SET locked = true WHERE month = ?", [month])
        con.execute(
            """
            INSERT INTO payroll_locked_days BY NAME
            SELECT ? AS month, userid, work_date, effective_hours, overtime_hours, leave_hours,
                   status
            FROM effective_hours WHERE strftime(work_date, '%Y-%m') = ?
            """,
            [month, month],
        )
        con.execute("INSERT INTO payroll_locks VALUES (?, ?, ?)", [month, now_in_china(), by])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return count


def read_month(con: duckdb.DuckDBPyConnection, month: str) -> pa.Table:
    """A month's rows for display: regular rows by name, then adjustments by date."""
    if not table_exists(con, "payroll_monthly"):
        return PAYROLL_MONTHLY.empty_table()
    result: pa.Table = con.sql(
        """
        SELECT month, userid, name, dept_id, workdays, effective_hours, overtime_hours,
               leave_hours, late_days, absent_days, missing_punch_days, pending_days, locked,
               kind, original_date
        FROM payroll_monthly WHERE month = ?
        ORDER BY kind DESC, original_date NULLS FIRST, dept_id, name, userid
        """,
        params=[month],
    ).to_arrow_table()
    return result

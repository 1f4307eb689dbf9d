"""Payroll months in DuckDB: sums of effective hours, period locks and adjustment rows.

Plain SQL over the warehouse (no Dagster). A month is `open` until locked. Locking a month
freezes its `payroll_monthly` rows and snapshots its days (`payroll_locked_days`); from then on a
correction to one of those days (a 补卡 arriving late, an override) appears as an `adjustment`
row, with the original date, in the first open month after it, so finance can always explain a
difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import pyarrow as pa

from attendance_pipeline.china_time import now_in_china
from attendance_pipeline.holdback import HELD_BACK
from attendance_pipeline.hours.rules import Rules
from attendance_pipeline.schemas import EFFECTIVE_HOURS, TS
from attendance_pipeline.vocabulary import LATE_STATUSES, Blocks
from attendance_pipeline.warehouse import ensure_table, replace_many, scalar, table_exists

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
        # Overtime by class (劳动法 art. 44) and what became of it (docs/payroll.md).
        ("overtime_workday_hours", pa.float64()),
        ("overtime_restday_hours", pa.float64()),
        ("overtime_holiday_hours", pa.float64()),
        ("overtime_paid_hours", pa.float64()),  # paid as overtime pay (not converted to 调休)
        ("overtime_pay_hours", pa.float64()),  # paid hours x the class's rate
        ("lieu_credited_hours", pa.float64()),  # converted to 调休 this month
        ("lieu_taken_hours", pa.float64()),  # 调休 leave taken this month
        ("lieu_balance_hours", pa.float64()),  # 调休 balance at the end of the month
        ("paid_leave_hours", pa.float64()),  # leave hours x each type's paid share
        ("unpaid_leave_hours", pa.float64()),
        # DingTalk's monthly summary counts (迟到次数/时长, 早退次数/时长, 缺卡次数, 旷工天数).
        ("late_count", pa.int64()),
        ("late_minutes", pa.int64()),
        ("early_leave_count", pa.int64()),
        ("early_leave_minutes", pa.int64()),
        ("missing_punch_count", pa.int64()),
        ("absenteeism_days", pa.float64()),
    ]
)

# One row per person, month and leave type (the long table: leave types are per company).
PAYROLL_LEAVE = pa.schema(
    [
        ("month", pa.string()),
        ("userid", pa.string()),
        ("name", pa.string()),
        ("leave_type", pa.string()),
        ("hours", pa.float64()),
        ("days", pa.float64()),
        ("paid_share", pa.float64()),
        ("paid_hours", pa.float64()),
        ("locked", pa.bool_()),
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
    ensure_table(con, "payroll_leave", PAYROLL_LEAVE)
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


@dataclass(frozen=True)
class LeavePolicy:
    """The payroll side of `rules.yaml`: each leave type's paid share and the 调休 types."""

    paid: Mapping[str, float] = field(default_factory=dict)
    unlisted_paid: float = 0.0
    lieu_types: frozenset[str] = frozenset({"调休"})

    @classmethod
    def from_rules(cls, rules: Rules) -> LeavePolicy:
        return cls(
            paid={name: rules.leave_paid_share(name) for name in rules.leave_types},
            unlisted_paid=rules.unlisted_leave_paid,
            lieu_types=frozenset(rules.lieu_leave_types()),
        )

    def share(self, leave_type: str) -> float:
        return float(self.paid.get(leave_type, self.unlisted_paid))


def _register_leave_shares(con: duckdb.DuckDBPyConnection, policy: LeavePolicy, until: str) -> None:
    """`_leave_shares(leave_type, paid_share, lieu)` for every leave type published up to the
    end of month `until` (types DingTalk sends that rules.yaml does not list get
    `unlisted_leave_paid`)."""
    types = [
        row[0]
        for row in con.execute(
            """
            SELECT DISTINCT l.leave_type FROM (
                SELECT unnest(leave_by_type) AS l FROM effective_hours
                WHERE strftime(work_date, '%Y-%m') <= ?)
            """,
            [until],
        ).fetchall()
    ]
    shares = pa.table(
        {
            "leave_type": pa.array(types, pa.string()),
            "paid_share": pa.array([policy.share(t) for t in types], pa.float64()),
            "lieu": pa.array([t in policy.lieu_types for t in types], pa.bool_()),
        }
    )
    con.register("_leave_shares", shares)


def compute_month(
    con: duckdb.DuckDBPyConnection, month: str, policy: LeavePolicy | None = None
) -> pa.Table:
    """Regular rows of an open month from `effective_hours`, plus its adjustment rows."""
    return compute_payroll(con, month, policy)[0]


def compute_payroll(
    con: duckdb.DuckDBPyConnection, month: str, policy: LeavePolicy | None = None
) -> tuple[pa.Table, pa.Table]:
    """An open month's `payroll_monthly` rows (regular, then adjustments) and its
    `payroll_leave` rows (one per person and leave type)."""
    ensure_tables(con)
    locked = locked_months(con)
    if month in locked:
        raise PayrollError(f"payroll month {month} is locked; its rows do not change")
    policy = policy or LeavePolicy.from_rules(Rules())
    now = now_in_china()
    _register_leave_shares(con, policy, month)
    try:
        regular = _regular(con, month, now)
        leave = _leave_rows(con, month, now)
    finally:
        con.unregister("_leave_shares")
    sources = sorted(m for m in locked if m < month and first_open_after(m, locked) == month)
    tables = [regular]
    if sources:
        tables.append(_adjustments(con, month, sources, now))
    monthly = pa.concat_tables(
        [_conform(t, PAYROLL_MONTHLY) for t in tables], promote_options="default"
    )
    return monthly, _conform(leave, PAYROLL_LEAVE)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The table with exactly `schema`'s columns (a column it lacks is all null)."""
    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(table[f.name])
        elif pa.types.is_floating(f.type) or (pa.types.is_integer(f.type) and f.name != "dept_id"):
            columns.append(pa.array([0] * table.num_rows, f.type))  # e.g. on adjustment rows
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.table(columns, names=schema.names).cast(schema)


def _regular(con: duckdb.DuckDBPyConnection, month: str, now: datetime) -> pa.Table:
    # Everyone with published days, plus everyone whose days of the month are all held back, so
    # finance sees who is still pending.
    sums = {
        "effective_hours": "effective_hours",
        "overtime_hours": "overtime_hours",
        "leave_hours": "leave_hours",
        "overtime_workday_hours": "overtime_workday_hours",
        "overtime_restday_hours": "overtime_restday_hours",
        "overtime_holiday_hours": "overtime_holiday_hours",
        "overtime_paid_hours": "overtime_hours - overtime_lieu_hours",
        "overtime_pay_hours": "overtime_pay_hours",
        "lieu_credited_hours": "overtime_lieu_hours",
        "absenteeism_days": "absenteeism_days",
    }
    counts = (
        "late_count", "late_minutes", "early_leave_count", "early_leave_minutes",
        "missing_punch_count",
    )  # fmt: skip
    hour_sums = ",\n".join(f"round(sum({expr}), 2) AS {name}" for name, expr in sums.items())
    count_sums = ",\n".join(f"sum({name})::BIGINT AS {name}" for name in counts)
    zero = ",\n".join(f"coalesce(h.{name}, 0) AS {name}" for name in [*sums, *counts])
    result: pa.Table = con.sql(
        f"""
        WITH days AS (
            SELECT * FROM effective_hours WHERE strftime(work_date, '%Y-%m') = ?
        ),
        hours AS (
            SELECT userid,
                   arg_max(name, work_date) AS name, arg_max(dept_id, work_date) AS dept_id,
                   count(*) FILTER (
                       WHERE status <> 'rest' AND NOT (status = 'exempt' AND day_type <> 'workday')
                   ) AS workdays,
                   {hour_sums},
                   {count_sums},
                   count(*) FILTER (WHERE status IN {LATE}) AS late_days,
                   count(*) FILTER (WHERE status = 'absent') AS absent_days,
                   count(*) FILTER (WHERE status = 'missing_punch') AS missing_punch_days
            FROM days GROUP BY userid
        ),
        leave AS (
            SELECT userid, l.leave_type, l.hours FROM (
                SELECT userid, work_date, unnest(leave_by_type) AS l FROM effective_hours
                WHERE strftime(work_date, '%Y-%m') <= ?)
        ),
        leave_month AS (
            SELECT v.userid, round(sum(v.hours * s.paid_share), 2) AS paid_leave_hours,
                   round(sum(v.hours) FILTER (WHERE s.lieu), 2) AS lieu_taken_hours
            FROM (SELECT d.userid, l.leave_type, l.hours FROM (
                      SELECT userid, unnest(leave_by_type) AS l FROM days) d) v
            JOIN _leave_shares s USING (leave_type)
            GROUP BY v.userid
        ),
        lieu_balance AS (
            SELECT userid, round(sum(credit) - sum(taken), 2) AS lieu_balance_hours FROM (
                SELECT userid, overtime_lieu_hours AS credit, 0 AS taken FROM effective_hours
                WHERE strftime(work_date, '%Y-%m') <= ?
                UNION ALL
                SELECT userid, 0, hours FROM leave JOIN _leave_shares s USING (leave_type)
                WHERE s.lieu)
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
               {zero},
               coalesce(h.late_days, 0) AS late_days,
               coalesce(h.absent_days, 0) AS absent_days,
               coalesce(h.missing_punch_days, 0) AS missing_punch_days,
               coalesce(p.pending_days, 0) AS pending_days,
               coalesce(lm.lieu_taken_hours, 0) AS lieu_taken_hours,
               coalesce(lb.lieu_balance_hours, 0) AS lieu_balance_hours,
               coalesce(lm.paid_leave_hours, 0) AS paid_leave_hours,
               round(coalesce(h.leave_hours, 0) - coalesce(lm.paid_leave_hours, 0), 2)
                   AS unpaid_leave_hours,
               false AS locked, 'regular' AS kind, NULL::DATE AS original_date,
               ?::TIMESTAMPTZ AS computed_at
        FROM hours h FULL OUTER JOIN pending p ON h.userid = p.userid
        LEFT JOIN leave_month lm ON lm.userid = coalesce(h.userid, p.userid)
        LEFT JOIN lieu_balance lb ON lb.userid = coalesce(h.userid, p.userid)
        ORDER BY userid
        """,
        params=[month, month, month, month, month, now],
    ).to_arrow_table()
    return result


def _leave_rows(con: duckdb.DuckDBPyConnection, month: str, now: datetime) -> pa.Table:
    result: pa.Table = con.sql(
        """
        SELECT ? AS month, v.userid, arg_max(v.name, v.work_date) AS name, v.leave_type,
               round(sum(v.hours), 2) AS hours, round(sum(v.days), 2) AS days,
               any_value(s.paid_share) AS paid_share,
               round(sum(v.hours) * any_value(s.paid_share), 2) AS paid_hours,
               false AS locked, ?::TIMESTAMPTZ AS computed_at
        FROM (
            SELECT userid, name, work_date, l.leave_type, l.hours, l.days FROM (
                SELECT userid, name, work_date, unnest(leave_by_type) AS l FROM effective_hours
                WHERE strftime(work_date, '%Y-%m') = ?)
        ) v JOIN _leave_shares s USING (leave_type)
        GROUP BY v.userid, v.leave_type
        ORDER BY v.userid, v.leave_type
        """,
        params=[month, now, month],
    ).to_arrow_table()
    return result


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


def write_month(
    con: duckdb.DuckDBPyConnection, month: str, rows: pa.Table, leave: pa.Table | None = None
) -> int:
    """Replace an open month's rows (and its `payroll_leave` rows) in one transaction; returns
    the rows written (0 when the month already holds exactly these rows: a re-run leaves the
    tables as they were, `computed_at` included)."""
    if month in locked_months(con):
        raise PayrollError(f"payroll month {month} is locked; its rows do not change")
    ensure_tables(con)
    leave = leave if leave is not None else PAYROLL_LEAVE.empty_table()
    if _same_rows(con, "payroll_monthly", PAYROLL_MONTHLY, month, rows) and _same_rows(
        con, "payroll_leave", PAYROLL_LEAVE, month, leave, allow_empty=True
    ):
        return 0
    replace_many(
        con,
        [
            ("payroll_monthly", PAYROLL_MONTHLY, rows, "month = ?", [month]),
            ("payroll_leave", PAYROLL_LEAVE, leave, "month = ?", [month]),
        ],
    )
    return rows.num_rows


def _same_rows(
    con: duckdb.DuckDBPyConnection,
    name: str,
    schema: pa.Schema,
    month: str,
    rows: pa.Table,
    *,
    allow_empty: bool = False,
) -> bool:
    columns = [n for n in schema.names if n != "computed_at"]
    quoted = ", ".join(f'"{c}"' for c in columns)
    con.register("_candidate", rows)
    try:
        differing = scalar(
            con,
            f"""
            SELECT count(*) FROM (
                (SELECT {quoted} FROM {name} WHERE month = ?
                 EXCEPT ALL SELECT {quoted} FROM _candidate)
                UNION ALL
                (SELECT {quoted} FROM _candidate
                 EXCEPT ALL SELECT {quoted} FROM {name} WHERE month = ?))
            """,
            [month, month],
        )
    finally:
        con.unregister("_candidate")
    return differing == 0 and (allow_empty or rows.num_rows > 0)


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
        con.execute("UPDATE payroll_leave SET locked = true WHERE month = ?", [month])
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


# The order finance reads a month in (`read_month`, the CLI and the workbook).
DISPLAY_COLUMNS = (
    "month", "userid", "name", "dept_id", "workdays", "effective_hours",
    "overtime_hours", "overtime_workday_hours", "overtime_restday_hours",
    "overtime_holiday_hours", "overtime_paid_hours", "overtime_pay_hours",
    "lieu_credited_hours", "lieu_taken_hours", "lieu_balance_hours",
    "leave_hours", "paid_leave_hours", "unpaid_leave_hours",
    "late_days", "late_count", "late_minutes", "early_leave_count", "early_leave_minutes",
    "missing_punch_days", "missing_punch_count", "absent_days", "absenteeism_days",
    "pending_days", "locked", "kind", "original_date",
)  # fmt: skip


def read_month(con: duckdb.DuckDBPyConnection, month: str) -> pa.Table:
    """A month's rows for display: regular rows by name, then adjustments by date."""
    if not table_exists(con, "payroll_monthly"):
        return PAYROLL_MONTHLY.empty_table().select(list(DISPLAY_COLUMNS))
    existing = {row[0] for row in con.execute("DESCRIBE payroll_monthly").fetchall()}
    # A warehouse written before a column existed shows the columns it has.
    columns = ", ".join(c for c in DISPLAY_COLUMNS if c in existing)
    result: pa.Table = con.sql(
        f"""
        SELECT {columns}
        FROM payroll_monthly WHERE month = ?
        ORDER BY kind DESC, original_date NULLS FIRST, dept_id, name, userid
        """,
        params=[month],
    ).to_arrow_table()
    return result


def read_leave(con: duckdb.DuckDBPyConnection, month: str) -> pa.Table:
    """A month's `payroll_leave` rows (empty before the table exists)."""
    if not table_exists(con, "payroll_leave"):
        return PAYROLL_LEAVE.empty_table()
    result: pa.Table = con.sql(
        "SELECT * FROM payroll_leave WHERE month = ? ORDER BY userid, leave_type", params=[month]
    ).to_arrow_table()
    return result

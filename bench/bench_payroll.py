"""Benchmark: a payroll month for 10,000 employees (issue 12): `compute_payroll` + `write_month`
(overtime classes, 调休 balance, leave by type, DingTalk's counts) and the reconciliation with
DingTalk's own report, against the sketch payroll of before (the 12 columns of issue 6, the same
rows) measured in the same run.

    python bench/bench_payroll.py [--employees 10000] [--model-employees 1000]

Days are derived by the engine from the DingTalk simulator's company model (October 2026: the
National Day week with its 调休 Saturday, then three normal weeks) for `--model-employees`
people and repeated under new userids up to `--employees`. DingTalk's report is the pipeline's
own per-day values (an agreeing DingTalk) with `--drift` person-day values changed; the
reconciliation must find exactly those. Results go to stdout and bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from bench_effective_hours import generate_lake, read_lake
from harness import machine, write_section

from attendance_pipeline import finance, report_diff
from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.engine import derive_effective_hours
from attendance_pipeline.hours.rules import load_overrides, load_rules
from attendance_pipeline.schemas import EFFECTIVE_HOURS
from attendance_pipeline.warehouse import ensure_table

CONFIG = Path(__file__).resolve().parent.parent / "config"
MONTH = "2026-10"
TOLERANCE = {"days": 0, "count": 0, "minutes": 5, "hours": 0.5}

# The payroll of before (issue 6): the sums and counts the sketch table had, same inputs.
SKETCH = """
    SELECT ? AS month, userid, arg_max(name, work_date) AS name,
           arg_max(dept_id, work_date) AS dept_id,
           count(*) FILTER (WHERE status <> 'rest') AS workdays,
           round(sum(effective_hours), 2) AS effective_hours,
           round(sum(overtime_hours), 2) AS overtime_hours,
           round(sum(leave_hours), 2) AS leave_hours,
           count(*) FILTER (WHERE status IN ('late', 'serious_late', 'late_and_early'))
               AS late_days,
           count(*) FILTER (WHERE status = 'absent') AS absent_days,
           count(*) FILTER (WHERE status = 'missing_punch') AS missing_punch_days
    FROM effective_hours WHERE strftime(work_date, '%Y-%m') = ? GROUP BY userid ORDER BY userid
"""


def month_days(folder: Path, model_employees: int, employees: int) -> pa.Table:
    """October's effective hours for `employees` people (the model's, repeated)."""
    start, end = date(2026, 10, 1), date(2026, 10, 31)
    generate_lake(folder, model_employees, start, end)
    raw = read_lake(folder)
    rules = load_rules(CONFIG / "rules.yaml")
    frame = derive_effective_hours(
        raw["dingtalk_roster"], raw["raw_attendance"], raw["raw_approvals"],
        load_overrides(CONFIG / "overrides.csv"), rules, WorkCalendar.load(CONFIG / "calendar.csv"),
    )  # fmt: skip
    copies = -(-employees // model_employees)
    parts = []
    for k in range(copies):
        part = frame.copy()
        part["userid"] = part["userid"] + (f"-{k}" if k else "")
        parts.append(part)
    people = sorted(pd.concat(parts)["userid"].unique())[:employees]
    whole = pd.concat(parts, ignore_index=True)
    whole = whole[whole["userid"].isin(set(people))]
    return pa.Table.from_pandas(whole, schema=EFFECTIVE_HOURS, preserve_index=False)


def agreeing_report(con: duckdb.DuckDBPyConnection) -> None:
    """`dingtalk_report` as an agreeing DingTalk would fill it, built in SQL (one row per
    person, day and column)."""
    measures = [(m.key, m.columns[0][0], m.pipeline) for m in report_diff.MEASURES]
    selects = " UNION ALL ".join(
        f"SELECT userid, work_date, '{key}' AS measure, '{name}' AS column_name, "
        f"({expr})::DOUBLE AS value FROM effective_hours"
        for key, name, expr in measures
    )
    ensure_table(con, "dingtalk_report", report_diff.DINGTALK_REPORT)
    con.execute(
        f"""
        INSERT INTO dingtalk_report BY NAME
        SELECT '{MONTH}' AS month, userid, work_date, measure, column_name, NULL AS column_id,
               value, ?::TIMESTAMPTZ AS pulled_at
        FROM ({selects}
              UNION ALL
              SELECT userid, work_date, 'leave:' || l.leave_type, l.leave_type, l.hours FROM (
                  SELECT userid, work_date, unnest(leave_by_type) AS l FROM effective_hours))
        """,
        [datetime(2026, 11, 2, 4, 0, tzinfo=SHANGHAI)],
    )


def drift(con: duckdb.DuckDBPyConnection, n: int) -> int:
    """Add 1 to the 迟到次数 of `n` random person-days; returns the person-months touched."""
    rows = con.execute(
        "SELECT userid, work_date FROM dingtalk_report WHERE measure = 'late_count' "
        "ORDER BY hash(userid || work_date::VARCHAR) LIMIT ?",
        [n],
    ).fetchall()
    for userid, day in rows:
        con.execute(
            "UPDATE dingtalk_report SET value = value + 1 "
            "WHERE userid = ? AND work_date = ? AND measure = 'late_count'",
            [userid, day],
        )
    return len({userid for userid, _ in rows})


def timed(fn, repeat: int = 3):  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return result, best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--model-employees", type=int, default=1_000)
    parser.add_argument("--drift", type=int, default=50)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args(argv)
    rules = load_rules(CONFIG / "rules.yaml")
    policy = finance.LeavePolicy.from_rules(rules)
    with tempfile.TemporaryDirectory(prefix="bench-payroll-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        days = month_days(folder / "lake", args.model_employees, args.employees)
        generate_s = time.perf_counter() - started
        con = duckdb.connect(str(folder / "warehouse.duckdb"))
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        ensure_table(con, "effective_hours", EFFECTIVE_HOURS)
        con.register("_days", days)
        con.execute("INSERT INTO effective_hours BY NAME SELECT * FROM _days")
        con.unregister("_days")

        sketch, sketch_s = timed(lambda: con.sql(SKETCH, params=[MONTH, MONTH]).to_arrow_table())

        def build() -> tuple[pa.Table, pa.Table]:
            monthly, leave = finance.compute_payroll(con, MONTH, policy)
            con.execute("DELETE FROM payroll_monthly")  # measure a first write every time
            finance.write_month(con, MONTH, monthly, leave)
            return monthly, leave

        (monthly, leave), build_s = timed(build)
        assert monthly.num_rows == sketch.num_rows, (monthly.num_rows, sketch.num_rows)
        same = np.allclose(
            monthly.column("effective_hours").to_numpy(), sketch.column("effective_hours")
        )
        _, rerun_s = timed(
            lambda: finance.write_month(con, MONTH, *finance.compute_payroll(con, MONTH, policy))
        )
        agreeing_report(con)
        report_rows = int(con.execute("SELECT count(*) FROM dingtalk_report").fetchone()[0])
        clean, _ = timed(lambda: report_diff.reconcile(con, MONTH, TOLERANCE), repeat=1)
        touched = drift(con, args.drift)

        def reconcile() -> pa.Table:
            diff = report_diff.reconcile(con, MONTH, TOLERANCE, pulled_on=date(2026, 11, 2))
            report_diff.store_diff(con, MONTH, diff)
            return diff

        diff, reconcile_s = timed(reconcile)
        con.close()

    found = diff.num_rows
    lines = [
        f"Machine: {machine()}",
        f"Month {MONTH}, {args.employees:,} employees ({days.num_rows:,} employee-days; "
        f"the engine on {args.model_employees:,} simulated people, repeated); generated in "
        f"{generate_s:.1f} s.",
        "",
        "| step | seconds | note |",
        "|---|---:|---|",
        f"| sketch payroll (issue 6: 12 columns), baseline | {sketch_s:.3f} | "
        f"{sketch.num_rows:,} rows |",
        f"| payroll month: compute_payroll + write_month | {build_s:.3f} | "
        f"{monthly.num_rows:,} rows, {leave.num_rows:,} leave rows; "
        f"{build_s / sketch_s:.1f}x the sketch |",
        f"| re-run of an unchanged month (no write) | {rerun_s:.3f} | |",
        f"| reconciliation with DingTalk's report (+ store) | {reconcile_s:.3f} | "
        f"{report_rows:,} report rows |",
        f"| build + reconciliation | {build_s + reconcile_s:.3f} | |",
        "",
        f"Effective hours equal the sketch's per person: {same}. Reconciliation against an "
        f"agreeing report: {clean.num_rows} differences; after {args.drift} person-days drifted "
        f"(迟到次数 +1, {touched} person-months): {found} person-month rows found.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(
            f"bench_payroll {args.employees}", "Payroll month and DingTalk reconciliation "
            "(bench_payroll.py)", text,
        )  # fmt: skip
    assert clean.num_rows == 0, "an agreeing report must give no differences"
    assert found == touched, (found, touched)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

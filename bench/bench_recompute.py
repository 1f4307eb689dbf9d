"""Benchmark: a one-year recompute of the derived layers from stored raw partitions after a rule
change, as one Dagster run, against smaller runs; wall time and peak memory.

    python bench/bench_recompute.py [--employees 1000 --end 2026-10-31 --days 365]
    python bench/bench_recompute.py --quick     # 20 employees, 45 days, 1 per-day run

1. Raw partitions for the year (`dingtalk_roster`, `raw_attendance`, `raw_approvals`, one Parquet
   file per day) are written from the DingTalk simulator's company model, as
   bench_effective_hours.py does (365 days is past DingTalk's 180-day horizon, so they cannot be
   pulled). Then the derived layers are computed once with the shipped rules (a fresh child
   process, measured too: "initial derive").
2. The rule change: a copy of config/ with `status_hours.late: 6` (was 7).
3. The recompute, each approach on its own copy of that state, fresh DAGSTER_HOME, fresh child
   process (wall time, peak RSS via `os.wait4`, CPU time):
   - one run: the `sync` job restricted to the derived daily assets (`effective_hours` with its
     checks, `lake_views`) over the whole year as ONE run (BackfillPolicy.single_run), then the
     12 `payroll` month runs, as `attendance-pipeline sync` does after its daily run;
   - one run per month: the same selection, 12 runs of a calendar month each, then payroll;
   - one run per partition: one run per day for the last --baseline-days days, then payroll for
     the months touched; its daily runs are extrapolated to the year.
   The DingTalk assets are not selected: nothing is pulled, the raw partitions are only read.
4. Checks: the raw partitions are untouched (size and mtime); every late row judged by the base
   rule on a full 8 h day went from 7 h to 6 h, every changed row lost at most 1 h and had a late
   check point, every other column of every row is unchanged (but `rules_version` and the
   explanation's hours); payroll months dropped by exactly the rows' difference; the three
   approaches give identical effective_hours (and payroll) where they overlap.

PM_SYSTEM=none: with a PM system the worklog plan and the push would follow (bench_push.py).
Results go to stdout and to a marked section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (
    ROOT,
    ChildResult,
    child_env,
    machine,
    mib,
    run_child,
    step_table,
    top_segments,
    write_section,
)

MARK = "bench_recompute"
RAW = ("dingtalk_roster", "raw_attendance", "raw_approvals")
DERIVED = ("effective_hours", "lake_views")
OLD_LATE, NEW_LATE = 7, 6
EXCEPTION = "field_sales_no_late_penalty"  # config/rules.yaml: 销售代表 keep 8 h when late


def month_windows(start: date, end: date) -> list[tuple[date, date]]:
    out, cursor = [], start
    while cursor <= end:
        following = (cursor.replace(day=1) + timedelta(days=32)).replace(day=1)
        out.append((cursor, min(end, following - timedelta(days=1))))
        cursor = following
    return out


# ---------------------------------------------------------------------------------- child


def phase_run(args: argparse.Namespace) -> int:
    """Derive in this (fresh) process; prints one JSON line."""
    started = time.perf_counter()
    import dagster as dg
    from harness import run_timings

    from attendance_pipeline.china_time import days
    from attendance_pipeline.dagster_api import partition_range_tags
    from attendance_pipeline.definitions import build_definitions
    from attendance_pipeline.settings import load_settings
    from attendance_pipeline.sync import (
        dagster_instance,
        payroll_months,
        run_job,
    )

    defs = build_definitions(load_settings(env_file=None))  # DingTalk is never called
    instance = dagster_instance()
    job, payroll = defs.resolve_job_def("sync"), defs.resolve_job_def("payroll")
    selection = [dg.AssetKey(name) for name in DERIVED]
    ready = time.perf_counter()
    if args.mode == "single":
        chunks = [(args.start, args.end)]
    elif args.mode == "monthly":
        chunks = month_windows(args.start, args.end)
    else:
        chunks = [(day, day) for day in days(args.start, args.end)]
    summaries = []
    for first, last in chunks:
        window: dict[str, Any] = (
            {"partition_key": first.isoformat()}
            if first == last
            else {"tags": partition_range_tags(first.isoformat(), last.isoformat())}
        )
        summaries.append(run_job(job, instance, asset_selection=selection, **window))
    summaries += [
        # payroll_monthly only: the job's DingTalk report reconciliation would call DingTalk.
        run_job(
            payroll,
            instance,
            partition_key=f"{month}-01",
            asset_selection=[dg.AssetKey("payroll_monthly")],
        )
        for month in payroll_months(defs, args.start, args.end)
    ]
    finished = time.perf_counter()
    print(
        json.dumps(
            {
                "setup_s": ready - started,
                "runs_s": finished - ready,
                "success": all(s.success for s in summaries),
                "failures": [f for s in summaries for f in s.failures][:5],
                "failed_checks": sorted({c for s in summaries for c in s.failed_checks}),
                "rows": sum(
                    s.assets["effective_hours"].rows
                    for s in summaries
                    if "effective_hours" in s.assets
                ),
                **run_timings(instance),
            }
        )
    )
    return 0


# ---------------------------------------------------------------------------------- parent


def raw_files(lake: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(lake)): (p.stat().st_size, p.stat().st_mtime_ns)
        for name in RAW
        for p in sorted((lake / name).glob("*.parquet"))
    }


def changed_config(folder: Path) -> Path:
    """A copy of config/ with `status_hours.late` lowered from 7 to 6."""
    shutil.copytree(ROOT / "config", folder)
    rules = folder / "rules.yaml"
    text = rules.read_text(encoding="utf-8")
    old = f"\n  late: {OLD_LATE}\n"
    if text.count(old) != 1:
        raise SystemExit(f"config/rules.yaml has no single `  late: {OLD_LATE}` line to change")
    rules.write_text(text.replace(old, f"\n  late: {NEW_LATE}\n"), encoding="utf-8")
    return folder


def derive(
    args: argparse.Namespace, mode: str, data: Path, config: Path, start: date, end: date
) -> ChildResult:
    folder = data.parent
    env = child_env(
        ATTENDANCE_DATA_DIR=str(data),
        ATTENDANCE_CONFIG_DIR=str(config),
        ATTENDANCE_START_DATE=args.start.replace(day=1).isoformat(),
        DAGSTER_HOME=str(folder / "dagster_home"),
        PM_SYSTEM="none",
    )
    command = [__file__, "--phase", "run", "--mode", mode,
               "--start", start.isoformat(), "--end", end.isoformat()]  # fmt: skip
    print(f"{folder.name}: {mode} runs over {start}..{end} ...", flush=True)
    measured = run_child(command, env, folder / "run.log", cwd=folder)
    r = measured.result
    print(
        f"{folder.name}: {measured.wall_s:.1f} s wall, peak RSS {mib(measured.peak_rss_mib)}, "
        f"{r['rows']:,} rows, success={r['success']} {r['failed_checks'] or ''}",
        flush=True,
    )
    if not r["success"]:
        raise SystemExit(
            f"{folder.name}: the pipeline failed: {r['failures']} {r['failed_checks']}"
        )
    return measured


def read(data: Path, sql: str, params: list[Any] | None = None) -> Any:
    import duckdb

    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).df()


def verify(before: Path, after: Path) -> dict[str, Any]:
    """What the rule change did, row by row; raises if anything else changed."""
    import numpy as np
    import pandas as pd

    order = " ORDER BY work_date, userid"
    old = read(before, "SELECT * FROM effective_hours" + order)
    new = read(after, "SELECT * FROM effective_hours" + order)
    if len(old) != len(new) or not (
        old[["userid", "work_date"]] == new[["userid", "work_date"]]
    ).all(axis=None):
        raise AssertionError("the recompute changed the set of employee-days")
    same = [c for c in old.columns if c not in ("effective_hours", "countable", "rules_version",
                                                "explanation")]  # fmt: skip
    pd.testing.assert_frame_equal(old[same], new[same])
    if (old["rules_version"] == new["rules_version"]).any():
        raise AssertionError("some rows kept the old rules_version")
    diff = old["effective_hours"] - new["effective_hours"]
    changed = diff.abs() > 1e-9
    full_late = (new["status"] == "late") & (new["rule_id"] == "late")
    full_late &= (new["scheduled_hours"] == 8) & (new["leave_hours"] == 0)
    if not (old.loc[full_late, "effective_hours"] == OLD_LATE).all():
        raise AssertionError(f"a full-day late row did not have {OLD_LATE} h before")
    if not (new.loc[full_late, "effective_hours"] == NEW_LATE).all():
        bad = new.loc[full_late & (new["effective_hours"] != NEW_LATE)].head(3)
        raise AssertionError(f"full-day late rows without {NEW_LATE} h:\n{bad}")
    if not ((diff[changed] > 0) & (diff[changed] <= OLD_LATE - NEW_LATE + 1e-9)).all():
        raise AssertionError("a changed row did not lose between 0 and 1 h")
    late_point = old["explanation"].str.contains(r"OnDuty (?:Late|SeriousLate) \d", regex=True)
    if not late_point[changed].all():
        raise AssertionError("a row without a late check point changed")
    if (new.loc[changed, "rule_id"] == EXCEPTION).any():
        raise AssertionError(f"a row under the {EXCEPTION} exception changed")
    exception_late = (new["status"] == "late") & (new["rule_id"] == EXCEPTION)
    kept = new.loc[exception_late, "effective_hours"] == old.loc[exception_late, "effective_hours"]
    if not kept.all():
        raise AssertionError("an exception row changed")
    if not (old.loc[~changed, "explanation"] == new.loc[~changed, "explanation"]).all():
        raise AssertionError("an unchanged row's explanation changed")
    # Payroll: each month's regular total dropped by exactly its rows' difference.
    month = pd.to_datetime(old["work_date"]).dt.strftime("%Y-%m")
    expected = diff.groupby(month).sum().round(2)
    pay_sql = (
        "SELECT month, sum(effective_hours) AS h, sum(late_days) AS late FROM payroll_monthly "
        "WHERE kind = 'regular' GROUP BY month ORDER BY month"
    )
    pay_old = read(before, pay_sql).set_index("month")
    pay_new = read(after, pay_sql).set_index("month")
    drop = (pay_old["h"] - pay_new["h"]).round(2)
    if not np.allclose(drop.reindex(expected.index).to_numpy(), expected.to_numpy(), atol=0.05):
        raise AssertionError(f"payroll drops {drop.to_dict()} != row differences {expected}")
    if not (pay_old["late"] == pay_new["late"]).all():
        raise AssertionError("payroll late_days changed")
    return {
        "rows": len(new),
        "late_rows": int((new["status"] == "late").sum()),
        "full_late_rows": int(full_late.sum()),
        "changed_rows": int(changed.sum()),
        "changed_not_late_status": int((changed & (new["status"] != "late")).sum()),
        "exception_late_rows": int(exception_late.sum()),
        "hours_before": float(old["effective_hours"].sum()),
        "hours_after": float(new["effective_hours"].sum()),
        "payroll_months": len(pay_new),
    }


def same_rows(a: Path, b: Path, start: date, end: date) -> int:
    """Both data directories hold identical effective_hours for start..end, and identical
    payroll for the whole months inside it."""
    import pandas as pd

    sql = "SELECT * FROM effective_hours WHERE work_date BETWEEN ? AND ? ORDER BY work_date, userid"
    left, right = read(a, sql, [start, end]), read(b, sql, [start, end])
    pd.testing.assert_frame_equal(left, right)
    # Whole months only: a partial month's payroll depends on the days outside the window.
    whole = [first for first, last in month_windows(start, end) if _month_inside(first, last)]
    pay = (
        "SELECT * EXCLUDE (computed_at) FROM payroll_monthly WHERE month = ? ORDER BY kind, userid"
    )
    for first in whole:
        month = [f"{first:%Y-%m}"]
        pd.testing.assert_frame_equal(read(a, pay, month), read(b, pay, month))
    return len(left)


def _month_inside(first: date, last: date) -> bool:
    following = (first + timedelta(days=32)).replace(day=1)
    return first.day == 1 and last == following - timedelta(days=1)


def report(
    args: argparse.Namespace,
    initial: ChildResult,
    runs: dict[str, ChildResult],
    base_start: date,
    checks: dict[str, Any],
    generate_s: float,
    overlaps: dict[str, int],
) -> str:
    one, monthly, daily = runs["single"], runs["monthly"], runs["daily"]
    factor = args.days / args.baseline_days
    months = len(month_windows(args.start, args.end))

    def jobs(r: ChildResult, name: str) -> dict[str, float]:
        found: dict[str, float] = r.result["jobs"].get(name, {"runs": 0, "seconds": 0.0})
        return found

    d_sync, d_pay = jobs(daily, "sync"), jobs(daily, "payroll")
    pay_each = d_pay["seconds"] / d_pay["runs"] if d_pay["runs"] else 0.0
    d_setup = daily.wall_s - daily.result["runs_s"]
    d_runs = daily.result["runs_s"] - d_pay["seconds"]
    d_total = d_setup + d_runs * factor + pay_each * months
    rows = one.result["rows"]
    rest = checks["changed_rows"] - checks["full_late_rows"]
    others = (
        f"the other {rest:,} changed rows had a late check point and lost at most 1 h "
        f"({checks['changed_not_late_status']:,} of them with another day status)"
        if rest
        else "no other row changed"
    )

    def column(r: ChildResult) -> list[str]:
        sync, pay = jobs(r, "sync"), jobs(r, "payroll")
        return [
            f"{sync['runs']:.0f} + {pay['runs']:.0f}",
            f"{r.wall_s:,.1f} s",
            f"{r.wall_s - r.result['runs_s']:.1f} s",
            f"{sync['seconds']:,.1f} s",
            f"{pay['seconds']:.1f} s",
            mib(r.peak_rss_mib),
            f"{r.cpu_s:,.1f} s",
            f"{r.result['rows']:,}",
            f"{r.result['rows'] / r.wall_s:,.0f}",
        ]

    extrapolated = [
        f"{args.days} + {months}",
        f"{d_total:,.0f} s",
        f"{d_setup:.1f} s",
        f"{d_sync['seconds'] * factor:,.0f} s",
        f"{pay_each * months:.1f} s",
        f"{mib(daily.peak_rss_mib)} (a day per run)",
        f"{daily.cpu_s * factor:,.0f} s",
        f"{daily.result['rows'] * factor:,.0f}",
        f"{daily.result['rows'] * factor / d_total:,.0f}",
    ]
    names = [
        "Dagster runs (derived daily assets + payroll)",
        "**wall time** (process, imports included)",
        "of which imports + definitions",
        "of which daily-asset runs",
        "of which payroll runs",
        "**peak RSS** (child `ru_maxrss`)",
        "CPU time (child, user + sys)",
        "effective_hours rows written",
        "rows/s (rows / wall)",
    ]
    cols = [column(one), column(monthly), column(daily), extrapolated]
    table = [
        "| | one run (year) | one run per month | one run per day (measured) | per day, "
        f"extrapolated to {args.days} days |",
        "|---|---:|---:|---:|---:|",
        *(f"| {name} | " + " | ".join(c[i] for c in cols) + " |" for i, name in enumerate(names)),
        f"| slowest steps (summed over runs) | {step_table(one.result['steps'], 4)} | "
        f"{step_table(monthly.result['steps'], 4)} | {step_table(daily.result['steps'], 4)} | |",
    ]
    for i, line in enumerate(table):
        for row in (1, 5):  # wall time and peak RSS of the one run, in bold
            if line.startswith(f"| {names[row]} |"):
                table[i] = line.replace(f"| {cols[0][row]} |", f"| **{cols[0][row]}** |", 1)
    lines = [
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}; load average (1 min) {args.load[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (other work shares the CPUs)",
        f"- Command: `{' '.join(['python bench/bench_recompute.py', *sys.argv[1:]])}`",
        f"- Stored raw partitions: {args.start}..{args.end} ({args.days} days, {months} payroll "
        f"months) x {args.employees:,} employees from the simulator's company model (seed 7), "
        f"{checks['raw_files']:,} Parquet files, written in {generate_s:.0f} s (not measured)",
        f"- Initial derive with the shipped rules (one run + {months} payroll runs, fresh "
        f"process): {initial.wall_s:,.1f} s, peak RSS {mib(initial.peak_rss_mib)}, CPU "
        f"{initial.cpu_s:,.1f} s (the same work as the one-run recompute: the difference between "
        "the two is this machine's noise)",
        f"- Rule change: `status_hours.late: {NEW_LATE}` (was {OLD_LATE}) in a copy of config/; "
        "recompute of the derived layers only: `effective_hours` (with its 4 checks: the "
        "`hours_valid` re-derivation of a 100-employee sample included) and `lake_views` through "
        "the `sync` job with an asset selection, then `payroll_monthly` per month. Each approach "
        "on its own copy of the derived state, fresh process and DAGSTER_HOME (SQLite).",
        f"- Per-day baseline: the last {args.baseline_days} day(s) ({base_start}..{args.end}), "
        f"extrapolated x{factor:.2f} (imports once, {months} payroll runs at its mean)",
        "",
        *table,
        "",
        "Where the one run's daily-asset run spent its time (its Dagster event log; each gap "
        "between events charged to the event ending it): "
        + top_segments(one.result["longest_sync_run"], 7)
        + ".",
        "",
        f"**One run per day (extrapolated) / one run: {d_total / one.wall_s:.1f}x the wall time "
        f"({daily.cpu_s * factor / one.cpu_s:.1f}x the CPU time); one run per month / one run: "
        f"{monthly.wall_s / one.wall_s:.2f}x ({monthly.cpu_s / one.cpu_s:.2f}x CPU).** "
        "Peak RSS: one run "
        f"{mib(one.peak_rss_mib)}, per month {mib(monthly.peak_rss_mib)}, per day "
        f"{mib(daily.peak_rss_mib)}. Throughput of the one run: {rows / one.wall_s:,.0f} "
        "employee-days/s.",
        "",
        "Checks that failed (warn-level, not blocking): "
        + (
            ", ".join(sorted({c for r in runs.values() for c in r.result["failed_checks"]}))
            or "none"
        )
        + ".",
        "",
        f"Verified: raw partitions untouched ({checks['raw_files']:,} files, same "
        f"size and mtime); {checks['changed_rows']:,} of {checks['rows']:,} rows changed, "
        f"{checks['full_late_rows']:,} full-day late rows (base rule, 8 h scheduled, no leave) "
        f"went {OLD_LATE} h → {NEW_LATE} h, {others}; "
        f"{checks['exception_late_rows']:,} late rows under "
        f"`{EXCEPTION}` kept 8 h; every other column unchanged but `rules_version` (all rows); "
        f"total {checks['hours_before']:,.1f} h → {checks['hours_after']:,.1f} h; each of the "
        f"{checks['payroll_months']} payroll months dropped by exactly its rows' difference. "
        f"Identical effective_hours across approaches: per month = one run on all "
        f"{overlaps['monthly']:,} rows, per day = one run on {overlaps['daily']:,} rows.",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--employees", type=int, default=1000)
    p.add_argument("--end", type=date.fromisoformat, default=date(2026, 10, 31))
    p.add_argument("--days", type=int, default=365, help="ending at --end (365: 12 months)")
    p.add_argument("--baseline-days", type=int, default=31, help="per-day runs (last days)")
    p.add_argument("--quick", action="store_true", help="20 employees, 45 days, baseline 1")
    p.add_argument(
        "--monthly-only",
        action="store_true",
        help="initial derive and recompute one run per month only (for windows too large for "
        "one run, e.g. --employees 10000)",
    )
    p.add_argument("--work-dir", type=Path, help="keep data and logs here (default: a temp dir)")
    p.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    p.add_argument("--phase", choices=("run",), help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=("single", "monthly", "daily"), help=argparse.SUPPRESS)
    p.add_argument("--start", type=date.fromisoformat, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.phase == "run":
        return phase_run(args)
    if args.quick:
        args.employees, args.days, args.baseline_days = 20, 45, 1
    if not 1 <= args.baseline_days <= args.days:
        raise SystemExit("need 1 <= --baseline-days <= --days")
    args.start = args.end - timedelta(days=args.days - 1)
    base_start = args.end - timedelta(days=args.baseline_days - 1)
    warnings.filterwarnings("ignore", message=".*inplace keyword.*")  # DuckDB's .df(), pandas 3
    args.load = os.getloadavg()
    print(
        f"recompute benchmark: {args.employees} employees, {args.start}..{args.end} "
        f"({args.days} days), per-day baseline {base_start}..{args.end}",
        flush=True,
    )
    from bench_effective_hours import generate_lake

    with tempfile.TemporaryDirectory(prefix="bench-recompute-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        initial_dir = work / "initial" / "data"
        started = time.perf_counter()
        generate_lake(initial_dir / "lake", args.employees, args.start, args.end)
        generate_s = time.perf_counter() - started
        print(f"raw partitions written in {generate_s:.0f} s", flush=True)
        if args.monthly_only:
            return monthly_only(args, work, initial_dir, generate_s)
        initial = derive(args, "single", initial_dir, ROOT / "config", args.start, args.end)
        config = changed_config(work / "config-late6")
        runs: dict[str, ChildResult] = {}
        raw_before: dict[str, tuple[int, int]] = {}
        for mode, first in (("single", args.start), ("monthly", args.start), ("daily", base_start)):
            data = work / mode / "data"
            shutil.copytree(initial_dir, data, copy_function=shutil.copy2)
            raw_before = raw_files(data / "lake")
            runs[mode] = derive(args, mode, data, config, first, args.end)
            if raw_files(data / "lake") != raw_before:
                raise AssertionError(f"{mode}: the raw partitions were rewritten")
        checks = verify(initial_dir, work / "single" / "data")
        checks["raw_files"] = len(raw_before)
        overlaps = {
            "monthly": same_rows(
                work / "single" / "data", work / "monthly" / "data", args.start, args.end
            ),
            "daily": same_rows(
                work / "single" / "data", work / "daily" / "data", base_start, args.end
            ),
        }
    text = report(args, initial, runs, base_start, checks, generate_s, overlaps)
    print()
    print(text)
    if not args.no_write:
        key = f"e{args.employees}-d{args.days}-b{args.baseline_days}"
        title = (
            f"Recompute after a rule change: {args.days} days x {args.employees:,} employees "
            f"from stored raw partitions ({MARK}:{key})"
        )
        write_section(f"{MARK}:{key}", title, text)
        print("\nwritten to bench/RESULTS.md")
    return 0


def monthly_only(args: argparse.Namespace, work: Path, initial_dir: Path, generate_s: float) -> int:
    """The initial derive and the recompute as one run per month each; the checks of `verify`."""
    initial = derive(args, "monthly", initial_dir, ROOT / "config", args.start, args.end)
    config = changed_config(work / "config-late6")
    data = work / "monthly" / "data"
    shutil.copytree(initial_dir, data, copy_function=shutil.copy2)
    raw_before = raw_files(data / "lake")
    recompute = derive(args, "monthly", data, config, args.start, args.end)
    if raw_files(data / "lake") != raw_before:
        raise AssertionError("monthly: the raw partitions were rewritten")
    checks = verify(initial_dir, data)
    rows = recompute.result["rows"]
    months = len(month_windows(args.start, args.end))
    text = "\n".join(
        [
            f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- Machine: {machine()}; load average (1 min) {args.load[0]:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end",
            f"- Command: `{' '.join(['python bench/bench_recompute.py', *sys.argv[1:]])}`",
            f"- Stored raw partitions: {args.start}..{args.end} ({args.days} days) x "
            f"{args.employees:,} employees (seed 7), {len(raw_before):,} Parquet files, written "
            f"in {generate_s:.0f} s (not measured)",
            "- Both derives run one `sync` run per calendar month (the derived daily assets "
            f"only, as `sync` windows a long range) and then the {months} payroll months, each "
            "in a fresh process with fresh DAGSTER_HOME (SQLite)",
            "",
            "| | initial derive (shipped rules) | recompute (`late: 6`) |",
            "|---|---:|---:|",
            f"| wall time | {initial.wall_s:,.1f} s | {recompute.wall_s:,.1f} s |",
            f"| **peak RSS** (child `ru_maxrss`) | **{mib(initial.peak_rss_mib)}** | "
            f"**{mib(recompute.peak_rss_mib)}** |",
            f"| CPU time | {initial.cpu_s:,.1f} s | {recompute.cpu_s:,.1f} s |",
            f"| effective_hours rows | {initial.result['rows']:,} | {rows:,} |",
            f"| rows/s (rows / wall) | {initial.result['rows'] / initial.wall_s:,.0f} | "
            f"{rows / recompute.wall_s:,.0f} |",
            f"| slowest steps (summed over runs) | {step_table(initial.result['steps'], 4)} | "
            f"{step_table(recompute.result['steps'], 4)} |",
            "",
            f"Verified: raw partitions untouched; {checks['changed_rows']:,} of "
            f"{checks['rows']:,} rows changed, {checks['full_late_rows']:,} full-day late rows "
            f"went {OLD_LATE} h → {NEW_LATE} h; total {checks['hours_before']:,.1f} h → "
            f"{checks['hours_after']:,.1f} h; each of the {checks['payroll_months']} payroll "
            "months dropped by exactly its rows' difference.",
        ]
    )
    print()
    print(text)
    if not args.no_write:
        key = f"e{args.employees}-d{args.days}-monthly"
        title = (
            f"Recompute, one run per month: {args.days} days x {args.employees:,} employees "
            f"({MARK}:{key})"
        )
        write_section(f"{MARK}:{key}", title, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

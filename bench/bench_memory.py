"""Benchmark: peak memory of a long backfill, one run per month (the default since issue 14)
against the whole range as one run (the shape before), measured in the same invocation.

    python bench/bench_memory.py [--employees 1000 --days 180]
    python bench/bench_memory.py --quick      # 50 employees, 40 days: about a minute

Both approaches reuse bench_backfill.py's children: a fresh DingTalk simulator process per
approach (per-API limit raised to --qps, quota and ban lifted, 0 ms latency), a fresh data
directory and DAGSTER_HOME, and `run_sync` in a fresh child process whose peak RSS (`ru_maxrss`
via `os.wait4`), wall and CPU time the parent measures:

- one run: `run_sync(..., max_days=None)`: the `sync` job over the whole range as ONE run;
- monthly: `run_sync(...)`: one `sync` run per calendar month (at most 31 days), sequentially.

Then the payroll months in both. The warehouse's effective_hours, the raw views and the roster
must be identical over the whole range. Results go to stdout and to a marked section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import bench_backfill
from harness import machine, mib, write_section

MARK = "bench_memory"
GOAL_MIB = 500


def metered(approach: bench_backfill.ChildResult) -> int:
    return int(approach.extra["sim_calls"]["metered_this_month"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--employees", type=int, default=1000)
    p.add_argument("--days", type=int, default=bench_backfill.HORIZON_DAYS)
    p.add_argument("--qps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--today", type=date.fromisoformat, default=bench_backfill.TODAY)
    p.add_argument("--quick", action="store_true", help="50 employees, 40 days")
    p.add_argument("--work-dir", type=Path)
    p.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    args = p.parse_args(argv)
    if args.quick:
        args.employees, args.days = 50, 40
    end = args.today - timedelta(days=1)
    start = end - timedelta(days=args.days - 1)
    print(f"memory benchmark: {args.employees} employees, {start}..{end} ({args.days} days)")
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        one = bench_backfill.run_approach(args, "single", start, end, work)
        monthly = bench_backfill.run_approach(args, "monthly", start, end, work)
        checked = bench_backfill.compare(one.extra["data"], monthly.extra["data"], start, end)
    runs = bench_backfill.month_count(start, end)
    rows = one.result["rows"]["effective_hours"]
    verdict = "meets" if monthly.peak_rss_mib <= GOAL_MIB else "misses"
    text = "\n".join(
        [
            f"- Machine: {machine()}; load average (1 min) {load[0]:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end",
            "- Command: `python bench/bench_memory.py" + (" --quick" if args.quick else "") + "`",
            f"- Range: {start}..{end} ({args.days} days) x {args.employees:,} employees; "
            f"DingTalk simulator in its own process, {args.qps} calls/s per API, 0 ms latency; "
            "PM_SYSTEM=none",
            "",
            "| | one run (before) | one run per month (now) | ratio |",
            "|---|---:|---:|---:|",
            f"| sync runs | 1 | {runs} | |",
            f"| **peak RSS** (child `ru_maxrss`) | {mib(one.peak_rss_mib)} | "
            f"**{mib(monthly.peak_rss_mib)}** | "
            f"{one.peak_rss_mib / monthly.peak_rss_mib:.2f}x less |",
            f"| wall time (process) | {one.wall_s:.1f} s | {monthly.wall_s:.1f} s | "
            f"{monthly.wall_s / one.wall_s:.2f}x |",
            f"| CPU time (child) | {one.cpu_s:.1f} s | {monthly.cpu_s:.1f} s | "
            f"{monthly.cpu_s / one.cpu_s:.2f}x |",
            f"| metered DingTalk calls (simulator's count) | {metered(one):,} | "
            f"{metered(monthly):,} | |",
            f"| effective_hours rows | {rows:,} | "
            f"{monthly.result['rows']['effective_hours']:,} | |",
            "",
            f"Goal: peak RSS <= {GOAL_MIB} MiB for one run per month: **{verdict}** it "
            f"({mib(monthly.peak_rss_mib)}).",
            "Identical over the whole range: "
            + ", ".join(f"{table} {n:,} rows" for table, n in checked.items())
            + " (raw layers without `pulled_at`).",
        ]
    )
    print()
    print(text)
    if not args.no_write:
        key = f"e{args.employees}-d{args.days}"
        title = f"Peak memory of a {args.days}-day backfill: one run per month ({MARK}:{key})"
        write_section(f"{MARK}:{key}", title, text)
        print("\nwritten to bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

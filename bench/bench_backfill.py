"""Benchmark: a 180-day backfill (DingTalk's horizon) as one Dagster run, against one run per
partition for a month of the same range (extrapolated), with wall time and peak memory.

    python bench/bench_backfill.py [--employees 1000 --days 180 --baseline-days 30]
    python bench/bench_backfill.py --quick      # 50 employees, 7 days, baseline 2: about 1 min

Each approach gets a fresh DingTalk simulator (its own process; per-API limit raised to --qps,
monthly quota and the per-IP ban threshold lifted, 0 ms latency, so the pipeline and not the
API is measured), a fresh data directory and a fresh DAGSTER_HOME (the project's
deploy/dagster.yaml: SQLite run and event storage, as `attendance-pipeline sync` uses), and is
run in a fresh child process whose wall time, peak RSS (`ru_maxrss` via `os.wait4`) and CPU
time are measured by this parent:

- single run: `run_sync(defs, start, end)`: the `sync` job over the whole range as ONE run
  (BackfillPolicy.single_run), then one `payroll` run per month touched; what
  `attendance-pipeline sync --start .. --end ..` does;
- per partition: the `sync` job once per day (partition_key=day) for the last --baseline-days
  days of the range, sequentially on one instance (what a multi-run backfill of daily partitions
  does), then the payroll months; its sync runs are extrapolated to the whole range.

The DingTalk client gets the same raised limit (`DingTalkResource(qps=--qps)`; workers stay at
the default 4). PM_SYSTEM=none, so no PM system is involved (bench_push.py measures the push).
The warehouse's effective_hours rows for the overlapping days must be identical. Results go to
stdout and to a marked section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
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

TODAY = date(2026, 11, 20)  # the simulator's clock, as in the other benchmarks and the tests
HORIZON_DAYS = 180  # attendance/list serves the past 180 days only
MARK = "bench_backfill"


# ---------------------------------------------------------------------------------- children


def phase_sim(args: argparse.Namespace) -> int:
    """The DingTalk simulator with its limits raised, until SIGTERM; prints `URL <url>`."""
    from attendance_pipeline.simulators.dingtalk.server import DingTalkSimConfig, DingTalkSimulator
    from attendance_pipeline.simulators.http import serve_until_signalled

    config = DingTalkSimConfig(
        seed=args.seed,
        employees=args.employees,
        today=args.today,
        qps=args.qps,
        latency_ms=0,
        monthly_quota=1_000_000_000,
        ip_limit=1_000_000_000,  # `sim dingtalk` has no flag for it; 10,000 / 20 s would ban us
    )
    sim = DingTalkSimulator(config)
    return serve_until_signalled(sim.serve, "127.0.0.1", 0, lambda url: f"URL {url}")


def phase_run(args: argparse.Namespace) -> int:
    """One approach in this (fresh) process; prints one JSON line."""
    started = time.perf_counter()
    from harness import run_timings

    from attendance_pipeline.china_time import days
    from attendance_pipeline.definitions import build_definitions
    from attendance_pipeline.resources.dingtalk import DingTalkResource
    from attendance_pipeline.settings import load_settings
    from attendance_pipeline.sync import (
        SyncSummary,
        dagster_instance,
        payroll_months,
        run_job,
        run_sync,
    )
    from attendance_pipeline.warehouse import connect

    settings = load_settings(env_file=None)
    resource = DingTalkResource(
        base_url=args.url,
        api_base_url=args.url,
        app_key="sim-key",
        app_secret="sim-secret",
        today=args.today.isoformat(),
        qps=args.qps,
    )
    defs = build_definitions(settings, {"dingtalk": resource})
    instance = dagster_instance()
    ready = time.perf_counter()
    summaries: list[SyncSummary] = []
    if args.mode in ("single", "monthly"):
        # single: the whole range as one run (the shape before issue 14); monthly: run_sync's
        # default, one run per calendar month.
        chunking: dict[str, Any] = {"max_days": None} if args.mode == "single" else {}
        summaries.append(
            run_sync(defs, args.start, args.end, instance=instance, out=io.StringIO(), **chunking)
        )
    else:
        sync_job, payroll_job = defs.resolve_job_def("sync"), defs.resolve_job_def("payroll")
        summaries += [
            run_job(
                sync_job,
                instance,
                partition_key=day.isoformat(),
                tags={"attendance/dry_run": "false"},
            )
            for day in days(args.start, args.end)
        ]
        summaries += [
            run_job(payroll_job, instance, partition_key=f"{month}-01")
            for month in payroll_months(defs, args.start, args.end)
        ]
    finished = time.perf_counter()
    with connect(settings.warehouse_path, read_only=True) as con:
        counts = {
            table: int(
                con.execute(
                    f"SELECT count(*) FROM {table} WHERE {column} BETWEEN ? AND ?",
                    [args.start, args.end],
                ).fetchone()[0]  # type: ignore[index]
            )
            for table, column in (
                ("effective_hours", "work_date"),
                ("raw_attendance", "work_date"),
                ("raw_approvals", "work_date"),
                ("roster", "snapshot_date"),
            )
        }
    print(
        json.dumps(
            {
                "setup_s": ready - started,
                "runs_s": finished - ready,
                "success": all(s.success for s in summaries),
                "failures": [f for s in summaries for f in s.failures][:5],
                "failed_checks": sorted({c for s in summaries for c in s.failed_checks}),
                "metered_calls": sum(s.metered_calls for s in summaries),
                "rows": counts,
                **run_timings(instance),
            }
        )
    )
    return 0


# ---------------------------------------------------------------------------------- parent


class Simulator:
    """The simulator child: started on a free port, stopped with SIGTERM, CPU time measured."""

    def __init__(self, args: argparse.Namespace, log: Path) -> None:
        command = [
            sys.executable, __file__, "--phase", "sim", "--employees", str(args.employees),
            "--today", args.today.isoformat(), "--qps", str(args.qps), "--seed", str(args.seed),
        ]  # fmt: skip
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._log, text=True, env=child_env()
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("URL "):
            raise SystemExit(f"the simulator did not start (see {log})")
        self.url = line.split()[1]

    def calls(self) -> dict[str, Any]:
        import requests

        payload: dict[str, Any] = requests.get(f"{self.url}/_sim/calls", timeout=10).json()
        return payload

    def stop(self) -> float:
        """Stop it; returns its CPU seconds."""
        self.process.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = 0
        self._log.close()
        return usage.ru_utime + usage.ru_stime


def run_approach(
    args: argparse.Namespace, mode: str, start: date, end: date, work: Path
) -> ChildResult:
    folder = work / mode
    folder.mkdir(parents=True)
    sim = Simulator(args, folder / "sim.log")
    try:
        env = child_env(
            ATTENDANCE_DATA_DIR=str(folder / "data"),
            ATTENDANCE_CONFIG_DIR=str(ROOT / "config"),
            ATTENDANCE_START_DATE=start.replace(day=1).isoformat(),
            DAGSTER_HOME=str(folder / "dagster_home"),
            DINGTALK_BASE_URL=sim.url,
            DINGTALK_API_BASE_URL=sim.url,
            DINGTALK_MONTHLY_QUOTA="1000000000",
            PM_SYSTEM="none",
        )
        command = [
            __file__, "--phase", "run", "--mode", mode, "--url", sim.url,
            "--today", args.today.isoformat(), "--qps", str(args.qps),
            "--start", start.isoformat(), "--end", end.isoformat(),
        ]  # fmt: skip
        print(f"{mode}: {start}..{end} ...", flush=True)
        measured = run_child(command, env, folder / "run.log", cwd=folder)
        measured.extra["sim_calls"] = sim.calls()
    finally:
        measured_cpu = sim.stop()
    measured.extra["sim_cpu_s"] = measured_cpu
    measured.extra["data"] = folder / "data"
    r = measured.result
    print(
        f"{mode}: {measured.wall_s:.1f} s wall, peak RSS {mib(measured.peak_rss_mib)}, "
        f"{r['rows']['effective_hours']:,} effective_hours rows, success={r['success']}",
        flush=True,
    )
    if not r["success"]:
        raise SystemExit(f"{mode}: the pipeline failed: {r['failures']} {r['failed_checks']}")
    return measured


def compare(single: Path, daily: Path, start: date, end: date) -> dict[str, int]:
    """The overlap must be identical: effective_hours in the warehouse, and the raw lake layers
    (but for `pulled_at`)."""
    import duckdb
    import pandas as pd

    warnings.filterwarnings("ignore", message=".*inplace keyword.*")  # DuckDB's .df() on pandas 3

    def read(data: Path, sql: str) -> pd.DataFrame:
        with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
            return con.execute(sql, [start, end]).df()

    checked: dict[str, int] = {}
    for table, column, order in (
        ("effective_hours", "work_date", "work_date, userid"),
        ("raw_attendance", "work_date", "work_date, userid, id"),
        ("raw_approvals", "work_date", "work_date, approve_id"),
        ("roster", "snapshot_date", "snapshot_date, userid"),
    ):
        sql = f"SELECT * FROM {table} WHERE {column} BETWEEN ? AND ? ORDER BY {order}"
        a, b = read(single, sql), read(daily, sql)
        drop = [c for c in a.columns if c == "pulled_at"]
        pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop))
        checked[table] = len(a)
    return checked


def month_count(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month + 1


def report(
    args: argparse.Namespace,
    single: ChildResult,
    daily: ChildResult,
    start: date,
    end: date,
    base_start: date,
    checked: dict[str, int],
) -> str:
    s, d = single.result, daily.result
    factor = args.days / args.baseline_days
    d_sync = d["jobs"]["sync"]
    d_pay = d["jobs"].get("payroll", {"runs": 0, "seconds": 0.0})
    s_pay = s["jobs"].get("payroll", {"runs": 0, "seconds": 0.0})
    months = month_count(start, end)
    pay_each = d_pay["seconds"] / d_pay["runs"] if d_pay["runs"] else 0.0
    # Extrapolated per-partition backfill: one process (setup once), every day's sync run, and the
    # same payroll months as the single run (at the baseline's mean payroll-run time).
    d_runs_x = d["runs_s"] - d_pay["seconds"]  # all sync runs incl. event/log overhead
    d_total_x = (daily.wall_s - d["runs_s"]) + d_runs_x * factor + pay_each * months
    d_cpu_x = daily.cpu_s * factor
    rows_s, rows_d = s["rows"]["effective_hours"], d["rows"]["effective_hours"]
    sim_total = {
        name: sum(int(c.get("total", 0)) for c in r.extra["sim_calls"]["by_api"].values())
        for name, r in (("s", single), ("d", daily))
    }
    sim_metered = {name: r.extra["sim_calls"]["metered_this_month"] for name, r in
                   (("s", single), ("d", daily))}  # fmt: skip
    ratio = d_total_x / single.wall_s
    setup_s, setup_d = single.wall_s - s["runs_s"], daily.wall_s - d["runs_s"]
    per_run = d_sync["seconds"] / d_sync["runs"]
    lines = [
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}; load average (1 min) {args.load[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (other work shares the CPUs)",
        f"- Command: `{' '.join(['python bench/bench_backfill.py', *sys.argv[1:]])}`",
        f"- Range: {start}..{end} ({args.days} days, {months} payroll months) for "
        f"{args.employees:,} employees; baseline: {base_start}..{end} ({args.baseline_days} days) "
        f"one run per partition, extrapolated x{factor:g}",
        f"- DingTalk simulator (own process, fresh per approach): seed {args.seed}, today "
        f"{args.today}, {args.qps} calls/s per API, 0 ms latency, quota and per-IP ban lifted; "
        f"client `DingTalkResource(qps={args.qps})`, 4 workers. PM_SYSTEM=none. Each approach in "
        "a fresh process, fresh data directory and DAGSTER_HOME (SQLite storage).",
        "",
        "| | one run (`run_sync`) | one run per partition (measured) | per partition, "
        f"extrapolated to {args.days} days |",
        "|---|---:|---:|---:|",
        f"| Dagster runs (sync + payroll) | {s['jobs']['sync']['runs']} + {s_pay['runs']} | "
        f"{d_sync['runs']} + {d_pay['runs']} | {args.days} + {months} |",
        f"| **wall time** (process, imports included) | **{single.wall_s:,.1f} s** | "
        f"{daily.wall_s:,.1f} s | **{d_total_x:,.0f} s** |",
        f"| of which imports + definitions | {setup_s:.1f} s | {setup_d:.1f} s | {setup_d:.1f} s |",
        f"| of which sync runs | {s['jobs']['sync']['seconds']:,.1f} s | "
        f"{d_sync['seconds']:,.1f} s ({per_run:.2f} s per run) | "
        f"{d_sync['seconds'] * factor:,.0f} s |",
        f"| of which payroll runs | {s_pay['seconds']:.1f} s | {d_pay['seconds']:.1f} s | "
        f"{pay_each * months:.1f} s |",
        f"| **peak RSS** (child `ru_maxrss`) | **{mib(single.peak_rss_mib)}** | "
        f"{mib(daily.peak_rss_mib)} | {mib(daily.peak_rss_mib)} (one day per run) |",
        f"| CPU time (child, user + sys) | {single.cpu_s:,.1f} s | {daily.cpu_s:,.1f} s | "
        f"{d_cpu_x:,.0f} s |",
        f"| simulator CPU time (its own process) | {single.extra['sim_cpu_s']:.1f} s | "
        f"{daily.extra['sim_cpu_s']:.1f} s | — |",
        f"| effective_hours rows (employee-days) | {rows_s:,} | {rows_d:,} | "
        f"{rows_d * factor:,.0f} |",
        f"| raw_attendance rows | {s['rows']['raw_attendance']:,} | "
        f"{d['rows']['raw_attendance']:,} | — |",
        f"| **rows/s** (employee-days / wall) | **{rows_s / single.wall_s:,.0f}** | "
        f"{rows_d / daily.wall_s:,.0f} | **{rows_d * factor / d_total_x:,.0f}** |",
        f"| DingTalk metered calls (client = simulator) | {s['metered_calls']:,} = "
        f"{sim_metered['s']:,} | {d['metered_calls']:,} = {sim_metered['d']:,} | "
        f"{d['metered_calls'] * factor:,.0f} |",
        f"| DingTalk requests, all APIs (simulator) | {sim_total['s']:,} | {sim_total['d']:,} | "
        f"{sim_total['d'] * factor:,.0f} |",
        f"| slowest steps (summed over runs) | {step_table(s['steps'], 5)} | "
        f"{step_table(d['steps'], 5)} | |",
        "",
        "Where the time went (Dagster event log; each gap between events charged to the event "
        "ending it): the one sync run: " + top_segments(s["longest_sync_run"], 8) + ". The "
        "longest per-partition sync run: " + top_segments(d["longest_sync_run"], 5) + ".",
        "",
        f"**Per partition (extrapolated) / one run: {ratio:.1f}x the wall time**, "
        f"{d_cpu_x / single.cpu_s:.1f}x the CPU time, "
        f"{d['metered_calls'] * factor / max(1, s['metered_calls']):.1f}x the metered calls; "
        f"peak RSS one run / per partition: {single.peak_rss_mib / daily.peak_rss_mib:.2f} "
        f"({mib(single.peak_rss_mib)} against {mib(daily.peak_rss_mib)}).",
        "",
        "Checks that failed (warn-level, not blocking): "
        + (", ".join(sorted(set(s["failed_checks"]) | set(d["failed_checks"]))) or "none")
        + ".",
        "",
        f"Identical results on the overlap {base_start}..{end}: "
        + ", ".join(f"{table} {n:,} rows" for table, n in checked.items())
        + " (raw layers compared without `pulled_at`).",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--employees", type=int, default=1000)
    p.add_argument("--days", type=int, default=HORIZON_DAYS, help="range, ending the day before")
    p.add_argument("--baseline-days", type=int, default=30, help="per-partition runs (last days)")
    p.add_argument("--qps", type=int, default=1000, help="per-API limit, simulator and client")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--today", type=date.fromisoformat, default=TODAY, help="simulator clock")
    p.add_argument("--quick", action="store_true", help="50 employees, 7 days, baseline 2")
    p.add_argument("--work-dir", type=Path, help="keep data and logs here (default: a temp dir)")
    p.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    # internal: the child processes
    p.add_argument("--phase", choices=("sim", "run"), help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=("single", "monthly", "daily"), help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--start", type=date.fromisoformat, help=argparse.SUPPRESS)
    p.add_argument("--end", type=date.fromisoformat, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.phase == "sim":
        return phase_sim(args)
    if args.phase == "run":
        return phase_run(args)
    if args.quick:
        args.employees, args.days, args.baseline_days = 50, 7, 2
    if not 1 <= args.baseline_days <= args.days <= HORIZON_DAYS:
        raise SystemExit(f"need 1 <= --baseline-days <= --days <= {HORIZON_DAYS}")
    end = args.today - timedelta(days=1)
    start = end - timedelta(days=args.days - 1)
    base_start = end - timedelta(days=args.baseline_days - 1)
    if end >= date.today():
        raise SystemExit(f"{end} has no Dagster partition yet (today is {date.today()})")
    print(
        f"backfill benchmark: {args.employees} employees, {start}..{end} ({args.days} days), "
        f"baseline {base_start}..{end}",
        flush=True,
    )
    args.load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        single = run_approach(args, "single", start, end, work)
        daily = run_approach(args, "daily", base_start, end, work)
        checked = compare(single.extra["data"], daily.extra["data"], base_start, end)
    text = report(args, single, daily, start, end, base_start, checked)
    print()
    print(text)
    if not args.no_write:
        key = f"e{args.employees}-d{args.days}-b{args.baseline_days}"
        title = (
            f"Backfill: {args.days} days x {args.employees:,} employees, one run against one run "
            f"per partition ({MARK}:{key})"
        )
        write_section(f"{MARK}:{key}", title, text)
        print("\nwritten to bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: what the quality gates add to a month's sync (GX import and validation included).

    python bench/bench_gates.py [--employees 300]

Two fresh processes, so imports are counted: (1) a whole month's `sync` against the DingTalk
simulator (gates included, PM_SYSTEM=none); (2) the same gates alone on that month's stored lake
partitions, the way the assets call them: GX import + context, every gate, and the hours gate's
independent re-derivation. Reports (2) as a share of (1). Results: stdout and bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from harness import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
MONTH = (date(2026, 10, 1), date(2026, 10, 31))


def phase_sync(employees: int, data_dir: Path) -> dict:
    started = time.perf_counter()
    os.environ.update(
        ATTENDANCE_DATA_DIR=str(data_dir),
        PM_SYSTEM="none",
        ATTENDANCE_CONFIG_DIR=str(ROOT / "config"),
    )
    os.environ.pop("DINGTALK_APP_KEY", None)
    import dagster as dg

    from attendance_pipeline.definitions import build_definitions
    from attendance_pipeline.resources.dingtalk import DingTalkResource
    from attendance_pipeline.settings import load_settings
    from attendance_pipeline.simulators.dingtalk import DingTalkSimConfig, DingTalkSimulator
    from attendance_pipeline.sync import run_sync

    sim = DingTalkSimulator(
        DingTalkSimConfig(seed=7, employees=employees, today=date(2026, 11, 20), qps=10_000)
    )
    running = sim.serve(port=0)
    url = running.url
    resource = DingTalkResource(
        base_url=url, api_base_url=url, app_key="sim-key", app_secret="sim-secret",
        today="2026-11-20", qps=10_000,
    )  # fmt: skip
    defs = build_definitions(load_settings(env_file=None), {"dingtalk": resource})
    with open(os.devnull, "w") as quiet:
        summary = run_sync(defs, *MONTH, instance=dg.DagsterInstance.ephemeral(), out=quiet)
    running.stop()
    assert summary.success, summary.render()
    return {"sync_s": time.perf_counter() - started}


def phase_gates(data_dir: Path) -> dict:
    started = time.perf_counter()
    import pyarrow.parquet as pq

    from attendance_pipeline.checks import dingtalk as dingtalk_gates
    from attendance_pipeline.checks import gx, quality
    from attendance_pipeline.checks import hours as hours_gates
    from attendance_pipeline.hours.calendar import WorkCalendar
    from attendance_pipeline.hours.reference import derive_frame
    from attendance_pipeline.hours.rules import load_overrides, load_rules

    lake = data_dir / "lake"
    roster, attendance, approvals, hours = (
        pq.read_table(lake / name).to_pandas()
        for name in ("dingtalk_roster", "raw_attendance", "raw_approvals", "effective_hours")
    )
    config = ROOT / "config"
    rules, calendar = load_rules(config / "rules.yaml"), WorkCalendar.load(config / "calendar.csv")
    overrides = load_overrides(config / "overrides.csv")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    gx.warm_up()  # GX import + ephemeral context (paid once per process)
    timings["gx_import_and_context"] = time.perf_counter() - t

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        result = fn()
        timings[name] = time.perf_counter() - t
        assert result.passed or result.severity == "warn", result.summary()

    timed("roster_valid", lambda: dingtalk_gates.roster_gate(roster, None))
    timed("raw_attendance_valid", lambda: dingtalk_gates.raw_attendance_gate(attendance, *MONTH))
    timed("raw_approvals_valid", lambda: dingtalk_gates.raw_approvals_gate(approvals, *MONTH))
    timed(
        "inputs_complete",
        lambda: hours_gates.completeness_gate(roster, attendance, approvals, calendar, *MONTH),
    )
    t = time.perf_counter()
    # As the asset does it: a stable sample of `rederive_max_employees` people.
    limit = quality.load_quality_config(config / "quality.yaml").rederive_max_employees
    sample = hours_gates.stable_sample(roster["userid"].unique().tolist(), limit)
    h, r, a, p = (f[f["userid"].isin(sample)] for f in (hours, roster, attendance, approvals))
    rederived = derive_frame(r, a, p, overrides, rules, calendar)
    timings[f"hours_rederivation ({len(sample)} employees)"] = time.perf_counter() - t
    timed("hours_valid", lambda: hours_gates.hours_gate(h, rederived, r))
    timed(
        "calendar_covered", lambda: hours_gates.calendar_gate(hours["work_date"].unique(), calendar)
    )
    timed("unusual_patterns", lambda: hours_gates.patterns_gate(hours))
    # The hours step evaluates the raw gates again on what it read, then the share of the day
    # held back (issue 10).
    t = time.perf_counter()
    judged = [
        dingtalk_gates.raw_attendance_gate(attendance, *MONTH),
        dingtalk_gates.raw_approvals_gate(approvals, *MONTH),
    ]
    timings["raw gates again in effective_hours"] = time.perf_counter() - t
    timed("held_back_share", lambda: gx.held_back_share_gate(judged, hours))
    # mapping_valid, plan_valid and the reconciliation gates run only with a PM system; on a
    # month they take ~0.05-0.15 s each (tests/test_gates.py timings).
    timings["total_in_process"] = time.perf_counter() - started
    timings["rows"] = float(len(hours))
    timings.update(publish_costs(hours, attendance))
    return timings


def publish_costs(hours, attendance) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Publishing the month: the old whole-window replace (baseline) against the hold-back
    publish (keep the held employee-days) plus recording the holds, both in one DuckDB file.
    1 % of the employee-days are held back, found by a failing gate (a duplicated check point
    per held day), so the GX full-result path is measured too."""
    import duckdb
    import pandas as pd

    from attendance_pipeline import holdback
    from attendance_pipeline.checks import dingtalk as dingtalk_gates
    from attendance_pipeline.china_time import now_in_china
    from attendance_pipeline.schemas import EFFECTIVE_HOURS, to_table
    from attendance_pipeline.warehouse import replace_rows

    table = to_table(hours, EFFECTIVE_HOURS, "bench")
    held_days = hours.sample(frac=0.01, random_state=7)[["userid", "work_date"]]
    pairs = set(zip(held_days["userid"], held_days["work_date"], strict=True))
    keys = list(zip(attendance["userid"], attendance["work_date"], strict=True))
    doubled = attendance[[k in pairs for k in keys]].assign(id=lambda f: f["id"] + 10**12)
    corrupted = pd.concat([attendance, doubled], ignore_index=True)
    out: dict[str, float] = {}
    t = time.perf_counter()
    result = dingtalk_gates.raw_attendance_gate(corrupted, *MONTH)
    out["raw_attendance_valid with 1% held"] = time.perf_counter() - t
    held = result.held
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        con = duckdb.connect(str(Path(tmp) / "w.duckdb"))
        replace_rows(con, "effective_hours", EFFECTIVE_HOURS, table, "work_date BETWEEN ? AND ?",
                     list(MONTH))  # fmt: skip
        t = time.perf_counter()
        replace_rows(con, "effective_hours", EFFECTIVE_HOURS, table, "work_date BETWEEN ? AND ?",
                     list(MONTH))  # fmt: skip
        out["publish baseline: replace the window"] = time.perf_counter() - t
        t = time.perf_counter()
        con.execute("BEGIN TRANSACTION")
        holdback.publish_effective_hours(con, table, *MONTH, held)
        holdback.record(
            con, result.name, held, *MONTH, blocks="all", now=now_in_china(), run_id="bench"
        )
        con.execute("COMMIT")
        out[f"publish with hold-back ({len(held)} held) + record"] = time.perf_counter() - t
        con.close()
    out["held_rows"] = float(len(held))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=300)
    parser.add_argument("--phase", choices=("sync", "gates"))
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.phase == "sync":
        print(json.dumps(phase_sync(args.employees, args.data_dir)))
        return 0
    if args.phase == "gates":
        print(json.dumps(phase_gates(args.data_dir)))
        return 0

    def run(*extra: str) -> dict:
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, *extra], capture_output=True, text=True, check=True
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        result["process_s"] = time.perf_counter() - started
        return result

    with tempfile.TemporaryDirectory(prefix="bench-gates-") as tmp:
        data = Path(tmp) / "data"
        sync = run("--phase", "sync", "--employees", str(args.employees), "--data-dir", str(data))
        checks = run("--phase", "gates", "--data-dir", str(data))
    gate_rows = "\n".join(
        f"| {name} | {seconds:.2f} s |"
        for name, seconds in checks.items()
        if name not in ("rows", "process_s", "held_rows")
    )
    baseline = checks["publish baseline: replace the window"]
    publish = next(v for k, v in checks.items() if k.startswith("publish with hold-back"))
    text = (
        f"Machine: {machine()}; "
        f"{date.today()}\n\n"
        f"A month ({MONTH[0]}..{MONTH[1]}) for {args.employees} employees "
        f"({int(checks['rows']):,} employee-days), DingTalk simulator, PM_SYSTEM=none.\n\n"
        f"- whole `sync` in a fresh process (gates included): **{sync['process_s']:.1f} s**\n"
        f"- the gates alone in a fresh process (GX import + context, every gate, the "
        f"re-derivation): **{checks['process_s']:.1f} s** = "
        f"**{checks['process_s'] / sync['process_s']:.0%}** of the sync\n\n"
        f"| part | time |\n|---|---:|\n{gate_rows}\n\n"
        f"Publishing with hold-back against the whole-window replace it replaced, same run and "
        f"file: **{publish / baseline:.2f}×** ({publish:.3f} s vs {baseline:.3f} s, "
        f"{int(checks['held_rows'])} employee-days held).\n"
    )
    print(text)
    if not args.no_write:
        marker = f"bench_gates:e{args.employees}"
        write_section(marker, f"Quality gates ({marker})", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

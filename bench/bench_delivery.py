"""Benchmark: the user mapping and the worklog plan of a long window, against the previous
implementation (from git) in the same run.

    python bench/bench_delivery.py [--employees 1000 --days 180] [--previous 301b0be]

The roster is the DingTalk simulator's company model (seed 7) as daily snapshots; every
employee with an e-mail has a PM account of that e-mail on every day (so most are mapped and
planned), and each day's effective hours are 8 h (a worklog per allocation, split by
config/allocations.csv). Both implementations get the same frames:

- now: `pm.mapping.map_days` (a day whose people and accounts equal an earlier day's reuses its
  result) and `pm.plan.plan_days` (the per-day frames looked up once; cached minute splits);
- previous: `pm/mapping.py` and `pm/plan.py` at `--previous` (read with `git show`), driven by
  that commit's asset loops (`user_mapping`: `match_users` and an `in_scope` look-up per person
  and day; `worklog_plan`: a boolean mask per day over the window's roster and mapping).

Both must give identical frames. Results go to stdout and to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
from harness import git_source, machine, write_section

from attendance_pipeline.china_time import days, now_in_china
from attendance_pipeline.dingtalk.records import roster_frame
from attendance_pipeline.pipeline_config import Scope
from attendance_pipeline.pm.base import PMUser
from attendance_pipeline.pm.mapping import map_days
from attendance_pipeline.pm.plan import load_allocations, plan_days
from attendance_pipeline.simulators.dingtalk import Company

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS = "301b0be"


def previous_module(commit: str, path: str, folder: Path) -> ModuleType:
    """The module at `path` as it was at `commit`, imported from a copy in `folder`."""
    target = folder / f"{Path(path).stem}_{commit}.py"
    target.write_text(git_source(commit, path))
    spec = importlib.util.spec_from_file_location(target.stem, target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[target.stem] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def frames(employees: int, start: date, end: date) -> dict[str, pd.DataFrame]:
    company = Company(seed=7, employees=employees, anchor=end + timedelta(days=20))
    users = company.users()
    window = list(days(start, end))
    roster = roster_frame(users, window, now_in_china(), company.departments(), company.group_map())
    roster = roster[roster["active"]].reset_index(drop=True)
    with_mail = roster.dropna(subset=["email"]).drop_duplicates(["snapshot_date", "userid"])
    pm_users = pd.DataFrame(
        {
            "snapshot_date": with_mail["snapshot_date"].to_numpy(),
            "pm_system": "jira",
            "pm_user": "acc-" + with_mail["userid"].astype(str),
            "login": with_mail["userid"].astype(str),
            "email": with_mail["email"].to_numpy(),
            "name": with_mail["name"].to_numpy(),
            "active": True,
        }
    )
    hours = pd.DataFrame(
        {
            "userid": roster["userid"].to_numpy(),
            "work_date": roster["snapshot_date"].to_numpy(),
            "name": roster["name"].to_numpy(),
            "dept_id": [int(d[0]) if len(d) else None for d in roster["dept_ids"]],
            "status": "normal",
            "effective_hours": 8.0,
            "overtime_hours": 0.0,
            "rules_version": "bench",
        }
    )
    return {"roster": roster, "pm_users": pm_users, "hours": hours}


def previous_map(mapping: ModuleType, plan: ModuleType) -> Callable[..., pd.DataFrame]:
    """The `user_mapping` asset's loop at the previous commit."""

    def run(roster: pd.DataFrame, pm_users: pd.DataFrame, scope: Scope) -> pd.DataFrame:
        out = []
        for day, people in roster.groupby("snapshot_date", sort=True):
            accounts = [
                PMUser(r.pm_user, _str(r.login), _str(r.email), _str(r.name), bool(r.active))
                for r in pm_users[pm_users["snapshot_date"] == day].itertuples()
            ]
            mapped = mapping.match_users(people, accounts, {})
            ancestors = people.set_index("userid")["dept_ancestors"]
            mapped["in_scope"] = [
                plan.in_scope(u, _ints(ancestors.get(u)), scope) for u in mapped["userid"]
            ]
            mapped["snapshot_date"] = day
            out.append(mapped)
        return pd.concat(out, ignore_index=True)

    return run


def previous_plan(plan: ModuleType) -> Callable[..., tuple[pd.DataFrame, pd.DataFrame]]:
    """The `worklog_plan` asset's loop at the previous commit."""

    def run(*args: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        hours, roster, mapping, allocations, scope = args
        plans, skipped = [], []
        for day, rows in hours.groupby("work_date", sort=True):
            day_plan, skips = plan.plan_worklogs(
                rows,
                roster[roster["snapshot_date"] == day],
                mapping[mapping["snapshot_date"] == day],
                allocations,
                scope,
                "jira",
            )
            plans.append(day_plan)
            skipped.append(skips)
        return pd.concat(plans, ignore_index=True), pd.concat(skipped, ignore_index=True)

    return run


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _ints(values: Any) -> list[int]:
    return [int(v) for v in values] if values is not None else []


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, list[float]]:
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return result, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 19))
    parser.add_argument("--previous", default=PREVIOUS, help="git commit of the previous code")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args(argv)
    start = args.end - timedelta(days=args.days - 1)
    started = time.perf_counter()
    data = frames(args.employees, start, args.end)
    built_s = time.perf_counter() - started
    allocations = load_allocations(ROOT / "config" / "allocations.csv")
    scope = Scope()
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        old_mapping = previous_module(args.previous, "attendance_pipeline/pm/mapping.py", Path(tmp))
        old_plan = previous_module(args.previous, "attendance_pipeline/pm/plan.py", Path(tmp))
        roster, pm_users, hours = data["roster"], data["pm_users"], data["hours"]
        new_map, new_map_s = timed(lambda: map_days(roster, pm_users, {}, scope), args.repeat)
        old_map, old_map_s = timed(
            lambda: previous_map(old_mapping, old_plan)(roster, pm_users, scope), args.repeat
        )
        pd.testing.assert_frame_equal(new_map, old_map[new_map.columns])
        plan_args = (hours, roster, new_map, allocations, scope)
        (new_plan, new_skip), new_plan_s = timed(
            lambda: plan_days(*plan_args[:3], allocations, scope, "jira"), args.repeat
        )
        (old_plan_frame, old_skip), old_plan_s = timed(
            lambda: previous_plan(old_plan)(*plan_args), args.repeat
        )
        pd.testing.assert_frame_equal(new_plan, old_plan_frame)
        pd.testing.assert_frame_equal(new_skip, old_skip, check_dtype=False)

    def row(name: str, now: list[float], before: list[float], rows: int) -> str:
        a, b = statistics.median(now), statistics.median(before)
        return (
            f"| {name} | {rows:,} | {b:.2f} s | {a:.2f} s | {rows / b:,.0f} | {rows / a:,.0f} | "
            f"**{b / a:.1f}x** |"
        )

    mapped = int((new_map["status"] == "mapped").sum())
    lines = [
        f"Machine: {machine()}; {date.today()}",
        f"Input: {args.employees:,} employees x {args.days} days ({start}..{args.end}): "
        f"{len(roster):,} roster rows, {len(pm_users):,} PM accounts (one per e-mail and day), "
        f"{mapped:,} mapped person-days; frames built in {built_s:.1f} s (not measured). "
        f"Median of {args.repeat} runs each, in one process.",
        "",
        f"| step | rows out | previous ({args.previous}) | now | rows/s before | rows/s now | "
        "speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|",
        row("user mapping (all days)", new_map_s, old_map_s, len(new_map)),
        row("worklog plan (all days)", new_plan_s, old_plan_s, len(new_plan)),
        "",
        f"Identical frames: mapping {len(new_map):,} rows, plan {len(new_plan):,} worklogs, "
        f"skipped {len(new_skip):,} employee-days.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        marker = f"bench_delivery:e{args.employees}-d{args.days}"
        write_section(marker, f"User mapping and worklog plan ({marker})", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

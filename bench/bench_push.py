"""Benchmark: pushing planned worklogs exactly once, against the target's own write rate.

    python bench/bench_push.py [--worklogs 10000] [--redmine-worklogs 1000] [--no-redmine]

For each target (the PM simulator's Jira routes; a real Redmine started by scripts/redmine) it
measures, in the same run:
- the raw single-client write rate: one `requests.Session` creating worklogs in a loop, with no
  diffing, no key handling and no retries (what the target itself can take from one client);
- the pusher: list → diff → create for N planned worklogs (worklogs per second, and the ratio);
- a no-change re-run: writes (must be 0), read requests and reads per worklog, wall time.
Results go to stdout and bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests
from harness import machine, write_section

from attendance_pipeline.pm.base import PlannedWorklog, WorklogStore, worklog_key
from attendance_pipeline.pm.push import push_window
from attendance_pipeline.resources.delivery import PMResource
from attendance_pipeline.simulators.pm import PMSimConfig, PMSimulator

ROOT = Path(__file__).resolve().parent.parent
START = date(2026, 6, 1)


def plan_for(users: list[str], issues: list[str], count: int) -> list[PlannedWorklog]:
    """`count` worklogs: users x days x issues, 1-8 h each, deterministic."""
    plan: list[PlannedWorklog] = []
    day = 0
    while len(plan) < count:
        work_date = START + timedelta(days=day)
        for i, user in enumerate(users):
            issue = issues[(i + day) % len(issues)]
            seconds = (1 + (i * 7 + day) % 8) * 3600
            key = worklog_key(f"dt-{user}", work_date, issue, "work")
            plan.append(PlannedWorklog(key, f"dt-{user}", work_date, user, issue, seconds))
            if len(plan) == count:
                break
        day += 1
    return plan


def measure_pusher(store: WorklogStore, plan: list[PlannedWorklog], counter: Any) -> dict:
    end = max(p.work_date for p in plan)
    before = counter()
    started = time.perf_counter()
    first = push_window(store, plan, START, end, list_users=[], list_issues=[], last_pushed={})
    push_s = time.perf_counter() - started
    middle = counter()
    started = time.perf_counter()
    again = push_window(store, plan, START, end, list_users=[], list_issues=[], last_pushed={})
    rerun_s = time.perf_counter() - started
    after = counter()
    assert sum(o.action == "created" for o in first) == len(plan), "not every worklog created"
    assert {o.action for o in again} == {"unchanged"}
    return {
        "push_s": push_s,
        "rate": len(plan) / push_s,
        "push_reads": middle["reads"] - before["reads"],
        "rerun_s": rerun_s,
        "rerun_writes": after["writes"] - middle["writes"],
        "rerun_reads": after["reads"] - middle["reads"],
    }


def jira_raw_rate(url: str, issues: list[str], count: int) -> float:
    session = requests.Session()
    session.auth = ("sim-user", "sim-token")
    started = time.perf_counter()
    for i in range(count):
        reply = session.post(
            f"{url}/rest/api/2/issue/{issues[i % len(issues)]}/worklog",
            params={"adjustEstimate": "leave", "notifyUsers": "false"},
            json={
                "started": "2026-05-01T09:00:00.000+0800",
                "timeSpentSeconds": 3600,
                "comment": f"raw {i}",
            },
            timeout=30,
        )
        reply.raise_for_status()
    return count / (time.perf_counter() - started)


def bench_simulator(count: int) -> dict:
    sim = PMSimulator(PMSimConfig(seed=7, employees=200))
    running = sim.serve(port=0)
    try:
        store = PMResource(
            system="jira", base_url=running.url, user="sim-user", token="sim-token"
        ).store()
        assert store is not None
        users = [u.pm_user for u in store.list_users() if u.active]
        issues = sim.issues("jira")
        raw = jira_raw_rate(running.url, issues, min(count, 2000))
        plan = plan_for(users, issues, count)
        result = measure_pusher(store, plan, sim.calls)
        result["raw_rate"] = raw
        return result
    finally:
        running.stop()
        sim.close()


def bench_redmine(count: int) -> dict | None:
    up = subprocess.run([str(ROOT / "scripts" / "redmine"), "up"], capture_output=True, text=True)
    if up.returncode != 0:
        print(f"Redmine did not start; skipping it:\n{up.stderr[-2000:]}")
        return None
    env = dict(
        line.split("=", 1)
        for line in (ROOT / ".redmine" / "env").read_text().splitlines()
        if "=" in line
    )
    from attendance_pipeline.pm.redmine import RedmineWorklogStore
    from attendance_pipeline.pm.redmine_seed import seed_redmine

    url, key = env["REDMINE_URL"], env["REDMINE_ADMIN_KEY"]
    people = [
        {
            "login": f"bench{i}",
            "firstname": "Bench",
            "lastname": str(i),
            "mail": f"bench{i}@bench.example",
            "password": "bench-pass-123",
        }
        for i in range(10)
    ]
    project = f"bench-{int(time.time())}"
    made = seed_redmine(url, key, people, project=project, issues=10)
    users = [str(made["users"][p["login"]]) for p in people]
    issues = [str(i) for i in made["issue_ids"]]
    calls = {"reads": 0, "writes": 0}

    class CountingSession(requests.Session):
        def request(self, method: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
            calls["reads" if str(method).upper() == "GET" else "writes"] += 1
            return super().request(method, *args, **kwargs)

    store = RedmineWorklogStore(url, key, session=CountingSession())
    activity = store.activity_id()
    session = requests.Session()
    session.headers["X-Redmine-API-Key"] = key
    raw_count = min(count, 300)
    started = time.perf_counter()
    for i in range(raw_count):
        reply = session.post(
            f"{url}/time_entries.json",
            json={
                "time_entry": {
                    "issue_id": int(issues[i % len(issues)]),
                    "user_id": int(users[0]),
                    "spent_on": "2026-05-01",
                    "hours": 1,
                    "activity_id": activity,
                    "comments": f"raw {i}",
                }
            },
            timeout=30,
        )
        reply.raise_for_status()
    raw = raw_count / (time.perf_counter() - started)
    result = measure_pusher(store, plan_for(users, issues, count), lambda: dict(calls))
    result["raw_rate"] = raw
    return result


def row(name: str, count: int, r: dict) -> str:
    return (
        f"| {name} | {count:,} | {r['raw_rate']:,.0f}/s | {r['rate']:,.0f}/s | "
        f"{r['rate'] / r['raw_rate']:.2f} | {r['push_reads']} | {r['rerun_writes']} | "
        f"{r['rerun_reads']} ({r['rerun_reads'] / count:.3f}/worklog) | {r['rerun_s']:.2f} s |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worklogs", type=int, default=10_000)
    parser.add_argument("--redmine-worklogs", type=int, default=1_000)
    parser.add_argument("--no-redmine", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    lines = [
        f"Machine: {machine()}; {date.today()}",
        "",
        "| target | worklogs | raw single-client writes | pusher | pusher / raw | reads "
        "during push | re-run writes | re-run reads | re-run time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        row("PM simulator (Jira routes)", args.worklogs, bench_simulator(args.worklogs)),
    ]
    if not args.no_redmine:
        redmine = bench_redmine(args.redmine_worklogs)
        if redmine is not None:
            lines.append(row("Redmine 5 (Debian, SQLite)", args.redmine_worklogs, redmine))
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        marker = "bench_push"
        write_section(marker, f"Worklog push ({marker})", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

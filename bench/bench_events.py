"""Benchmark: metered DingTalk calls and wall time per correction, Stream events vs the nightly
trailing window (issue 13, must-show 1).

For each of the simulator's late 补卡 corrections, the refresh the `stream_refresh` sensor plans
from the correction's two events (`attendance_check_record` + `bpms_instance_change`, via
`refresh.plan_refreshes`) pulls that person's attendance and approvals for the planned days; the
baseline, measured in the same run against the same simulator, is the nightly corrections run:
everyone's last `corrections_days` (7) days. Calls are counted by our client (metered calls
served); wall time is the pulls' (the Dagster run around them is in the e2e test, which asserts
the whole path takes under 2 minutes). Goal: >= 10x fewer metered calls per correction.

Usage: python bench/bench_events.py [--employees 1000 --latency-ms 50 --corrections 5]
"""

from __future__ import annotations

import argparse
import time
from datetime import date, datetime, timedelta

from harness import machine, write_section

from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.dingtalk.client import DingTalkClient, DingTalkOptions
from attendance_pipeline.event_queue import QueuedEvent
from attendance_pipeline.refresh import plan_refreshes
from attendance_pipeline.simulators.dingtalk.server import DingTalkSimConfig, DingTalkSimulator

TODAY = date(2026, 11, 20)
CORRECTIONS_DAYS = 7


def client(url: str) -> DingTalkClient:
    return DingTalkClient(
        DingTalkOptions(
            base_url=url, api_base_url=url, app_key="sim-key", app_secret="sim-secret", today=TODAY
        )
    )


def pull(url: str, users: list[str], start: date, end: date) -> tuple[int, float]:
    c = client(url)
    began = time.perf_counter()
    c.attendance(users, start, end)
    c.approvals(users, start, end)
    return c.metered_total, time.perf_counter() - began


def events_of(approval: dict, born: date) -> list[QueuedEvent]:
    ms = int(datetime(born.year, born.month, born.day, 9, tzinfo=SHANGHAI).timestamp() * 1000)
    day = str(approval["beginTime"])[:10]
    record = {"dataList": [{"userId": approval["userId"], "checkTime": day}]}
    bpms = {"staffId": approval["userId"], "processInstanceId": approval["approveId"]}
    return [
        QueuedEvent(f"check-{approval['approveId']}", "attendance_check_record", ms, record, 1),
        QueuedEvent(f"bpms-{approval['approveId']}", "bpms_instance_change", ms, bpms, 1),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--corrections", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    config = DingTalkSimConfig(
        seed=7,
        employees=args.employees,
        today=TODAY,
        latency_ms=args.latency_ms,
        monthly_quota=10_000_000,
    )
    sim = DingTalkSimulator(config)
    server = sim.serve()
    try:
        yesterday = TODAY - timedelta(days=1)
        everyone = sorted(u["userid"] for u in sim.truth_users())
        late = [
            a
            for a in sim.truth_approvals(TODAY - timedelta(days=12), yesterday - timedelta(days=2))
            if a["bizType"] == 4
        ][: args.corrections]
        rows = []
        for approval in late:
            born = date.fromisoformat(str(approval["beginTime"])[:10]) + timedelta(days=2)
            [refresh], _ = plan_refreshes(events_of(approval, born), yesterday)
            ev_calls, ev_s = pull(server.url, list(refresh.users), refresh.start, refresh.end)
            window = (yesterday - timedelta(days=CORRECTIONS_DAYS - 1), yesterday)
            tw_calls, tw_s = pull(server.url, everyone, *window)
            rows.append((approval["userId"], refresh, ev_calls, ev_s, tw_calls, tw_s))
    finally:
        server.stop()

    n = len(rows)
    ev_calls = sum(r[2] for r in rows) / n
    tw_calls = sum(r[4] for r in rows) / n
    ev_s = sum(r[3] for r in rows) / n
    tw_s = sum(r[5] for r in rows) / n
    lines = [
        f"Machine: {machine()}",
        f"{args.employees} employees, simulator latency {args.latency_ms} ms, {n} late 补卡 "
        f"corrections; trailing window {CORRECTIONS_DAYS} days.",
        "",
        "| correction | refreshed days | event calls | event s | trailing calls | trailing s |",
        "|---|---|---:|---:|---:|---:|",
        *(
            f"| {u} | {r.start}..{r.end} | {ec} | {es:.2f} | {tc} | {ts:.2f} |"
            for u, r, ec, es, tc, ts in rows
        ),
        "",
        f"Per correction: events {ev_calls:.1f} metered calls in {ev_s:.2f} s; trailing window "
        f"{tw_calls:.1f} calls in {tw_s:.2f} s: {tw_calls / ev_calls:.0f}x fewer metered calls, "
        f"{tw_s / ev_s:.0f}x less pull time (goal: >= 10x fewer calls).",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(
            f"bench_events {args.employees}",
            "Stream events vs the trailing window, per correction (bench_events.py)",
            text,
        )


if __name__ == "__main__":
    main()

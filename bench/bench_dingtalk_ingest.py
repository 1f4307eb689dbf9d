"""Benchmark: pulling a week of DingTalk attendance and approvals against the simulator.

Measures our `DingTalkClient` (default options) and a naive one-request-at-a-time client (the same
client with `workers=1`) in one run, each against a fresh in-process simulator, and compares them
with two bounds (see `shared/contracts/dingtalk.md`, "Cost arithmetic"):

- metered lower bound: per 7-day window, per 50-user chunk (sorted userids, as the client chunks),
  max(1, ceil(records_in_chunk / 50)) `attendance/list` calls, plus one `approvals/query` call per
  (50-user chunk x 30-day window). Goal: metered calls / lower bound <= 1.05.
- rate-limit bound: for each API, the calls made / qps; the pipeline runs the attendance asset and
  then the approvals asset, so the bound is the sum. Goal: wall time / bound <= 1.3.

Usage: python bench/bench_dingtalk_ingest.py [--employees 1000 --days 7 --latency-ms 100 --qps 20]
       python bench/bench_dingtalk_ingest.py --quick        # 200 employees, a fast sanity check
The numbers go to stdout and into a section of bench/RESULTS.md (replaced when the same
parameters run again; --no-write skips that).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import write_section

from attendance_pipeline.china_time import windows
from attendance_pipeline.dingtalk.client import (
    APPROVALS_QUERY,
    ATTENDANCE_LIST,
    DingTalkClient,
    DingTalkOptions,
)
from attendance_pipeline.simulators.dingtalk.server import DingTalkSimConfig, DingTalkSimulator

METERED = (ATTENDANCE_LIST, APPROVALS_QUERY)
SEED = 7
TODAY = date(2026, 11, 20)  # a Friday: the 7-day window Fri 13 .. Thu 19 holds one weekend
MONTHLY_QUOTA = 1_000_000  # generous, so the quota never interferes
USERS_PER_CALL = 50
RECORDS_PER_CALL = 50
ATTENDANCE_SPAN_DAYS = 7
APPROVALS_SPAN_DAYS = 30
METERED_GOAL = 1.05
WALL_GOAL = 1.3
RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
MARK = "bench_dingtalk_ingest"


def _option_default(name: str) -> Any:
    for f in dataclasses.fields(DingTalkOptions):
        if f.name == name:
            return f.default
    raise KeyError(name)


@dataclass
class RunResult:
    """What one client did against one fresh simulator."""

    label: str
    name: str  # short, for the table
    description: str  # long, for the notes
    options: dict[str, Any]
    users: int
    records: int
    approvals: int
    roster_s: float
    attendance_s: float
    approvals_s: float
    metered: dict[str, int]  # served metered calls, as the client counted them
    sim_metered: dict[str, int]  # the same, as the simulator counted them
    sim_metered_month: int
    requests: dict[str, int]  # sends of the metered APIs (client attempts)
    sim_requests: dict[str, int]  # the same, as the simulator saw them (incl. rejected)
    rejected_qps: dict[str, int]  # 90018 / QpsLimitForAppkeyAndApi, counted by the simulator
    retries: dict[str, int] = field(default_factory=dict)
    roster_requests: int = 0

    @property
    def pull_s(self) -> float:
        return self.attendance_s + self.approvals_s

    @property
    def metered_total(self) -> int:
        return sum(self.metered.values())

    def bound_s(self, qps: int) -> dict[str, float]:
        """The rate-limit bound per API: the calls this run made, at qps calls per second."""
        return {api: self.metered[api] / qps for api in METERED}

    def mean_request_s(self) -> float:
        """Wall time per request; with one request in flight this is the round-trip time."""
        sent = sum(self.requests.values())
        return self.pull_s / sent if sent else 0.0


@dataclass
class Bounds:
    attendance_calls: int
    approvals_calls: int
    coarse_attendance: int  # the contract's ceil(2*E*D/50), D = workdays
    employees: int
    workdays: int
    rest_days: int
    records: int
    approvals: int

    @property
    def metered(self) -> int:
        return self.attendance_calls + self.approvals_calls


# ---------------------------------------------------------------------------------- measuring


def _sim_config(args: argparse.Namespace) -> DingTalkSimConfig:
    return DingTalkSimConfig(
        seed=args.seed,
        employees=args.employees,
        today=args.today,
        qps=args.qps,
        latency_ms=args.latency_ms,
        monthly_quota=MONTHLY_QUOTA,
    )


def _normalised(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The truth as it looks after a JSON round trip (what the client parsed)."""
    out: list[dict[str, Any]] = json.loads(json.dumps(items, ensure_ascii=False))
    return out


def measure(
    label: str,
    name: str,
    description: str,
    config: DingTalkSimConfig,
    start: date,
    end: date,
    overrides: dict[str, Any],
) -> RunResult:
    """Roster walk, then attendance, then approvals, against a fresh simulator; verified."""
    sim = DingTalkSimulator(config)
    running = sim.serve(port=0)
    try:
        options = DingTalkOptions(
            base_url=running.url,
            api_base_url=running.url,
            app_key=config.app_key,
            app_secret=config.app_secret,
            qps=config.qps,
            today=config.today,
            **overrides,
        )
        client = DingTalkClient(options)
        t0 = time.perf_counter()
        users = client.list_users()
        t1 = time.perf_counter()
        roster_requests = sum(client.attempts.values())
        userids = [str(u["userid"]) for u in users]
        records = client.attendance(userids, start, end)
        t2 = time.perf_counter()
        approvals = client.approvals(userids, start, end)
        t3 = time.perf_counter()
        calls = sim.calls()
    finally:
        running.stop()

    by_api: dict[str, dict[str, int]] = calls["by_api"]
    truth_users = sorted(u["userid"] for u in sim.truth_users())
    if sorted(userids) != truth_users:
        raise AssertionError(f"{label}: roster has {len(userids)} users, truth {len(truth_users)}")
    truth_att = _normalised(sim.truth_attendance(start, end))
    if records != truth_att:
        raise AssertionError(
            f"{label}: attendance differs from the truth ({len(records)} vs {len(truth_att)})"
        )
    truth_appr = sorted(_normalised(sim.truth_approvals(start, end)), key=lambda a: a["approveId"])
    got_appr = sorted(approvals, key=lambda a: a["approveId"])
    if got_appr != truth_appr:
        raise AssertionError(
            f"{label}: approvals differ from the truth ({len(got_appr)} vs {len(truth_appr)})"
        )

    result = RunResult(
        label=label,
        name=name,
        description=description,
        options={k: getattr(options, k) for k in ("workers", "qps", "qps_period_s")},
        users=len(userids),
        records=len(records),
        approvals=len(approvals),
        roster_s=t1 - t0,
        attendance_s=t2 - t1,
        approvals_s=t3 - t2,
        metered={api: client.metered_calls[api] for api in METERED},
        sim_metered={api: by_api.get(api, {}).get("metered", 0) for api in METERED},
        sim_metered_month=int(calls["metered_this_month"]),
        requests={api: client.attempts[api] for api in METERED},
        sim_requests={api: by_api.get(api, {}).get("total", 0) for api in METERED},
        rejected_qps={api: c.get("rejected_qps", 0) for api, c in by_api.items()},
        retries=dict(client.retries),
        roster_requests=roster_requests,
    )
    if result.metered != result.sim_metered or result.metered_total != result.sim_metered_month:
        raise AssertionError(
            f"{label}: metered calls disagree: client {result.metered}, simulator "
            f"{result.sim_metered} (month total {result.sim_metered_month})"
        )
    if result.requests != result.sim_requests:
        raise AssertionError(
            f"{label}: requests disagree: client {result.requests}, sim {result.sim_requests}"
        )
    return result


def lower_bounds(config: DingTalkSimConfig, start: date, end: date) -> Bounds:
    """The contract's cost arithmetic, computed on the simulator's truth."""
    sim = DingTalkSimulator(config)
    userids = sorted({str(u["userid"]) for u in sim.truth_users()})
    chunks = [userids[i : i + USERS_PER_CALL] for i in range(0, len(userids), USERS_PER_CALL)]
    attendance_calls = 0
    records = 0
    for first, last in windows(start, end, ATTENDANCE_SPAN_DAYS):
        for chunk in chunks:
            n = len(sim.truth_attendance(first, last, chunk))
            records += n
            attendance_calls += max(1, math.ceil(n / RECORDS_PER_CALL))
    approvals_calls = len(chunks) * len(list(windows(start, end, APPROVALS_SPAN_DAYS)))
    all_days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    workdays = sum(1 for d in all_days if sim.company.is_workday(d))
    return Bounds(
        attendance_calls=attendance_calls,
        approvals_calls=approvals_calls,
        coarse_attendance=math.ceil(2 * len(userids) * workdays / RECORDS_PER_CALL),
        employees=len(userids),
        workdays=workdays,
        rest_days=len(all_days) - workdays,
        records=records,
        approvals=len(sim.truth_approvals(start, end)),
    )


# ---------------------------------------------------------------------------------- reporting


def _machine() -> dict[str, str]:
    def run(cmd: Sequence[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return ""

    cpus = run(["nproc"]).strip() or str(os.cpu_count())
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    for line in run(["free", "-g"]).splitlines():
        if line.startswith("Mem:"):
            mem = f"{line.split()[1]} GiB"
    return {
        "cpus": cpus,
        "model": model,
        "memory": mem,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


def _ratio(value: float, bound: float) -> float:
    return value / bound if bound else float("inf")


def _verdict(ratio: float, goal: float) -> str:
    return f"{ratio:.3f} ({'met' if ratio <= goal else 'MISSED'}, goal <= {goal})"


def _fmt_counts(counts: dict[str, int]) -> str:
    shown = {k: v for k, v in counts.items() if v}
    return ", ".join(f"{k} {v}" for k, v in sorted(shown.items())) or "0"


def table(runs: list[RunResult], bounds: Bounds, qps: int) -> str:
    """A Markdown table, one column per client."""
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, fn: Any) -> None:
        rows.append((name, [str(fn(r)) for r in runs]))

    row("client", lambda r: r.name)
    row("options", lambda r: ", ".join(f"{k}={v}" for k, v in r.options.items()))
    row("roster walk (not metered)", lambda r: f"{r.roster_s:.2f} s, {r.roster_requests} req")
    row("records / approvals pulled (= truth)", lambda r: f"{r.records} / {r.approvals}")
    row("metered calls: attendance/list", lambda r: r.metered[ATTENDANCE_LIST])
    row("metered calls: approvals/query", lambda r: r.metered[APPROVALS_QUERY])
    row("**metered calls, total**", lambda r: f"**{r.metered_total}**")
    row("metered lower bound", lambda r: bounds.metered)
    row(
        "**metered / lower bound**",
        lambda r: f"**{_verdict(_ratio(r.metered_total, bounds.metered), METERED_GOAL)}**",
    )
    row("requests sent (metered APIs)", lambda r: sum(r.requests.values()))
    row("retries (by reason)", lambda r: _fmt_counts(r.retries))
    row("QPS rejections (sim, all APIs)", lambda r: _fmt_counts(r.rejected_qps))
    row("wall: attendance", lambda r: f"{r.attendance_s:.2f} s")
    row("wall: approvals", lambda r: f"{r.approvals_s:.2f} s")
    row("**wall: attendance + approvals**", lambda r: f"**{r.pull_s:.2f} s**")
    row(
        f"rate-limit bound (calls / {qps} per s)",
        lambda r: f"{sum(r.bound_s(qps).values()):.2f} s",
    )
    row(
        "**wall / rate-limit bound**",
        lambda r: f"**{_verdict(_ratio(r.pull_s, sum(r.bound_s(qps).values())), WALL_GOAL)}**",
    )
    row(
        "wall / bound, attendance only",
        lambda r: f"{_ratio(r.attendance_s, r.bound_s(qps)[ATTENDANCE_LIST]):.3f}",
    )
    row(
        "wall / bound, approvals only",
        lambda r: f"{_ratio(r.approvals_s, r.bound_s(qps)[APPROVALS_QUERY]):.3f}",
    )
    row(
        "wall per request (= round trip if one in flight)",
        lambda r: f"{1000 * r.mean_request_s():.0f} ms",
    )
    if len(runs) == 2:
        ours, naive = runs
        speed = _ratio(naive.pull_s, ours.pull_s)
        rows.append(("**speed-up (naive wall / ours wall)**", [f"**{speed:.2f}x**", "1.00x"]))
    head = "| | " + " | ".join(r.label for r in runs) + " |"
    sep = "|---|" + "---:|" * len(runs)
    body = [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]
    return "\n".join([head, sep, *body])


def findings(runs: list[RunResult], bounds: Bounds, qps: int, latency_ms: int) -> list[str]:
    """Plain statements on the goals; a miss says why, as far as the numbers tell."""
    out: list[str] = []
    naive_rtt = runs[1].mean_request_s() if len(runs) > 1 else latency_ms / 1000
    for r in runs:
        m_ratio = _ratio(r.metered_total, bounds.metered)
        bound = sum(r.bound_s(qps).values())
        w_ratio = _ratio(r.pull_s, bound)
        rejected = sum(r.rejected_qps.values())
        text = (
            f"{r.label}: metered {r.metered_total} / {bounds.metered} = {m_ratio:.3f} "
            f"({'met' if m_ratio <= METERED_GOAL else 'MISSED'}); wall {r.pull_s:.2f} s / "
            f"{bound:.2f} s = {w_ratio:.3f} ({'met' if w_ratio <= WALL_GOAL else 'MISSED'})."
        )
        if m_ratio > METERED_GOAL:
            text += (
                " Metered calls above the bound: pages beyond ceil(records/50) per chunk or "
                "repeated calls (a served call that was retried)."
            )
        if w_ratio > WALL_GOAL:
            workers = int(r.options["workers"])
            period = float(r.options["qps_period_s"])
            ceiling = min(qps / period, workers / naive_rtt) if naive_rtt else qps / period
            text += (
                f" Throughput ceiling of these options: min(qps/qps_period_s = "
                f"{qps / period:.1f}/s, workers/round trip = {workers}/"
                f"{1000 * naive_rtt:.0f} ms = {workers / naive_rtt:.1f}/s) = {ceiling:.1f}/s "
                f"against the bound's {qps}/s"
            )
            if rejected:
                text += (
                    f"; {rejected} QPS rejections, each costing a {_option_default('qps_wait_s')}"
                    " s pause in that worker"
                )
            text += "."
        elif rejected:
            text += f" {rejected} QPS rejections (90018) were retried."
        out.append(text)
    if len(runs) > 1:
        out.append(
            "The goals apply to ours; the naive column is the baseline measured in the same run "
            "(one request in flight, so it is bound by the round trip, not by the rate limit)."
        )
    out.append(
        f"The per-API rate-limit bound is calls / {qps} s; for an API with <= {qps} calls (here "
        f"approvals: {bounds.approvals_calls}) all of them fit in one DingTalk second, so that "
        "part can finish faster than its bound (a ratio below 1 is not an error)."
    )
    return out


def section(
    args: argparse.Namespace,
    runs: list[RunResult],
    bounds: Bounds,
    start: date,
    end: date,
    machine: dict[str, str],
    overrides: dict[str, Any],
) -> str:
    ours = runs[0]
    variant = (
        " — ours with " + ", ".join(f"{k}={v}" for k, v in sorted(overrides.items()))
        if overrides
        else ""
    )
    cmd = " ".join(["python bench/bench_dingtalk_ingest.py", *sys.argv[1:]]).strip()
    lines = [
        f"## DingTalk ingest: {bounds.employees} employees × {args.days} days, "
        f"{args.qps} calls/s per API, {args.latency_ms} ms latency{variant}",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine['cpus']} CPUs (`nproc`), {machine['model']}, {machine['memory']} "
        f"RAM (`free -g` total), Python {machine['python']}, {machine['os']}",
        f"- Command: `{cmd}`",
        f"- Simulator: in-process, seed {args.seed}, today {args.today}, window {start} .. {end} "
        f"({bounds.workdays} workdays, {bounds.rest_days} rest days), {args.qps} calls/s per API "
        f"(fixed 1 s windows), {args.latency_ms} ms latency, monthly quota {MONTHLY_QUOTA:,}, "
        "no faults; a fresh simulator per client",
        f"- Ours: `DingTalkClient` with {', '.join(f'{k}={v}' for k, v in ours.options.items())}"
        + (" (defaults)" if not overrides else ""),
    ]
    if len(runs) > 1:
        lines.append(f"- Naive: {runs[1].description}")
    lines += [
        f"- Lower bound: {bounds.attendance_calls} `attendance/list` calls (sum over 50-user "
        f"chunks × 7-day windows of max(1, ⌈records/50⌉), {bounds.records} records) + "
        f"{bounds.approvals_calls} `approvals/query` calls (50-user chunks × 30-day windows) = "
        f"{bounds.metered}; the contract's coarse ⌈2·E·D/50⌉ = ⌈2·{bounds.employees}·"
        f"{bounds.workdays}/50⌉ = {bounds.coarse_attendance} for attendance (D = workdays)",
        f"- Rate-limit bound: per API, the calls made ÷ {args.qps}/s, summed (attendance asset, "
        "then approvals asset)",
        "",
        table(runs, bounds, args.qps),
        "",
        *(f"- {text}" for text in findings(runs, bounds, args.qps, args.latency_ms)),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--employees", type=int, default=1000)
    p.add_argument("--days", type=int, default=7, help="window length, ending the day before")
    p.add_argument("--latency-ms", type=int, default=100)
    p.add_argument("--qps", type=int, default=20, help="per-API limit (simulator and client)")
    p.add_argument("--quick", action="store_true", help="200 employees: a fast sanity check")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--today", type=date.fromisoformat, default=TODAY, help="simulator clock")
    p.add_argument("--workers", type=int, default=None, help="ours: override the default")
    p.add_argument("--qps-period-s", type=float, default=None, help="ours: override the default")
    p.add_argument("--skip-naive", action="store_true", help="measure ours only")
    p.add_argument("--results", type=Path, default=RESULTS_PATH)
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.employees = 200
    if args.employees < 1 or args.days < 1 or args.qps < 1 or args.latency_ms < 0:
        raise SystemExit("employees, days and qps must be >= 1, latency-ms >= 0")
    end = args.today - timedelta(days=1)
    start = end - timedelta(days=args.days - 1)
    config = _sim_config(args)
    overrides: dict[str, Any] = {}
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.qps_period_s is not None:
        overrides["qps_period_s"] = args.qps_period_s

    print(
        f"DingTalk ingest benchmark: {args.employees} employees, {start} .. {end}, "
        f"qps {args.qps}, latency {args.latency_ms} ms",
        flush=True,
    )
    bounds = lower_bounds(config, start, end)
    print(
        f"lower bound: {bounds.attendance_calls} attendance + {bounds.approvals_calls} approvals "
        f"= {bounds.metered} metered calls ({bounds.records} records, {bounds.workdays} "
        f"workdays; coarse ceil(2*E*D/50) = {bounds.coarse_attendance})",
        flush=True,
    )
    ours_name = "`DingTalkClient`" + (" (overridden options)" if overrides else " (defaults)")
    runs = [measure("ours", ours_name, ours_name, config, start, end, overrides)]
    print(f"ours: pull {runs[0].pull_s:.2f} s", flush=True)
    if not args.skip_naive:
        naive = measure(
            "naive",
            "`DingTalkClient`, `workers=1`",
            "the same `DingTalkClient` with `workers=1`: one request in flight at a time "
            "(still 50-user chunks and 50-record pages, same limiter)",
            config,
            start,
            end,
            {"workers": 1},
        )
        runs.append(naive)
        print(f"naive: pull {naive.pull_s:.2f} s", flush=True)

    text = section(args, runs, bounds, start, end, _machine(), overrides)
    print()
    print(text)
    if not args.no_write:
        key = f"e{bounds.employees}-d{args.days}-q{args.qps}-l{args.latency_ms}" + "".join(
            f"-{k}={v}" for k, v in sorted(overrides.items())
        )
        write_section(f"{MARK}:{key}", None, text, args.results)
        print(f"\nwritten to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

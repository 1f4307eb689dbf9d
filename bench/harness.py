"""Shared by bench_backfill.py and bench_recompute.py: measuring a fresh child process (wall time,
peak RSS and CPU time from `os.wait4`, so the numbers are that process's alone), Dagster run and
step timings from the instance, and the marked-section writer for RESULTS.md.

Not a benchmark itself; the scripts import it from their own folder.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
ROOT = Path(__file__).resolve().parent.parent


def git_source(commit: str, path: str) -> str:
    """The text of `path` at `commit` (a baseline from history); a clear exit if unreadable."""
    try:
        return subprocess.run(
            ["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True, text=True,
            check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"cannot read {path} at {commit} (a shallow clone?): {exc}") from exc


def machine() -> str:
    """The machine line, in bench_effective_hours.py's format."""
    cpu = "unknown CPU"
    try:
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    try:
        lines = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout.split("\n")
        memory = f"{lines[1].split()[1]} GiB RAM"
    except (OSError, IndexError):
        memory = "? GiB RAM"
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


@dataclass
class ChildResult:
    """One measured child process: what it printed as JSON on its last stdout line, and its
    resource use as the kernel reports it to the parent (`wait4`)."""

    result: dict[str, Any]
    wall_s: float
    peak_rss_mib: float
    cpu_s: float
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)


def run_child(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> ChildResult:
    """Run `python <args>` in a fresh process; stderr (Dagster's log) goes to `log`.

    Peak RSS is the child's `ru_maxrss` from `os.wait4` on its own pid, so neither the parent nor
    the simulator process is counted; wall time is from spawn to exit (imports included).
    """
    out_path = log.with_suffix(".out")
    with open(out_path, "w") as out, open(log, "w") as err:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, *args], stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    lines = out_path.read_text().strip().splitlines()
    if child.returncode != 0 or not lines:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise SystemExit(f"child {args[:3]} failed (exit {child.returncode}); log {log}:\n{tail}")
    return ChildResult(
        result=json.loads(lines[-1]),
        wall_s=wall,
        peak_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        cpu_s=usage.ru_utime + usage.ru_stime,
        log=log,
    )


def child_env(**values: str) -> dict[str, str]:
    """This environment without DingTalk credentials or a stray DAGSTER_HOME, plus `values`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DINGTALK_", "PM_", "ATTENDANCE_", "DAGSTER_"))
    }
    env["PYTHONWARNINGS"] = "ignore"
    env.update(values)
    return env


def run_timings(instance: Any) -> dict[str, Any]:
    """Per job: runs and their summed duration; per step (asset): summed duration; from the
    instance's run records and step stats (every run in this DAGSTER_HOME)."""
    jobs: dict[str, dict[str, float]] = defaultdict(lambda: {"runs": 0, "seconds": 0.0})
    steps: dict[str, float] = defaultdict(float)
    statuses: dict[str, int] = defaultdict(int)
    for record in instance.get_run_records():
        run = record.dagster_run
        statuses[run.status.value] += 1
        job = jobs[run.job_name]
        job["runs"] += 1
        if record.start_time and record.end_time:
            job["seconds"] += record.end_time - record.start_time
        for stat in instance.get_run_step_stats(run.run_id):
            if stat.start_time and stat.end_time:
                steps[f"{run.job_name}:{stat.step_key}"] += stat.end_time - stat.start_time
    longest = longest_run(instance, "sync")
    return {
        "jobs": dict(jobs),
        "steps": dict(steps),
        "statuses": dict(statuses),
        "longest_sync_run": segments(instance, longest) if longest else {},
    }


def segments(instance: Any, run_id: str) -> dict[str, float]:
    """Where one run's time went, from its event log: each gap between consecutive events is
    charged to the event that ends it: `step: compute`, `step: check <name>`, `step: load
    <input>`, `step: write + materialization/check events` (the IO manager's Parquet writes
    land before the first materialization event), `planning events`."""
    totals: dict[str, float] = defaultdict(float)
    records = instance.all_logs(run_id)
    previous = records[0].timestamp if records else 0.0
    for record in records:
        event = record.dagster_event
        kind = event.event_type_value if event is not None else "log"
        step = record.step_key or "run"
        data = event.event_specific_data if event is not None else None
        if kind in ("PIPELINE_START", "RUN_START") or kind.endswith("_PLANNED"):
            label = "planning events (one per asset/check and partition)"
        elif kind == "log":
            label = f"{step}: compute"  # a log line inside the asset body
        elif kind == "STEP_OUTPUT":
            name = data.step_output_handle.output_name  # type: ignore[union-attr]
            label = f"{step}: compute" if name == "result" else f"{step}: check {name}"
        elif kind == "LOADED_INPUT":
            label = f"{step}: load {data.input_name}"  # type: ignore[union-attr]
        elif kind == "HANDLED_OUTPUT":
            label = f"{step}: write partitions"
        elif kind in ("ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION"):
            label = f"{step}: write + materialization/check events"
        else:
            label = f"{step}: other ({kind.lower()})"
        totals[label] += record.timestamp - previous
        previous = record.timestamp
    return dict(totals)


def longest_run(instance: Any, job: str) -> str | None:
    best, best_s = None, -1.0
    for record in instance.get_run_records():
        if record.dagster_run.job_name != job or not (record.start_time and record.end_time):
            continue
        if record.end_time - record.start_time > best_s:
            best, best_s = record.dagster_run.run_id, record.end_time - record.start_time
    return best


def step_table(steps: dict[str, float], top: int = 8) -> str:
    """The slowest steps, as `name s` pairs for a table cell."""
    ranked = sorted(steps.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{name.split(':', 1)[1]} {seconds:.1f} s" for name, seconds in ranked)


def write_section(marker: str, title: str | None, text: str, path: Path = RESULTS) -> None:
    """Replace `marker`'s section in RESULTS.md, or append it; text outside markers is kept.
    With no `title` the text brings its own heading."""
    begin, end = f"<!-- {marker} begin -->", f"<!-- {marker} end -->"
    heading = f"## {title}\n\n" if title else ""
    block = f"{begin}\n{heading}{text.rstrip()}\n{end}"
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _m: block, current)
    else:
        updated = current.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(updated, encoding="utf-8")


def top_segments(found: dict[str, float], top: int = 8) -> str:
    ranked = sorted(found.items(), key=lambda kv: -kv[1])[:top]
    total = sum(found.values()) or 1.0
    return "; ".join(
        f"{label} {seconds:.1f} s ({seconds / total:.0%})" for label, seconds in ranked
    )


def mib(value: float) -> str:
    return f"{value:,.0f} MiB"

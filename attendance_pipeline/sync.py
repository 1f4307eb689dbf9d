"""`attendance-pipeline sync`: every asset for a range of days, as one run, with a summary."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

import dagster as dg
import pandas as pd

from attendance_pipeline.assets.partitions import MAX_DAYS_PER_RUN
from attendance_pipeline.china_time import today_in_china
from attendance_pipeline.dagster_api import execute_uncaptured, partition_range_tags
from attendance_pipeline.finance import first_open_after, locked_months, month_of
from attendance_pipeline.holdback import open_holds
from attendance_pipeline.pm.push import ACTIONS
from attendance_pipeline.settings import Settings
from attendance_pipeline.vocabulary import Blocks
from attendance_pipeline.warehouse import connect

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_TEMPLATE = REPO_ROOT / "deploy" / "dagster.yaml"


class SyncUsageError(ValueError):
    """A bad date range or argument: nothing was run."""


@dataclass
class AssetSummary:
    """What one asset wrote in the run."""

    rows: int = 0
    has_rows: bool = False
    metered_calls: int = 0
    partitions: int = 0


EXIT_OK, EXIT_FAILED, EXIT_HELD_BACK = 0, 1, 3


@dataclass
class SyncSummary:
    """The outcome of one sync run."""

    run_id: str
    success: bool
    assets: dict[str, AssetSummary] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # Checks that failed with ERROR severity: a systemic break that stopped the run.
    failed_checks: list[str] = field(default_factory=list)
    # Checks that failed with WARN severity: employee-days held back, or warnings.
    warned_checks: list[str] = field(default_factory=list)
    check_descriptions: dict[str, str] = field(default_factory=dict)
    worklogs: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    published_hours: bool = False
    window: tuple[date, date] | None = None
    # Employee-days of the window still held back after the run (`held_back` rows).
    held: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def metered_calls(self) -> int:
        return sum(a.metered_calls for a in self.assets.values())

    @property
    def exit_code(self) -> int:
        """0: everything flowed; 3: the run succeeded but employee-days are held back; 1: a
        systemic gate blocked or a step failed."""
        if not self.success:
            return EXIT_FAILED
        return EXIT_HELD_BACK if len(self.held) else EXIT_OK

    def render(self) -> str:
        lines = [f"run {self.run_id}: {'succeeded' if self.success else 'FAILED'}"]
        for name, asset in self.assets.items():
            rows = f"{asset.rows:>9} rows" if asset.has_rows else f"{'':>14}"
            lines.append(
                f"  {name:<20} {rows}  {asset.partitions:>4} partitions"
                + (f"  {asset.metered_calls} metered calls" if asset.metered_calls else "")
            )
        lines.append(f"  metered DingTalk calls: {self.metered_calls}")
        if self.worklogs:
            counts = ", ".join(f"{n} {action}" for action, n in self.worklogs.items())
            lines.append(
                f"  worklogs{' (dry run, nothing written)' if self.dry_run else ''}: {counts}"
            )
        lines.extend(f"  failed: {failure}" for failure in self.failures)
        for check in self.failed_checks:
            lines.append(f"  BLOCKED by {check}: {self.check_descriptions.get(check, '')}")
        if self.failed_checks and self.window:
            first, last = self.window
            lines.append(
                "  nothing was published or pushed for these days (finance keeps what it had). "
                "Fix the cause named above, then re-run: attendance-pipeline sync "
                f"--start {first} --end {last}"
            )
        if len(self.held):
            lines.extend(held_back_block(self.held))
        return "\n".join(lines)


def held_back_block(held: pd.DataFrame, people_shown: int = 5) -> list[str]:
    """What a person can act on: per check, how many people and days, the first few people with
    their reason and fix, and where to see the rest."""
    lines = [
        f"  held back: {len(held)} employee-day(s) of {held['userid'].nunique()} people "
        "(everything else flowed)"
    ]
    for check, rows in held.groupby("check", sort=True):
        blocks = set(rows["blocks"])
        delivery_only = blocks == {Blocks.DELIVERY.value}
        kept = "worklogs wait, hours are paid" if delivery_only else "not published yet"
        lines.append(f"  {check}: {len(rows)} day(s) of {rows['userid'].nunique()} people ({kept})")
        people = rows.sort_values("work_date").groupby("userid", sort=False)
        for shown, (userid, days) in enumerate(people):
            if shown == people_shown:
                lines.append(f"    … and {rows['userid'].nunique() - people_shown} more")
                break
            first, last = days["work_date"].min(), days["work_date"].max()
            span = f"{first:%Y-%m-%d}" + (f"..{last:%Y-%m-%d}" if last != first else "")
            name = days["name"].dropna().iloc[0] if days["name"].notna().any() else userid
            lines.append(
                f"    {name} ({userid}) {span}, {len(days)} day(s): {days['reason'].iloc[0]}"
            )
            lines.append(f"      fix: {days['fix'].iloc[0]}")
    lines.append(
        "  all of them: SELECT * FROM held_back WHERE released_at IS NULL (warehouse.duckdb, "
        "read-only), or in the Dagster UI the check's page (Assets → the asset → Checks). "
        "Fix the cause and re-run the days: they are released and flow."
    )
    return lines


def parse_range(
    start: str, end: str, first_partition: date, today: date | None = None
) -> tuple[date, date]:
    """Validate a CLI date range; a mistake names the argument and what is allowed."""
    parsed = []
    for flag, text in (("--start", start), ("--end", end)):
        try:
            parsed.append(date.fromisoformat(text))
        except ValueError:
            raise SyncUsageError(f"{flag} {text!r} is not a date in YYYY-MM-DD form") from None
    first, last = parsed
    today = today or today_in_china()
    if last < first:
        raise SyncUsageError(f"--end {last} is before --start {first}")
    if first < first_partition:
        raise SyncUsageError(
            f"--start {first} is before the first partition {first_partition} "
            "(set ATTENDANCE_START_DATE to go further back)"
        )
    if last >= today:
        raise SyncUsageError(
            f"--end {last} has not ended yet in China (today is {today}); DingTalk publishes a "
            f"day's results after it ends, so the latest day to sync is {today - timedelta(1)}"
        )
    return first, last


def prepare_dagster_home(default: Path) -> Path:
    """`DAGSTER_HOME` (else `default`), created with the project's `deploy/dagster.yaml`."""
    home = Path(os.environ.get("DAGSTER_HOME") or default).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(INSTANCE_TEMPLATE, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def dagster_instance() -> dg.DagsterInstance:
    """The persistent instance (`DAGSTER_HOME`, default `./.dagster_home`)."""
    prepare_dagster_home(Path(".dagster_home"))
    return dg.DagsterInstance.get()


def run_sync(
    defs: dg.Definitions,
    start: date,
    end: date,
    *,
    instance: dg.DagsterInstance | None = None,
    dry_run: bool = False,
    out: TextIO = sys.stdout,
    max_days: int | None = MAX_DAYS_PER_RUN,
) -> SyncSummary:
    """Materialise every daily asset for start..end, one run per calendar month of the range
    (at most `max_days` days each; None: the whole range as one run), then the payroll months it
    touched (and the open month that receives adjustments for a locked one). A run that fails
    stops the sync: the months after it are not started, and the summary says where to resume."""
    days = (end - start).days + 1
    out.write(f"sync {start}..{end} ({days} days){' dry run' if dry_run else ''}\n")
    out.flush()
    chunks = list(month_windows(start, end, max_days)) if max_days else [(start, end)]
    summary: SyncSummary | None = None
    for index, (first, last) in enumerate(chunks, start=1):
        if len(chunks) > 1:
            out.write(f"  run {index}/{len(chunks)}: {first}..{last}\n")
            out.flush()
        summary = run_job(
            defs.resolve_job_def("sync"),
            instance,
            summary,
            tags={
                **partition_range_tags(first.isoformat(), last.isoformat()),
                "attendance/dry_run": str(dry_run).lower(),
            },
        )
        if not summary.success and index < len(chunks):
            summary.failures.append(
                f"stopped after the run for {first}..{last} failed; resume with "
                f"--start {last + timedelta(days=1)} --end {end} once it is fixed"
            )
            break
    assert summary is not None
    summary.window = (start, end)
    # Finance never waits for the PM side: payroll is built whenever hours were published, even
    # when a later step (the push, the reconciliation) failed.
    if summary.published_hours:
        for month in payroll_months(defs, start, end):
            run_job(defs.resolve_job_def("payroll"), instance, summary, partition_key=f"{month}-01")
    if summary.failed_checks:
        summary.success = False
    summary.held = held_back_in(defs, start, end)
    out.write(summary.render() + "\n")
    return summary


@dataclass
class DeploymentSummary:
    """The outcome of one sync of every organisation of a deployment (`orgs.yaml`)."""

    summaries: dict[str, SyncSummary] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # organisation -> why it did not run

    @property
    def exit_code(self) -> int:
        """The worst organisation's: 1 if any failed, else 3 if any held days back, else 0."""
        codes = [s.exit_code for s in self.summaries.values()]
        codes += [EXIT_FAILED] * len(self.errors)
        if EXIT_FAILED in codes:
            return EXIT_FAILED
        return EXIT_HELD_BACK if EXIT_HELD_BACK in codes else EXIT_OK

    def render(self) -> str:
        lines = ["organisations:"]
        for org, summary in self.summaries.items():
            state = "succeeded" if summary.success else "FAILED"
            held = f", {len(summary.held)} employee-days held back" if len(summary.held) else ""
            lines.append(f"  {org:<16} {state}{held}")
        lines.extend(
            f"  {org:<16} FAILED before running: {why}" for org, why in self.errors.items()
        )
        return "\n".join(lines)


def sync_organisations(
    organisations: Sequence[Settings],
    build: Callable[[Settings], dg.Definitions],
    start: date,
    end: date,
    *,
    instance: dg.DagsterInstance | None = None,
    dry_run: bool = False,
    out: TextIO | None = None,
    check: Callable[[Settings], None] | None = None,
) -> DeploymentSummary:
    """`run_sync` for each organisation in turn, each on its own definitions (`build`): one
    that fails (a rejected secret, its quota spent, a broken config folder) is reported and the
    others still run. `check` (e.g. of the config folder) runs first, with the same effect."""
    out = out if out is not None else sys.stdout
    deployment = DeploymentSummary()
    for settings in organisations:
        org = settings.org_id or "default"
        out.write(f"== organisation {org}\n")
        out.flush()
        try:
            if check is not None:
                check(settings)
            defs = build(settings)
        except (ValueError, OSError, dg.DagsterError) as exc:  # ConfigError is a ValueError
            deployment.errors[org] = f"{type(exc).__name__}: {exc}"
            out.write(f"  not run: {deployment.errors[org]}\n")
            continue
        deployment.summaries[org] = run_sync(
            defs, start, end, instance=instance, dry_run=dry_run, out=out
        )
    out.write(deployment.render() + "\n")
    return deployment


def month_windows(start: date, end: date, max_days: int) -> Iterator[tuple[date, date]]:
    """start..end cut at the first of each month, and into pieces of at most `max_days`."""
    cursor = start
    while cursor <= end:
        next_month = (cursor.replace(day=1) + timedelta(days=32)).replace(day=1)
        stop = min(end, next_month - timedelta(days=1), cursor + timedelta(days=max_days - 1))
        yield cursor, stop
        cursor = stop + timedelta(days=1)


def held_back_in(defs: dg.Definitions, start: date, end: date) -> pd.DataFrame:
    """The window's employee-days held back now (read-only; empty without a warehouse)."""
    path = _warehouse_path(defs)
    if path is None or not path.exists():
        return pd.DataFrame()
    with connect(path, read_only=True) as con:
        return open_holds(con, start, end)


def _warehouse_path(defs: dg.Definitions) -> Path | None:
    warehouse = (defs.resources or {}).get("warehouse")
    return Path(getattr(warehouse, "path", "")) if warehouse is not None else None


QUIET_INFO = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def run_job(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance | None,
    into: SyncSummary | None = None,
    **execute: Any,
) -> SyncSummary:
    """Run `job` in process (console at INFO, failures reported rather than raised) and add its
    rows, metered calls, worklogs, checks and failures to `into` (else a new summary)."""
    result = execute_uncaptured(job, instance, run_config=QUIET_INFO, **execute)
    summary = into if into is not None else SyncSummary(run_id=result.run_id, success=True)
    summary.success = summary.success and result.success
    _collect(summary, result)
    return summary


def payroll_months(defs: dg.Definitions, start: date, end: date) -> list[str]:
    """Months of start..end, plus the first open month after each locked one among them."""
    months: list[str] = []
    cursor = start.replace(day=1)
    while cursor <= end:
        months.append(month_of(cursor))
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    path = _warehouse_path(defs)
    if path is not None and path.exists():
        with connect(path, read_only=True) as con:
            locked = locked_months(con)
        extra = {first_open_after(m, locked) for m in months if m in locked}
        months = sorted(set(months) | extra)
    return months


def _collect(summary: SyncSummary, result: dg.ExecuteInProcessResult) -> None:
    run_metered: dict[str, int] = {}  # asset -> this run's metered calls
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            name = materialization.asset_key.path[-1]  # an organisation's keys are <org>/<name>
            metadata: dict[str, Any] = {k: v.value for k, v in materialization.metadata.items()}
            asset = summary.assets.setdefault(name, AssetSummary())
            asset.partitions += 1
            # Row and worklog counts are per partition (they add up); metered calls are counted
            # per run and attached to every partition of a step, so keep one per run (and add
            # up the runs of a sync that took several).
            if "rows" in metadata:
                asset.has_rows = True
                asset.rows += int(metadata["rows"])
            if name == "effective_hours" and metadata.get("published"):
                summary.published_hours = True
            calls = int(metadata.get("metered_calls", 0))
            run_metered[name] = max(run_metered.get(name, 0), calls)
            if name == "pushed_worklogs" and "created" in metadata:
                summary.dry_run = bool(metadata.get("dry_run", False))
                for action in ACTIONS:
                    summary.worklogs[action] = summary.worklogs.get(action, 0) + int(
                        metadata.get(action, 0)
                    )
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            failure = event.step_failure_data
            error = failure.error if failure else None
            while error is not None and error.cause is not None:
                error = error.cause  # the root cause is what a person can act on
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                continue  # the failed check itself is reported, with its cause (BLOCKED by …)
            message = error.message.strip() if error else "failed"
            summary.failures.append(f"{event.step_key}: {message}")
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if evaluation is not None and not getattr(evaluation, "passed", True):
                key = evaluation.asset_key.to_user_string()  # type: ignore[union-attr]
                label = f"{key}:{evaluation.check_name}"  # type: ignore[union-attr]
                description = getattr(evaluation, "description", None)
                summary.check_descriptions[label] = description or ""
                if getattr(evaluation, "severity", None) == dg.AssetCheckSeverity.WARN:
                    summary.warned_checks.append(label)
                else:
                    summary.failed_checks.append(label)
    for name, calls in run_metered.items():
        summary.assets[name].metered_calls += calls

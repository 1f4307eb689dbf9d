"""Effective hours per employee per day, in the lake and in the DuckDB warehouse.

The lake holds every derived row (the audit copy); the warehouse's `effective_hours` holds only
the employee-days that passed their gates (the published copy finance reads). A held-back
employee-day keeps what was published before and is listed in `held_back`."""

from collections.abc import Iterator, Mapping
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from attendance_pipeline.assets import holds
from attendance_pipeline.assets import metadata as meta
from attendance_pipeline.assets.partitions import BACKFILL, DAILY, window_dates
from attendance_pipeline.checks import hours as hours_gates
from attendance_pipeline.checks.specs import check_result, specs_for
from attendance_pipeline.holdback import publish_effective_hours
from attendance_pipeline.hours.engine import derive_effective_hours
from attendance_pipeline.reports import write_report
from attendance_pipeline.resources.config import ConfigFolder
from attendance_pipeline.resources.warehouse import WarehouseResource
from attendance_pipeline.schemas import EFFECTIVE_HOURS, to_table

# Day types decided without a holiday calendar: DingTalk's schedule, or Monday–Friday for
# people who do not punch (docs/rules.md).
UNCOVERED_SOURCES = ("dingtalk_schedule", "weekdays")


@dg.asset(
    partitions_def=DAILY,
    backfill_policy=BACKFILL,
    pool="warehouse",
    io_manager_key="lake_io_manager",
    metadata=meta.lake_metadata("work_date"),
    group_name="hours",
    kinds={"pandas", "duckdb", "parquet"},
    check_specs=specs_for("effective_hours"),
    description="Effective hours: one row per active employee per day, with status, rule and "
    "a readable explanation (docs/rules.md).",
)
def effective_hours(
    context: dg.AssetExecutionContext,
    company_config: ConfigFolder,
    warehouse: WarehouseResource,
    dingtalk_roster: pd.DataFrame,
    raw_attendance: pd.DataFrame,
    raw_approvals: pd.DataFrame,
) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
    start, end = window_dates(context)
    rules = company_config.rules()
    overrides, calendar = company_config.overrides(), company_config.calendar()
    quality = company_config.quality()
    inputs = (dingtalk_roster, raw_attendance, raw_approvals)
    frame = derive_effective_hours(*inputs, overrides, rules, calendar)
    verdict = hours_gates.judge_hours(
        frame, *inputs, overrides, rules, calendar, start, end, quality
    )
    if verdict.broken_inputs:  # a recompute of stored partitions that DingTalk served broken
        raise dg.Failure(
            description="refusing to derive hours: the stored raw layers are broken ("
            + "; ".join(r.summary() for r in verdict.broken_inputs)
            + "). Re-sync the days from DingTalk.",
            allow_retries=False,
        )
    held = verdict.held
    if verdict.systemic:
        summaries = "; ".join(r.summary() for r in verdict.systemic)
        context.log.error(f"effective_hours not published (systemic): {summaries}")
        published = 0
    else:
        table = to_table(frame, EFFECTIVE_HOURS, "asset effective_hours")
        with warehouse.connect() as con:
            published = holds.publish_and_record(
                context,
                con,
                verdict.judged,
                start,
                end,
                publish=lambda c: publish_effective_hours(c, table, start, end, held),
                checked={verdict.valid.name: verdict.sample},
                names=holds.names_of(dingtalk_roster),
            )
    uncovered = sorted(
        {str(d) for d in frame.loc[frame["calendar_source"].isin(UNCOVERED_SOURCES), "work_date"]}
    )
    if uncovered:
        context.log.warning(
            f"no holiday calendar covers {len(uncovered)} day(s) ({uncovered[0]}…); day types "
            "follow DingTalk's schedule. Add config/calendar.csv for that year."
        )
    meta.record(
        context,
        frame,
        "work_date",
        window={
            "statuses": meta.value_counts(frame, "status"),
            "rules_version": rules.version,
            "days_without_calendar": len(uncovered),
            "published": not verdict.systemic,
            "published_rows": published,
            "held_back_employee_days": len(held),
            "preview": meta.preview(
                frame[frame["status"] != "normal"],
                ["work_date", "userid", "name", "status", "effective_hours", "explanation"],
            ),
            **_weekly_reports(frame, start, end, warehouse, meta.department_names(context)),
        },
        daily={
            "rows": meta.rows,
            "effective_hours_total": meta.total("effective_hours"),
            "overtime_hours_total": meta.total("overtime_hours"),
        },
    )
    yield dg.Output(frame)
    for result in verdict.checks:
        yield check_result("effective_hours", result)


def _weekly_reports(
    frame: pd.DataFrame,
    start: date,
    end: date,
    warehouse: WarehouseResource,
    names: Mapping[int, str],
) -> dict[str, dg.MetadataValue]:
    """Refresh the team-hours report of every ISO week the window touches (for PMs)."""
    data_dir = warehouse.data_dir()
    links: dict[str, dg.MetadataValue] = {}
    first = start - timedelta(days=start.weekday())
    mondays = [first + timedelta(days=7 * i) for i in range((end - first).days // 7 + 1)]
    with warehouse.connect() as con:  # one connection for every week of the window
        weeks = [
            con.execute(
                "SELECT * FROM effective_hours WHERE work_date BETWEEN ? AND ?",
                [monday, monday + timedelta(days=6)],
            ).df()
            for monday in mondays
        ]
    for monday, week in zip(mondays, weeks, strict=True):
        iso = monday.isocalendar()
        path = data_dir / "reports" / f"team-hours-{iso[0]}-W{iso[1]:02d}.html"
        title = f"Team hours, week of {monday} ({monday}..{monday + timedelta(days=6)})"
        write_report(path, week, title, names)
        links[f"report_{iso[0]}_W{iso[1]:02d}"] = dg.MetadataValue.path(str(path))
    return links

"""Effective hours per employee per day, in the lake and in the DuckDB warehouse."""

import dagster as dg
import pandas as pd

from attendance_pipeline.assets.partitions import DAILY, window_dates
from attendance_pipeline.hours.engine import derive_effective_hours
from attendance_pipeline.resources.config import ConfigFolder
from attendance_pipeline.resources.warehouse import WarehouseResource
from attendance_pipeline.schemas import EFFECTIVE_HOURS, to_table
from attendance_pipeline.warehouse import replace_rows


@dg.asset(
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="warehouse",
    io_manager_key="lake_io_manager",
    metadata={"partition_column": "work_date"},
    group_name="hours",
    kinds={"pandas", "duckdb", "parquet"},
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
) -> pd.DataFrame:
    start, end = window_dates(context)
    rules = company_config.rules()
    frame = derive_effective_hours(
        dingtalk_roster,
        raw_attendance,
        raw_approvals,
        company_config.overrides(),
        rules,
        company_config.calendar(),
    )
    table = to_table(frame, EFFECTIVE_HOURS, "asset effective_hours")
    with warehouse.connect() as con:
        replace_rows(
            con,
            "effective_hours",
            EFFECTIVE_HOURS,
            table,
            "work_date BETWEEN ? AND ?",
            [start, end],
        )
    uncovered = sorted(
        {str(d) for d in frame.loc[frame["calendar_source"] == "dingtalk_schedule", "work_date"]}
    )
    if uncovered:
        context.log.warning(
            f"no holiday calendar covers {len(uncovered)} day(s) ({uncovered[0]}…); day types "
            "follow DingTalk's schedule. Add config/calendar.csv for that year."
        )
    context.add_output_metadata(
        {
            "rows": len(frame),
            "effective_hours_total": float(frame["effective_hours"].sum()),
            "overtime_hours_total": float(frame["overtime_hours"].sum()),
            "statuses": dg.MetadataValue.json(
                {str(k): int(v) for k, v in frame["status"].value_counts().items()}
            ),
            "rules_version": rules.version,
            "days_without_calendar": len(uncovered),
            "preview": dg.MetadataValue.md(
                frame[frame["status"] != "normal"][
                    ["work_date", "userid", "name", "status", "effective_hours", "explanation"]
                ]
                .head(10)
                .to_markdown(index=False)
            ),
        }
    )
    return frame

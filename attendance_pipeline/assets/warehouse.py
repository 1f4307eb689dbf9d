"""Warehouse views over the raw lake layers (`roster`, `raw_attendance`, `raw_approvals`)."""

from pathlib import Path

import dagster as dg

from attendance_pipeline.assets.partitions import DAILY, window_dates
from attendance_pipeline.resources.warehouse import WarehouseResource
from attendance_pipeline.warehouse import refresh_lake_views, scalar


@dg.asset(
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="warehouse",
    deps=["dingtalk_roster", "raw_attendance", "raw_approvals"],
    group_name="warehouse",
    kinds={"duckdb"},
    description="DuckDB views over the raw lake partitions, for finance and the data team.",
)
def lake_views(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    start, end = window_dates(context)
    with warehouse.connect() as con:
        totals = refresh_lake_views(con, Path(warehouse.lake_dir))
        in_window = {
            view: int(
                scalar(
                    con, f"SELECT count(*) FROM {view} WHERE {column} BETWEEN ? AND ?", [start, end]
                )
            )
            for view, column in (
                ("roster", "snapshot_date"),
                ("raw_attendance", "work_date"),
                ("raw_approvals", "work_date"),
            )
            if view in totals
        }
    return dg.MaterializeResult(
        metadata={
            **{f"{view}_rows_total": rows for view, rows in totals.items()},
            **{f"{view}_rows_in_window": rows for view, rows in in_window.items()},
        }
    )

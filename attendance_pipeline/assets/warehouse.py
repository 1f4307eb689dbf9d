"""The warehouse stage: views over the raw lake layers (`roster`, `raw_attendance`,
`raw_approvals`), and the warehouse tables that record what the other stages did, declared so the
graph shows who writes them and the UI shows their columns (`held_back`, `worklog_ledger`,
`sync_errors`; each write is reported as a materialization by the step that made it)."""

import dagster as dg
from upath import UPath

from attendance_pipeline.assets import metadata as meta
from attendance_pipeline.assets.partitions import BACKFILL, DAILY, window_dates
from attendance_pipeline.holdback import HELD_BACK
from attendance_pipeline.resources.warehouse import WarehouseResource
from attendance_pipeline.schemas import SYNC_ERRORS, WORKLOG_LEDGER
from attendance_pipeline.warehouse import refresh_lake_views, scalar

TABLES = {
    "held_back": (
        HELD_BACK,
        ["effective_hours", "user_mapping", "worklog_plan"],
        "Employee-days a gate held back, with reason and fix, until a run releases them "
        "(docs/holdback.md).",
    ),
    "worklog_ledger": (
        WORKLOG_LEDGER,
        ["pushed_worklogs"],
        "Every push outcome per worklog key (created, updated, deleted, unchanged, conflict, "
        "failed), dry runs marked.",
    ),
    "sync_errors": (
        SYNC_ERRORS,
        ["effective_hours", "user_mapping", "worklog_plan", "pushed_worklogs"],
        "Every failed external call, refused push, newly held employee-day and failed run "
        "(the run-failure sensor), without secrets.",
    ),
}

warehouse_tables = [
    dg.AssetSpec(
        name,
        group_name="warehouse",
        deps=writers,
        kinds={"duckdb"},
        description=description,
        metadata=meta.table_metadata(schema, f"warehouse.duckdb:{name}"),
    )
    for name, (schema, writers, description) in TABLES.items()
]


@dg.asset(
    partitions_def=DAILY,
    backfill_policy=BACKFILL,
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
        totals = refresh_lake_views(con, UPath(warehouse.lake_dir))
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

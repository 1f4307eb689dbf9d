"""Payroll months for finance, with period locks and adjustment rows."""

from pathlib import Path

import dagster as dg

from attendance_pipeline import finance
from attendance_pipeline.assets import metadata as meta
from attendance_pipeline.assets.partitions import MONTHLY
from attendance_pipeline.reports import write_report
from attendance_pipeline.resources.config import ConfigFolder
from attendance_pipeline.resources.warehouse import WarehouseResource
from attendance_pipeline.warehouse import scalar


@dg.asset(
    partitions_def=MONTHLY,
    pool="warehouse",
    deps=["effective_hours"],
    group_name="finance",
    kinds={"duckdb"},
    description="Monthly payroll hours per employee (DuckDB `payroll_monthly`). Locked months "
    "never change; later corrections land as adjustment rows in the first open month.",
)
def payroll_monthly(
    context: dg.AssetExecutionContext, company_config: ConfigFolder, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    month = context.partition_key[:7]
    configured = set(company_config.pipeline().locked_months)
    with warehouse.connect() as con:
        locked = finance.locked_months(con)
        for pending in sorted(configured - locked):
            if pending <= month:
                try:
                    finance.lock_month(con, pending, by="config/pipeline.yaml")
                    context.log.info(f"locked payroll month {pending} (config/pipeline.yaml)")
                except finance.PayrollError as exc:
                    context.log.warning(str(exc))
        if month in finance.locked_months(con):
            rows = scalar(con, "SELECT count(*) FROM payroll_monthly WHERE month = ?", [month])
            return dg.MaterializeResult(
                metadata={"locked": True, "rows": int(rows), "changed": False}
            )
        table = finance.compute_month(con, month)
        changed = finance.write_month(con, month, table) > 0
        days = con.execute(
            "SELECT * FROM effective_hours WHERE strftime(work_date, '%Y-%m') = ?", [month]
        ).df()
    data_dir = Path(warehouse.lake_dir).parent
    report = write_report(
        data_dir / "reports" / f"hr-hours-{month}.html",
        days,
        f"Effective hours {month} (HR)",
        meta.department_names(context),
    )
    frame = table.to_pandas()
    adjustments = frame[frame["kind"] == "adjustment"]
    return dg.MaterializeResult(
        metadata={
            "locked": False,
            "changed": changed,
            "rows": len(frame),
            "pending_days": int(frame["pending_days"].sum()),
            "employees": int(frame.loc[frame["kind"] == "regular", "userid"].nunique()),
            "effective_hours_total": float(frame["effective_hours"].sum()),
            "adjustment_rows": len(adjustments),
            "adjustment_hours": float(adjustments["effective_hours"].sum()),
            "report": dg.MetadataValue.path(str(report)),
        }
    )

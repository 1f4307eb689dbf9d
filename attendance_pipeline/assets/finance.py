"""Payroll months for finance, with period locks and adjustment rows, and DingTalk's own
monthly report beside them."""

from collections.abc import Iterator
from datetime import date

import dagster as dg

from attendance_pipeline import finance, report_diff
from attendance_pipeline.assets import metadata as meta
from attendance_pipeline.assets.partitions import MONTHLY
from attendance_pipeline.checks.report import report_gate
from attendance_pipeline.checks.specs import check_result, specs_for
from attendance_pipeline.china_time import now_in_china
from attendance_pipeline.dingtalk.quota import monthly_quota
from attendance_pipeline.reports import write_report
from attendance_pipeline.resources.config import ConfigFolder
from attendance_pipeline.resources.dingtalk import DingTalkResource
from attendance_pipeline.resources.warehouse import WarehouseResource
from attendance_pipeline.warehouse import scalar, table_exists


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
        policy = finance.LeavePolicy.from_rules(company_config.rules())
        table, leave = finance.compute_payroll(con, month, policy)
        changed = finance.write_month(con, month, table, leave) > 0
        days = con.execute(
            "SELECT * FROM effective_hours WHERE strftime(work_date, '%Y-%m') = ?", [month]
        ).df()
    data_dir = warehouse.data_dir()
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
            "leave_rows": leave.num_rows,
            "overtime_hours_by_class": dg.MetadataValue.json(
                {
                    cls: round(float(frame[f"overtime_{cls}_hours"].sum()), 2)
                    for cls in ("workday", "restday", "holiday")
                }
            ),
            "lieu_credited_hours": round(float(frame["lieu_credited_hours"].sum()), 2),
            "employees": int(frame.loc[frame["kind"] == "regular", "userid"].nunique()),
            "effective_hours_total": float(frame["effective_hours"].sum()),
            "adjustment_rows": len(adjustments),
            "adjustment_hours": float(adjustments["effective_hours"].sum()),
            "report": dg.MetadataValue.path(str(report)),
        }
    )


class ReportConfig(dg.Config):
    """`refresh`: pull DingTalk's report again even if this month was pulled already."""

    refresh: bool = False


@dg.asset(
    partitions_def=MONTHLY,
    pool="dingtalk",
    deps=["payroll_monthly"],
    group_name="finance",
    kinds={"dingtalk", "duckdb"},
    description="DingTalk's own 考勤报表 columns per person and day of a closed month (DuckDB "
    "`dingtalk_report`): getattcolumns + getcolumnval + getleavetimebynames, metered. Pulled "
    "once per month after its last day (docs/payroll.md).",
)
def dingtalk_report(
    context: dg.AssetExecutionContext,
    config: ReportConfig,
    dingtalk: DingTalkResource,
    company_config: ConfigFolder,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    month = context.partition_key[:7]
    _, last = report_diff.month_bounds(month)
    today = dingtalk.clock_today()
    skipped = _report_skip(month, last, today, config.refresh, warehouse)
    if skipped:
        context.log.info(f"dingtalk_report {month}: {skipped}")
        return dg.MaterializeResult(metadata={"pulled": False, "reason": skipped})
    with warehouse.connect() as con:
        userids = [
            row[0]
            for row in con.execute(
                "SELECT DISTINCT userid FROM payroll_monthly WHERE month = ? AND kind = 'regular' "
                "ORDER BY 1",
                [month],
            ).fetchall()
        ]
        seen = con.execute(
            """SELECT DISTINCT l.leave_type FROM (
                   SELECT unnest(leave_by_type) AS l FROM effective_hours
                   WHERE strftime(work_date, '%Y-%m') = ?)""",
            [month],
        ).fetchall()
    leave_types = sorted(set(company_config.rules().leave_types) | {row[0] for row in seen})
    month_start = now_in_china().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    used = meta.metered_calls_since(context, month_start)
    needed = 1 + len(userids) * (1 + -(-len(leave_types) // 20))
    quota = monthly_quota()
    if used + needed > quota:
        reason = (
            f"not pulled: {needed} metered calls needed ({len(userids)} people), {used} of the "
            f"monthly quota of {quota} used; the reconciliation keeps what was stored before"
        )
        context.log.warning(f"dingtalk_report {month}: {reason}")
        return dg.MaterializeResult(metadata={"pulled": False, "reason": reason})

    def progress(_label: str, done: int, total: int) -> None:
        if done == total or done % max(1, total // 10) == 0:
            context.log.info(f"dingtalk_report {month}: {done}/{total} people")

    client = dingtalk.client(progress)
    table = report_diff.pull_report(client, userids, month, leave_types, today)
    with warehouse.connect() as con:
        report_diff.store_report(con, month, table)
    return dg.MaterializeResult(
        metadata={
            "pulled": True,
            "pulled_on": today.isoformat(),
            "people": len(userids),
            "rows": table.num_rows,
            "leave_types": dg.MetadataValue.json(leave_types),
            "metered_calls": client.metered_total,
        }
    )


def _report_skip(
    month: str, last: date, today: date, refresh: bool, warehouse: WarehouseResource
) -> str | None:
    if last >= today:
        return f"the month is still open (pulled after {last})"
    if refresh:
        return None
    with warehouse.connect(read_only=True) as con:
        if table_exists(con, "dingtalk_report") and scalar(
            con, "SELECT count(*) FROM dingtalk_report WHERE month = ?", [month]
        ):
            return "already pulled (materialize with config refresh: true to pull again)"
    return None


@dg.asset(
    partitions_def=MONTHLY,
    pool="warehouse",
    deps=["payroll_monthly", "dingtalk_report"],
    group_name="finance",
    kinds={"duckdb"},
    check_specs=specs_for("dingtalk_report_diff"),
    description="Where payroll differs from DingTalk's own report, per person, month and measure, "
    "with the days that explain it (DuckDB `dingtalk_report_diff`).",
)
def dingtalk_report_diff(
    context: dg.AssetExecutionContext, company_config: ConfigFolder, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    month = context.partition_key[:7]
    tolerance = company_config.quality().report_tolerance.by_unit()
    with warehouse.connect() as con:
        pulled = (
            scalar(
                con,
                "SELECT max(pulled_on) FROM dingtalk_report WHERE month = ?",
                [month],
            )
            if table_exists(con, "dingtalk_report")
            else None
        )
        diff = report_diff.reconcile(con, month, tolerance, pulled_on=pulled)
        report_diff.store_diff(con, month, diff)
    frame = diff.to_pandas()
    beyond = frame[~frame["within_tolerance"]]
    yield dg.MaterializeResult(
        metadata={
            "compared": pulled is not None,
            "pulled_on": str(pulled) if pulled else "never",
            "differences": len(frame),
            "beyond_tolerance": len(beyond),
            "by_measure": dg.MetadataValue.json(
                {str(k): int(v) for k, v in beyond["measure"].value_counts().items()}
            ),
            "preview": meta.preview(
                beyond, ["userid", "name", "measure", "pipeline_value", "dingtalk_value", "days"]
            ),
        }
    )
    quality = company_config.quality()
    yield check_result(
        "dingtalk_report_diff",
        report_gate(frame, pulled is not None, quality.sample_rows),
    )

"""Column schemas of every stored table: one place defines them, Parquet and DuckDB follow.

Each lake asset names its schema and its partition column in its definition metadata; the lake
IO manager writes every partition with exactly these columns and types, so a column typo fails
at write time instead of in a finance query.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

TS = pa.timestamp("ms", tz="Asia/Shanghai")

ROSTER = pa.schema(
    [
        ("snapshot_date", pa.date32()),
        ("userid", pa.string()),
        ("unionid", pa.string()),
        ("name", pa.string()),
        ("dept_ids", pa.list_(pa.int64())),
        ("dept_ancestors", pa.list_(pa.int64())),  # own departments, then parents…, nearest first
        ("title", pa.string()),
        ("job_number", pa.string()),
        ("hired_date", pa.date32()),
        ("active", pa.bool_()),
        ("leader", pa.bool_()),
        ("attendance_group_id", pa.int64()),  # null: in no attendance group (does not punch)
        ("last_work_date", pa.date32()),  # null: not a leaver; else the last day they worked
        # Identity-matching fields: kept in the lake for user mapping, never exposed by the
        # warehouse `roster` view (finance sees names and ids only).
        ("email", pa.string()),
        ("org_email", pa.string()),
        ("mobile", pa.string()),
        ("pulled_at", TS),
    ]
)

RAW_ATTENDANCE = pa.schema(
    [
        ("id", pa.int64()),
        ("record_id", pa.int64()),
        ("userid", pa.string()),
        ("work_date", pa.date32()),
        ("check_type", pa.string()),
        ("time_result", pa.string()),
        ("location_result", pa.string()),
        ("source_type", pa.string()),
        ("base_check_time", TS),
        ("user_check_time", TS),
        ("group_id", pa.int64()),
        ("plan_id", pa.int64()),
        ("proc_inst_id", pa.string()),
        ("approve_id", pa.string()),
        ("pulled_at", TS),
    ]
)

# One row per (approval, day it overlaps): a day's partition holds every approval touching that
# day, so deriving one day's hours reads one partition only.
RAW_APPROVALS = pa.schema(
    [
        ("work_date", pa.date32()),
        ("approve_id", pa.string()),
        ("userid", pa.string()),
        ("biz_type", pa.int32()),
        ("sub_type", pa.string()),
        ("tag_name", pa.string()),
        ("calculate_model", pa.int32()),
        ("duration_unit", pa.string()),
        ("begin_time", pa.string()),
        ("end_time", pa.string()),
        ("begin_at", TS),
        ("end_at", TS),
        ("pulled_at", TS),
    ]
)

LEAVE_BY_TYPE = pa.list_(
    pa.struct([("leave_type", pa.string()), ("hours", pa.float64()), ("days", pa.float64())])
)

# One row per active employee per calendar day (docs/rules.md).
EFFECTIVE_HOURS = pa.schema(
    [
        ("userid", pa.string()),
        ("work_date", pa.date32()),
        ("name", pa.string()),
        ("dept_id", pa.int64()),
        ("day_type", pa.string()),
        ("calendar_source", pa.string()),
        ("status", pa.string()),
        ("scheduled_hours", pa.float64()),
        ("leave_hours", pa.float64()),
        ("trip_hours", pa.float64()),
        ("overtime_hours", pa.float64()),
        ("effective_hours", pa.float64()),
        ("countable", pa.bool_()),
        ("rule_id", pa.string()),
        ("rules_version", pa.string()),
        ("explanation", pa.string()),
        # Payroll facts (hours/facts.py, docs/payroll.md): overtime by class and what became of
        # it, leave by type, and DingTalk's monthly summary counts.
        ("overtime_workday_hours", pa.float64()),
        ("overtime_restday_hours", pa.float64()),
        ("overtime_holiday_hours", pa.float64()),
        ("overtime_lieu_hours", pa.float64()),  # converted to 调休 (credited 1:1)
        ("overtime_pay_hours", pa.float64()),  # paid overtime hours x the class's rate
        ("leave_by_type", LEAVE_BY_TYPE),
        ("late_count", pa.int64()),
        ("late_minutes", pa.int64()),
        ("early_leave_count", pa.int64()),
        ("early_leave_minutes", pa.int64()),
        ("missing_punch_count", pa.int64()),
        ("absenteeism_days", pa.float64()),
    ]
)


PM_USERS = pa.schema(
    [
        ("snapshot_date", pa.date32()),
        ("pm_system", pa.string()),
        ("pm_user", pa.string()),
        ("login", pa.string()),
        ("email", pa.string()),
        ("name", pa.string()),
        ("active", pa.bool_()),
    ]
)

USER_MAPPING = pa.schema(
    [
        ("snapshot_date", pa.date32()),
        ("userid", pa.string()),
        ("name", pa.string()),
        ("pm_system", pa.string()),
        ("pm_user", pa.string()),
        ("pm_login", pa.string()),
        ("strategy", pa.string()),
        ("status", pa.string()),  # mapped | unmapped | ambiguous
        ("in_scope", pa.bool_()),
        ("reason", pa.string()),
    ]
)

WORKLOG_PLAN = pa.schema(
    [
        ("work_date", pa.date32()),
        ("worklog_key", pa.string()),
        ("userid", pa.string()),
        ("name", pa.string()),
        ("dept_id", pa.int64()),
        ("pm_system", pa.string()),
        ("pm_user", pa.string()),
        ("issue", pa.string()),
        ("kind", pa.string()),
        ("seconds", pa.int64()),
        ("day_hours", pa.float64()),
        ("comment", pa.string()),
        ("rules_version", pa.string()),
    ]
)

WORKLOG_LEDGER = pa.schema(
    [
        ("worklog_key", pa.string()),
        ("userid", pa.string()),
        ("work_date", pa.date32()),
        ("pm_system", pa.string()),
        ("pm_user", pa.string()),
        ("issue", pa.string()),
        ("seconds", pa.int64()),
        ("remote_id", pa.string()),
        ("action", pa.string()),
        ("pushed_at", TS),
        ("remote_seconds", pa.int64()),
        ("dry_run", pa.bool_()),
        ("message", pa.string()),
    ]
)

PUSHED_WORKLOGS = WORKLOG_LEDGER

RECONCILIATION = pa.schema(
    [
        ("work_date", pa.date32()),
        ("worklog_key", pa.string()),
        ("userid", pa.string()),
        ("pm_user", pa.string()),
        ("issue", pa.string()),
        ("planned_seconds", pa.int64()),
        ("remote_seconds", pa.int64()),
        ("remote_id", pa.string()),
        ("status", pa.string()),  # ok | missing | extra | different | conflict
    ]
)

# Who is away (availability.py): one row per person per day of the next days; replaced whole.
TEAM_AVAILABILITY = pa.schema(
    [
        ("as_of", pa.date32()),
        ("work_date", pa.date32()),
        ("weekday", pa.string()),  # 周一..周日
        ("userid", pa.string()),
        ("name", pa.string()),
        ("dept_id", pa.int64()),  # the person's first department
        ("day_type", pa.string()),  # workday | restday | holiday
        ("planned_hours", pa.float64()),
        ("leave_hours", pa.float64()),
        ("trip_hours", pa.float64()),
        ("available_hours", pa.float64()),
        ("status", pa.string()),  # available | partly_away | away | rest | left
        ("reason", pa.string()),  # why not available, e.g. "全天年假", "下午出差"; "" if available
        ("source", pa.string()),  # dingtalk_schedule | calendar.csv | chinese_calendar | weekdays
        ("approve_ids", pa.list_(pa.string())),
        ("pulled_at", TS),
    ]
)


# Every failed external call or rejected row (README: The warehouse); no secrets in messages.
SYNC_ERRORS = pa.schema(
    [
        ("at", TS),
        ("system", pa.string()),
        ("operation", pa.string()),
        ("partition", pa.string()),
        ("key", pa.string()),
        ("error_class", pa.string()),
        ("message", pa.string()),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "dingtalk_roster": ROSTER,
    "raw_attendance": RAW_ATTENDANCE,
    "raw_approvals": RAW_APPROVALS,
    "effective_hours": EFFECTIVE_HOURS,
    "pm_users": PM_USERS,
    "user_mapping": USER_MAPPING,
    "worklog_plan": WORKLOG_PLAN,
    "pushed_worklogs": PUSHED_WORKLOGS,
    "worklog_reconciliation": RECONCILIATION,
    "team_availability": TEAM_AVAILABILITY,
}


def empty_frame(schema: pa.Schema) -> pd.DataFrame:
    """A zero-row DataFrame with the schema's columns and dtypes."""
    return schema.empty_table().to_pandas()


def to_table(frame: pd.DataFrame, schema: pa.Schema, where: str) -> pa.Table:
    """Convert a frame to an Arrow table with exactly `schema`, naming `where` on mismatch."""
    missing = [name for name in schema.names if name not in frame.columns]
    extra = [name for name in frame.columns if name not in schema.names]
    if missing or extra:
        raise ValueError(
            f"{where}: columns do not match the schema (missing {missing}, unexpected {extra})"
        )
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)

"""The DingTalk source layer: roster snapshots, attendance results and approvals.

Each asset body works on the run's whole time window (one day or a year), so a backfill is one
run; the lake IO manager splits the returned frame into daily Parquet partitions.
"""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pandas as pd
from upath import UPath

from attendance_pipeline.assets import metadata as meta
from attendance_pipeline.assets.partitions import BACKFILL, DAILY, window_dates
from attendance_pipeline.checks import dingtalk as dingtalk_gates
from attendance_pipeline.checks.specs import check_result, specs_for
from attendance_pipeline.china_time import days, now_in_china
from attendance_pipeline.dingtalk import DingTalkClient
from attendance_pipeline.dingtalk.quota import WARN_SHARE, monthly_quota
from attendance_pipeline.dingtalk.records import (
    approvals_frame,
    attendance_frame,
)
from attendance_pipeline.dingtalk.roster import pull_roster
from attendance_pipeline.resources.dingtalk import DingTalkResource
from attendance_pipeline.resources.warehouse import WarehouseResource
from attendance_pipeline.targeted import (
    ROSTER_TAG,
    merge_users,
    stored_partitions,
    tagged_users,
)

INGEST: dict[str, Any] = {
    "partitions_def": DAILY,
    "backfill_policy": BACKFILL,
    "pool": "dingtalk",
    "io_manager_key": "lake_io_manager",
    "group_name": "dingtalk",
    "kinds": {"dingtalk", "parquet"},
}


def _client(context: dg.AssetExecutionContext, dingtalk: DingTalkResource) -> DingTalkClient:
    reported: dict[str, int] = {}

    def progress(api: str, done: int, total: int) -> None:
        step = max(1, total // 10)
        if done == total or done - reported.get(api, 0) >= step:
            reported[api] = done
            context.log.info(f"{api}: {done}/{total} batches (50 users x window) done")

    return dingtalk.client(progress=progress)


def _targeted(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, asset: str
) -> tuple[list[str], pd.DataFrame] | None:
    """(users, stored partitions) when the run refreshes only some users (`targeted.py`) and
    every day of the window is stored; None for a whole-company pull."""
    users = tagged_users(context.run.tags)
    if users is None:
        return None
    start, end = window_dates(context)
    stored = stored_partitions(warehouse.lake_dir, asset, start, end)
    if stored is None:
        context.log.warning(
            f"{asset}: a day of {start}..{end} was never synced; pulling everyone, not just "
            f"the {len(users)} user(s) of the refresh"
        )
        return None
    return users, stored


def _users_to_pull(
    roster: pd.DataFrame, targeted: tuple[list[str], pd.DataFrame] | None
) -> list[str]:
    everyone = sorted(roster["userid"].unique())
    if targeted is None:
        return everyone
    return sorted(set(targeted[0]) & set(everyone))


def _merged(fresh: pd.DataFrame, targeted: tuple[list[str], pd.DataFrame] | None) -> pd.DataFrame:
    return fresh if targeted is None else merge_users(targeted[1], fresh, targeted[0])


def _inside(frame: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    days = pd.to_datetime(frame["work_date"]).dt.date
    return frame[(days >= start) & (days <= end)]


def _call_metadata(context: dg.AssetExecutionContext, client: DingTalkClient) -> dict[str, Any]:
    """This step's calls, and the month's metered calls so far (from what every earlier run's
    ingest steps recorded, plus this one's), with a warning near the quota."""
    now = now_in_china()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    used = meta.metered_calls_since(context, month_start) + client.metered_total
    quota = monthly_quota()
    if used >= WARN_SHARE * quota:
        context.log.warning(
            f"DingTalk quota: {used} of {quota} metered calls used in {now:%Y-%m} "
            f"({used / quota:.0%}); narrow backfills or upgrade the edition"
        )
    return {
        "metered_calls": client.metered_total,
        "metered_calls_this_month": used,
        "monthly_quota_used": dg.MetadataValue.float(round(used / quota, 4)),
        "requests": sum(client.attempts.values()),
        "retries": sum(client.retries.values()),
        "retry_reasons": dg.MetadataValue.json(dict(client.retries)),
    }


@dg.asset(
    **INGEST,
    metadata=meta.lake_metadata("snapshot_date"),
    check_specs=specs_for("dingtalk_roster"),
    description="Daily snapshot of the DingTalk roster (whole department tree; e-mail and mobile "
    "stay in the lake for identity matching).",
)
def dingtalk_roster(
    context: dg.AssetExecutionContext, dingtalk: DingTalkResource, warehouse: WarehouseResource
) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
    start, end = window_dates(context)
    client = _client(context, dingtalk)
    targeted = _targeted(context, warehouse, "dingtalk_roster")
    window: dict[str, Any]
    if targeted is not None and context.run.tags.get(ROSTER_TAG) != "pull":
        # A targeted refresh keeps the stored snapshots: no call, nobody's row changes. The
        # department names carry over, so the reports keep them.
        frame = targeted[1]
        context.log.info(f"roster: the stored snapshots of {start}..{end}, {len(frame)} rows")
        departments = dict(meta.department_names(context))
        window = {"refreshed_users": len(targeted[0])}
    else:
        pull = pull_roster(
            client,
            list(days(start, end)),
            now_in_china(),
            UPath(warehouse.lake_dir) / "dingtalk_roster",
            warn=context.log.warning,
        )
        frame, people, departments = (
            pull.frame,
            pull.frame.drop_duplicates("userid"),
            pull.departments,
        )
        window = {
            "in_two_or_more_departments": int(people["dept_ids"].map(len).ge(2).sum()),
            "in_no_attendance_group": int(people["attendance_group_id"].isna().sum()),
            "leavers": pull.leavers,
            "leavers_in_window": dg.MetadataValue.json(
                {k: str(v) for k, v in sorted(pull.last_work_dates.items())}
            ),
        }
    meta.record(
        context,
        frame,
        "snapshot_date",
        window={
            # Department names for the reports (read back with metadata.department_names).
            "departments": dg.MetadataValue.json({str(k): v for k, v in departments.items()}),
            **window,
            "preview": meta.preview(
                frame, ["snapshot_date", "userid", "name", "dept_ids", "title"]
            ),
            **_call_metadata(context, client),
        },
        daily={"rows": meta.rows, "employees": meta.distinct("userid")},
    )
    yield dg.Output(frame)
    # The previous day's head-count, as its own materialization recorded it.
    previous = meta.partition_value(
        context, "dingtalk_roster", start - timedelta(days=1), "employees"
    )
    yield check_result("dingtalk_roster", dingtalk_gates.roster_gate(frame, previous))


@dg.asset(
    **INGEST,
    metadata=meta.lake_metadata("work_date"),
    check_specs=specs_for("raw_attendance"),
    description="DingTalk attendance results: one row per scheduled check point (attendance/list).",
)
def raw_attendance(
    context: dg.AssetExecutionContext,
    dingtalk: DingTalkResource,
    warehouse: WarehouseResource,
    dingtalk_roster: pd.DataFrame,
) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
    start, end = window_dates(context)
    targeted = _targeted(context, warehouse, "raw_attendance")
    userids = _users_to_pull(dingtalk_roster, targeted)
    client = _client(context, dingtalk)
    records = client.attendance(userids, start, end) if userids else []
    frame = attendance_frame(records, now_in_china())
    meta.record(
        context,
        frame,
        "work_date",
        window={
            "rows_by_day": meta.value_counts(frame, "work_date"),
            "time_results": meta.value_counts(frame, "time_result"),
            "preview": meta.preview(
                frame, ["userid", "work_date", "check_type", "time_result", "source_type"]
            ),
            **_call_metadata(context, client),
        },
        daily={"rows": meta.rows, "employees": meta.distinct("userid")},
    )
    # Rows DingTalk returned outside the window fail the gate and are not stored.
    yield dg.Output(_merged(_inside(frame, start, end), targeted))
    yield check_result(
        "raw_attendance",
        dingtalk_gates.raw_attendance_gate(frame, start, end),
    )


@dg.asset(
    **INGEST,
    metadata=meta.lake_metadata("work_date"),
    check_specs=specs_for("raw_approvals"),
    description="DingTalk approvals (leave, trip, overtime, 补卡, field work): one row per "
    "approval and day it overlaps.",
)
def raw_approvals(
    context: dg.AssetExecutionContext,
    dingtalk: DingTalkResource,
    warehouse: WarehouseResource,
    dingtalk_roster: pd.DataFrame,
) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
    start, end = window_dates(context)
    targeted = _targeted(context, warehouse, "raw_approvals")
    userids = _users_to_pull(dingtalk_roster, targeted)
    client = _client(context, dingtalk)
    approvals = client.approvals(userids, start, end) if userids else []
    frame = approvals_frame(approvals, start, end, now_in_china())
    meta.record(
        context,
        frame,
        "work_date",
        window={
            "by_tag": meta.value_counts(frame, "tag_name"),
            "preview": meta.preview(
                frame, ["work_date", "userid", "tag_name", "sub_type", "begin_time", "end_time"]
            ),
            **_call_metadata(context, client),
        },
        daily={"rows": meta.rows, "approvals": meta.distinct("approve_id")},
    )
    yield dg.Output(_merged(_inside(frame, start, end), targeted))
    yield check_result("raw_approvals", dingtalk_gates.raw_approvals_gate(frame, start, end))

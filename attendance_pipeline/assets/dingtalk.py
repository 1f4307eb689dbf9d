"""The DingTalk source layer: roster snapshots, attendance results and approvals.

Each asset body works on the run's whole time window (one day or a year), so a backfill is one
run; the lake IO manager splits the returned frame into daily Parquet partitions.
"""

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq

from attendance_pipeline.assets import partitions as per_day
from attendance_pipeline.assets.partitions import DAILY, window_dates
from attendance_pipeline.checks import check_result, gates, specs_for
from attendance_pipeline.china_time import days, now_in_china
from attendance_pipeline.dingtalk import DingTalkClient, DingTalkHrmPermissionError
from attendance_pipeline.dingtalk.quota import WARN_SHARE, add_metered, monthly_quota
from attendance_pipeline.dingtalk.records import (
    approvals_frame,
    attendance_frame,
    roster_frame,
    stored_roster_users,
    with_leavers,
)
from attendance_pipeline.resources.dingtalk import DingTalkResource
from attendance_pipeline.resources.warehouse import WarehouseResource

INGEST: dict[str, Any] = {
    "partitions_def": DAILY,
    "backfill_policy": dg.BackfillPolicy.single_run(),
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


def _preview(frame: pd.DataFrame, columns: list[str]) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame[columns].head(10).to_markdown(index=False))


def _per_day(frame: pd.DataFrame, column: str) -> dict[str, int]:
    counts = frame.groupby(frame[column].astype(str)).size()
    return {str(k): int(v) for k, v in counts.items()}


def _inside(frame: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    days = pd.to_datetime(frame["work_date"]).dt.date
    return frame[(days >= start) & (days <= end)]


def _call_metadata(
    context: dg.AssetExecutionContext, client: DingTalkClient, warehouse: WarehouseResource
) -> dict[str, Any]:
    month = f"{now_in_china():%Y-%m}"
    ledger = Path(warehouse.lake_dir).parent / "state" / "dingtalk_metered_calls.json"
    used = add_metered(ledger, month, client.metered_total)
    quota = monthly_quota()
    if used >= WARN_SHARE * quota:
        context.log.warning(
            f"DingTalk quota: {used} of {quota} metered calls used in {month} "
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
    metadata={"partition_column": "snapshot_date"},
    check_specs=specs_for("dingtalk_roster"),
    description="Daily snapshot of the DingTalk roster (whole department tree; e-mail and mobile "
    "stay in the lake for identity matching).",
)
def dingtalk_roster(
    context: dg.AssetExecutionContext, dingtalk: DingTalkResource, warehouse: WarehouseResource
) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetCheckResult]:
    start, end = window_dates(context)
    client = _client(context, dingtalk)
    departments = client.list_departments()
    users = client.list_users([1, *(int(d["dept_id"]) for d in departments)])
    # Who punches: {userid: group id}; absent = in no attendance group. The member list needs an
    # operator: an admin (the boss is one in every DingTalk company).
    admins = [u for u in users if u.get("admin")] or [u for u in users if u.get("boss")] or users
    groups = client.attendance_group_map(str(admins[0]["userid"])) if admins else {}
    # Leavers drop out of user/list after their last work day; the HR API still knows them, and
    # they stay in the snapshots up to that day (so their results are pulled up to it).
    leavers_note: str | int
    try:
        leavers = client.leavers(since=start)
    except DingTalkHrmPermissionError as exc:
        context.log.warning(f"Leavers unavailable, syncing without them: {exc}")
        leavers, leavers_note = [], f"unavailable: {exc}"
    else:
        leavers_note = len(leavers)
    stored = stored_roster_users(
        Path(warehouse.lake_dir) / "dingtalk_roster", {lv["userid"] for lv in leavers}
    )
    users, groups, last_work_dates = with_leavers(users, groups, leavers, stored)
    frame = roster_frame(
        users, days(start, end), now_in_china(), departments, groups, last_work_dates
    )
    context.add_output_metadata(
        output_name="result",
        metadata={
            "departments": len(departments),
            "in_two_or_more_departments": int(
                frame.drop_duplicates("userid")["dept_ids"].map(len).ge(2).sum()
            ),
            "in_no_attendance_group": int(
                frame.drop_duplicates("userid")["attendance_group_id"].isna().sum()
            ),
            "leavers": leavers_note,
            "leavers_in_window": dg.MetadataValue.json(
                {k: str(v) for k, v in sorted(last_work_dates.items())}
            ),
            "preview": _preview(frame, ["snapshot_date", "userid", "name", "dept_ids", "title"]),
            **_call_metadata(context, client, warehouse),
        },
    )
    per_day.add_daily_metadata(
        context,
        frame,
        "snapshot_date",
        {"rows": per_day.rows, "employees": per_day.distinct("userid")},
    )
    state = Path(warehouse.lake_dir).parent / "state" / "departments.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    names = {int(d["dept_id"]): d.get("name") for d in departments}
    state.with_suffix(".tmp").write_text(json.dumps(names, ensure_ascii=False), encoding="utf-8")
    state.with_suffix(".tmp").replace(state)  # department names for the reports
    yield dg.Output(frame)
    previous = Path(warehouse.lake_dir) / "dingtalk_roster" / f"{start - timedelta(days=1)}.parquet"
    previous_rows = pq.read_metadata(previous).num_rows if previous.exists() else None
    yield check_result("dingtalk_roster", gates.roster_gate(frame, previous_rows))


@dg.asset(
    **INGEST,
    metadata={"partition_column": "work_date"},
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
    userids = sorted(dingtalk_roster["userid"].unique())
    client = _client(context, dingtalk)
    records = client.attendance(userids, start, end)
    frame = attendance_frame(records, now_in_china())
    context.add_output_metadata(
        output_name="result",
        metadata={
            "rows_by_day": dg.MetadataValue.json(_per_day(frame, "work_date")),
            "time_results": dg.MetadataValue.json(
                {str(k): int(v) for k, v in frame["time_result"].value_counts().items()}
            ),
            "preview": _preview(
                frame, ["userid", "work_date", "check_type", "time_result", "source_type"]
            ),
            **_call_metadata(context, client, warehouse),
        },
    )
    per_day.add_daily_metadata(
        context, frame, "work_date", {"rows": per_day.rows, "employees": per_day.distinct("userid")}
    )
    # Rows DingTalk returned outside the window fail the gate and are not stored.
    yield dg.Output(_inside(frame, start, end))
    yield check_result("raw_attendance", gates.raw_attendance_gate(frame, start, end))


@dg.asset(
    **INGEST,
    metadata={"partition_column": "work_date"},
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
    userids = sorted(dingtalk_roster["userid"].unique())
    client = _client(context, dingtalk)
    approvals = client.approvals(userids, start, end)
    frame = approvals_frame(approvals, start, end, now_in_china())
    context.add_output_metadata(
        output_name="result",
        metadata={
            "by_tag": dg.MetadataValue.json(
                {str(k): int(v) for k, v in frame["tag_name"].value_counts().items()}
            ),
            "preview": _preview(
                frame, ["work_date", "userid", "tag_name", "sub_type", "begin_time", "end_time"]
            ),
            **_call_metadata(context, client, warehouse),
        },
    )
    per_day.add_daily_metadata(
        context,
        frame,
        "work_date",
        {"rows": per_day.rows, "approvals": per_day.distinct("approve_id")},
    )
    yield dg.Output(_inside(frame, start, end))
    yield check_result("raw_approvals", gates.raw_approvals_gate(frame, start, end))

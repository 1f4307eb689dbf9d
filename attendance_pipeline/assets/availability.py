"""Who is away: `team_availability` (the next days per person, from DingTalk's planned shifts and
the approved future leave and trips) and `availability_notice` (next week's absences to each
configured team's DingTalk group robot). Neither is partitioned: each run looks ahead from
DingTalk's today and replaces the previous view (docs/availability.md)."""

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from attendance_pipeline import availability
from attendance_pipeline.assets import metadata as meta
from attendance_pipeline.china_time import days, now_in_china
from attendance_pipeline.dingtalk.approvals import ALL_BIZ_TYPES
from attendance_pipeline.dingtalk.records import approvals_frame
from attendance_pipeline.dingtalk.robot import send_markdown
from attendance_pipeline.reports import write_page
from attendance_pipeline.resources.config import ConfigFolder
from attendance_pipeline.resources.dingtalk import DingTalkResource
from attendance_pipeline.resources.warehouse import WarehouseResource
from attendance_pipeline.schemas import TEAM_AVAILABILITY, to_table
from attendance_pipeline.targeted import latest_snapshot
from attendance_pipeline.warehouse import replace_rows

# Planned shifts of fixed-shift groups are served this many days ahead ("固定班制只能查到未来15天").
SCHEDULE_DAYS_AHEAD = 15
AWAY_BIZ_TYPES = tuple(b for b in ALL_BIZ_TYPES if b in availability.AWAY_KINDS)


@dg.asset(
    deps=["dingtalk_roster"],
    pool="warehouse",
    io_manager_key="lake_io_manager",
    group_name="availability",
    kinds={"dingtalk", "parquet", "duckdb"},
    metadata={"dagster/table_name": "warehouse.duckdb:team_availability"},
    description="Available hours per person per day for the next days (pipeline.yaml "
    "`availability.days`, default 14) and why not: DingTalk's planned shifts (listschedule) less "
    "approved leave and trips. Replaced whole on each run (lake and warehouse).",
)
def team_availability(
    context: dg.AssetExecutionContext,
    dingtalk: DingTalkResource,
    warehouse: WarehouseResource,
    company_config: ConfigFolder,
) -> dg.Output[pd.DataFrame]:
    as_of = dingtalk.clock_today()
    settings = company_config.pipeline().availability
    snapshot = latest_snapshot(warehouse.lake_dir, "dingtalk_roster", as_of)
    if snapshot is None:
        raise dg.Failure(
            description="team_availability needs a roster: sync at least one day first "
            "(`attendance-pipeline sync`)",
            allow_retries=False,
        )
    snapshot_day, roster = snapshot
    roster = roster[roster["active"].fillna(True).astype(bool)]
    first, last = availability.horizon(as_of, settings.days)
    scheduled_until = min(last, as_of + timedelta(days=SCHEDULE_DAYS_AHEAD))
    client = dingtalk.client()
    userids = sorted(roster["userid"].unique())
    schedules = {day: client.schedules(day) for day in days(first, scheduled_until)}
    pulled_at = now_in_china()
    found = client.approvals(userids, first, last, AWAY_BIZ_TYPES) if userids else []
    frame = availability.team_availability(
        roster,
        schedules,
        approvals_frame(found, first, last, pulled_at),
        company_config.calendar(),
        company_config.rules(),
        as_of,
        settings.days,
        pulled_at,
        scheduled_until,
    )
    table = to_table(frame, TEAM_AVAILABILITY, "asset team_availability")
    with warehouse.connect() as con:
        replace_rows(con, "team_availability", TEAM_AVAILABILITY, table, "TRUE", [])
    report = _write_report(warehouse.data_dir(), frame, as_of)
    monday, sunday = availability.next_week(as_of)
    next_days = pd.to_datetime(frame["work_date"]).dt.date
    week = frame[(next_days >= monday) & (next_days <= sunday)]
    away = frame[frame["status"].isin(["away", "partly_away"])]
    context.log.info(
        f"team_availability as of {as_of}: {len(frame)} person-days of "
        f"{frame['userid'].nunique()} people, {len(away)} with someone away"
    )
    return dg.Output(
        frame,
        metadata={
            "as_of": str(as_of),
            "roster_snapshot": str(snapshot_day),
            "days": f"{first}..{last}",
            "people": int(frame["userid"].nunique()),
            # Numbers the UI plots across materializations (the asset's Plots tab).
            "next_week_available_hours": dg.MetadataValue.float(
                float(week["available_hours"].sum())
            ),
            "next_week_planned_hours": dg.MetadataValue.float(float(week["planned_hours"].sum())),
            "person_days_away": len(away),
            "by_status": meta.value_counts(frame, "status"),
            "by_day": dg.MetadataValue.md(availability.daily_chart(frame)),
            "next_week_away": availability.away_summary(frame, monday, sunday, None) or "—",
            "report": dg.MetadataValue.path(str(report)),
            "metered_calls": client.metered_total,
        },
    )


def _write_report(data_dir: Path, frame: pd.DataFrame, as_of: date) -> Path:
    """The PM-facing page (person × day grid and a bar chart), written atomically."""
    monday = availability.next_week(as_of)[0]
    title = f"Team availability as of {as_of} (下周 from {monday})"
    path = data_dir / "reports" / f"availability-{as_of}.html"
    return write_page(path, availability.render_html(frame, title))


@dg.asset(
    group_name="availability",
    kinds={"dingtalk"},
    description="Next week's absences per configured team (pipeline.yaml `availability.teams`) "
    "to the team's DingTalk group robot: 下周: 张三 周三全天年假, 李四 周四下午出差.",
)
def availability_notice(
    context: dg.AssetExecutionContext,
    dingtalk: DingTalkResource,
    warehouse: WarehouseResource,
    company_config: ConfigFolder,
    team_availability: pd.DataFrame,
) -> dg.MaterializeResult:
    as_of = dingtalk.clock_today()
    teams = company_config.pipeline().availability.teams
    snapshot = latest_snapshot(warehouse.lake_dir, "dingtalk_roster", as_of)
    roster = snapshot[1] if snapshot is not None else team_availability.iloc[0:0]
    sent: list[str] = []
    unsent: list[str] = []
    failed: dict[str, str] = {}
    texts: dict[str, Any] = {}
    for team in teams:
        members = availability.team_members(roster, team.departments, team.users)
        title, text = availability.week_message(team_availability, team.name, as_of, members)
        texts[f"message_{team.name}"] = dg.MetadataValue.md(text)
        webhook = os.environ.get(team.webhook_env) if team.webhook_env else None
        if not webhook:
            unsent.append(team.name)
            context.log.info(f"{team.name}: no robot webhook ({team.webhook_env} unset); not sent")
            continue
        secret = os.environ.get(team.secret_env) if team.secret_env else None
        try:
            send_markdown(webhook, secret, title, text)
            sent.append(team.name)
        except RuntimeError as exc:  # the message names no secret (robot.py)
            failed[team.name] = str(exc)
            context.log.warning(f"{team.name}: robot message not sent: {exc}")
    metadata = {
        "as_of": str(as_of),
        "sent": dg.MetadataValue.json(sent),
        "not_configured": dg.MetadataValue.json(unsent),
        "failed": dg.MetadataValue.json(failed),
        **texts,
    }
    if failed:
        raise dg.Failure(
            description=f"robot message not sent to {', '.join(failed)}: "
            + "; ".join(failed.values())
            + (f" (sent to {', '.join(sent)})" if sent else ""),
            metadata=metadata,
        )
    return dg.MaterializeResult(metadata=metadata)

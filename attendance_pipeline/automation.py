"""Running by itself: the jobs, the daily and corrections schedules and failure alerts.

- `sync` runs every daily stage (groups dingtalk, warehouse, hours, delivery) for a range of
  days as one run; `payroll` runs the finance group for a month.

- `daily_sync` at 02:10 Asia/Shanghai materialises yesterday's partition.
- `corrections_sync` at 03:40 re-pulls a trailing window (pipeline.yaml `corrections_days`,
  default 7) as one run, so 补卡, manager edits and late results reach the PM system; the
  diff-based push rewrites only what changed.
- `availability` looks ahead: `team_availability` every morning at 07:30 (and, through the
  `availability_on_events` sensor, minutes after an approval event); `availability_weekly`
  every Friday at 16:00 also sends next week's absences to each team's group robot.
- `alert_on_run_failure` records every failed run in `sync_errors` and, when
  `DINGTALK_ROBOT_WEBHOOK` (and `DINGTALK_ROBOT_SECRET` for 加签) is set, sends it to the group.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import dagster as dg

from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.dagster_api import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    partition_range_tags,
)
from attendance_pipeline.dingtalk.robot import send_markdown
from attendance_pipeline.pipeline_config import load_pipeline_config
from attendance_pipeline.refresh import availability_on_events, stream_refresh
from attendance_pipeline.settings import Settings, load_settings
from attendance_pipeline.targeted import TRIGGER_TAG
from attendance_pipeline.warehouse import record_sync_error

DAILY_STAGES = ("dingtalk", "warehouse", "hours", "delivery")


sync_job = dg.define_asset_job(
    "sync",
    selection=dg.AssetSelection.groups(*DAILY_STAGES),
    description="Every daily stage for a range of work days, as one run.",
)
payroll_job = dg.define_asset_job(
    "payroll",
    selection=dg.AssetSelection.groups("finance"),
    description="Payroll months from the published effective hours.",
)

availability_job = dg.define_asset_job(
    "availability",
    selection=dg.AssetSelection.assets("team_availability"),
    description="Who is away in the coming days (team_availability), looked up now.",
)
availability_weekly_job = dg.define_asset_job(
    "availability_weekly",
    selection=dg.AssetSelection.groups("availability"),
    description="team_availability, then next week's absences to each team's group robot.",
)


def window_request(last: datetime, days: int, reason: str) -> dg.RunRequest:
    """One run for the `days` days ending the day before `last` (China time)."""
    end = (last.astimezone(SHANGHAI) - timedelta(days=1)).date()
    start = end - timedelta(days=max(1, days) - 1)
    return dg.RunRequest(
        run_key=f"{reason}-{start}-{end}",
        tags={
            **partition_range_tags(start.isoformat(), end.isoformat()),
            TRIGGER_TAG: reason,
        },
    )


@dg.schedule(
    cron_schedule="10 2 * * *",
    execution_timezone="Asia/Shanghai",
    job_name="sync",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Yesterday's partition, every night at 02:10 China time.",
)
def daily_sync(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return window_request(context.scheduled_execution_time, 1, "daily")


def corrections_schedule(settings: Settings | None = None) -> dg.ScheduleDefinition:
    """The corrections schedule of `settings`' organisation (None: the environment's)."""

    @dg.schedule(
        name="corrections_sync",
        cron_schedule="40 3 * * *",
        execution_timezone="Asia/Shanghai",
        job_name="sync",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Re-pulls the trailing window (pipeline.yaml corrections_days) as one run.",
    )
    def corrections_sync(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        config_dir = (settings or load_settings(env_file=None)).config_dir
        days = load_pipeline_config(config_dir / "pipeline.yaml").corrections_days
        return window_request(context.scheduled_execution_time, days, "corrections")

    return corrections_sync


corrections_sync = corrections_schedule()


@dg.schedule(
    cron_schedule="30 7 * * *",
    execution_timezone="Asia/Shanghai",
    job_name="availability",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="team_availability every morning at 07:30 China time.",
)
def daily_availability(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = context.scheduled_execution_time.astimezone(SHANGHAI).date()
    return dg.RunRequest(run_key=f"availability-{day}", tags={TRIGGER_TAG: "daily"})


@dg.schedule(
    cron_schedule="0 16 * * 5",
    execution_timezone="Asia/Shanghai",
    job_name="availability_weekly",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Fridays at 16:00 China time: next week's absences to each team's group robot.",
)
def weekly_availability(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = context.scheduled_execution_time.astimezone(SHANGHAI).date()
    return dg.RunRequest(run_key=f"availability-weekly-{day}", tags={TRIGGER_TAG: "weekly"})


def failure_sensor(settings: Settings | None = None) -> dg.RunFailureSensorDefinition:
    """Failed runs of this code location (`settings`' organisation; None: the environment's)
    → its `sync_errors` and the DingTalk group."""

    @dg.run_failure_sensor(
        name="alert_on_run_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Failed runs (incl. failed blocking checks) → sync_errors and the DingTalk "
        "group.",
    )
    def alert_on_run_failure(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        window = (
            f"{run.tags.get(PARTITION_RANGE_START_TAG, '?')}.."
            f"{run.tags.get(PARTITION_RANGE_END_TAG, '?')}"
        )
        message = (context.failure_event.message or "run failed").strip()
        current = settings or load_settings(env_file=None)
        record_sync_error(
            current.warehouse_path, "dagster", "run", window, run.run_id, "RunFailure", message
        )
        webhook = os.environ.get("DINGTALK_ROBOT_WEBHOOK")
        if webhook:
            org = f"- organisation: {current.org_id}\n" if current.org_id else ""
            send_markdown(
                webhook,
                os.environ.get("DINGTALK_ROBOT_SECRET"),
                "attendance_pipeline: run failed",
                f"### attendance_pipeline run failed\n\n{org}- job: {run.job_name}\n"
                f"- days: {window}\n- run: {run.run_id}\n\n{message[:1500]}",
            )

    return alert_on_run_failure


alert_on_run_failure = failure_sensor()


def definitions(settings: Settings | None = None) -> dg.Definitions:
    """The automation stage: jobs, schedules and sensors; an organisation's (`settings.org_id`)
    select its own `<org>/` assets and keep its own corrections window and error log. The
    Stream sensors serve the default organisation (`listen` keeps one event queue)."""
    if settings is None or settings.org_id is None:
        return dg.Definitions(
            jobs=[sync_job, payroll_job, availability_job, availability_weekly_job],
            schedules=[daily_sync, corrections_sync, daily_availability, weekly_availability],
            sensors=[alert_on_run_failure, stream_refresh, availability_on_events],
        )
    availability = dg.define_asset_job(
        "availability",
        selection=dg.AssetSelection.assets(dg.AssetKey([settings.org_id, "team_availability"])),
        description=availability_job.description,
    )
    return dg.Definitions(
        jobs=[sync_job, payroll_job, availability, availability_weekly_job],
        schedules=[
            daily_sync,
            corrections_schedule(settings),
            daily_availability,
            weekly_availability,
        ],
        sensors=[failure_sensor(settings)],
    )

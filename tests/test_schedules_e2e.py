"""The schedules driven over simulated days: a 补卡 approved three days late reaches the PM system
through the corrections run, with no duplicate and nothing else rewritten."""

from datetime import date, datetime, time, timedelta

import dagster as dg
import pytest
import yaml

from attendance_pipeline.automation import corrections_sync, daily_sync
from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.sync import run_sync
from tests.conftest import SIM_TODAY, resource

pytestmark = pytest.mark.slow


def correction_three_days_late(sim, mappable: set[str]) -> tuple[str, date]:
    sim.set_today(SIM_TODAY)
    for approval in sim.truth_approvals(date(2026, 11, 2), date(2026, 11, 12)):
        if approval["bizType"] != 4 or approval["userId"] not in mappable:
            continue
        day, user = date.fromisoformat(approval["beginTime"][:10]), approval["userId"]
        seen = []
        for lag in (2, 3):
            sim.set_today(day + timedelta(days=lag))
            seen.append(sim.truth_attendance(day, day, [user]))
        if seen[0] != seen[1]:  # visible from day + 3 on
            sim.set_today(SIM_TODAY)
            return user, day
    raise AssertionError("no 补卡 arriving exactly three days late")


def scheduled(schedule, day: date, at: time) -> tuple[date, date]:
    when = datetime.combine(day, at, tzinfo=SHANGHAI)
    request = schedule(dg.build_schedule_context(scheduled_execution_time=when))
    return (
        date.fromisoformat(request.tags["dagster/asset_partition_range_start"]),
        date.fromisoformat(request.tags["dagster/asset_partition_range_end"]),
    )


def test_a_late_correction_reaches_the_pm_system_through_the_corrections_run(pipeline, pm_sim):
    sim, settings, defs, instance = pipeline
    pm, url = pm_sim()
    defs = build_definitions(
        settings, {"dingtalk": defs.resources["dingtalk"], "pm": resource("jira", url)}
    )
    mappable = {u for u, v in pm.truth_mapping().items() if v.get("via") == "email"}
    user, day = correction_three_days_late(sim, mappable)
    (settings.config_dir / "pipeline.yaml").write_text(
        yaml.safe_dump({"scope": {"departments": [22, 6], "users": [user]}}), encoding="utf-8"
    )
    # The days before: the pipeline is caught up to the day of the missing punch.
    sim.set_today(day + timedelta(days=1))
    assert run_sync(defs, day - timedelta(days=6), day, instance=instance).success
    history = []
    for offset in range(1, 5):  # the nights after: daily at 02:10, corrections at 03:40
        today = day + timedelta(days=offset)
        sim.set_today(today)
        daily = run_sync(defs, *scheduled(daily_sync, today, time(2, 10)), instance=instance)
        corrections = run_sync(
            defs, *scheduled(corrections_sync, today, time(3, 40)), instance=instance
        )
        assert daily.success and corrections.success
        history.append((today, corrections.worklogs))

    # Only the night the approval arrived (day + 3) rewrote anything in the corrections run,
    # and exactly the corrected worklog.
    for today, counts in history:
        expected_updates = 1 if today == day + timedelta(days=3) else 0
        assert counts["updated"] == expected_updates, (today, counts)
        assert counts["created"] == counts["deleted"] == 0, (today, counts)
    held = pm.worklogs("jira")
    keys = [w["text"].splitlines()[-1] for w in held]
    assert len(keys) == len(set(keys)), "a duplicate worklog"

"""Issue 13, item 4: who is away in the coming days (`team_availability`), the weekly robot
message per team, and the simulator's `listschedule` that feeds them."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pytest
import requests

from attendance_pipeline.availability import (
    next_week,
    team_availability,
    team_members,
    week_message,
)
from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.dingtalk.errors import DingTalkError
from attendance_pipeline.dingtalk.records import approvals_frame
from attendance_pipeline.event_queue import EventQueue
from attendance_pipeline.hours.calendar import WorkCalendar
from attendance_pipeline.hours.rules import Rules
from attendance_pipeline.listen import Listener
from attendance_pipeline.refresh import RUN_KEY_TAG, availability_on_events
from attendance_pipeline.resources.dingtalk import DingTalkResource
from attendance_pipeline.sync import run_job
from tests.conftest import SIM_TODAY
from tests.test_automation import Receiver
from tests.test_targeted_refresh import partition, sim_url, sync

PULLED = datetime(2026, 9, 29, 7, 30, tzinfo=SHANGHAI)


def plan(userid: str, day: str, on: str = "09:00", off: str = "18:00") -> list[dict[str, Any]]:
    return [
        {"userid": userid, "check_type": "OnDuty", "plan_check_time": f"{day} {on}:00"},
        {"userid": userid, "check_type": "OffDuty", "plan_check_time": f"{day} {off}:00"},
    ]


def approval(approve_id: str, userid: str, biz: int, unit: str, begin: str, end: str, sub=""):
    tag = {1: "加班", 2: "出差", 3: "请假"}[biz]
    return {
        "approveId": approve_id, "userId": userid, "bizType": biz, "subType": sub, "tagName": tag,
        "durationUnit": unit, "beginTime": begin, "endTime": end, "calculateModel": 1,
    }  # fmt: skip


def person(userid: str, name: str, dept: int, group: int | None, last: date | None = None):
    return {
        "userid": userid, "name": name, "dept_ids": [dept], "dept_ancestors": [dept, 1],
        "attendance_group_id": group, "last_work_date": last, "active": True,
    }  # fmt: skip


def test_availability_reads_planned_shifts_leave_trips_calendar_and_leavers():
    as_of = date(2026, 9, 29)  # a Tuesday; next week is 10-05..10-11 (National Day, 调休 Sat)
    roster = pd.DataFrame(
        [
            person("a", "张三", 22, 9001),
            person("c", "老板", 1, None),  # in no attendance group: follows the calendar
            person("d", "李四", 22, 9001, last=date(2026, 9, 30)),
        ]
    )
    schedules = {
        date(2026, 9, 30): plan("a", "2026-09-30") + plan("d", "2026-09-30"),
        date(2026, 10, 8): plan("a", "2026-10-08"),
        date(2026, 10, 10): plan("a", "2026-10-10"),  # the 调休 Saturday is a workday
    }
    approvals = [
        approval("t1", "a", 2, "halfDay", "2026-09-30 PM", "2026-09-30 PM"),
        approval("l1", "a", 3, "hour", "2026-10-08 14:00", "2026-10-08 16:00", "事假"),
        approval("l2", "a", 3, "day", "2026-10-10", "2026-10-10", "年假"),
        approval("x", "c", 1, "hour", "2026-09-30 19:00", "2026-09-30 21:00"),  # overtime
    ]
    frame = team_availability(
        roster,
        {d: [dict(p) for p in ps] for d, ps in schedules.items()},
        approvals_frame(approvals, date(2026, 9, 30), date(2026, 10, 13), PULLED),
        WorkCalendar(),
        Rules(),
        as_of,
        14,
        PULLED,
    )
    assert len(frame) == 3 * 14
    row = frame.set_index(["userid", frame["work_date"].astype(str)])

    def day(userid: str, d: str) -> dict[str, Any]:
        return row.loc[(userid, d)].to_dict()

    trip = day("a", "2026-09-30")
    assert (trip["planned_hours"], trip["trip_hours"], trip["available_hours"]) == (8, 4, 4)
    assert (trip["status"], trip["reason"], trip["source"]) == (
        "partly_away",
        "下午出差",
        "dingtalk_schedule",
    )
    hourly = day("a", "2026-10-08")
    assert (hourly["leave_hours"], hourly["available_hours"]) == (2, 6)
    assert hourly["reason"] == "14:00–16:00事假"
    whole = day("a", "2026-10-10")
    assert (whole["status"], whole["reason"], whole["available_hours"]) == ("away", "全天年假", 0)
    assert list(whole["approve_ids"]) == ["l2"]
    # A grouped person with nothing planned is off; a holiday says so.
    assert (day("a", "2026-10-01")["status"], day("a", "2026-10-01")["reason"]) == (
        "rest",
        "节假日",
    )
    assert day("a", "2026-10-11")["reason"] == "休息"
    # No attendance group: the calendar decides (holiday, 调休 Saturday), overtime changes nothing.
    assert day("c", "2026-09-30")["available_hours"] == 8
    assert day("c", "2026-09-30")["source"] == "chinese_calendar"
    assert day("c", "2026-10-01")["status"] == "rest"
    assert day("c", "2026-10-10")["available_hours"] == 8
    # A leaver is away for good after the last work day.
    assert day("d", "2026-09-30")["status"] == "available"
    assert day("d", "2026-10-08")["status"] == "left"

    test_team = team_members(roster, [22], [])
    assert test_team == {"a", "d"}
    title, text = week_message(frame, "测试部", as_of, test_team)
    assert next_week(as_of) == (date(2026, 10, 5), date(2026, 10, 11))
    assert "下周: 张三 周四14:00–16:00事假、周六全天年假\n" in text and "测试部" in title
    assert "李四" not in text  # left before next week: not "away", gone
    _, boss = week_message(frame, "总经办", as_of, team_members(roster, [], ["c"]))
    assert "下周: 全员在岗" in boss


def test_the_simulator_serves_planned_shifts_paged_and_only_15_days_ahead(dingtalk_sim):
    sim, url = dingtalk_sim(employees=150)
    client = DingTalkResource(
        base_url=url, api_base_url=url, app_key="sim-key", app_secret="sim-secret",
        today=SIM_TODAY.isoformat(),
    ).client()  # fmt: skip
    wednesday = date(2026, 11, 25)
    plans = client.schedules(wednesday)
    assert plans == sim.truth_schedules(wednesday)
    members = sim.company.group_map()
    employed = {
        u for u in members if (last := sim.company.last_work_day(u)) is None or last >= wednesday
    }
    assert {p["userid"] for p in plans} == employed
    assert len(plans) == 2 * len(employed) > 200  # two pages of 200
    assert sim.calls()["by_api"]["topapi/attendance/listschedule"]["metered"] == 2
    on = next(p for p in plans if p["check_type"] == "OnDuty")
    assert on["plan_check_time"].startswith("2026-11-25 ") and on["group_id"] in (9001, 9002)
    assert client.schedules(date(2026, 11, 28)) == []  # a Saturday: nobody is planned
    assert client.schedules(date(2026, 12, 6)) == []  # beyond 15 days: fixed groups say nothing
    assert sim.truth_schedules(date(2026, 12, 7))
    # A future leave approved and revoked over the admin API, as a demo would.
    who = sorted(employed)[0]
    leave = requests.post(
        f"{url}/_sim/approve", json={"userid": who, "date": "2026-11-25", "half": "PM"}, timeout=5
    ).json()
    assert leave["durationUnit"] == "halfDay" and leave["beginTime"] == "2026-11-25 PM"
    assert [a["approveId"] for a in client.approvals([who], wednesday, wednesday)] == [
        leave["approveId"]
    ]
    assert requests.post(f"{url}/_sim/revoke", json=leave, timeout=5).json() == {"ok": True}
    assert client.approvals([who], wednesday, wednesday) == []
    kinds = [e["eventType"] for e in sim.stream.snapshot()["events"]]
    assert kinds.count("bpms_instance_change") == 2
    with pytest.raises(DingTalkError, match="size"):
        client._legacy(
            "attendance/listschedule",
            "/topapi/attendance/listschedule",
            {"workDate": "2026-11-25 00:00:00", "size": 201},
        )


def availability(settings: Any) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute("SELECT * FROM team_availability").df()


def sensor_runs(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    """One tick of `availability_on_events`, its request run as the daemon would; new cursor."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = availability_on_events(dg.build_sensor_context(instance=instance, cursor=cursor))
        if isinstance(result, dg.SensorResult) and result.run_requests:
            [request] = result.run_requests
            job = defs.resolve_job_def("availability")
            summary = run_job(job, instance, tags={**request.tags, RUN_KEY_TAG: request.run_key})
            assert summary.success, summary.render()
            return result.cursor
        time.sleep(0.2)
    raise AssertionError("the availability sensor saw no event")


def test_a_leave_approved_for_next_wednesday_shows_until_it_is_revoked(pipeline, monkeypatch):
    sim, settings, defs, instance = pipeline
    assert sync(defs, instance, date(2026, 11, 19), date(2026, 11, 19)).success  # a roster
    roster = partition(settings, "dingtalk_roster", date(2026, 11, 19))
    testers = roster[roster["dept_ids"].map(lambda d: 22 in list(d))]
    who = testers[testers["attendance_group_id"].notna()].sort_values("userid").iloc[0]
    userid, name = str(who["userid"]), str(who["name"])
    wednesday = next_week(SIM_TODAY)[0] + timedelta(days=2)
    assert wednesday == date(2026, 11, 25)
    robot = Receiver({"errcode": 0, "errmsg": "ok"})
    monkeypatch.setenv("DINGTALK_TEAM_TEST_WEBHOOK", robot.url)
    monkeypatch.setenv("DINGTALK_TEAM_TEST_SECRET", "SEC-team-secret")
    weekly = defs.resolve_job_def("availability_weekly")
    queue = EventQueue(settings.data_dir / "events.sqlite")
    listener = Listener(queue, "sim-key", "sim-secret", sim_url(defs), max_backoff_s=2)
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    try:
        assert run_job(weekly, instance).success
        mine = availability(settings).set_index(["userid", "work_date"])
        assert mine.loc[(userid, pd.Timestamp(wednesday))]["status"] == "available"
        first_text = robot.requests[-1][1]["markdown"]["text"]
        assert f"{name} 周三" not in first_text

        leave = sim.approve(userid, wednesday, "年假")  # pushes bpms_instance_change (finish)
        cursor = sensor_runs(defs, instance, None)
        row = (
            availability(settings)
            .set_index(["userid", "work_date"])
            .loc[(userid, pd.Timestamp(wednesday))]
        )
        assert (row["status"], row["reason"], row["available_hours"]) == ("away", "全天年假", 0)
        assert list(row["approve_ids"]) == [leave["approveId"]]
        assert run_job(weekly, instance).success
        path, body = robot.requests[-1]
        text = body["markdown"]["text"]
        assert "下周: " in text and f"{name} 周三全天年假" in text.split("下周: ")[1].split("\n")[0]
        assert "timestamp=" in path and "sign=" in path  # 加签, the secret itself not sent
        assert "SEC-team-secret" not in path

        sim.revoke(leave)  # pushes bpms_instance_change (terminate)
        sensor_runs(defs, instance, cursor)
        row = (
            availability(settings)
            .set_index(["userid", "work_date"])
            .loc[(userid, pd.Timestamp(wednesday))]
        )
        assert (row["status"], row["available_hours"]) == ("available", 8)
        assert run_job(weekly, instance).success
        assert f"{name} 周三" not in robot.requests[-1][1]["markdown"]["text"]
    finally:
        listener.stop.set()
        thread.join(timeout=10)
        sim.stream.stop()
        robot.close()
    # The lake copy is the warehouse table; the metadata names no secret.
    lake = pd.read_parquet(settings.lake_dir / "team_availability.parquet")
    assert len(lake) == len(availability(settings))
    event = instance.get_latest_materialization_event(dg.AssetKey("availability_notice"))
    assert event is not None and event.asset_materialization is not None
    shown = str(event.asset_materialization.metadata)
    assert "SEC-team-secret" not in shown and robot.url not in shown

"""Issue 13, item 2: Stream events become runs that refresh only the affected people's days.

End to end against the simulators: a 补卡 approved late reaches the PM system as one write,
pulled for that person alone, within two minutes of the event; the nightly corrections run then
finds nothing left for them. Plus the planner's grouping and the sensor's bookkeeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pytest

from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.dagster_api import partition_range_tags
from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.event_queue import EventQueue
from attendance_pipeline.listen import Listener
from attendance_pipeline.refresh import MAX_USERS_PER_RUN, RUN_KEY_TAG, evaluate, plan_refreshes
from attendance_pipeline.sync import run_job
from attendance_pipeline.targeted import USERS_TAG, tagged_users
from tests.conftest import SIM_TODAY, resource


def late_corrections(sim: Any) -> Iterator[tuple[date, dict[str, Any], date]]:
    """(work day, its 补卡 approval, the first day DingTalk shows it), from ground truth."""
    sim.set_today(SIM_TODAY)
    for approval in sim.truth_approvals(date(2026, 10, 20), date(2026, 11, 12)):
        if approval["bizType"] != 4:
            continue
        day = date.fromisoformat(approval["beginTime"][:10])
        for lag in range(2, 7):
            sim.set_today(day + timedelta(days=lag))
            if any(a["approveId"] == approval["approveId"] for a in sim.truth_approvals(day, day)):
                sim.set_today(day + timedelta(days=1))
                visible = sim.truth_approvals(day, day)
                if all(a["approveId"] != approval["approveId"] for a in visible):
                    yield day, approval, day + timedelta(days=lag)
                break


def sync(defs: dg.Definitions, instance: dg.DagsterInstance, start: date, end: date) -> Any:
    """The `sync` job alone (no payroll months) for start..end."""
    tags = partition_range_tags(start.isoformat(), end.isoformat())
    return run_job(defs.resolve_job_def("sync"), instance, tags=tags)


def ledger(settings: Any) -> set[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return set(
            con.execute(
                "SELECT worklog_key, userid, work_date, action, pushed_at FROM worklog_ledger"
            ).fetchall()
        )


def writes_since(settings: Any, earlier: set[tuple]) -> list[tuple]:
    """(userid, work_date, action) of the ledger rows added since `earlier` that wrote."""
    new = ledger(settings) - earlier
    return sorted((u, str(d), a) for _, u, d, a, _ in new if a in WRITES)


def actions_since(settings: Any, earlier: set[tuple], userid: str) -> set[str]:
    return {a for _, u, _, a, _ in ledger(settings) - earlier if u == userid}


WRITES = ("created", "updated", "deleted")


def partition(settings: Any, asset: str, day: date) -> pd.DataFrame:
    return pd.read_parquet(settings.lake_dir / asset / f"{day}.parquet")


def run_requests(defs: dg.Definitions, instance: dg.DagsterInstance, requests: list) -> list:
    """Launch the sensor's requests the way the daemon would (their run key as a tag)."""
    job = defs.resolve_job_def("sync")
    return [run_job(job, instance, tags={**r.tags, RUN_KEY_TAG: r.run_key}) for r in requests]


@pytest.mark.slow
def test_a_late_bu_ka_reaches_the_pm_system_as_one_write_for_that_person_only(pipeline, pm_sim):
    sim, settings, base, instance = pipeline
    pm, pm_url = pm_sim()
    defs = build_definitions(
        settings, {"dingtalk": base.resources["dingtalk"], "pm": resource("jira", pm_url)}
    )
    # People with worklogs in the PM system (mapped, in scope), from one synced day.
    sim.set_today(date(2026, 10, 13))
    assert sync(defs, instance, date(2026, 10, 12), date(2026, 10, 12)).success
    planned = set(partition(settings, "worklog_plan", date(2026, 10, 12))["userid"])
    day, approval, arrives = next(c for c in late_corrections(sim) if c[1]["userId"] in planned)
    userid = approval["userId"]
    window = (day - timedelta(days=4), day)
    sim.set_today(day + timedelta(days=1))
    assert sync(defs, instance, *window).success
    before = {a: partition(settings, a, day) for a in ("raw_attendance", "raw_approvals")}
    writes_before = pm.calls()["writes"]
    ledger_before = ledger(settings)

    queue = EventQueue(settings.data_dir / "events.sqlite")
    listener = Listener(queue, "sim-key", "sim-secret", sim_url(base), max_backoff_s=2)
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    try:
        sim.set_today(arrives)
        sim.reset_calls()
        born = datetime(arrives.year, arrives.month, arrives.day, 9, tzinfo=SHANGHAI)
        started = time.monotonic()
        sim.publish_approval(approval, born_ms=int(born.timestamp() * 1000))
        requests: list = []
        while not requests and time.monotonic() - started < 60:  # the sensor's ticks
            time.sleep(0.2)
            requests, _ = evaluate(queue, instance, SIM_TODAY)
        assert len(requests) == 1, "the 补卡's two events (check record, approval) share a run"
        [summary] = run_requests(defs, instance, requests)
        elapsed = time.monotonic() - started
    finally:
        listener.stop.set()
        thread.join(timeout=10)
        sim.stream.stop()

    assert summary.success, summary.render()
    assert elapsed < 120, f"{elapsed:.1f} s from the event to the PM system"
    [request] = requests
    assert tagged_users(request.tags) == [userid]
    # DingTalk was asked about that person alone, in a handful of metered calls.
    targeted_calls = sim.calls()["metered_this_month"]
    assert set(sim.metered_users()) == {userid} and 0 < targeted_calls <= 4
    # Exactly one worklog write, for that person and day; nothing else in the PM system moved.
    writes = writes_since(settings, ledger_before)
    assert [(u, d) for u, d, _ in writes] == [(userid, str(day))], writes
    assert pm.calls()["writes"] == writes_before + 1
    # Everyone else's stored rows are exactly as they were.
    for asset, old in before.items():
        new = partition(settings, asset, day)
        pd.testing.assert_frame_equal(without(new, userid), without(old, userid))
    # The roster's latest materialization still names the departments (for the reports).
    roster = instance.get_latest_materialization_event(dg.AssetKey("dingtalk_roster"))
    assert roster is not None and roster.asset_materialization is not None
    assert roster.asset_materialization.metadata["departments"].value
    # The next tick sees the run succeeded: both events are processed, none is left.
    requests, counts = evaluate(queue, instance, SIM_TODAY)
    assert requests == [] and counts["processed"] == 2
    assert queue.counts()["pending"] == 0
    assert {e["run_key"] for e in queue.all()} == {request.run_key}

    # The nightly corrections run finds nothing left to do for that person.
    sim.reset_calls()
    ledger_before = ledger(settings)
    nightly = sync(defs, instance, *window)
    assert nightly.success
    assert actions_since(settings, ledger_before, userid) == {"unchanged"}
    assert sim.calls()["metered_this_month"] > targeted_calls


def without(frame: pd.DataFrame, userid: str) -> pd.DataFrame:
    return frame[frame["userid"] != userid].reset_index(drop=True)


def sim_url(defs: dg.Definitions) -> str:
    return str((defs.resources or {})["dingtalk"].api_base_url)


def test_a_duplicate_delivery_gives_one_refresh_and_a_failed_run_is_asked_again(pipeline):
    sim, settings, defs, instance = pipeline
    window = (date(2026, 11, 16), date(2026, 11, 19))
    assert sync(defs, instance, *window).success
    queue = EventQueue(settings.data_dir / "events.sqlite")
    userid = sorted(partition(settings, "raw_attendance", window[1])["userid"])[0]
    check = {"dataList": [{"userId": userid, "checkTime": "2026-11-18", "bizId": "x1"}]}
    assert queue.store("e1", "attendance_check_record", None, check)
    assert not queue.store("e1", "attendance_check_record", None, check)  # redelivered
    requests, counts = evaluate(queue, instance, SIM_TODAY)
    assert len(requests) == 1 and counts["new_runs"] == 1
    again, _ = evaluate(queue, instance, SIM_TODAY)  # the run has not started yet
    assert [r.run_key for r in again] == [requests[0].run_key]

    # The run fails (DingTalk refuses): its event is released and asked for under a new key.
    sim.deny_api("attendance/list")
    [failed] = run_requests(defs, instance, requests)
    assert not failed.success
    assert evaluate(queue, instance, SIM_TODAY)[1]["released"] == 1
    sim.allow_api("attendance/list")
    retry, _ = evaluate(queue, instance, SIM_TODAY)
    assert len(retry) == 1 and retry[0].run_key != requests[0].run_key
    assert tagged_users(retry[0].tags) == [userid]
    assert retry[0].tags["dagster/asset_partition_range_start"] == "2026-11-18"
    [ok] = run_requests(defs, instance, retry)
    assert ok.success
    assert evaluate(queue, instance, SIM_TODAY)[1]["processed"] == 1
    assert queue.counts() == {"events": 1, "pending": 0, "deliveries": 2}


def test_the_planner_groups_by_person_clips_to_synced_days_and_bounds_run_size():
    from attendance_pipeline.event_queue import QueuedEvent

    born = int(datetime(2026, 11, 19, 9, tzinfo=SHANGHAI).timestamp() * 1000)
    bpms = {"staffId": "u1", "type": "finish", "processInstanceId": "p1"}
    events = [
        QueuedEvent(
            "a",
            "attendance_check_record",
            born,
            {"dataList": [{"userId": "u1", "checkTime": "2026-11-17"}]},
            1,
        ),
        QueuedEvent("b", "bpms_instance_change", born, bpms, 1),
        QueuedEvent("c", "user_leave_org", born, {"UserId": ["u2"]}, 1),
        QueuedEvent(
            "d",
            "attendance_check_record",
            born,
            {"dataList": [{"userId": "u3", "checkTime": "2026-10-01"}]},
            1,
        ),  # never synced
        QueuedEvent("e", "user_add_org", born, {}, 1),  # nobody named
    ]
    synced = {date(2026, 11, 10) + timedelta(days=i) for i in range(10)}
    refreshes, nothing = plan_refreshes(events, date(2026, 11, 19), synced)
    assert sorted(nothing) == ["d", "e"]
    by_users = {r.users: r for r in refreshes}
    person = by_users[("u1",)]
    # The check record and the approval of one person share a run over the union of their
    # days: a week back from the approval, up to the latest partition.
    assert (person.start, person.end, person.roster) == (
        date(2026, 11, 12),
        date(2026, 11, 19),
        False,
    )
    assert person.event_ids == ("a", "b")
    leaver = by_users[("u2",)]
    assert (leaver.start, leaver.end, leaver.roster) == (
        date(2026, 11, 19),
        date(2026, 11, 19),
        True,
    )
    assert leaver.request(leaver.run_key()).tags["attendance/roster"] == "pull"

    many = [
        QueuedEvent(
            f"m{i}",
            "attendance_check_record",
            born,
            {"dataList": [{"userId": f"x{i}", "checkTime": "2026-11-18"}]},
            1,
        )
        for i in range(MAX_USERS_PER_RUN + 5)
    ]
    runs, _ = plan_refreshes(many, date(2026, 11, 19), synced)
    assert [len(r.users) for r in runs] == [MAX_USERS_PER_RUN, 5]
    assert all(len(r.request(r.run_key()).tags[USERS_TAG]) < 20_000 for r in runs)

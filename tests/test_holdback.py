"""Hold back, don't stop (issue 10): a gate's verdict is per employee-day. A corrupted
employee-day is held back with its cause, every other day and person flows in the same run, the
held day keeps what finance had before, and the first run that finds it good releases it."""

from datetime import date

import duckdb
import pytest

from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.sync import EXIT_HELD_BACK, EXIT_OK, run_sync
from tests.conftest import resource

WINDOW = (date(2026, 11, 9), date(2026, 11, 15))  # a 7-day corrections window
WORKDAY = date(2026, 11, 11)


def warehouse(settings, sql: str, params=()) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def planned(settings) -> dict[tuple[str, str], int]:
    """(userid, day) → planned work seconds, from the lake."""
    rows = warehouse(
        settings,
        "SELECT userid, work_date::VARCHAR, sum(seconds) FROM read_parquet(?) "
        "WHERE kind = 'work' GROUP BY ALL",
        [str(settings.lake_dir / "worklog_plan" / "*.parquet")],
    )
    return {(u, d): int(s) for u, d, s in rows}


def in_pm(pm) -> dict[tuple[str, str], int]:
    """(userid, day) → seconds the PM simulator holds (Jira; the employee is in the worklog's
    `attendance` property, since Jira's author is always the integration user)."""
    held: dict[tuple[str, str], int] = {}
    for worklog in pm.worklogs("jira"):
        key = (worklog["properties"]["attendance"]["userid"], str(worklog["work_date"]))
        held[key] = held.get(key, 0) + int(worklog["seconds"])
    return held


def userid_of(worklog) -> str:
    return worklog["properties"]["attendance"]["userid"]


def corrupt(sim, victim: str, kind: str) -> None:
    """DingTalk returns one corrupted employee-day (the victim's WORKDAY)."""
    company = sim.company
    original = type(company).attendance.__get__(company)

    def attendance(userid, day, today):
        records = original(userid, day, today)
        if userid != victim or day != WORKDAY or not records:
            return records
        if kind == "missing_employee_day":
            return []
        if kind == "duplicated_check_point":
            return [*records, {**records[0], "id": records[0]["id"] + 10_000_000}]
        if kind == "unknown_time_result":
            return [{**records[0], "timeResult": "Bogus"}, *records[1:]]
        raise AssertionError(kind)

    company.attendance = attendance  # type: ignore[method-assign]


def heal(sim) -> None:
    sim.company.attendance = type(sim.company).attendance.__get__(sim.company)


CAUSES = {
    "missing_employee_day": ("inputs_complete", "fewer than 2 check points"),
    "duplicated_check_point": ("raw_attendance_valid", "duplicated check point"),
    "unknown_time_result": ("raw_attendance_valid", "time_result not in"),
}


@pytest.mark.parametrize("corruption", sorted(CAUSES))
def test_a_corrupted_employee_day_is_held_back_and_everything_else_flows(
    pipeline, pm_sim, corruption
):
    sim, settings, defs, instance = pipeline
    pm, url = pm_sim()
    defs = build_definitions(
        settings, {"dingtalk": defs.resources["dingtalk"], "pm": resource("jira", url)}
    )
    # Before: a clean dry run publishes the hours (finance's view) and writes nothing to the PM.
    before = run_sync(defs, *WINDOW, instance=instance, dry_run=True)
    assert before.exit_code == EXIT_OK, before.render()
    plan = planned(settings)
    victim = sorted(u for (u, d) in plan if d == str(WORKDAY))[0]
    published_before = warehouse(
        settings,
        "SELECT * FROM effective_hours WHERE userid = ? AND work_date = ?",
        [victim, WORKDAY],
    )
    assert len(published_before) == 1

    corrupt(sim, victim, corruption)
    held_run = run_sync(defs, *WINDOW, instance=instance)
    assert held_run.exit_code == EXIT_HELD_BACK, held_run.render()
    check, cause = CAUSES[corruption]
    rows = warehouse(
        settings,
        'SELECT "check", userid, work_date, reason, fix, first_seen, released_at FROM held_back',
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [(check, victim, WORKDAY)], rows
    assert cause in rows[0][3] and rows[0][4] and rows[0][6] is None
    # The held day keeps what finance had; every other planned user-day reached Jira in this
    # same run, exactly the plan.
    assert (
        warehouse(
            settings,
            "SELECT * FROM effective_hours WHERE userid = ? AND work_date = ?",
            [victim, WORKDAY],
        )
        == published_before
    )
    others = {k: v for k, v in plan.items() if k != (victim, str(WORKDAY))}
    assert in_pm(pm) == others
    # The CLI block names the check, the person and the fix.
    text = held_run.render()
    assert check in text and victim in text and "fix:" in text
    pending = warehouse(
        settings,
        "SELECT pending_days FROM payroll_monthly WHERE month = '2026-11' AND userid = ?",
        [victim],
    )
    assert pending == [(1,)]

    # DingTalk serves the day clean again: the next run releases it and pushes exactly it.
    heal(sim)
    writes_before = pm.calls()["writes"]
    released = run_sync(defs, *WINDOW, instance=instance)
    assert released.exit_code == EXIT_OK, released.render()
    assert warehouse(settings, "SELECT count(*) FROM held_back WHERE released_at IS NULL") == [(0,)]
    assert warehouse(settings, "SELECT count(*) FROM held_back WHERE released_at IS NOT NULL") == [
        (1,)
    ]
    assert in_pm(pm) == plan
    victim_worklogs = sum(1 for w in pm.worklogs("jira") if userid_of(w) == victim)
    assert pm.calls()["writes"] - writes_before == released.worklogs["created"]
    assert released.worklogs["created"] == sum(
        1
        for w in pm.worklogs("jira")
        if userid_of(w) == victim and str(w["work_date"]) == str(WORKDAY)
    )
    assert victim_worklogs > 0
    assert warehouse(
        settings,
        "SELECT pending_days FROM payroll_monthly WHERE month = '2026-11' AND userid = ?",
        [victim],
    ) == [(0,)]


def test_a_held_day_already_in_the_pm_system_is_left_alone_until_released(pipeline, pm_sim):
    sim, settings, defs, instance = pipeline
    pm, url = pm_sim()
    defs = build_definitions(
        settings, {"dingtalk": defs.resources["dingtalk"], "pm": resource("jira", url)}
    )
    clean = run_sync(defs, *WINDOW, instance=instance)
    assert clean.exit_code == EXIT_OK, clean.render()
    plan = planned(settings)
    held_before = in_pm(pm)
    victim = sorted(u for (u, d) in plan if d == str(WORKDAY))[0]

    # The day loses its results at DingTalk (e.g. regenerated late): its worklogs are not
    # deleted, its published hours stay, nothing else is written.
    corrupt(sim, victim, "missing_employee_day")
    writes = pm.calls()["writes"]
    summary = run_sync(defs, *WINDOW, instance=instance)
    assert summary.exit_code == EXIT_HELD_BACK, summary.render()
    assert pm.calls()["writes"] == writes
    assert in_pm(pm) == held_before
    assert summary.worklogs.get("deleted", 0) == 0


def test_new_holds_reach_sync_errors_and_the_group_robot_once(pipeline, monkeypatch):
    from tests.test_automation import Receiver

    sim, settings, defs, instance = pipeline
    robot = Receiver({"errcode": 0, "errmsg": "ok"})
    try:
        monkeypatch.setenv("DINGTALK_ROBOT_WEBHOOK", robot.url)
        victim = sorted(
            u["userid"] for u in sim.truth_users() if sim.company.group_of(u["userid"])
        )[3]
        corrupt(sim, victim, "duplicated_check_point")
        assert run_sync(defs, *WINDOW, instance=instance).exit_code == EXIT_HELD_BACK
        assert len(robot.requests) == 1
        text = robot.requests[0][1]["markdown"]["text"]
        assert "raw_attendance_valid" in text and "duplicated check point" in text
        errors = warehouse(
            settings,
            "SELECT operation, partition, key, error_class, message FROM sync_errors "
            "WHERE error_class = 'HeldBack'",
        )
        assert [e[:4] for e in errors] == [
            ("raw_attendance_valid", str(WORKDAY), victim, "HeldBack")
        ]
        assert "Fix:" in errors[0][4]
        # Still held on the next run: no second alert, no second sync_errors row.
        assert run_sync(defs, *WINDOW, instance=instance).exit_code == EXIT_HELD_BACK
        assert len(robot.requests) == 1
        assert (
            len(warehouse(settings, "SELECT * FROM sync_errors WHERE error_class = 'HeldBack'"))
            == 1
        )
    finally:
        robot.close()

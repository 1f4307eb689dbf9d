"""A company that looks like a real one (issue 10): people without a findable PM account, people
in no attendance group, people who left. One person's problem stays with that person."""

from datetime import date

import duckdb
import pytest
import yaml

from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.sync import EXIT_HELD_BACK, EXIT_OK, run_sync
from tests.conftest import resource

WINDOW = (date(2026, 11, 9), date(2026, 11, 15))


def query(settings, sql: str, params=()) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def pm_seconds(pm) -> dict[tuple[str, str], int]:
    """(userid, day) → seconds Jira holds (the employee is in the `attendance` property)."""
    held: dict[tuple[str, str], int] = {}
    for worklog in pm.worklogs("jira"):
        key = (worklog["properties"]["attendance"]["userid"], str(worklog["work_date"]))
        held[key] = held.get(key, 0) + int(worklog["seconds"])
    return held


def effective_seconds(settings, userids) -> dict[tuple[str, str], int]:
    rows = query(
        settings,
        "SELECT userid, work_date::VARCHAR, effective_hours FROM effective_hours "
        "WHERE countable AND list_contains(?, userid)",
        [sorted(userids)],
    )
    return {(u, d): round(h * 3600) for u, d, h in rows}


def latest_mapping(settings) -> list[tuple]:
    return query(
        settings,
        "SELECT userid, status, in_scope FROM read_parquet(?) WHERE snapshot_date = ?",
        [str(settings.lake_dir / "user_mapping" / "*.parquet"), WINDOW[1]],
    )


@pytest.mark.slow
def test_unmapped_people_wait_for_delivery_only_and_flow_once_mapped(pipeline_for, pm_sim):
    _, settings, defs, instance = pipeline_for(seed=5)
    pm, url = pm_sim(seed=5)
    defs = build_definitions(
        settings, {"dingtalk": defs.resources["dingtalk"], "pm": resource("jira", url)}
    )
    first = run_sync(defs, *WINDOW, instance=instance)
    assert first.exit_code == EXIT_HELD_BACK, first.render()

    mapping = latest_mapping(settings)
    in_scope = {u for u, _, scope in mapping if scope}
    unmapped = {u for u, status, scope in mapping if scope and status != "mapped"}
    assert len(in_scope) == 10 and len(unmapped) == 2, mapping
    mapped = in_scope - unmapped
    # Every mapped in-scope employee's worklogs are in Jira and equal their effective hours.
    assert pm_seconds(pm) == effective_seconds(settings, mapped)
    assert pm_seconds(pm)
    # The two are held back from delivery with reason and fix, their hours are published.
    held = query(
        settings,
        'SELECT DISTINCT "check", userid, blocks, reason, fix FROM held_back '
        "WHERE released_at IS NULL",
    )
    assert {(c, u, b) for c, u, b, _, _ in held} == {
        ("mapping_valid", u, "delivery") for u in unmapped
    }
    assert all(
        "not mapped" in reason and "config/user_mapping.csv" in fix for *_, reason, fix in held
    )
    assert effective_seconds(settings, unmapped)
    # Payroll holds the month for everyone on the roster, nothing pending for delivery holds.
    roster = {r[0] for r in query(settings, "SELECT DISTINCT userid FROM roster")}
    payroll = query(
        settings,
        "SELECT userid, pending_days FROM payroll_monthly WHERE month = '2026-11'",
    )
    assert {u for u, _ in payroll} == roster and len(roster) >= 59
    assert all(pending == 0 for _, pending in payroll)

    # The data team adds their mapping: the next sync pushes exactly their worklogs.
    truth = pm.truth_mapping()
    with (settings.config_dir / "user_mapping.csv").open("a", encoding="utf-8") as handle:
        for userid in sorted(unmapped):
            handle.write(f"{userid},{truth[userid]['account_id']}\n")
    before = pm_seconds(pm)
    second = run_sync(defs, *WINDOW, instance=instance)
    assert second.exit_code == EXIT_OK, second.render()
    after = pm_seconds(pm)
    new = {k: v for k, v in after.items() if k not in before}
    assert new == effective_seconds(settings, unmapped) and new
    assert {k: after[k] for k in before} == before
    assert second.worklogs["created"] == len(pm.worklogs("jira")) - first.worklogs["created"]
    assert second.worklogs.get("updated", 0) == second.worklogs.get("deleted", 0) == 0
    released = query(
        settings,
        "SELECT userid, count(*) FILTER (WHERE released_at IS NULL) FROM held_back GROUP BY ALL",
    )
    assert {u for u, _ in released} == unmapped and all(n == 0 for _, n in released)


def test_a_person_in_no_attendance_group_is_exempt_paid_and_not_pushed(pipeline, pm_sim):
    sim, settings, defs, instance = pipeline
    pm, url = pm_sim()
    exempt = sorted(
        u["userid"] for u in sim.truth_users() if sim.company.group_of(u["userid"]) is None
    )
    assert exempt, "the simulated company has people in no attendance group"
    person = exempt[0]
    # Put them in scope, so "nothing pushed" is the rule's doing, not the scope's.
    pipeline_yaml = settings.config_dir / "pipeline.yaml"
    config = yaml.safe_load(pipeline_yaml.read_text(encoding="utf-8"))
    config["scope"]["users"] = [person]
    pipeline_yaml.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    defs = build_definitions(
        settings, {"dingtalk": defs.resources["dingtalk"], "pm": resource("jira", url)}
    )
    summary = run_sync(defs, *WINDOW, instance=instance)
    assert summary.success, summary.render()
    assert "effective_hours:inputs_complete" not in summary.warned_checks, summary.render()
    days = query(
        settings,
        "SELECT work_date, day_type, status, effective_hours, leave_hours FROM effective_hours "
        "WHERE userid = ? ORDER BY work_date",
        [person],
    )
    assert len(days) == 7
    for day, day_type, status, hours, leave in days:
        if day_type == "workday":
            assert status in ("exempt", "leave", "business_trip") and hours == max(0, 8 - leave)
        else:
            assert (status, hours) == ("exempt", 0), (day, day_type, status, hours)
    assert any(status == "exempt" and hours == 8 for _, _, status, hours, _ in days)
    assert not [w for w in pm.worklogs("jira") if w["properties"]["attendance"]["userid"] == person]
    assert query(settings, "SELECT count(*) FROM held_back WHERE userid = ?", [person]) == [(0,)]
    paid = query(
        settings,
        "SELECT effective_hours FROM payroll_monthly WHERE month = '2026-11' AND userid = ?",
        [person],
    )
    assert paid == [(sum(h for *_, h, _ in days),)] and paid[0][0] > 0

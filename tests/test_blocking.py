"""Quality gates really block the load: each corruption makes the right check fail with metadata
naming the cause, and zero worklogs reach the PM system — within one run, and when the push runs
later in a separate run."""

from datetime import date

import dagster as dg
import pytest
import yaml
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.sync import run_sync
from tests.conftest import resource
from tests.test_delivery import WEEK

WORKDAY = date(2026, 11, 10)


def corrupt(sim, kind: str) -> None:
    """Make the simulated DingTalk return one corrupted result."""
    company = sim.company
    original = company.attendance
    victim = sorted(u["userid"] for u in sim.truth_users())[0]

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
        if kind == "row_outside_partition":
            moved = records[0]["workDate"] + 20 * 86_400_000
            return [{**records[0], "workDate": moved}, *records[1:]]
        raise AssertionError(kind)

    company.attendance = attendance  # type: ignore[method-assign]


EXPECTED = {
    "missing_employee_day": ("effective_hours", "inputs_complete", str(WORKDAY)),
    "duplicated_check_point": ("raw_attendance", "raw_attendance_valid", "userid, work_date"),
    "unknown_time_result": ("raw_attendance", "raw_attendance_valid", "Bogus"),
    "row_outside_partition": ("raw_attendance", "raw_attendance_valid", "work_date"),
    "unmapped_in_scope_user": ("user_mapping", "mapping_valid", "unmapped"),
    "plan_disagrees_with_hours": ("worklog_plan", "plan_valid", "seconds"),
}


def push_only_run(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """Materialise only `pushed_worklogs` for WEEK, as a separate run from the UI would."""
    push_only = dg.define_asset_job("push_only", selection=["pushed_worklogs"])
    job = dg.Definitions.merge(defs, dg.Definitions(jobs=[push_only])).resolve_job_def("push_only")
    return job.execute_in_process(
        instance=instance,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: WEEK[0].isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: WEEK[1].isoformat(),
        },
        raise_on_error=False,
    )


def check_evaluation(instance, asset: str, name: str):
    key = dg.AssetCheckKey(dg.AssetKey(asset), name)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.event.dagster_event.event_specific_data


@pytest.mark.parametrize("corruption", sorted(EXPECTED))
def test_each_corruption_fails_its_gate_and_nothing_is_pushed(
    pipeline, pm_sim, monkeypatch, corruption
):
    sim, settings, defs, instance = pipeline
    pm, url = pm_sim()
    defs = build_definitions(
        settings, {"dingtalk": defs.resources["dingtalk"], "pm": resource("jira", url)}
    )
    if corruption == "unmapped_in_scope_user":
        (settings.config_dir / "pipeline.yaml").write_text(
            yaml.safe_dump({"scope": {"departments": [1], "users": []}}), encoding="utf-8"
        )
    elif corruption == "plan_disagrees_with_hours":
        from attendance_pipeline.pm import plan as planning

        original = planning.split_minutes
        monkeypatch.setattr(
            planning, "split_minutes", lambda total, shares: original(total + 30, shares)
        )
    else:
        corrupt(sim, corruption)

    summary = run_sync(defs, *WEEK, instance=instance)
    asset, check, cause = EXPECTED[corruption]
    assert not summary.success
    assert f"{asset}:{check}" in summary.failed_checks, summary.render()
    evaluation = check_evaluation(instance, asset, check)
    assert evaluation.passed is False
    assert cause in str(evaluation.metadata["failures"].value), evaluation.metadata
    assert pm.calls()["writes"] == 0 and pm.worklogs("jira") == []


def test_a_later_separate_push_refuses_while_a_gate_fails(pipeline, pm_sim):
    sim, settings, defs, instance = pipeline
    pm, url = pm_sim()
    defs = build_definitions(
        settings, {"dingtalk": defs.resources["dingtalk"], "pm": resource("jira", url)}
    )
    # A clean dry run leaves a plan in the lake (and writes nothing).
    assert run_sync(defs, *WEEK, instance=instance, dry_run=True).success
    # DingTalk then returns a corrupted result: the gate fails, downstream is skipped.
    corrupt(sim, "unknown_time_result")
    assert not run_sync(defs, *WEEK, instance=instance).success
    # Someone launches only the push, for the same days, in a separate run.
    result = push_only_run(defs, instance)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "raw_attendance:raw_attendance_valid" in failure.description
    assert pm.calls()["writes"] == 0 and pm.worklogs("jira") == []

    # Fixed at the source and re-run: the gates pass and the push goes through.
    sim.company.attendance = type(sim.company).attendance.__get__(sim.company)
    fixed = run_sync(defs, *WEEK, instance=instance)
    assert fixed.success, fixed.render()
    assert len(pm.worklogs("jira")) == fixed.worklogs["created"] > 0


def test_a_clean_month_passes_every_gate(pipeline, pm_sim):
    _, settings, defs, instance = pipeline
    _, url = pm_sim()
    defs = build_definitions(
        settings, {"dingtalk": defs.resources["dingtalk"], "pm": resource("jira", url)}
    )
    month = (date(2026, 10, 1), date(2026, 10, 31))
    summary = run_sync(defs, *month, instance=instance)
    assert summary.success and not summary.failed_checks, summary.render()
    evaluations = [
        e.dagster_event.event_specific_data
        for e in instance.all_logs(summary.run_id)
        if e.dagster_event
        and e.dagster_event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert {e.check_name for e in evaluations} >= {
        "roster_valid", "raw_attendance_valid", "raw_approvals_valid", "inputs_complete",
        "hours_valid", "mapping_valid", "plan_valid", "reconciled",
    }  # fmt: skip
    assert all(e.passed for e in evaluations if e.severity == dg.AssetCheckSeverity.ERROR)

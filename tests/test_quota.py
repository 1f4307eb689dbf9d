"""The monthly ledger of metered DingTalk calls: shared by processes, shown per run, warned on."""

from concurrent.futures import ProcessPoolExecutor
from datetime import date

import dagster as dg

from attendance_pipeline.dingtalk.quota import add_metered
from attendance_pipeline.sync import run_sync


def _add_one(path) -> int:
    return add_metered(path, "2026-11", 1)


def test_processes_adding_at_once_lose_no_call(tmp_path):
    path = tmp_path / "state" / "ledger.json"
    with ProcessPoolExecutor(max_workers=4) as pool:
        list(pool.map(_add_one, [path] * 40))
    assert add_metered(path, "2026-11", 0) == 40
    assert add_metered(path, "2026-12", 5) == 5


def test_a_sync_reports_the_months_use_and_warns_near_the_quota(pipeline, monkeypatch):
    sim, _, defs, instance = pipeline
    monkeypatch.setenv("DINGTALK_MONTHLY_QUOTA", "10")
    summary = run_sync(defs, date(2026, 11, 9), date(2026, 11, 13), instance=instance)
    assert summary.success
    materializations = [
        e.dagster_event.event_specific_data.materialization
        for e in instance.all_logs(summary.run_id)
        if e.dagster_event
        and e.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    ]
    approvals = next(m for m in materializations if m.asset_key.path == ["raw_approvals"])
    attendance = next(m for m in materializations if m.asset_key.path == ["raw_attendance"])
    month_total = max(
        approvals.metadata["metered_calls_this_month"].value,
        attendance.metadata["metered_calls_this_month"].value,
    )
    assert month_total == sim.calls()["metered_this_month"] == summary.metered_calls
    warnings = [
        e.user_message
        for e in instance.all_logs(summary.run_id)
        if e.level >= 30 and "DingTalk quota" in (e.user_message or "")
    ]
    assert warnings and "of 10 metered calls" in warnings[0]

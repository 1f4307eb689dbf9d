"""End to end: `sync` fills the lake and the DuckDB views from the simulator, and re-running it
gives identical rows with every partition replaced atomically."""

import os
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from attendance_pipeline.cli import main
from attendance_pipeline.sync import SyncUsageError, parse_range, run_sync
from tests.conftest import find_late_correction, read_view

SIM_TODAY = date(2026, 11, 20)
START, END = date(2026, 11, 9), date(2026, 11, 15)


def lake_files(settings) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(settings.lake_dir)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in settings.lake_dir.rglob("*")
        if p.is_file()
    }


def test_sync_fills_the_lake_and_views_and_a_rerun_is_identical(pipeline, capsys):
    sim, settings, defs, instance = pipeline
    summary = run_sync(defs, START, END, instance=instance)
    assert summary.success, summary.render()

    files = lake_files(settings)
    for asset in ("dingtalk_roster", "raw_attendance", "raw_approvals"):
        days = sorted(name for name in files if name.startswith(asset + "/"))
        assert days == [f"{asset}/2026-11-{d:02d}.parquet" for d in range(9, 16)]
    assert not [name for name in files if ".tmp" in name]

    attendance = read_view(settings, "raw_attendance")
    truth = sim.truth_attendance(START, END)
    assert sorted(attendance["id"]) == sorted(r["id"] for r in truth)
    assert attendance["id"].is_unique
    by_id = {r["id"]: r for r in truth}
    for row in attendance.itertuples():
        assert row.time_result == by_id[row.id]["timeResult"]
        assert row.userid == by_id[row.id]["userId"]

    approvals = read_view(settings, "raw_approvals")
    assert set(approvals["approve_id"]) == {a["approveId"] for a in sim.truth_approvals(START, END)}
    assert not approvals.duplicated(["approve_id", "work_date"]).any()

    roster = read_view(settings, "roster")
    assert {"email", "mobile", "org_email"}.isdisjoint(roster.columns)
    assert set(roster["snapshot_date"].astype(str)) == {f"2026-11-{d:02d}" for d in range(9, 16)}
    assert not roster.duplicated(["snapshot_date", "userid"]).any()
    assert summary.metered_calls == sim.calls()["metered_this_month"]

    # Re-run: the same rows, every partition file replaced (new inode), nothing left behind.
    before = {view: read_view(settings, view) for view in ("roster", "raw_attendance")}
    again = run_sync(defs, START, END, instance=instance)
    assert again.success
    after_files = lake_files(settings)
    assert set(after_files) == set(files)
    assert all(after_files[name][0] != files[name][0] for name in files)
    for view, frame in before.items():
        now = read_view(settings, view)
        key = ["id"] if view == "raw_attendance" else ["snapshot_date", "userid"]
        pd.testing.assert_frame_equal(
            frame.drop(columns="pulled_at").sort_values(key).reset_index(drop=True),
            now.drop(columns="pulled_at").sort_values(key).reset_index(drop=True),
        )


def test_a_later_correction_rewrites_the_past_day_in_place(pipeline):
    sim, settings, defs, instance = pipeline
    day = find_late_correction(sim)
    start = day - timedelta(days=3)
    sim.set_today(day + timedelta(days=1))
    assert run_sync(defs, start, day, instance=instance).success
    first = read_view(settings, "raw_attendance").set_index("id")
    sim.set_today(day + timedelta(days=6))  # the 补卡 approval has arrived
    assert run_sync(defs, start, day, instance=instance).success
    second = read_view(settings, "raw_attendance").set_index("id")
    assert sorted(first.index) == sorted(second.index)
    changed = second[first["time_result"] != second["time_result"]]
    assert len(changed) >= 1
    assert set(changed["work_date"].astype(str)) <= {str(day)}
    assert set(first.loc[changed.index, "time_result"]) == {"NotSigned"}
    assert set(changed["source_type"]) == {"APPROVE"} and changed["proc_inst_id"].notna().all()
    unchanged = first.index.difference(changed.index)
    pd.testing.assert_frame_equal(
        first.loc[unchanged].drop(columns="pulled_at"),
        second.loc[unchanged].drop(columns="pulled_at"),
    )


def test_a_failing_pull_leaves_stored_partitions_untouched(pipeline):
    sim, settings, defs, instance = pipeline
    assert run_sync(defs, START, END, instance=instance).success
    files = lake_files(settings)
    sim.deny_api("attendance/list")
    summary = run_sync(defs, START, END, instance=instance)
    assert not summary.success
    assert any("60011" in failure and "grant" in failure for failure in summary.failures)
    after = lake_files(settings)
    for name, stamp in files.items():
        if name.startswith("raw_attendance/"):
            assert after[name] == stamp


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-3", "2026-11-05", "--start '2026-11-3' is not a date"),
        ("2026-11-05", "2026-11-03", "before --start"),
        ("2025-01-01", "2025-01-02", "before the first partition"),
        ("2026-11-20", "2026-11-26", "has not ended yet"),
    ],
)
def test_bad_date_ranges_are_refused(start, end, message):
    with pytest.raises(SyncUsageError, match=message):
        parse_range(start, end, date(2026, 1, 1), today=date(2026, 11, 26))


def test_cli_explains_a_missing_simulator(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DINGTALK_APP_KEY", raising=False)
    monkeypatch.setenv("DINGTALK_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    # Settings are read when the command runs (not at import), so the environment above counts.
    assert main(["sync", "--start", "2026-11-02", "--end", "2026-11-03"]) == 2
    assert "nothing answers at http://127.0.0.1:9" in capsys.readouterr().err
    assert not (Path(tmp_path) / "data").exists()
    assert os.environ.get("DINGTALK_APP_KEY") is None


def test_a_single_day_run_like_the_daily_schedule(pipeline):
    sim, settings, defs, instance = pipeline
    day = date(2026, 11, 12)
    summary = run_sync(defs, day, day, instance=instance)
    assert summary.success, summary.render()
    hours = read_view(settings, "effective_hours")
    assert set(hours["work_date"].astype(str)) == {"2026-11-12"}
    assert len(hours) == len(sim.truth_users())
    assert summary.assets["payroll_monthly"].partitions == 1

"""Two sync processes started together on overlapping days both succeed: DuckDB's single-writer
lock is waited for, lake files are replaced atomically, and the result equals a single run."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO_CONFIG

pytestmark = pytest.mark.slow


def test_overlapping_syncs_in_two_processes_both_succeed(dingtalk_sim, tmp_path):
    sim, url = dingtalk_sim()
    env = {
        **os.environ,
        "ATTENDANCE_DATA_DIR": str(tmp_path / "data"),
        "ATTENDANCE_CONFIG_DIR": str(REPO_CONFIG),
        "DINGTALK_BASE_URL": url,
        "DINGTALK_API_BASE_URL": url,
        "PM_SYSTEM": "none",
    }
    env.pop("DINGTALK_APP_KEY", None)
    cli = [sys.executable, "-m", "attendance_pipeline.cli", "sync"]
    runs = [
        subprocess.Popen(
            [*cli, "--start", start, "--end", end],
            env={**env, "DAGSTER_HOME": str(tmp_path / f"home{i}")},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, (start, end) in enumerate(
            [("2026-11-02", "2026-11-10"), ("2026-11-06", "2026-11-13")]
        )
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
        assert "succeeded" in output
    with duckdb.connect(str(Path(tmp_path / "data" / "warehouse.duckdb")), read_only=True) as con:
        rows = con.execute(
            "SELECT count(*), count(DISTINCT (userid, work_date)) FROM effective_hours"
        ).fetchone()
        ids = con.execute("SELECT count(*), count(DISTINCT id) FROM raw_attendance").fetchone()
    assert rows[0] == rows[1] == _employee_days(sim)
    assert ids[0] == ids[1] == len(sim.truth_attendance(*_days()))
    assert not list((tmp_path / "data" / "lake").rglob(".tmp-*"))


def _days():
    from datetime import date

    return date(2026, 11, 2), date(2026, 11, 13)


def _employee_days(sim) -> int:
    """Employee-days of the window: each person from hire to last work day (leavers included)."""
    import pandas as pd

    from attendance_pipeline.china_time import days

    def local(ms: int):
        return pd.Timestamp(ms, unit="ms", tz="Asia/Shanghai").date()

    last = {leaver["userId"]: local(leaver["lastWorkDay"]) for leaver in sim.company.leavers()}
    count = 0
    for user in sim.company.users():
        hired, leaves = local(user["hired_date"]), last.get(user["userid"])
        count += sum(1 for d in days(*_days()) if hired <= d and (leaves is None or d <= leaves))
    return count

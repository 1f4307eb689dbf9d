"""Issue 14's memory work: the modules GX imports but the gates never use are deferred, and a
deferred module still works for whoever does use it; the sync runs jobs without keeping their
outputs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import dagster as dg
import pandas as pd

from attendance_pipeline.dagster_api import execute_uncaptured

CHILD = """
import sys
from attendance_pipeline.checks.gx import _gx
_gx()
print(type(sys.modules["altair"]).__name__, type(sys.modules["scipy.stats"]).__name__)
from scipy.stats import norm
import altair as alt
print(round(norm.cdf(0), 2), alt.Chart.__name__, type(sys.modules["scipy.stats"]).__name__)
"""


def test_gx_loads_without_altair_and_scipy_stats_until_someone_uses_them() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "DeferredModule DeferredModule"
    assert out[1] == "0.5 Chart module"


def test_gx_gates_still_run_with_the_modules_deferred() -> None:
    from attendance_pipeline.checks.gx import _gx

    engine = _gx()
    assert engine is not None


def test_a_job_run_without_output_capture_keeps_no_outputs() -> None:
    @dg.asset
    def frame() -> pd.DataFrame:
        return pd.DataFrame({"a": range(1000)})

    @dg.asset
    def total(frame: pd.DataFrame) -> int:
        return int(frame["a"].sum())

    defs = dg.Definitions(assets=[frame, total], jobs=[dg.define_asset_job("both")])
    job = defs.resolve_job_def("both")
    with dg.instance_for_test() as instance:
        result = execute_uncaptured(job, instance, tags={"who": "test"})
        assert result.success
        assert result.dagster_run.tags["who"] == "test"
        materialized = {e.asset_key for e in result.get_asset_materialization_events()}
        assert materialized == {dg.AssetKey("frame"), dg.AssetKey("total")}
        assert result._output_capture == {}  # the point of the wrapper
        assert job.execute_in_process(instance=instance)._output_capture  # what it avoids
        assert instance.get_latest_materialization_event(dg.AssetKey("total")) is not None


def test_the_report_is_pulled_a_chunk_of_people_at_a_time_with_the_same_rows(
    monkeypatch: Any,
) -> None:
    from datetime import date

    from attendance_pipeline import report_diff
    from attendance_pipeline.simulators.dingtalk import DingTalkSimConfig, DingTalkSimulator
    from tests.test_dingtalk_client import make_client

    today = date(2026, 11, 20)
    sim = DingTalkSimulator(DingTalkSimConfig(seed=7, employees=12, today=today))
    userids = sorted(u["userid"] for u in sim.truth_users())
    with sim.serve() as running:
        whole = report_diff.pull_report(
            make_client(running.url), userids, "2026-10", ["年假"], today
        )
        monkeypatch.setattr(report_diff, "REPORT_CHUNK", 5)
        chunked = report_diff.pull_report(
            make_client(running.url), userids, "2026-10", ["年假"], today
        )
    assert whole.num_rows > 0
    keys = [(c, "ascending") for c in ("userid", "work_date", "measure", "column_name")]

    def rows(table: Any) -> Any:
        return table.drop_columns(["pulled_at"]).sort_by(keys)

    assert rows(chunked).equals(rows(whole))

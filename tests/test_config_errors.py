"""A broken configuration file stops the run with one clear message, and nothing is written."""

import pytest

from attendance_pipeline.cli import main
from attendance_pipeline.sync import run_sync

BROKEN = {
    "rules.yaml": (
        "status_hours:\n  late: seven\n",
        "rules.yaml line 2: `status_hours.late`: must be a number of hours",
    ),
    "overrides.csv": (
        "userid,date,hours,reason,author\n012345,2026-10-08,8,补录,王经理\n012345,2026/10/09,8,x,y\n",
        "overrides.csv line 3: `date` '2026/10/09' is not YYYY-MM-DD",
    ),
    "pipeline.yaml": (
        "scope:\n  departments: []\nlocked_months: [2026-13]\n",
        "pipeline.yaml line 3: `locked_months`: '2026-13' is not a month",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_cli_refuses_a_broken_config_before_any_work(pipeline, monkeypatch, capsys, name):
    sim, settings, _, _ = pipeline
    text, message = BROKEN[name]
    (settings.config_dir / name).write_text(text, encoding="utf-8")
    # The command reads its settings (the pipeline fixture's environment) when it runs.
    monkeypatch.setenv("DAGSTER_HOME", str(settings.data_dir.parent / "home"))
    sim.reset_calls()
    assert main(["sync", "--start", "2026-10-08", "--end", "2026-10-09"]) == 2
    assert message in capsys.readouterr().err
    assert not settings.data_dir.exists()
    assert sim.calls()["metered_this_month"] == 0


def test_a_config_broken_after_the_pull_fails_the_hours_step_and_writes_no_hours(pipeline):
    _, settings, defs, instance = pipeline
    (settings.config_dir / "rules.yaml").write_text("status_hour: {late: 7}\n", encoding="utf-8")
    summary = run_sync(defs, *(__import__("datetime").date(2026, 10, 8),) * 2, instance=instance)
    assert not summary.success
    assert any("rules.yaml line 1: `status_hour`" in f for f in summary.failures)
    assert not (settings.lake_dir / "effective_hours").exists()
    assert (settings.lake_dir / "raw_attendance" / "2026-10-08.parquet").exists()

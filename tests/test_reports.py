"""Team-hours reports for project managers (weekly) and HR (monthly), linked from metadata."""

import re
from datetime import date

import duckdb

from attendance_pipeline.reports import hours_by_department
from attendance_pipeline.sync import run_sync


def test_reports_are_written_and_add_up(pipeline):
    sim, settings, defs, instance = pipeline
    assert run_sync(defs, date(2026, 11, 9), date(2026, 11, 15), instance=instance).success
    reports = settings.data_dir / "reports"
    weekly = (reports / "team-hours-2026-W46.html").read_text(encoding="utf-8")
    monthly = (reports / "hr-hours-2026-11.html").read_text(encoding="utf-8")
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        week = con.execute(
            "SELECT * FROM effective_hours WHERE work_date BETWEEN '2026-11-09' AND '2026-11-15'"
        ).df()
    total = week["effective_hours"].sum()
    assert f"{total:g} effective hours" in weekly and f"{total:g} effective hours" in monthly
    names = {d["name"] for d in sim.truth_departments()}
    assert any(name in weekly for name in names)  # departments by name, not only ids
    assert weekly.count("<rect") >= len(hours_by_department(week))
    assert re.search(r"<title>normal: [0-9.]+ h</title>", weekly)

"""The loaded code location, as a snapshot: every asset with its stage, partitions, pool, kinds,
dependencies and checks; the jobs and what they select; schedules; sensors. A change to the graph
shows up here as a readable diff. After an intended change, regenerate the snapshot with
`UPDATE_SNAPSHOTS=1 scripts/test tests/test_definitions.py` and review it in the commit."""

import json
import os
import re
from pathlib import Path

import dagster as dg

from attendance_pipeline.checks.specs import GATES
from attendance_pipeline.definitions import STAGES, build_definitions
from attendance_pipeline.settings import load_settings

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"
README = Path(__file__).resolve().parent.parent / "README.md"


def describe(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": type(partitions).__name__ if partitions else None,
            "pools": sorted(node.pools or []),
            "kinds": sorted(node.kinds),
            "deps": sorted(d.to_user_string() for d in node.parent_keys),
            "checks": sorted(c.name for c in node.check_keys),
            "backfill_policy": str(node.backfill_policy) if node.backfill_policy else None,
            "executable": node.is_executable,
        }
    jobs = {}
    for name in sorted(j.name for j in defs.jobs or []):
        job = defs.resolve_job_def(name)
        jobs[name] = sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys)
    schedules = {
        s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name}
        for s in defs.schedules or []
    }
    return {
        "assets": assets,
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sorted(s.name for s in defs.sensors or []),
        "resources": sorted(defs.resources or {}),
    }


def test_the_definitions_match_the_snapshot():
    current = describe(build_definitions(load_settings(env_file=None)))
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n", "utf-8")
    stored = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert current == stored, (
        "the loaded definitions changed; if intended, run "
        "UPDATE_SNAPSHOTS=1 scripts/test tests/test_definitions.py and review the diff"
    )


def test_every_asset_belongs_to_its_stage_and_the_jobs_select_by_stage():
    defs = build_definitions(load_settings(env_file=None))
    snapshot = describe(defs)
    for module_stage, module in STAGES.items():
        for asset in dg.load_assets_from_modules([module]):
            for key in asset.keys:
                assert snapshot["assets"][key.to_user_string()]["group"] == module_stage
    daily = {
        k
        for k, a in snapshot["assets"].items()
        if a["group"] not in ("finance", "availability") and a["executable"]
    }
    assert {k for k, a in snapshot["assets"].items() if not a["executable"]} == {
        "held_back",
        "sync_errors",
        "worklog_ledger",
    }
    assert set(snapshot["jobs"]["sync"]) == daily
    assert snapshot["jobs"]["payroll"] == [
        "dingtalk_report", "dingtalk_report_diff", "payroll_monthly"
    ]  # fmt: skip
    assert snapshot["jobs"]["availability"] == ["team_availability"]
    assert snapshot["jobs"]["availability_weekly"] == ["availability_notice", "team_availability"]


def test_the_settings_decide_the_first_partition(monkeypatch):
    monkeypatch.setenv("ATTENDANCE_START_DATE", "2025-07-01")
    defs = build_definitions(load_settings(env_file=None))
    node = defs.resolve_asset_graph().get(dg.AssetKey("effective_hours"))
    assert node.partitions_def.get_first_partition_key() == "2025-07-01"
    month = defs.resolve_asset_graph().get(dg.AssetKey("payroll_monthly"))
    assert month.partitions_def.get_first_partition_key() == "2025-07-01"


def test_the_readme_gate_table_is_the_catalogue():
    """The gate catalogue is written once (checks/specs.py GATES); the README's table lists the
    same gates, on the same assets, in the same order."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| gate | on | stops the run |") :].split("\n\n")[0]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    cells = [row.split("|") for row in rows]
    named = [(re.findall(r"`([^`]+)`", cell[1])[0], cell[2].strip()) for cell in cells]
    assert named == [(name, asset) for asset, name, _, _ in GATES]

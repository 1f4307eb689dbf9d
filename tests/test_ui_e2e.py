"""The demo's Dagster UI in a real browser (issue 6).

Starts `attendance-pipeline demo` (both simulators, a three-day sync, `dagster dev`) on free ports
with its own DAGSTER_HOME, data and config folders, then drives Debian's Chromium through
Playwright and asserts on text the browser actually rendered: every asset of the definitions in
the global lineage graph, the synced partitions of `raw_attendance`, and the result of
`effective_hours`' `hours_valid` check; and that a backfill of a year of partitions, launched
as the UI launches one, is a single run. GraphQL is asked for the same facts first, so a failure
says whether the pipeline or the UI is at fault. Screenshots go to tests/artifacts/.

Needs /usr/bin/chromium (`scripts/chromium` installs it) and the `playwright` Python package; no
Playwright browser download is used.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from attendance_pipeline.assets.partitions import MAX_DAYS_PER_RUN
from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.settings import load_settings
from tests.service_scripts import run_service_script

pytestmark = [pytest.mark.slow, pytest.mark.ui]

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"
EMPLOYEES = 30
DAYS = 3
DEMO_READY_S = 300  # simulators + sync + `dagster dev` + loading the code location
UI_TIMEOUT_MS = 60_000
CHROMIUM_INSTALL_S = 10 * 60  # apt-get install chromium on a fresh machine
STOP_S = 30  # for a clean Ctrl-C shutdown, before SIGTERM and then SIGKILL
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Large enough that the fitted lineage graph is drawn with full nodes: below a zoom of 0.6 the UI
# draws minimal nodes whose long names are cut in the middle (worklog_…ciliation).
GRAPH_VIEWPORT = {"width": 3000, "height": 3600}
PAGE_VIEWPORT = {"width": 1600, "height": 1000}
# The demo's partitions start early enough that a whole year can be backfilled.
PARTITIONS_START = "2025-06-01"
BACKFILL_DAYS = 365
BACKFILL_TIMEOUT_S = 480  # the daemon's backfill loop, then a run per month


def progress(message: str) -> None:
    print(f"[ui-e2e] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Demo:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    synced_days: list[date]

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"query": query, "variables": variables or {}}
        reply = requests.post(f"{self.url}/graphql", json=body, timeout=30)
        reply.raise_for_status()
        body = reply.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def _location_loaded(demo: Demo) -> bool:
    try:
        entries = demo.graphql(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
    except (requests.RequestException, ValueError, KeyError):
        return False
    for entry in entries:
        loaded = entry["locationOrLoadError"] or {}
        if loaded.get("__typename") == "PythonError":
            pytest.fail(f"code location {entry['name']} failed to load: {loaded['message']}")
    return bool(entries) and all(
        entry["loadStatus"] == "LOADED" and entry["locationOrLoadError"] for entry in entries
    )


def _wait_until_ready(demo: Demo) -> None:
    deadline = time.monotonic() + DEMO_READY_S
    stage = "sync"
    while time.monotonic() < deadline:
        if demo.process.poll() is not None:
            pytest.fail(
                f"the demo exited with {demo.process.returncode} before its UI was ready:\n"
                + demo.log_tail()
            )
        if stage == "sync" and "Dagster UI:" in demo.log.read_text(errors="replace"):
            progress("sync finished; waiting for dagster dev")
            stage = "server"
        if stage == "server":
            try:
                requests.get(f"{demo.url}/server_info", timeout=5).raise_for_status()
                progress("webserver answers; waiting for the code location")
                stage = "location"
            except requests.RequestException:
                pass
        if stage == "location" and _location_loaded(demo):
            return
        time.sleep(1)
    pytest.fail(
        f"the demo's UI was not ready within {DEMO_READY_S} s ({stage}):\n{demo.log_tail()}"
    )


def _live_group_members(pgid: int) -> list[int]:
    """Processes of the group that still run (zombies are already dead)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces, so split after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C the whole process group (demo, simulators, dagster dev and its children), then
    SIGTERM and SIGKILL whatever is left, so nothing outlives the test."""
    pgid = process.pid
    for sig, grace in ((signal.SIGINT, STOP_S), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if not _live_group_members(pgid):
            break
        progress(f"sending {sig.name} to the demo's process group")
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while _live_group_members(pgid) and time.monotonic() < deadline:
            process.poll()
            time.sleep(0.2)
    process.poll()
    assert not _live_group_members(pgid), "demo processes survived SIGKILL"


@pytest.fixture(scope="module")
def chromium() -> str:
    stdout, _ = run_service_script(["chromium"], CHROMIUM_INSTALL_S)
    return stdout.strip()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("ui_demo")
    shutil.copytree(REPO / "config", root / "config")
    ui_port, dingtalk_port, pm_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(root / "dagster_home"),
        "ATTENDANCE_DATA_DIR": str(root / "data"),
        "ATTENDANCE_CONFIG_DIR": str(root / "config"),
        "PYTHONUNBUFFERED": "1",
        "ATTENDANCE_START_DATE": PARTITIONS_START,
    }
    for name in ("DINGTALK_APP_KEY", "DINGTALK_BASE_URL", "DINGTALK_API_BASE_URL", "PM_BASE_URL"):
        env.pop(name, None)
    env.pop("PM_SYSTEM", None)
    command = [
        sys.executable,
        "-m",
        "attendance_pipeline.cli",
        "demo",
        "--port",
        str(ui_port),
        "--days",
        str(DAYS),
        "--employees",
        str(EMPLOYEES),
        "--dingtalk-port",
        str(dingtalk_port),
        "--pm-port",
        str(pm_port),
    ]
    log = root / "demo.log"
    progress(
        f"starting the demo (UI :{ui_port}, DingTalk :{dingtalk_port}, PM :{pm_port}); log {log}"
    )
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group, so teardown reaches dagster dev's children too; Ctrl-C must
            # work even if this process was started with SIGINT ignored (background jobs are).
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    demo = Demo(url=f"http://127.0.0.1:{ui_port}", process=process, log=log, synced_days=[])
    try:
        _wait_until_ready(demo)
        progress(f"UI ready after {time.monotonic() - started:.0f} s")
        found = re.search(r"^sync (\S+)\.\.(\S+) \(", log.read_text(), re.MULTILINE)
        assert found, f"the demo did not say which days it synced:\n{demo.log_tail()}"
        first, last = (date.fromisoformat(text) for text in found.groups())
        demo.synced_days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        # The first visit to a localhost UI opens a "Join the Dagster community" dialog over
        # everything; mark it seen in this throw-away instance, as its "Skip" button would.
        demo.graphql("mutation { setNuxSeen }")
        yield demo
    finally:
        _stop_group(process)
        progress(f"demo stopped after {time.monotonic() - started:.0f} s in all")


@pytest.fixture(scope="module")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium_profile")),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=PAGE_VIEWPORT,
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        expect.set_options(timeout=UI_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@contextmanager
def new_page(browser: BrowserContext) -> Iterator[Page]:
    page = browser.new_page()
    try:
        yield page
    finally:
        page.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    progress(f"screenshot {path.relative_to(REPO)}")


def lineage_shows_every_asset(demo: Demo, page: Page) -> None:
    defs = build_definitions(load_settings(env_file=None))
    expected = sorted(key.path[-1] for key in defs.resolve_all_asset_keys())
    nodes = demo.graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]
    served = sorted(node["assetKey"]["path"][-1] for node in nodes)
    assert served == expected, "the UI's code location serves other assets than the definitions"

    page.set_viewport_size(GRAPH_VIEWPORT)
    page.goto(f"{demo.url}/asset-groups")
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    graph = page.locator("svg foreignObject")
    expect(graph.first).to_be_visible()
    # Groups start collapsed; ⌥E is the graph's own "Expand all groups" shortcut.
    page.keyboard.press("Alt+e")
    page.wait_for_url(re.compile(r"[?&]expanded="))
    for name in expected:
        node = graph.get_by_text(name, exact=True)
        expect(node, f"asset {name} is not drawn in the lineage graph").to_be_visible()
        box = node.bounding_box()
        assert box is not None
        right, bottom = box["x"] + box["width"], box["y"] + box["height"]
        inside = min(box["x"], box["y"]) >= 0 and right <= GRAPH_VIEWPORT["width"]
        inside = inside and bottom <= GRAPH_VIEWPORT["height"]
        assert inside, f"asset {name} is drawn outside the window at {box}"
    # Each node then loads its live state (latest event, checks, partitions) row by row.
    expect(graph.get_by_text("Loading...", exact=True)).to_have_count(0)
    screenshot(page, "ui_asset_graph.png")


def raw_attendance_shows_the_synced_partitions(demo: Demo, page: Page) -> None:
    days = [day.isoformat() for day in demo.synced_days]
    facts = demo.graphql(
        """{ assetNodeOrError(assetKey: {path: ["raw_attendance"]}) { ... on AssetNode {
            partitionStats { numMaterialized }
            assetPartitionStatuses { ... on TimePartitionStatuses {
                ranges { startKey endKey status } } }
            assetMaterializations(limit: 1) { runId partition } } } }"""
    )["assetNodeOrError"]
    assert facts["partitionStats"]["numMaterialized"] == len(days), facts
    assert facts["assetPartitionStatuses"]["ranges"] == [
        {"startKey": days[0], "endKey": days[-1], "status": "MATERIALIZED"}
    ], facts
    run_id = facts["assetMaterializations"][0]["runId"]

    last = days[-1]
    page.goto(
        f"{demo.url}/assets/raw_attendance?view=partitions&partition={last}&status=MATERIALIZED"
    )
    expect(page.get_by_text(f"Materialized ({len(days)})", exact=True)).to_be_visible()
    expect(page.get_by_text(f"{len(days)} Partitions Selected", exact=True)).to_be_visible()
    # The partition list (each row's name carries a tooltip), filtered to materialised ones; the
    # selected day's panel heading carries one too, after the list.
    for day in days:
        expect(page.locator(f"[data-tooltip='{day}']").first).to_be_visible()
    unsynced = (demo.synced_days[0] - timedelta(days=1)).isoformat()
    expect(page.locator(f"[data-tooltip='{unsynced}']")).to_have_count(0)
    # The selected partition's panel: its status, the run that wrote it and our metadata.
    expect(page.get_by_text("Latest materialization", exact=True)).to_be_visible()
    expect(page.get_by_text("Materialized", exact=True).first).to_be_visible()
    expect(page.get_by_text(run_id[:8], exact=True).first).to_be_visible()
    expect(page.get_by_text("rows_by_day", exact=True)).to_be_visible()
    screenshot(page, "ui_raw_attendance_partitions.png")


def effective_hours_checks_show_hours_valid_passed(demo: Demo, page: Page) -> None:
    checks = demo.graphql(
        """{ assetNodeOrError(assetKey: {path: ["effective_hours"]}) { ... on AssetNode {
            assetChecksOrError { ... on AssetChecks { checks { name
                executionForLatestMaterialization { status evaluation { success } } } } } } } }"""
    )["assetNodeOrError"]["assetChecksOrError"]["checks"]
    by_name = {check["name"]: check["executionForLatestMaterialization"] for check in checks}
    assert by_name.get("hours_valid") == {"status": "SUCCEEDED", "evaluation": {"success": True}}, (
        by_name
    )

    page.goto(f"{demo.url}/assets/effective_hours?view=checks&checkDetail=hours_valid")
    expect(page.get_by_text(f"Checks ({len(checks)})", exact=True)).to_be_visible()
    # The check list: each name (in a title-carrying truncation box) with its latest state below.
    state = page.locator("[title='hours_valid'] + span")
    expect(state).to_be_visible()
    expect(state).to_have_text("Succeeded")
    # The detail panel: our gate's summary and the evaluation result.
    expect(page.get_by_text(re.compile(r"^hours_valid: passed \("))).to_be_visible()
    expect(page.get_by_text("Evaluation result", exact=True)).to_be_visible()
    expect(page.get_by_text("Passed", exact=True)).to_be_visible()
    screenshot(page, "ui_effective_hours_checks.png")


def a_year_backfill_is_monthly_runs(demo: Demo, page: Page) -> None:
    """A backfill launched the way the UI's "Materialize → date range" does (the
    `launchPartitionBackfill` mutation) over a year of partitions becomes one run per window of
    at most 31 days (`partitions.BACKFILL`: bounded memory), not 365, which together materialise
    all 365 partitions."""
    last = demo.synced_days[-1]
    first = last - timedelta(days=BACKFILL_DAYS - 1)
    launched = demo.graphql(
        """mutation($params: LaunchBackfillParams!) {
            launchPartitionBackfill(backfillParams: $params) {
                __typename ... on LaunchBackfillSuccess { backfillId }
                ... on PythonError { message } } }""",
        {
            "params": {
                "partitionsByAssets": [
                    {
                        "assetKey": {"path": ["lake_views"]},
                        "partitions": {"range": {"start": str(first), "end": str(last)}},
                    }
                ],
                "title": "a year of lake_views",
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    runs_query = """query($id: String!) {
        runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
            ... on Runs { results { runId status tags { key value } } } } }"""
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = demo.graphql(runs_query, {"id": backfill_id})["runsOrError"]["results"]
        if runs and all(run["status"] in ("SUCCESS", "FAILURE", "CANCELED") for run in runs):
            break
        time.sleep(2)
    expected_runs = -(-BACKFILL_DAYS // MAX_DAYS_PER_RUN)
    assert len(runs) == expected_runs, f"{len(runs)} runs for a {BACKFILL_DAYS}-day backfill"
    assert all(run["status"] == "SUCCESS" for run in runs), (runs, demo.log_tail())
    ranges = sorted(
        (date.fromisoformat(t["dagster/asset_partition_range_start"]),
         date.fromisoformat(t["dagster/asset_partition_range_end"]))
        for t in ({tag["key"]: tag["value"] for tag in run["tags"]} for run in runs)
    )  # fmt: skip
    assert ranges[0][0] == first and ranges[-1][1] == last
    for (_, stop), (begin, _) in itertools.pairwise(ranges):
        assert begin == stop + timedelta(days=1)  # contiguous, no day twice
    assert all((b - a).days + 1 <= MAX_DAYS_PER_RUN for a, b in ranges)
    run = runs[0]
    stats = demo.graphql(
        """{ assetNodeOrError(assetKey: {path: ["lake_views"]}) { ... on AssetNode {
            partitionStats { numMaterialized } } } }"""
    )["assetNodeOrError"]["partitionStats"]
    assert stats["numMaterialized"] >= BACKFILL_DAYS, stats

    page.goto(f"{demo.url}/runs/b/{backfill_id}?tab=runs")
    # The backfill's page: its partition selection, succeeded, and one run in its list.
    expect(page.get_by_text(re.compile(backfill_id)).first).to_be_visible()
    expect(page.get_by_text(re.compile(f"^{first}.+{last}$")).first).to_be_visible()
    expect(page.get_by_text("Succeeded", exact=True).first).to_be_visible()
    expect(page.get_by_text(run["runId"][:8], exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^View all tags"))).to_have_count(expected_runs)
    screenshot(page, "ui_year_backfill_monthly_runs.png")


UI_CHECKS: list[tuple[str, Callable[[Demo, Page], None]]] = [
    ("the global lineage graph shows every asset", lineage_shows_every_asset),
    (
        "raw_attendance's partitions tab shows the synced days",
        raw_attendance_shows_the_synced_partitions,
    ),
    (
        "effective_hours' checks tab shows hours_valid passed",
        effective_hours_checks_show_hours_valid_passed,
    ),
    ("a backfill of a year of partitions is a run per month", a_year_backfill_is_monthly_runs),
]


def test_the_demo_ui_in_chromium(
    browser: BrowserContext, demo: Demo, subtests: pytest.Subtests
) -> None:
    """One test with a subtest per page, so that pytest-xdist cannot spread the pages over two
    workers and start the demo twice (`--dist loadgroup` would, but on pytest 9.2 it silently
    stops grouping: pytest-dev/pytest-xdist#1386)."""
    for title, check in UI_CHECKS:
        with subtests.test(title), new_page(browser) as page:
            try:
                check(demo, page)
            except Exception:
                screenshot(page, f"ui_failed_{check.__name__}.png")  # what the browser showed
                raise

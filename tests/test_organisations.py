"""Issue 14, item 1: one deployment, several DingTalk organisations (`config/orgs.yaml`).

Three simulated organisations behind one simulator URL (one app key each) and one PM simulator
each; one `sync` runs them all. Each organisation's tables equal what a single-org deployment of
that company produces; the one whose secret is wrong fails alone and the other two push."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pytest
import yaml

from attendance_pipeline.config_files import ConfigError
from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.organisations import consolidate, workspace_yaml
from attendance_pipeline.orgs import deployment_settings, load_organisations
from attendance_pipeline.settings import load_settings
from attendance_pipeline.simulators.dingtalk.orgs import MultiOrgSimulator
from attendance_pipeline.simulators.dingtalk.server import DingTalkSimConfig, DingTalkSimulator
from attendance_pipeline.sync import EXIT_FAILED, EXIT_HELD_BACK, run_sync, sync_organisations
from tests.conftest import REPO_CONFIG, SIM_TODAY
from tests.test_lake_s3 import assert_same, lake_frames, stable

WINDOW = (date(2026, 11, 16), date(2026, 11, 18))
COMPANIES = {"acme": (11, 24), "beta": (12, 18), "gamma": (13, 15)}  # id -> (seed, employees)


def company(org: str, **keys: str) -> DingTalkSimulator:
    seed, employees = COMPANIES[org]
    config = DingTalkSimConfig(seed=seed, employees=employees, today=SIM_TODAY, **keys)
    return DingTalkSimulator(config)


def ok_calls(sim: DingTalkSimulator) -> int:
    return sum(api["ok"] for api in sim.calls()["by_api"].values())


def warehouse_tables(settings: Any) -> dict[str, pd.DataFrame]:
    """Every table of the warehouse, without the columns that record when and in which run."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        names = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        frames = {name: con.execute(f'SELECT * FROM "{name}"').df() for name in names}
    return {
        name: stable(frame.drop(columns=[c for c in frame.columns if "run_id" in c]))
        for name, frame in frames.items()
    }


def three_companies(
    tmp_path: Path, pm_sim: Any
) -> tuple[dict[str, Any], Any, dict[str, Any], Path]:
    """The three companies behind one simulator front (started), a PM simulator each, and a
    config folder with their `orgs.yaml`: (sims, running front, PM sims, config folder)."""
    sims = {o: company(o, app_key=f"sim-{o}", app_secret=f"sim-{o}-secret") for o in COMPANIES}
    front = MultiOrgSimulator(list(sims.values())).serve()
    pms = {org: pm_sim(seed=seed, employees=n) for org, (seed, n) in COMPANIES.items()}
    config = tmp_path / "config"
    shutil.copytree(REPO_CONFIG, config)
    entries = []
    for org in COMPANIES:
        shutil.copytree(REPO_CONFIG, config / "orgs" / org)
        entries.append({"id": org, "name": org.title(), "pm": {"simulator_url": pms[org][1]}})
    (config / "orgs.yaml").write_text(yaml.safe_dump({"organisations": entries}))
    return sims, front, pms, config


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pm_sim: Any):
    """(settings per organisation, DingTalk simulators, PM simulators) of a 3-org deployment."""
    sims, front, pms, config = three_companies(tmp_path, pm_sim)
    monkeypatch.setenv("ATTENDANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ATTENDANCE_CONFIG_DIR", str(config))
    monkeypatch.setenv("DINGTALK_BASE_URL", front.url)
    monkeypatch.setenv("DINGTALK_API_BASE_URL", front.url)
    monkeypatch.delenv("DINGTALK_APP_KEY", raising=False)
    monkeypatch.delenv("PM_SYSTEM", raising=False)
    # gamma's secret is wrong: DingTalk refuses its token, and only gamma stops.
    monkeypatch.setenv("GAMMA_DINGTALK_APP_KEY", "sim-gamma")
    monkeypatch.setenv("GAMMA_DINGTALK_APP_SECRET", "not-gamma-s-secret")
    yield deployment_settings(load_settings(env_file=None)), sims, pms
    front.stop()


def single_org(org: str, root: Path, monkeypatch: pytest.MonkeyPatch, pm_sim: Any) -> Any:
    """A single-organisation deployment of `org`'s company on fresh simulators, synced."""
    running = company(org).serve()
    _, pm_url = pm_sim(seed=COMPANIES[org][0], employees=COMPANIES[org][1])
    shutil.copytree(REPO_CONFIG, root / "config")
    with monkeypatch.context() as env:
        env.setenv("ATTENDANCE_DATA_DIR", str(root / "data"))
        env.setenv("ATTENDANCE_CONFIG_DIR", str(root / "config"))
        env.setenv("DINGTALK_BASE_URL", running.url)
        env.setenv("DINGTALK_API_BASE_URL", running.url)
        env.setenv("PM_SIMULATOR_URL", pm_url)
        settings = load_settings(env_file=None)
        summary = run_sync(
            build_definitions(settings), *WINDOW, instance=dg.DagsterInstance.ephemeral()
        )
    running.stop()
    assert summary.success, summary.render()
    return settings


@pytest.mark.slow
def test_three_organisations_in_one_sync_and_a_wrong_secret_fails_alone(
    deployment: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pm_sim: Any
) -> None:
    organisations, sims, pms = deployment
    assert [o.org_id for o in organisations] == ["acme", "beta", "gamma"]
    instance = dg.DagsterInstance.ephemeral()
    result = sync_organisations(organisations, build_definitions, *WINDOW, instance=instance)

    assert result.exit_code == EXIT_FAILED
    assert result.summaries["acme"].success and result.summaries["beta"].success
    gamma = result.summaries["gamma"]
    assert not gamma.success
    assert any("GAMMA_DINGTALK_APP_KEY and GAMMA_DINGTALK_APP_SECRET" in f for f in gamma.failures)
    assert "not-gamma-s-secret" not in "\n".join(gamma.failures)
    # acme and beta pushed to their own PM systems; gamma's never heard from us.
    for org in ("acme", "beta"):
        assert result.summaries[org].worklogs.get("created", 0) > 0
        assert len(pms[org][0].worklogs("jira")) == result.summaries[org].worklogs["created"]
    assert len(pms["gamma"][0].worklogs("jira")) == 0
    # Each organisation's calls went to its own company (its own quota and QPS windows).
    for org in ("acme", "beta"):
        assert sims[org].calls()["metered_this_month"] > 0
    assert sims["gamma"].calls()["metered_this_month"] == 0
    # The organisations' assets live side by side in one instance, under their own keys.
    by_id = {o.org_id: o for o in organisations}
    days = {d.isoformat() for d in pd.date_range(*WINDOW).date}
    for org in ("acme", "beta"):
        key = dg.AssetKey([org, "effective_hours"])
        assert days <= set(instance.get_materialized_partitions(key))
    assert not instance.get_materialized_partitions(dg.AssetKey(["gamma", "effective_hours"]))

    # Finance's group warehouse: every organisation's published rows, each with its org_id.
    group = tmp_path / "data" / "warehouse.duckdb"
    counts = consolidate(group, organisations)
    with duckdb.connect(str(group), read_only=True) as con:
        for table in ("effective_hours", "payroll_monthly"):
            query = f"SELECT org_id, count(*) FROM {table} GROUP BY 1"
            by_org = dict(con.execute(query).fetchall())
            assert set(by_org) == {"acme", "beta"} and sum(by_org.values()) == counts[table]
            for org in ("acme", "beta"):
                with duckdb.connect(str(by_id[org].warehouse_path), read_only=True) as own:
                    row = own.execute(f"SELECT count(*) FROM {table}").fetchone()
                assert row is not None and by_org[org] == row[0]

    # Each organisation's tables equal a single-org deployment of the same company.
    for org in ("acme", "beta"):
        alone = single_org(org, tmp_path / f"alone-{org}", monkeypatch, pm_sim)
        assert_same(warehouse_tables(by_id[org]), warehouse_tables(alone))
        assert_same(lake_frames(by_id[org].lake_dir), lake_frames(alone.lake_dir))


def test_each_organisation_has_its_own_keys_pools_and_credentials(deployment: Any) -> None:
    organisations, _, pms = deployment
    acme = organisations[0]
    assert acme.data_dir.parts[-2:] == ("orgs", "acme")
    defs = build_definitions(acme)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert "acme/effective_hours" in keys and "effective_hours" not in keys
    pools = {a.op.pool for a in graph.assets_defs if a.is_executable and a.op.pool}
    assert pools == {"dingtalk_acme", "warehouse_acme"}
    resources = defs.resources or {}
    assert resources["dingtalk"].app_key == "sim-acme"  # type: ignore[attr-defined]
    assert resources["pm"].base_url == pms["acme"][1]  # type: ignore[attr-defined]
    gamma = build_definitions(organisations[2]).resources or {}
    assert isinstance(gamma["dingtalk"].app_secret, str)  # type: ignore[attr-defined]
    assert "GAMMA_DINGTALK_APP_SECRET" in str(gamma["dingtalk"].credentials_hint)  # type: ignore[attr-defined]
    dg.Definitions.validate_loadable(defs)


def test_an_organisation_with_credentials_talks_to_dingtalk_not_the_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "orgs.yaml").write_text(
        "organisations:\n  - id: acme\n    config_dir: .\n  - id: beta\n    config_dir: .\n"
    )
    monkeypatch.setenv("ATTENDANCE_CONFIG_DIR", str(tmp_path))
    for name in ("DINGTALK_APP_KEY", "DINGTALK_BASE_URL", "DINGTALK_API_BASE_URL", "PM_SYSTEM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACME_DINGTALK_APP_KEY", "real-key")
    monkeypatch.setenv("ACME_PM_SYSTEM", "redmine")
    monkeypatch.setenv("ACME_PM_BASE_URL", "https://redmine.acme.example")
    acme, beta = deployment_settings(load_settings(env_file=None))
    assert not acme.uses_simulator and acme.dingtalk_base_url == "https://oapi.dingtalk.com"
    assert acme.dingtalk_api_base_url == "https://api.dingtalk.com"
    pm = (build_definitions(acme).resources or {})["pm"]
    assert (pm.system, pm.base_url) == ("redmine", "https://redmine.acme.example")  # type: ignore[attr-defined]
    assert beta.uses_simulator and beta.dingtalk_base_url == "http://127.0.0.1:8701"


def test_without_orgs_yaml_the_default_organisation_is_unchanged(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATTENDANCE_CONFIG_DIR", str(tmp_path))
    settings = load_settings(env_file=None)
    assert deployment_settings(settings) == [settings]
    assert settings.org_id is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "organisations:\n  - id: Acme\n",
            "line 2: `organisations.0.id`: 'Acme' is not an organisation id",
        ),
        ("organisations:\n  - id: a\n  - id: a\n", "given twice"),
        (
            "organisations:\n  - id: a\n    colour: red\n",
            "line 3: `organisations.0.colour`: unknown setting",
        ),
        (
            "organisations:\n  - id: a\n    dingtalk:\n      app_key_env: lower\n",
            "not an environment variable name",
        ),
    ],
)
def test_a_wrong_orgs_yaml_names_the_line_and_field(tmp_path, text, message) -> None:
    path = tmp_path / "orgs.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as error:
        load_organisations(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_an_organisation_without_its_config_folder_is_refused(tmp_path, monkeypatch) -> None:
    (tmp_path / "orgs.yaml").write_text("organisations:\n  - id: acme\n")
    monkeypatch.setenv("ATTENDANCE_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"organisation 'acme': config folder .* does not exist"):
        deployment_settings(load_settings(env_file=None))


def test_the_simulator_front_routes_by_app_key_and_token() -> None:
    import requests

    sims = [company(org, app_key=f"sim-{org}", app_secret=f"s-{org}") for org in ("acme", "beta")]
    with MultiOrgSimulator(sims).serve() as running:
        tokens = {}
        for org in ("acme", "beta"):
            reply = requests.get(
                f"{running.url}/gettoken", params={"appkey": f"sim-{org}", "appsecret": f"s-{org}"}
            )
            tokens[org] = reply.json()["access_token"]
        bad = requests.get(
            f"{running.url}/gettoken", params={"appkey": "sim-acme", "appsecret": "x"}
        )
        assert bad.json()["errcode"] == 40001
        for org, sim in zip(("acme", "beta"), sims, strict=True):
            before = ok_calls(sim)
            reply = requests.post(
                f"{running.url}/topapi/v2/department/listsubid",
                params={"access_token": tokens[org]},
                json={"dept_id": 1},
            )
            assert reply.json()["errcode"] == 0, reply.text
            assert ok_calls(sim) == before + 1
        assert ok_calls(sims[1]) == 2  # beta: its token and its one call
        unknown = requests.post(
            f"{running.url}/topapi/v2/department/listsubid", params={"access_token": "nope"}
        )
        assert unknown.json()["errcode"] != 0
        admin = requests.get(f"{running.url}/_sim/org/sim-beta/calls")
        assert admin.status_code == 200


def test_the_workspace_has_a_code_location_per_organisation(deployment: Any) -> None:
    import attendance_pipeline.organisations as locations

    organisations, _, _ = deployment
    workspace = yaml.safe_load(workspace_yaml(organisations))
    entries = [e["python_module"] for e in workspace["load_from"]]
    assert [e["location_name"] for e in entries] == ["acme", "beta", "gamma"]
    for entry in entries:
        defs = getattr(locations, entry["attribute"])
        keys = defs.resolve_asset_graph().get_all_asset_keys()
        assert {key.path[0] for key in keys} == {entry["attribute"]}
    with pytest.raises(AttributeError, match=r"no organisation 'delta'.*acme, beta, gamma"):
        locations.delta  # noqa: B018


@pytest.mark.slow
def test_the_sync_command_runs_every_organisation_and_fills_the_group_warehouse(
    deployment: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from attendance_pipeline import cli

    organisations, _, pms = deployment
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.chdir(tmp_path)
    first, last = (str(day) for day in WINDOW)
    assert cli.main(["sync", "--start", first, "--end", last, "--org", "nope"]) == 2
    assert "--org nope: not in orgs.yaml (organisations: acme, beta, gamma)" in (
        capsys.readouterr().err
    )
    assert cli.main(["sync", "--start", first, "--end", last]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "== organisation acme" in out and "== organisation gamma" in out
    assert re.search(r"acme\s+succeeded", out) and re.search(r"beta\s+succeeded", out), out
    assert re.search(r"gamma\s+FAILED", out), out
    assert len(pms["beta"][0].worklogs("jira")) > 0
    group = organisations[0].data_dir.parent.parent / "warehouse.duckdb"
    with duckdb.connect(str(group), read_only=True) as con:
        orgs = {
            row[0] for row in con.execute("SELECT DISTINCT org_id FROM payroll_monthly").fetchall()
        }
    assert orgs == {"acme", "beta"}
    # Only beta this time: acme's rows stay in the group warehouse.
    # (beta holds employee-days back on that day: exit 3, the rest flowed)
    assert cli.main(["sync", "--start", first, "--end", first, "--org", "beta"]) == EXIT_HELD_BACK
    assert "== organisation acme" not in capsys.readouterr().out
    with duckdb.connect(str(group), read_only=True) as con:
        orgs = {
            row[0] for row in con.execute("SELECT DISTINCT org_id FROM payroll_monthly").fetchall()
        }
    assert orgs == {"acme", "beta"}
    assert cli.main(["payroll", "--month", "2026-11"]) == 2
    assert "give --org (organisations: acme, beta, gamma)" in capsys.readouterr().err
    assert cli.main(["payroll", "--month", "2026-11", "--org", "acme", "--format", "csv"]) == 0
    assert "acme" not in capsys.readouterr().out.splitlines()[0]  # its own rows, no org_id column
    assert cli.main(["orgs", "workspace"]) == 0
    assert "attribute: gamma" in capsys.readouterr().out


def test_the_simulator_command_serves_several_organisations(capsys: Any) -> None:
    import requests

    from attendance_pipeline.simulators.dingtalk import main_dingtalk
    from tests.sim_cli import serve_cli_until_sigterm

    with pytest.raises(SystemExit):
        main_dingtalk(["--orgs", "Acme"])
    assert "give organisation ids" in capsys.readouterr().err
    code = (
        "import sys; from attendance_pipeline.simulators.dingtalk import main_dingtalk; "
        "sys.exit(main_dingtalk(['--port', '0', '--today', '2026-11-20', '--employees', '12', "
        "'--orgs', 'acme,beta']))"
    )

    def check(url: str) -> None:
        for org in ("acme", "beta"):
            reply = requests.post(
                f"{url}/v1.0/oauth2/accessToken",
                json={"appKey": f"sim-{org}", "appSecret": f"sim-{org}-secret"},
                timeout=5,
            )
            assert reply.status_code == 200 and reply.json()["accessToken"], reply.text
            clock = requests.get(f"{url}/_sim/org/sim-{org}/clock", timeout=5).json()
            assert clock == {"today": "2026-11-20"}
        wrong = requests.post(
            f"{url}/v1.0/oauth2/accessToken",
            json={"appKey": "sim-key", "appSecret": "x"},
            timeout=5,
        )
        assert wrong.status_code == 400

    serve_cli_until_sigterm(code, check)


def test_the_group_warehouse_waits_for_an_organisation_that_is_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys
    import time

    (tmp_path / "orgs.yaml").write_text("organisations:\n  - id: acme\n    config_dir: .\n")
    monkeypatch.setenv("ATTENDANCE_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("ATTENDANCE_DATA_DIR", str(tmp_path / "data"))
    (acme,) = deployment_settings(load_settings(env_file=None))
    acme.warehouse_path.parent.mkdir(parents=True)
    with duckdb.connect(str(acme.warehouse_path)) as con:
        con.execute("CREATE TABLE effective_hours AS SELECT 'u1' AS userid, 8.0 AS hours")
    # Another process holds the write lock for a moment, as a running sync does.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('locked', flush=True); time.sleep(1.5)", str(acme.warehouse_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    started = time.monotonic()
    counts = consolidate(tmp_path / "group.duckdb", [acme])
    holder.wait()
    assert counts == {"effective_hours": 1}
    assert time.monotonic() - started > 0.5  # it waited for the lock instead of failing


def test_select_organisations_keeps_the_file_order_and_names_unknown_ids(deployment: Any) -> None:
    from attendance_pipeline.orgs import select_organisations

    organisations, _, _ = deployment
    chosen = select_organisations(organisations, ["gamma", "acme"])
    assert [o.org_id for o in chosen] == ["acme", "gamma"]
    with pytest.raises(ValueError, match=r"--org x, y: not in orgs.yaml \(organisations: acme"):
        select_organisations(organisations, ["y", "acme", "x"])
    default = load_settings(env_file=None)
    with pytest.raises(ValueError, match=r"--org acme: there is no orgs\.yaml"):
        select_organisations([replace(default, org_id=None)], ["acme"])

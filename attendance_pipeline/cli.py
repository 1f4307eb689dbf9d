"""The `attendance-pipeline` console script (README: Command line)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import requests

from attendance_pipeline.china_time import today_in_china
from attendance_pipeline.settings import SIM_DINGTALK_URL, SIM_PM_URL

if TYPE_CHECKING:
    import pyarrow as pa

REPO_ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    # Dagster flags BackfillPolicy as beta on every import; users cannot act on that.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    parser = argparse.ArgumentParser(
        prog="attendance-pipeline",
        description="DingTalk attendance to PM worklogs and payroll hours.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("sim", help="run a local simulator")
    sim_kind = sim.add_subparsers(dest="system", required=True)
    sim_kind.add_parser(
        "dingtalk", help="the DingTalk Open API simulator (see --help)", add_help=False
    )
    sim_kind.add_parser("pm", help="the PM-system simulator", add_help=False)

    sync = commands.add_parser("sync", help="materialise every asset for a range of days")
    sync.add_argument("--start", required=True, help="first work date, YYYY-MM-DD")
    sync.add_argument("--end", required=True, help="last work date, YYYY-MM-DD (before today)")
    sync.add_argument("--dry-run", action="store_true", help="compute everything, write no PM")
    sync.add_argument(
        "--org",
        action="append",
        default=[],
        metavar="ID",
        help="with config/orgs.yaml: only this organisation (repeatable; default: all of them)",
    )

    payroll = commands.add_parser("payroll", help="print, export (or lock) a payroll month")
    payroll.add_argument("--month", required=True, help="YYYY-MM")
    payroll.add_argument("--format", choices=("table", "csv", "json", "xlsx"), default="table")
    payroll.add_argument(
        "--out", help="write the file for finance: xlsx (required), or csv (UTF-8 with BOM)"
    )
    payroll.add_argument(
        "--lock", action="store_true", help="lock the month: its rows never change again"
    )
    payroll.add_argument("--by", default=os.environ.get("USER", "cli"), help="who locks")
    payroll.add_argument(
        "--org", metavar="ID", help="with config/orgs.yaml: the organisation (required there)"
    )

    orgs = commands.add_parser("orgs", help="the organisations of config/orgs.yaml")
    orgs_do = orgs.add_subparsers(dest="orgs_command", required=True)
    orgs_do.add_parser("list", help="each organisation's id, data and config folders")
    orgs_do.add_parser("workspace", help="print a workspace.yaml: a code location per organisation")

    commands.add_parser(
        "listen", help="receive DingTalk events (Stream mode) into data/events.sqlite, forever"
    )
    demo = commands.add_parser("demo", help="start the simulator and the Dagster UI")
    demo.add_argument("--port", type=int, default=3000, help="Dagster UI port (default 3000)")
    demo.add_argument("--days", type=int, default=7, help="days to sync before the UI starts")
    demo.add_argument("--employees", type=int, default=60, help="simulated company size")
    demo.add_argument(
        "--dingtalk-port",
        type=int,
        default=urlparse(SIM_DINGTALK_URL).port,
        help="DingTalk simulator port (default %(default)s)",
    )
    demo.add_argument(
        "--pm-port",
        type=int,
        default=urlparse(SIM_PM_URL).port,
        help="PM simulator port (default %(default)s)",
    )

    args, rest = parser.parse_known_args(argv)
    if args.command == "sim":
        return _sim(args.system, rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.command == "sync":
        return _sync(args.start, args.end, args.dry_run, args.org)
    if args.command == "payroll":
        return _payroll(args.month, args.format, args.lock, args.by, args.out, args.org)
    if args.command == "listen":
        return _listen()
    if args.command == "orgs":
        return _orgs(args.orgs_command)
    return _demo(args.port, args.days, args.employees, args.dingtalk_port, args.pm_port)


def _sim(system: str, rest: list[str]) -> int:
    if system == "dingtalk":
        from attendance_pipeline.simulators.dingtalk.server import main_dingtalk

        return main_dingtalk(rest)
    from attendance_pipeline.simulators.pm import main_pm

    return main_pm(rest)


def _listen() -> int:
    import logging
    import os

    from attendance_pipeline import listen
    from attendance_pipeline.settings import SIM_APP_KEY, SIM_APP_SECRET, load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    if settings.uses_simulator:
        key, secret = SIM_APP_KEY, SIM_APP_SECRET
    else:
        key = os.environ["DINGTALK_APP_KEY"]
        secret = os.environ.get("DINGTALK_APP_SECRET", "")
        if not secret:
            print("attendance-pipeline listen: DINGTALK_APP_SECRET is not set", file=sys.stderr)
            return 2
    return listen.main(settings.data_dir, key, secret, settings.dingtalk_api_base_url)


def _sync(start: str, end: str, dry_run: bool, only: list[str] | None = None) -> int:
    from attendance_pipeline.config_files import ConfigError
    from attendance_pipeline.definitions import build_definitions
    from attendance_pipeline.organisations import consolidate
    from attendance_pipeline.orgs import deployment_settings, select_organisations
    from attendance_pipeline.resources import ConfigFolder
    from attendance_pipeline.settings import Settings, load_settings
    from attendance_pipeline.sync import (
        SyncUsageError,
        dagster_instance,
        parse_range,
        run_sync,
        sync_organisations,
    )

    try:
        settings = load_settings()
        first, last = parse_range(start, end, settings.partitions_start)
        everyone = deployment_settings(settings)
        organisations = select_organisations(everyone, only) if only else everyone
        if organisations[0].org_id is None:
            ConfigFolder(path=str(settings.config_dir)).check_all()
    except (SyncUsageError, ConfigError, ValueError) as exc:
        print(f"attendance-pipeline sync: {exc}", file=sys.stderr)
        return 2
    if settings.uses_simulator and not _answers(settings.dingtalk_base_url):
        port = urlparse(settings.dingtalk_base_url).port
        print(
            "attendance-pipeline sync: no DingTalk credentials are set (DINGTALK_APP_KEY), so the "
            f"simulator is used, but nothing answers at {settings.dingtalk_base_url}. Start it "
            f"with `attendance-pipeline sim dingtalk --port {port}`, or run `attendance-pipeline "
            "demo`.",
            file=sys.stderr,
        )
        return 2
    if organisations[0].org_id is not None:
        # Each organisation's config folder is checked as it starts: a broken one fails alone.
        def check(org: Settings) -> None:
            ConfigFolder(path=str(org.config_dir)).check_all()

        deployment = sync_organisations(
            organisations, build_definitions, first, last, instance=dagster_instance(),
            dry_run=dry_run, check=check,
        )  # fmt: skip
        # Finance reads the group warehouse: every organisation's published rows, with org_id.
        counts = consolidate(settings.warehouse_path, everyone)
        print(f"group warehouse {settings.warehouse_path}: {counts}")
        return deployment.exit_code
    defs = build_definitions(settings)
    pm = defs.resources.get("pm") if defs.resources else None
    pm_url = getattr(pm, "base_url", "")
    pm_system = getattr(pm, "system", "none")
    if (
        settings.uses_simulator
        and pm_system != "none"
        and pm_url == settings.pm_simulator_url
        and not _answers(pm_url)
    ):
        print(
            f"attendance-pipeline sync: the demo profile pushes to the PM simulator, but nothing "
            f"answers at {pm_url}. Start it with `attendance-pipeline sim pm --port "
            f"{urlparse(pm_url).port}`, set PM_SYSTEM=none, or run `attendance-pipeline demo`.",
            file=sys.stderr,
        )
        return 2
    summary = run_sync(defs, first, last, instance=dagster_instance(), dry_run=dry_run)
    return summary.exit_code


def _orgs(command: str) -> int:
    from attendance_pipeline.config_files import ConfigError
    from attendance_pipeline.organisations import workspace_yaml
    from attendance_pipeline.orgs import deployment_settings, organisations_path
    from attendance_pipeline.settings import load_settings

    try:
        settings = load_settings()
        organisations = deployment_settings(settings)
    except (ConfigError, ValueError) as exc:
        print(f"attendance-pipeline orgs: {exc}", file=sys.stderr)
        return 2
    if organisations[0].org_id is None:
        print(
            f"attendance-pipeline orgs: no {organisations_path(settings)}: one organisation, the "
            "default (workspace.yaml as shipped)",
            file=sys.stderr,
        )
        return 2
    if command == "workspace":
        print(workspace_yaml(organisations), end="")
        return 0
    for org in organisations:
        print(f"{org.org_id}\tdata {org.data_dir}\tconfig {org.config_dir}\tpools "
              f"dingtalk_{org.org_id}, warehouse_{org.org_id}")  # fmt: skip
    return 0


def _payroll(
    month: str, output: str, lock: bool, by: str, out: str | None = None, org: str | None = None
) -> int:
    from attendance_pipeline import finance, payroll_export
    from attendance_pipeline.pipeline_config import MONTH
    from attendance_pipeline.warehouse import connect

    if not MONTH.match(month):
        print(f"attendance-pipeline payroll: --month {month!r} is not YYYY-MM", file=sys.stderr)
        return 2
    if problem := payroll_export.check_out(output, out, lock):
        print(f"attendance-pipeline payroll: {problem}", file=sys.stderr)
        return 2
    try:
        path = _warehouse_of(org)
    except ValueError as exc:
        print(f"attendance-pipeline payroll: {exc}", file=sys.stderr)
        return 2
    if not path.exists():
        print(
            f"attendance-pipeline payroll: no warehouse at {path}; run `sync` first",
            file=sys.stderr,
        )
        return 2
    if lock:
        try:
            with connect(path) as con:
                rows = finance.lock_month(con, month, by)
        except finance.PayrollError as exc:
            print(f"attendance-pipeline payroll: {exc}", file=sys.stderr)
            return 2
        print(f"locked payroll month {month} ({rows} rows) for {by}")
        return 0
    with connect(path, read_only=True) as con:
        rows = finance.read_month(con, month)
        extras = payroll_export.read_extras(con, month) if output == "xlsx" else ()
        is_locked = month in finance.locked_months(con)
    frame = rows.to_pandas()
    if frame.empty:
        print(
            f"attendance-pipeline payroll: no rows for {month}; sync its days first",
            file=sys.stderr,
        )
        return 1
    if out is not None:
        return _payroll_file(month, output, out, rows, extras, is_locked)
    if output == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif output == "json":
        sys.stdout.write(
            frame.to_json(orient="records", force_ascii=False, date_format="iso") + "\n"
        )
    else:
        sys.stdout.write(frame.drop(columns=["month"]).to_string(index=False) + "\n")
        regular = frame[frame["kind"] == "regular"]
        hours = regular["effective_hours"].sum()
        adjusted = frame["effective_hours"].sum() - hours
        locked = ", LOCKED" if frame["locked"].all() else ""
        sys.stdout.write(
            f"\n{month}: {len(regular)} employees, {hours:g} h effective, "
            f"{adjusted:+g} h adjustments{locked}\n"
        )
    return 0


def _warehouse_of(org: str | None) -> Path:
    """The warehouse payroll reads: the default organisation's, or with orgs.yaml the named
    organisation's own (its locks and exports are its own)."""
    from attendance_pipeline.orgs import deployment_settings, select_organisations
    from attendance_pipeline.settings import load_settings

    organisations = deployment_settings(load_settings())
    if org is not None:
        return select_organisations(organisations, [org])[0].warehouse_path
    if organisations[0].org_id is not None:
        known = ", ".join(str(o.org_id) for o in organisations)
        raise ValueError(f"give --org (organisations: {known})")
    return organisations[0].warehouse_path


def _payroll_file(
    month: str,
    output: str,
    out: str,
    rows: pa.Table,
    extras: tuple[pa.Table | None, ...],
    locked: bool,
) -> int:
    """Write the month's xlsx or BOM'd csv to `out` (checked by `payroll_export.check_out`)."""
    from attendance_pipeline import payroll_export
    from attendance_pipeline.config_files import ConfigError
    from attendance_pipeline.hours.rules import load_rules
    from attendance_pipeline.settings import load_settings

    try:
        rules = load_rules(load_settings().config_dir / "rules.yaml")
    except ConfigError as exc:
        print(f"attendance-pipeline payroll: {exc}", file=sys.stderr)
        return 2
    rates = payroll_export.rates_from_rules(rules)
    try:
        if output == "xlsx":
            leave, pending, diff = extras
            payroll_export.write_xlsx(
                out, rows, leave, pending, diff, rates=rates, locked=locked, month=month
            )
        else:
            payroll_export.write_csv(out, rows, rates=rates)
    except OSError as exc:
        print(f"attendance-pipeline payroll: cannot write {out}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote payroll month {month}{' (locked)' if locked else ''} to {out}")
    return 0


def _answers(base_url: str) -> bool:
    try:
        requests.get(base_url.rstrip("/") + "/_sim/calls", timeout=2)
    except requests.RequestException:
        return False
    return True


def _demo(ui_port: int, sync_days: int, employees: int, dingtalk_port: int, pm_port: int) -> int:
    """Start the simulators, sync recent days, then `dagster dev` until Ctrl-C."""
    from attendance_pipeline.sync import prepare_dagster_home

    prepare_dagster_home(REPO_ROOT / ".dagster_home")
    env = dict(os.environ)
    env.setdefault("ATTENDANCE_DATA_DIR", str(REPO_ROOT / "data"))
    env.setdefault("ATTENDANCE_CONFIG_DIR", str(REPO_ROOT / "config"))
    children: list[subprocess.Popen[bytes]] = []
    cli = [sys.executable, "-m", "attendance_pipeline.cli"]
    simulators: list[tuple[str, int]] = []
    if not env.get("DINGTALK_APP_KEY"):
        # The sync and the UI must talk to the simulators started here, on these ports.
        dingtalk_url = f"http://127.0.0.1:{dingtalk_port}"
        env["DINGTALK_BASE_URL"] = env["DINGTALK_API_BASE_URL"] = dingtalk_url
        simulators.append(("dingtalk", dingtalk_port))
        if not env.get("PM_BASE_URL"):
            env["PM_SIMULATOR_URL"] = f"http://127.0.0.1:{pm_port}"
            simulators.append(("pm", pm_port))
    for system, port in simulators:
        url = f"http://127.0.0.1:{port}"
        if _answers(url):
            print(f"demo: using the {system} simulator already running at {url}")
            continue
        child = subprocess.Popen(
            [*cli, "sim", system, "--port", str(port), "--employees", str(employees)], env=env
        )
        children.append(child)
        deadline = time.monotonic() + 30
        while not _answers(url):
            if time.monotonic() > deadline or child.poll() is not None:
                print(f"demo: the {system} simulator did not start", file=sys.stderr)
                _stop(children)
                return 1
            time.sleep(0.2)
    try:
        yesterday = today_in_china() - timedelta(days=1)
        first = yesterday - timedelta(days=max(1, sync_days) - 1)
        subprocess.run(
            [*cli, "sync", "--start", first.isoformat(), "--end", yesterday.isoformat()],
            env=env,
            check=False,
            cwd=REPO_ROOT,
        )
        print(f"\nDagster UI: http://127.0.0.1:{ui_port}  (Ctrl-C stops everything)\n")
        ui = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster"),
                "dev",
                "-w",
                str(REPO_ROOT / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(ui_port),
            ],
            env=env,
            cwd=REPO_ROOT,
        )
        children.append(ui)
        return ui.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())

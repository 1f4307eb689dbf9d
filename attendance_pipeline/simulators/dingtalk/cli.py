"""``attendance-pipeline sim dingtalk``: the DingTalk simulator's command line."""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import date

from attendance_pipeline.orgs import ORG_ID
from attendance_pipeline.simulators.dingtalk.orgs import MultiOrgSimulator
from attendance_pipeline.simulators.dingtalk.report import ReportDrift
from attendance_pipeline.simulators.dingtalk.server import (
    DingTalkSimConfig,
    DingTalkSimulator,
    shanghai_today,
)
from attendance_pipeline.simulators.http import bounded
from attendance_pipeline.simulators.scaffold import common_settings, serve_from_args, sim_arg_parser


def build_arg_parser(prog: str = "attendance-pipeline sim dingtalk") -> argparse.ArgumentParser:
    d = DingTalkSimConfig(today=date(2000, 1, 1))
    p = sim_arg_parser(
        prog,
        "Run the DingTalk Open API simulator.",
        port=8701,
        defaults=d,
        today_help="sim clock; default real today",
    )
    p.add_argument("--qps", type=bounded(int, 1), default=d.qps, help="per-API calls per second")
    p.add_argument("--monthly-quota", type=bounded(int, 0), default=d.monthly_quota)
    p.add_argument("--app-key", default=d.app_key)
    p.add_argument("--app-secret", default=d.app_secret)
    p.add_argument(
        "--orgs",
        type=_org_ids,
        default=(),
        metavar="ID,ID,...",
        help="serve several organisations, one per app key (sim-<id>, secret sim-<id>-secret, "
        "seed --seed + its position): orgs.yaml's demo profile",
    )
    p.add_argument(
        "--deny-api",
        action="append",
        default=[],
        metavar="API",
        help='answer the no-permission error on this API (repeatable; "hrm" = the HR APIs)',
    )
    p.add_argument(
        "--report-drift",
        action="append",
        default=[],
        type=_drift,
        metavar="USERID:YYYY-MM-DD:COLUMN:DELTA",
        help="add DELTA to a smart-report column (name or alias) or leave type on one person-day "
        "(repeatable)",
    )
    p.add_argument(
        "--report-drift-days",
        type=bounded(int, 0),
        default=d.report_drift_days,
        metavar="N",
        help="N seeded person-days whose report has +1 on a count column",
    )
    return p


def main_dingtalk(argv: list[str] | None = None) -> int:
    """Serve the simulator until SIGINT/SIGTERM; prints one line with the URL."""
    args = build_arg_parser().parse_args(argv)
    cfg = DingTalkSimConfig(
        **common_settings(args),
        today=args.today or shanghai_today(),
        qps=args.qps,
        monthly_quota=args.monthly_quota,
        app_key=args.app_key,
        app_secret=args.app_secret,
        denied_apis=tuple(args.deny_api),
        report_drift=tuple(args.report_drift),
        report_drift_days=args.report_drift_days,
    )
    if args.orgs:
        sims = [
            DingTalkSimulator(
                replace(
                    cfg, seed=cfg.seed + n, app_key=f"sim-{org}", app_secret=f"sim-{org}-secret"
                )
            )
            for n, org in enumerate(args.orgs)
        ]
        front = MultiOrgSimulator(sims)
        return serve_from_args(
            args,
            front.serve,
            lambda url: (
                f"DingTalk simulator listening on {url} ({len(sims)} organisations: "
                f"{', '.join(args.orgs)}; {cfg.employees} employees each, today "
                f"{cfg.today.isoformat()})"
            ),
        )
    sim = DingTalkSimulator(cfg)
    return serve_from_args(
        args,
        sim.serve,
        lambda url: (
            f"DingTalk simulator listening on {url} "
            f"(seed {cfg.seed}, {cfg.employees} employees, today {cfg.today.isoformat()})"
        ),
    )


def _org_ids(text: str) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in text.split(",") if part.strip())
    bad = [org for org in ids if not ORG_ID.match(org)]
    if not ids or bad:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give organisation ids (a-z, 0-9, _), comma-separated"
        )
    return ids


def _drift(text: str) -> dict[str, str]:
    try:
        return ReportDrift.from_cli(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None

"""The PM-system simulator: Jira (REST v2/v3), Tempo v4, TAPD and ZenTao on one HTTP port.

Paths pick the system: ``/rest/api/{2,3}/...`` Jira, ``/4/...`` Tempo, ``/api.php/...`` ZenTao,
everything else TAPD (whose unknown paths answer 200 "Hello world"); admin endpoints live under
``/_sim/``. Behaviour follows ``contracts/pm-systems.md``; accounts and issues derive from the
DingTalk simulator's company (``accounts.py``). State is one SQLite database (``state_path``, or
in memory). Faults hit write calls only: ``http5xx`` and ``rate_limit`` answer before anything is
written; ``lost_reply`` commits the write, then closes the connection unanswered or answers 504.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from attendance_pipeline.china_time import today_in_china
from attendance_pipeline.simulators.http import RunningSimulator, bounded, serve
from attendance_pipeline.simulators.pm.accounts import Directory
from attendance_pipeline.simulators.pm.jira import JiraApi
from attendance_pipeline.simulators.pm.routing import (
    BadRequest,
    NotFound,
    Reply,
    Request,
    Route,
    SystemApi,
    json_reply,
)
from attendance_pipeline.simulators.pm.store import StateMismatch, Store
from attendance_pipeline.simulators.pm.tapd import TapdApi
from attendance_pipeline.simulators.pm.tempo import TempoApi
from attendance_pipeline.simulators.pm.zentao import ZenTaoApi, ZenTaoLimits
from attendance_pipeline.simulators.scaffold import (
    ADMIN_PREFIX,
    AdminHandler,
    AdminRoutes,
    Faults,
    Tally,
    common_settings,
    serve_from_args,
    sim_arg_parser,
)

logger = logging.getLogger(__name__)

SYSTEMS = ("jira", "tempo", "tapd", "zentao")
FAULT_KINDS = ("http5xx", "rate_limit", "lost_reply")
NOTES = (
    "writes",
    "reads",
    "logins",
    "unmatched",
    "estimate_changed",
    "notified",
    "failed_logins",
    "tasks_finished",
    "parallel_issue_writes",
)


@dataclass(frozen=True)
class PMSimConfig:
    """Simulator settings. ``state_path`` None keeps the state in memory.

    ``today`` is ZenTao's "today" for refusing future dates (None: the real date in China).
    ``fault_rate`` is spread evenly over the fault kinds (``set_faults`` sets them one by one).
    """

    seed: int = 7
    employees: int = 60
    state_path: str | Path | None = None
    today: date | None = None
    fault_rate: float = 0.0
    retry_after_s: float = 1.0
    latency_ms: int = 0
    zentao_token_ttl_s: float = 1440.0
    zentao_max_failed_logins: int = 5
    zentao_lock_s: float = 600.0


def _seconds_text(seconds: float) -> str:
    return f"{seconds:g}"


class PMSimulator:
    """The simulator's state and request handling; ``serve()`` puts it behind HTTP."""

    def __init__(self, config: PMSimConfig | None = None) -> None:
        self.config = cfg = config or PMSimConfig()
        if cfg.latency_ms < 0 or not 0 <= cfg.fault_rate <= 1:
            raise ValueError("latency_ms >= 0 and fault_rate within 0..1")
        self.directory = Directory(cfg.seed, cfg.employees)
        self._store = Store(cfg.state_path, seed=cfg.seed, employees=cfg.employees)
        self._lock = threading.Lock()
        self._today = cfg.today
        self._faults = Faults(
            FAULT_KINDS,
            seed=cfg.seed,
            rate=cfg.fault_rate,
            settings={"retry_after_s": cfg.retry_after_s},
        )
        self._by_route = Tally()
        self._notes = Tally()
        self._inflight: dict[str, int] = {}
        limits = ZenTaoLimits(
            cfg.zentao_token_ttl_s, cfg.zentao_max_failed_logins, cfg.zentao_lock_s
        )
        self._zentao = ZenTaoApi(
            self._store, self.directory, self._notes, lambda: self.today, limits
        )
        self._systems: dict[str, SystemApi] = {
            "jira": JiraApi(self._store, self.directory, self._notes),
            "tempo": TempoApi(self._store, self.directory),
            "tapd": TapdApi(self._store, self.directory),
            "zentao": self._zentao,
        }
        self._routes: dict[str, list[Route]] = {n: s.routes() for n, s in self._systems.items()}
        self._set_public_url("http://127.0.0.1:8702")
        self._admin = self._admin_routes()

    # ---------------------------------------------------------------- Python control API

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
        """Start serving on a daemon thread (port 0 picks a free port)."""
        error = Reply(500, b"internal error", "text/plain")
        running = serve(
            lambda method, path, headers, body, _ip: self.handle(method, path, headers, body),
            error,
            logger,
            "pm-sim",
            host,
            port,
        )
        self._set_public_url(running.url)
        return running

    def close(self) -> None:
        """Close the state database (stop serving first)."""
        self._store.close()

    def set_faults(
        self,
        http5xx: float = 0.0,
        rate_limit: float = 0.0,
        retry_after_s: float = 1.0,
        lost_reply: float = 0.0,
        seed: int | None = None,
    ) -> None:
        """Replace the fault probabilities (per write call); unspecified kinds become 0."""
        chances = {"http5xx": http5xx, "rate_limit": rate_limit, "lost_reply": lost_reply}
        self._faults.configure(chances, {"retry_after_s": retry_after_s}, seed)

    def faults(self) -> dict[str, float]:
        return self._faults.snapshot()

    @property
    def today(self) -> date:
        """ZenTao's today: the configured/set date, else the real date in Asia/Shanghai."""
        with self._lock:
            return self._today or today_in_china()

    def set_today(self, today: date | None) -> None:
        """Pin ZenTao's today (None: follow the real date again)."""
        with self._lock:
            self._today = today

    def users(self, system: str) -> list[dict[str, Any]]:
        """The system's accounts as it returns them (Jira/Tempo: v3 users; TAPD: the
        ``UserWorkspace`` objects; ZenTao: ``/users`` items)."""
        return self._system(system).users()

    def issues(self, system: str) -> list[str]:
        """What worklogs can go to: Jira keys, Tempo numeric issue ids, TAPD
        ``story:1001``/``task:2001``, ZenTao task ids."""
        return self._system(system).issues()

    def worklogs(self, system: str) -> list[dict[str, Any]]:
        """Ground truth: every live worklog. Common keys ``id``, ``issue`` (as ``issues()``
        names it), ``author`` (accountId / owner / account), ``work_date``, ``seconds``, ``text``
        (comment / description / memo / work), plus the system's own fields."""
        return self._system(system).worklogs()

    def edit_worklog(self, system: str, remote_id: str, seconds: int) -> None:
        """A person changes an entry's duration by hand (for conflict tests)."""
        if not self._system(system).edit_worklog(str(remote_id), int(seconds)):
            raise KeyError(f"{system} has no worklog {remote_id}")

    def truth_mapping(self) -> dict[str, dict[str, str | None]]:
        """DingTalk userid -> {login, account_id, via}: whose account is whose, and how matching
        can find it (email | job_number | name | None when the employee has no account)."""
        return self.directory.truth_mapping()

    def calls(self) -> dict[str, Any]:
        notes = self._notes.snapshot()
        out: dict[str, Any] = {"by_route": dict(sorted(self._by_route.snapshot().items()))}
        out.update({name: notes.get(name, 0) for name in NOTES})
        out["faults"] = {kind: notes.get(f"fault_{kind}", 0) for kind in FAULT_KINDS}
        return out

    def reset_calls(self) -> None:
        self._by_route.clear()
        self._notes.clear()

    def expire_tokens(self) -> None:
        """Invalidate every ZenTao token (the next call with one is 401)."""
        self._zentao.expire_tokens()

    def unlock_accounts(self) -> None:
        """Lift every ZenTao lock-out and forget failed-login counts."""
        self._zentao.unlock_accounts()

    # ---------------------------------------------------------------- request handling

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answer one request; ``headers`` keys are lower-case."""
        parts = urlsplit(target)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        if path.startswith(ADMIN_PREFIX):
            name = path.removeprefix(ADMIN_PREFIX)
            return self._admin.handle(method, name, {k: v[-1] for k, v in query.items()}, body)
        api = self._systems[_system_for(path)]
        base = f"http://{headers.get('host') or '127.0.0.1'}"
        req = Request(method, path, query, headers, body, base)
        found: tuple[Route, dict[str, str]] | None = None
        allowed: list[str] = []
        for rt in self._routes[api.name]:
            match = rt.pattern.match(path)
            if match is None:
                continue
            if rt.method == method:
                found = (rt, match.groupdict())
                break
            allowed.append(rt.method)
        if found is None:
            self._notes.bump("unmatched")
            return api.unmatched(req, allowed)
        rt, params = found
        self._by_route.bump(rt.name)
        self._notes.bump({"write": "writes", "read": "reads"}.get(rt.kind, "logins"))
        req = replace(req, params=params)
        if rt.kind != "login":
            caller = api.authenticate(req)
            if caller is None:
                return api.error(401, "authentication failed: missing or wrong credentials")
            req = replace(req, caller=caller)
        draw = self._faults.draw() if rt.kind == "write" else None
        fault, flip = (draw.kind, draw.variant) if draw is not None else (None, 0.0)
        if fault is not None:
            self._notes.bump(f"fault_{fault}")
        if fault == "http5xx":
            return api.error(503 if flip < 0.5 else 500, "simulated server error (not written)")
        if draw is not None and fault == "rate_limit":
            retry_after = _seconds_text(draw.settings["retry_after_s"])
            status = 503 if api.name == "jira" and flip < 0.25 else 429
            reply = api.error(status, f"rate limit exceeded: retry after {retry_after} s")
            return replace(reply, headers=(*reply.headers, ("Retry-After", retry_after)))
        reply = self._run(api, rt, req)
        if fault == "lost_reply":  # committed; the caller never learns it
            return Reply(0, drop=True) if flip < 0.5 else api.error(504, "Gateway Time-out")
        return reply

    def _run(self, api: SystemApi, rt: Route, req: Request) -> Reply:
        serial = api.serial_key(req) if rt.kind == "write" else None
        if serial is not None:
            with self._lock:
                if self._inflight.get(serial):
                    self._notes.bump("parallel_issue_writes")
                self._inflight[serial] = self._inflight.get(serial, 0) + 1
        try:
            if self.config.latency_ms:
                time.sleep(self.config.latency_ms / 1000)
            try:
                with self._store.transaction():
                    return rt.handler(req)
            except BadRequest as exc:
                return api.error(400, exc.message, exc.field)
            except NotFound as exc:
                return api.error(404, str(exc))
        finally:
            if serial is not None:
                with self._lock:
                    self._inflight[serial] -= 1

    def _system(self, system: str) -> SystemApi:
        api = self._systems.get(system)
        if api is None:
            raise ValueError(f"unknown PM system {system!r}: one of {', '.join(SYSTEMS)}")
        return api

    def _set_public_url(self, url: str) -> None:
        for api in self._systems.values():
            api.public_url = url

    # ---------------------------------------------------------------- admin endpoints

    def _admin_routes(self) -> AdminRoutes[Reply]:
        admin = AdminRoutes(json_reply, key_error_status=404)
        admin.add_controls(
            calls=self.calls,
            reset_calls=self.reset_calls,
            faults=self.faults,
            set_faults=self.set_faults,
            clock=lambda: {"today": self.today.isoformat(), "pinned": self._today is not None},
            set_clock=lambda p: self.set_today(
                date.fromisoformat(str(p["today"])) if p.get("today") else None
            ),
            expire_tokens=self.expire_tokens,
        )
        for name in ("users", "issues", "worklogs"):
            admin.add("GET", name, self._truth_of_system(name))
        admin.add("GET", "mapping", lambda _q, _p: self.truth_mapping())
        admin.add_action("unlock", self.unlock_accounts)
        admin.add("POST", "edit", self._admin_edit)
        return admin

    def _truth_of_system(self, name: str) -> AdminHandler:
        def answer(query: dict[str, str], _payload: dict[str, Any]) -> Any:
            if "system" not in query:
                raise ValueError(f"give ?system=one of {', '.join(SYSTEMS)}")
            return getattr(self, name)(query["system"])

        return answer

    def _admin_edit(self, _query: dict[str, str], payload: dict[str, Any]) -> dict[str, bool]:
        self.edit_worklog(str(payload["system"]), str(payload["id"]), int(payload["seconds"]))
        return {"ok": True}


def _system_for(path: str) -> str:
    if path.startswith("/rest/api/"):
        return "jira"
    if path.startswith("/4/"):
        return "tempo"
    if path.startswith("/api.php/"):
        return "zentao"
    return "tapd"


# -------------------------------------------------------------------- command line


def build_arg_parser(prog: str = "attendance-pipeline sim pm") -> argparse.ArgumentParser:
    d = PMSimConfig()
    p = sim_arg_parser(
        prog,
        "Run the PM-system simulator (Jira, Tempo, TAPD, ZenTao).",
        port=8702,
        defaults=d,
        today_help="ZenTao's today; default real",
        seed_help="the DingTalk company's seed",
        fault_rate_help="chance per write call of a fault, spread over 5xx, 429 and lost replies",
    )
    p.add_argument("--state", type=Path, default=None, help="SQLite file; default in memory")
    p.add_argument("--retry-after", type=bounded(float, 0.0), default=d.retry_after_s)
    return p


def main_pm(argv: list[str] | None = None) -> int:
    """Serve the simulator until SIGINT/SIGTERM; prints one line with the URL."""
    args = build_arg_parser().parse_args(argv)
    cfg = PMSimConfig(
        **common_settings(args),
        state_path=args.state,
        today=args.today,
        retry_after_s=args.retry_after,
    )
    try:
        sim = PMSimulator(cfg)
    except StateMismatch as exc:
        print(f"attendance-pipeline sim pm: {exc}", file=sys.stderr)
        return 2
    state = str(args.state) if args.state else "in memory"
    try:
        return serve_from_args(
            args,
            sim.serve,
            lambda url: (
                f"PM simulator (Jira, Tempo, TAPD, ZenTao) listening on {url} "
                f"(seed {cfg.seed}, {cfg.employees} employees, state {state})"
            ),
        )
    finally:
        sim.close()


__all__ = ["PMSimConfig", "PMSimulator", "build_arg_parser", "main_pm"]

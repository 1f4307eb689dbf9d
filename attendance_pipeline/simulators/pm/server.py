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
import json
import logging
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from attendance_pipeline.china_time import today_in_china
from attendance_pipeline.simulators.http import (
    RunningSimulator,
    bounded,
    iso_date,
    serve,
    serve_until_signalled,
)
from attendance_pipeline.simulators.pm.accounts import Directory
from attendance_pipeline.simulators.pm.jira import JiraApi
from attendance_pipeline.simulators.pm.routing import (
    BadRequest,
    NotFound,
    Reply,
    Request,
    Route,
    SystemApi,
    Tally,
    json_reply,
)
from attendance_pipeline.simulators.pm.store import StateMismatch, Store
from attendance_pipeline.simulators.pm.tapd import TapdApi
from attendance_pipeline.simulators.pm.tempo import TempoApi
from attendance_pipeline.simulators.pm.zentao import ZenTaoApi, ZenTaoLimits

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
ADMIN_PREFIX = "/_sim/"


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


@dataclass(frozen=True)
class _Faults:
    http5xx: float = 0.0
    rate_limit: float = 0.0
    lost_reply: float = 0.0
    retry_after_s: float = 1.0

    def __post_init__(self) -> None:
        chances = [self.http5xx, self.rate_limit, self.lost_reply]
        if any(p < 0 for p in chances) or sum(chances) > 1 or self.retry_after_s < 0:
            raise ValueError("fault probabilities must be >= 0 and add up to at most 1")


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
        each = cfg.fault_rate / len(FAULT_KINDS)
        self._faults = _Faults(each, each, each, cfg.retry_after_s)
        self._fault_rng = random.Random(cfg.seed)
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
        faults = _Faults(http5xx, rate_limit, lost_reply, retry_after_s)
        with self._lock:
            self._faults = faults
            if seed is not None:
                self._fault_rng = random.Random(seed)

    def faults(self) -> dict[str, float]:
        with self._lock:
            return asdict(self._faults)

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
            return self._admin(method, path.removeprefix(ADMIN_PREFIX), query, body)
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
        fault, flip = self._draw_fault() if rt.kind == "write" else (None, 0.0)
        if fault is not None:
            self._notes.bump(f"fault_{fault}")
        if fault == "http5xx":
            return api.error(503 if flip < 0.5 else 500, "simulated server error (not written)")
        if fault == "rate_limit":
            retry_after = _seconds_text(self.faults()["retry_after_s"])
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

    def _draw_fault(self) -> tuple[str | None, float]:
        """The fault for one write call (or None) and a second draw that picks its variant."""
        with self._lock:
            faults = self._faults
            roll = self._fault_rng.random()
            for kind in FAULT_KINDS:
                chance: float = getattr(faults, kind)
                if roll < chance:
                    return kind, self._fault_rng.random()
                roll -= chance
            return None, 0.0

    def _system(self, system: str) -> SystemApi:
        api = self._systems.get(system)
        if api is None:
            raise ValueError(f"unknown PM system {system!r}: one of {', '.join(SYSTEMS)}")
        return api

    def _set_public_url(self, url: str) -> None:
        for api in self._systems.values():
            api.public_url = url

    # ---------------------------------------------------------------- admin endpoints

    def _admin(self, method: str, name: str, query: dict[str, list[str]], body: bytes) -> Reply:
        try:
            payload = json.loads(body) if body else {}
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            return self._admin_route(method, name, {k: v[-1] for k, v in query.items()}, payload)
        except KeyError as exc:
            return json_reply({"error": str(exc.args[0]) if exc.args else "not found"}, 404)
        except (ValueError, TypeError) as exc:
            return json_reply({"error": str(exc)}, 400)

    def _admin_route(
        self, method: str, name: str, query: dict[str, str], payload: dict[str, Any]
    ) -> Reply:
        get, post = method == "GET", method == "POST"
        if name == "calls" and get:
            return json_reply(self.calls())
        if name == "reset-calls" and post:
            self.reset_calls()
            return json_reply({"ok": True})
        if name == "faults" and (get or post):
            if post:
                self.set_faults(**payload)
            return json_reply(self.faults())
        if name == "clock" and (get or post):
            if post:
                raw = payload.get("today")
                self.set_today(date.fromisoformat(str(raw)) if raw else None)
            return json_reply({"today": self.today.isoformat(), "pinned": self._today is not None})
        if name in ("users", "issues", "worklogs") and get:
            if "system" not in query:
                raise ValueError(f"give ?system=one of {', '.join(SYSTEMS)}")
            return json_reply(getattr(self, name)(query["system"]))
        if name == "mapping" and get:
            return json_reply(self.truth_mapping())
        if name == "edit" and post:
            self.edit_worklog(str(payload["system"]), str(payload["id"]), int(payload["seconds"]))
            return json_reply({"ok": True})
        if name == "expire-tokens" and post:
            self.expire_tokens()
            return json_reply({"ok": True})
        if name == "unlock" and post:
            self.unlock_accounts()
            return json_reply({"ok": True})
        return json_reply({"error": f"no admin endpoint {method} {ADMIN_PREFIX}{name}"}, 404)


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
    p = argparse.ArgumentParser(
        prog=prog, description="Run the PM-system simulator (Jira, Tempo, TAPD, ZenTao)."
    )
    p.add_argument("--port", type=bounded(int, 0, 65535), default=8702, help="default 8702")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    p.add_argument("--state", type=Path, default=None, help="SQLite file; default in memory")
    p.add_argument("--seed", type=int, default=d.seed, help="the DingTalk company's seed")
    p.add_argument("--employees", type=bounded(int, 1, 100_000), default=d.employees)
    p.add_argument(
        "--fault-rate",
        type=bounded(float, 0.0, 1.0),
        default=d.fault_rate,
        help="chance per write call of a fault, spread over 5xx, 429 and lost replies",
    )
    p.add_argument("--retry-after", type=bounded(float, 0.0), default=d.retry_after_s)
    p.add_argument("--latency-ms", type=bounded(int, 0), default=d.latency_ms)
    p.add_argument("--today", type=iso_date, default=None, help="ZenTao's today; default real")
    p.add_argument("--verbose", "-v", action="store_true", help="log every request (DEBUG)")
    return p


def main_pm(argv: list[str] | None = None) -> int:
    """Serve the simulator until SIGINT/SIGTERM; prints one line with the URL."""
    args = build_arg_parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(message)s")
    cfg = PMSimConfig(
        seed=args.seed,
        employees=args.employees,
        state_path=args.state,
        today=args.today,
        fault_rate=args.fault_rate,
        retry_after_s=args.retry_after,
        latency_ms=args.latency_ms,
    )
    try:
        sim = PMSimulator(cfg)
    except StateMismatch as exc:
        print(f"attendance-pipeline sim pm: {exc}", file=sys.stderr)
        return 2
    state = str(args.state) if args.state else "in memory"
    try:
        return serve_until_signalled(
            sim.serve,
            args.host,
            args.port,
            lambda url: (
                f"PM simulator (Jira, Tempo, TAPD, ZenTao) listening on {url} "
                f"(seed {cfg.seed}, {cfg.employees} employees, state {state})"
            ),
        )
    finally:
        sim.close()


__all__ = ["PMSimConfig", "PMSimulator", "build_arg_parser", "main_pm"]

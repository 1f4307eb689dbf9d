"""The DingTalk Open API simulator: one HTTP port serving both hosts.

Legacy (``oapi.dingtalk.com``) paths are served at the root, new-host (``api.dingtalk.com``) paths
under ``/v1.0/``; admin endpoints live under ``/_sim/`` (``admin.py``). Behaviour follows
``contracts/dingtalk.md``: token flows (``auth.py``), org APIs (``contacts.py``),
``attendance/list`` and the attendance groups (``attendance.py``), the approvals query
(``approvals.py``), the HR dismission APIs (``hrm.py``), the smart report's columns with their
injectable drift (``report.py``), per-API QPS (90018), the monthly quota of
metered calls (90020), the per-IP ban page and token expiry (``limits.py``), permission errors and
injectable faults (``faults.py``). ``docs/dingtalk.md`` says where each name comes from. This
module is the facade: the state, the Python control API and the request pipeline every API call
goes through. Built on the stdlib ``ThreadingHTTPServer`` only (``simulators/http.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from attendance_pipeline.simulators.dingtalk.admin import Truth, admin_routes
from attendance_pipeline.simulators.dingtalk.approvals import ApprovalsApi
from attendance_pipeline.simulators.dingtalk.attendance import AttendanceApi
from attendance_pipeline.simulators.dingtalk.auth import AuthApi
from attendance_pipeline.simulators.dingtalk.company import SHANGHAI, Company
from attendance_pipeline.simulators.dingtalk.contacts import ContactsApi
from attendance_pipeline.simulators.dingtalk.faults import DingTalkFaults
from attendance_pipeline.simulators.dingtalk.hrm import HRM_APIS, HrmApi
from attendance_pipeline.simulators.dingtalk.limits import IpBans, MonthlyQuota, QpsWindows, Tokens
from attendance_pipeline.simulators.dingtalk.protocol import (
    NEW_HOST_PREFIX,
    BadParam,
    Reply,
    Request,
    Route,
    ban_page,
    error,
    error_404,
    json_reply,
    new_error,
    normalise_api,
    permission_error,
)
from attendance_pipeline.simulators.dingtalk.report import (
    ReportApi,
    ReportDrift,
    ReportDrifts,
    seeded_drift,
)
from attendance_pipeline.simulators.dingtalk.stream import StreamAuthError, StreamHub
from attendance_pipeline.simulators.http import RunningSimulator, serve
from attendance_pipeline.simulators.scaffold import ADMIN_PREFIX, Tally

logger = logging.getLogger(__name__)

# API families for deny_api: "hrm" denies every HR (智能人事) API at once.
API_FAMILIES = {"hrm": HRM_APIS}
COUNTERS = ("total", "ok", "metered", "rejected_qps", "faults")


def shanghai_today() -> date:
    """Today in Asia/Shanghai (the default clock)."""
    return datetime.now(SHANGHAI).date()


@dataclass(frozen=True)
class DingTalkSimConfig:
    """Simulator settings; ``today`` is the starting clock (default: today in Asia/Shanghai)."""

    seed: int = 7
    employees: int = 60
    today: date = field(default_factory=shanghai_today)
    qps: int = 20
    latency_ms: int = 0
    fault_rate: float = 0.0
    monthly_quota: int = 5000
    app_key: str = "sim-key"
    app_secret: str = "sim-secret"
    token_ttl_s: float = 7200
    ip_limit: int = 10_000  # calls per ip_window_s from one IP before a ban
    ip_window_s: float = 20.0
    ip_ban_s: float = 300.0
    history_days: int = 180  # older work dates are silently not served
    denied_apis: tuple[str, ...] = ()  # APIs (or families such as "hrm") denied from the start
    # Smart-report drift: {userid, date, column (name, alias or leave type), delta} items, and
    # N seeded person-days with +1 on a count column (``report.py``).
    report_drift: tuple[ReportDrift | Mapping[str, Any], ...] = ()
    report_drift_days: int = 0


class DingTalkSimulator:
    """The simulator's state (clock, tokens, counters, limits, faults) and its request handling.

    ``handle()`` is transport-free; ``serve()`` puts it behind a threaded HTTP server.
    """

    def __init__(self, config: DingTalkSimConfig | None = None) -> None:
        self.config = cfg = config or DingTalkSimConfig()
        if cfg.qps < 1 or cfg.monthly_quota < 0 or cfg.latency_ms < 0 or cfg.token_ttl_s <= 0:
            raise ValueError("qps >= 1, monthly_quota >= 0, latency_ms >= 0, token_ttl_s > 0")
        self.company = Company(cfg.seed, cfg.employees, anchor=cfg.today)
        self._lock = threading.Lock()
        self._today = cfg.today
        self._denied: set[str] = set()
        self._counts = {name: Tally() for name in COUNTERS}  # per counter: api -> calls
        self._metered_users: Counter[str] = Counter()  # userid -> metered calls naming them
        self._tokens = Tokens(cfg.token_ttl_s)
        self._qps = QpsWindows(cfg.qps)
        self._quota = MonthlyQuota(cfg.monthly_quota)
        self._bans = IpBans(cfg.ip_limit, cfg.ip_window_s, cfg.ip_ban_s)
        self._faults = DingTalkFaults(cfg.seed, cfg.fault_rate)
        self._auth = AuthApi(cfg.app_key, cfg.app_secret, self._tokens)
        clock, history = (lambda: self.today), cfg.history_days
        self._truth = Truth(self.company, clock, history)
        self._drifts = ReportDrifts(
            self.company, seeded_drift(self.company, cfg.report_drift_days, cfg.today)
        )
        self._drifts.set(cfg.report_drift)
        self._report = ReportApi(self.company, clock, history, self._drifts)
        apis = (
            self._auth,
            ContactsApi(self.company, clock),
            AttendanceApi(self.company, clock, history),
            ApprovalsApi(self.company, clock, history),
            HrmApi(self.company, clock),
            self._report,
        )
        self._routes: dict[str, Route] = {r.path: r for api in apis for r in api.routes()}
        self.stream = StreamHub(cfg.app_key, cfg.app_secret)
        open_route = Route("/v1.0/gateway/connections/open", "POST", "token", self._stream_open)
        self._routes[open_route.path] = open_route
        self._admin = admin_routes(self)
        for api in cfg.denied_apis:
            self.deny_api(api)

    # ---------------------------------------------------------------- Python control API

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
        """Start serving on a daemon thread (port 0 picks a free port)."""
        error_reply = Reply(500, b"internal error", "text/plain")
        return serve(self.handle, error_reply, logger, "dingtalk-sim", host, port)

    @property
    def today(self) -> date:
        with self._lock:
            return self._today

    def set_today(self, today: date) -> None:
        with self._lock:
            self._today = today

    def advance(self, today: date, window_days: int = 45) -> list[str]:
        """Move the clock to ``today`` and push, in Stream mode, an event for each change the
        move made visible: an approval finished (``bpms_instance_change``; a 补卡 also as
        ``attendance_check_record``), a hire (``user_add_org``), a leaver (``user_leave_org``).
        Approvals are compared over ``window_days`` before and 30 days after the clock.
        Answers the eventIds."""
        before = self.today
        start = min(before, today) - timedelta(days=window_days)
        end = max(before, today) + timedelta(days=30)
        old_approvals = {a["approveId"]: a for a in self.truth_approvals(start, end)}
        old_users = {u["userid"] for u in self.truth_users()}
        self.set_today(today)
        new_approvals = {a["approveId"]: a for a in self.truth_approvals(start, end)}
        new_users = {u["userid"] for u in self.truth_users()}
        born = int(datetime(today.year, today.month, today.day, 9, tzinfo=SHANGHAI).timestamp())
        ids = []
        for approve_id in sorted(set(new_approvals) - set(old_approvals)):
            ids.extend(self.publish_approval(new_approvals[approve_id], born_ms=born * 1000))
        for approve_id in sorted(set(old_approvals) - set(new_approvals)):
            ids.extend(
                self.publish_approval(old_approvals[approve_id], "terminate", born_ms=born * 1000)
            )
        for uid in sorted(new_users - old_users):
            ids.append(self.stream.publish("user_add_org", {"UserId": [uid]}, born_ms=born * 1000))
        for uid in sorted(old_users - new_users):
            ids.append(
                self.stream.publish("user_leave_org", {"UserId": [uid]}, born_ms=born * 1000)
            )
        return ids

    def publish_approval(
        self, approval: dict[str, Any], kind: str = "finish", born_ms: int | None = None
    ) -> list[str]:
        """Push ``bpms_instance_change`` for an approval (``kind`` finish or terminate, i.e.
        revoked); a finished 补卡 (bizType 4) also pushes ``attendance_check_record``."""
        data = {
            "processInstanceId": approval["approveId"],
            "staffId": approval["userId"],
            "type": kind,
            "result": "agree" if kind == "finish" else "",
            "title": approval.get("tagName") or "审批",
            "processCode": f"PROC-SIM-{approval['bizType']}",
            "bizCategoryId": str(approval["bizType"]),
        }
        event_id = f"bpms-{approval['approveId']}-{kind}"
        ids = [
            self.stream.publish("bpms_instance_change", data, event_id=event_id, born_ms=born_ms)
        ]
        if approval["bizType"] == 4 and kind == "finish":
            day = str(approval["beginTime"])[:10]
            record = {
                "userId": approval["userId"],
                "checkTime": day,
                "bizId": approval["approveId"],
            }
            ids.append(
                self.stream.publish(
                    "attendance_check_record",
                    {"dataList": [record]},
                    event_id=f"check-{approval['approveId']}",
                    born_ms=born_ms,
                )
            )
        return ids

    def approve(
        self,
        userid: str,
        day: date,
        sub_type: str = "年假",
        half: str = "",
        biz_type: int = 3,
        publish: bool = True,
    ) -> dict[str, Any]:
        """An employee's leave (biz_type 3, ``sub_type`` its type) or trip (2) on ``day``, whole
        (``half`` "") or half ("AM"/"PM"), approved now: the approvals query returns it from the
        current clock on, and with ``publish`` a ``bpms_instance_change`` finish is pushed.
        Answers the approval as the approvals query has it."""
        with self._lock:
            appr = self.company.add_approval(
                userid, day, biz_type=biz_type, sub_type=sub_type, half=half,
                visible_from=self._today,
            )  # fmt: skip
        found = appr.to_api()
        if publish:
            self.publish_approval(found)
        return found

    def revoke(self, approval: dict[str, Any], publish: bool = True) -> None:
        """Revoke (撤销) an approval: the approvals query no longer returns it, and with
        ``publish`` a ``bpms_instance_change`` terminate is pushed."""
        with self._lock:
            self.company.revoke_approval(str(approval["approveId"]))
        if publish:
            self.publish_approval(approval, "terminate")

    def set_faults(
        self,
        busy: float = 0.0,
        http5xx: float = 0.0,
        slow: float = 0.0,
        slow_ms: int = 300,
        ban: float = 0.0,
        qps_global: float = 0.0,
        token_expired: float = 0.0,
        seed: int | None = None,
    ) -> None:
        """Replace every fault probability (per metered/org call); unspecified kinds become 0."""
        chances = {
            "busy": busy,
            "http5xx": http5xx,
            "slow": slow,
            "ban": ban,
            "qps_global": qps_global,
            "token_expired": token_expired,
        }
        self._faults.configure(chances, slow_ms, seed)

    def faults(self) -> dict[str, Any]:
        return self._faults.snapshot()

    def expire_tokens(self) -> None:
        self._tokens.expire_all()

    def deny_api(self, api: str) -> None:
        """Answer the permission error on ``api`` (e.g. "attendance/list", or the family "hrm")
        from now on."""
        with self._lock:
            self._denied.update(_expand_api(api))

    def allow_api(self, api: str) -> None:
        with self._lock:
            self._denied.difference_update(_expand_api(api))

    def set_report_drift(
        self,
        drift: Iterable[ReportDrift | Mapping[str, Any]] = (),
        days: int | None = None,
    ) -> dict[str, Any]:
        """Replace the injected report drift; with ``days``, draw that many seeded drift days
        again (from the starting clock). Answers ``report_drift()``."""
        self._drifts.set(drift, days, self.config.today)
        return self.report_drift()

    def report_drift(self) -> dict[str, Any]:
        """``{"seeded": [...], "injected": [...]}``, each item ``{userid, date, column, delta}``."""
        return self._drifts.snapshot()

    def unban(self) -> None:
        """Lift every per-IP ban and forget the per-IP call history."""
        self._bans.unban()

    def calls(self) -> dict[str, Any]:
        month = self.today.strftime("%Y-%m")
        counts = {name: tally.snapshot() for name, tally in self._counts.items()}
        return {
            "by_api": {
                api: {name: counts[name].get(api, 0) for name in COUNTERS}
                for api in sorted(counts["total"])
            },
            "metered_this_month": self._quota.used(month),
            "month": month,
        }

    def metered_users(self) -> dict[str, int]:
        """userid -> how many served metered calls asked for that person's data."""
        with self._lock:
            return dict(self._metered_users)

    def _note_users(self, body: bytes) -> None:
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            return
        if not isinstance(parsed, dict):
            return
        listed = parsed.get("userIdList") or parsed.get("userids") or parsed.get("userIds") or []
        users = listed.split(",") if isinstance(listed, str) else listed
        with self._lock:
            self._metered_users.update(str(u) for u in users if u)

    def reset_calls(self) -> None:
        """Zero the per-API counters and the monthly metered-call counts (the quota)."""
        for tally in self._counts.values():
            tally.clear()
        with self._lock:
            self._metered_users.clear()
        self._quota.clear()

    def truth_attendance(
        self, date_from: date, date_to: date, userids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """What ``attendance/list`` would return for the range at the current clock, by id."""
        return self._truth.attendance(date_from, date_to, userids)

    def truth_approvals(
        self, date_from: date, date_to: date, userids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Approvals overlapping [from 00:00, to 23:59:59] visible now, sorted by approveId."""
        return self._truth.approvals(date_from, date_to, userids)

    def truth_users(self) -> list[dict[str, Any]]:
        """What ``user/list`` returns now: leavers are gone once their last work day is past."""
        return self._truth.users()

    def truth_groups(self) -> dict[str, Any]:
        """Groups as ``getsimplegroups`` serves them, their members now, and who is in none."""
        return self._truth.groups()

    def truth_leavers(self) -> list[dict[str, Any]]:
        """Dimission infos of everyone who has left by the clock, latest last work day first."""
        return self._truth.leavers()

    def truth_report(
        self, date_from: date, date_to: date, userids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """What the smart report says now, per person-day: ``{userid, date, values: {alias:
        value}, leave: {type: hours}}``, drift and the 15-day quirk included."""
        today = self.today
        out: list[dict[str, Any]] = []
        for uid in dict.fromkeys(self.company.userids() if userids is None else userids):
            d = date_from
            while d <= date_to:
                report = self._report.day(uid, d, today)
                row = {"userid": uid, "date": d.isoformat(), "values": report.values}
                out.append({**row, "leave": report.leave})
                d += timedelta(days=1)
        return out

    def truth_schedules(self, day: date) -> list[dict[str, Any]]:
        """The planned check points ``listschedule`` has for ``day`` (ignoring its horizon)."""
        return self.company.schedules(day)

    def truth_departments(self) -> list[dict[str, Any]]:
        return self.company.departments()

    # ---------------------------------------------------------------- request handling

    def _stream_open(self, req: Request) -> Reply:
        try:
            body = json.loads(req.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            return json_reply(self.stream.open(body))
        except StreamAuthError as exc:
            return new_error(req, 401, "invalidClientIdOrSecret", str(exc))
        except ValueError as exc:
            return new_error(req, 400, "invalidParameter", str(exc))

    def handle(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        client_ip: str,
    ) -> Reply:
        """Answer one request; ``headers`` keys are lower-case."""
        parts = urlsplit(target)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if path.startswith(ADMIN_PREFIX):
            return self._admin.handle(method, path.removeprefix(ADMIN_PREFIX), query, body)

        reply = self._handle_api(method, path, query, headers, body, client_ip)
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)
        return reply

    def _handle_api(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        client_ip: str,
    ) -> Reply:
        new_host = path.startswith(NEW_HOST_PREFIX)
        route = self._routes.get(path)
        request_id = uuid.uuid4().hex[:16]
        if self._bans.banned(client_ip):
            return ban_page()
        if route is None:
            return error_404(new_host, path, request_id)
        api = route.api
        req = Request(method, api, new_host, query, headers, body, request_id)
        self._counts["total"].bump(api)
        if method != route.method:
            return json_reply({"code": "MethodNotAllowed", "message": f"use {route.method}"}, 405)

        if not self._qps.take(api):
            self._counts["rejected_qps"].bump(api)
            return error(
                req,
                90018,
                "当前应用调用该接口超过限流阈值，请降低调用频率",
                403,
                "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
            )

        if route.kind != "token":
            denied = self._auth.check(req)
            if denied is not None:
                return denied
            with self._lock:
                is_denied = api in self._denied
            if is_denied:
                return permission_error(req)
            fault = self._faults.inject(req)
            if fault is not None:
                self._counts["faults"].bump(api)
                return fault

        month: str | None = None
        if route.kind == "metered":
            month = self.today.strftime("%Y-%m")
            if not self._quota.reserve(month):
                return error(
                    req,
                    90020,
                    "您的企业本月api调用量已超过限制",
                    403,
                    "Forbidden.AccessDenied.ApiCountLimitForOrg",
                )
        try:
            reply = route.handler(req)
        except BadParam as exc:
            reply = error(req, exc.errcode, exc.message, 400, "InvalidParameter")
        except ValueError:  # unparseable JSON body
            reply = error(req, 40035, "请求体不是合法的JSON", 400, "InvalidParameter")
        ok = reply.ok
        if ok:
            self._counts["ok"].bump(api)
        if month is not None:
            if ok:
                self._counts["metered"].bump(api)
                self._note_users(body)
            else:
                self._quota.release(month)
        return reply


def _expand_api(api: str) -> tuple[str, ...]:
    name = normalise_api(api)
    return API_FAMILIES.get(name, (name,))


def build_arg_parser(
    prog: str = "attendance-pipeline sim dingtalk",
) -> argparse.ArgumentParser:
    """The command line's parser (``cli.py``)."""
    from attendance_pipeline.simulators.dingtalk.cli import build_arg_parser as build

    return build(prog)


def main_dingtalk(argv: list[str] | None = None) -> int:
    """Serve the simulator until SIGINT/SIGTERM (``cli.py``); prints one line with the URL."""
    from attendance_pipeline.simulators.dingtalk.cli import main_dingtalk as main

    return main(argv)


__all__ = [
    "DingTalkSimConfig",
    "DingTalkSimulator",
    "RunningSimulator",
    "build_arg_parser",
    "main_dingtalk",
]

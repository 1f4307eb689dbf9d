"""The DingTalk Open API simulator: one HTTP port serving both hosts.

Legacy (``oapi.dingtalk.com``) paths are served at the root, new-host (``api.dingtalk.com``) paths
under ``/v1.0/``; admin endpoints live under ``/_sim/``. Behaviour follows
``contracts/dingtalk.md``: token flows, org APIs, ``attendance/list``, the approvals query, per-API
QPS (90018), the monthly quota of metered calls (90020), the per-IP ban page, token expiry,
permission errors and injectable faults. Also the attendance-group APIs (legacy
``getsimplegroups`` and ``group/memberusers/list``, metered like every attendance API) and the
HR dismission APIs (new host ``hrm/employees/dismissions`` and ``dimissionInfos``, not metered,
behind their own permission); ``docs/dingtalk.md`` says where each name comes from. Built on the
stdlib ``ThreadingHTTPServer`` only.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from attendance_pipeline.simulators.dingtalk.company import (
    ROOT_DEPT_ID,
    SHANGHAI,
    Company,
    local_midnight_ms,
)
from attendance_pipeline.simulators.http import (
    RunningSimulator,
    bounded,
    iso_date,
    serve,
    serve_until_signalled,
)

logger = logging.getLogger(__name__)

NEW_HOST_PREFIX = "/v1.0/"
TOKEN_HEADER = "x-acs-dingtalk-access-token"
MAX_USERS_PER_CALL = 50
MAX_ATTENDANCE_LIMIT = 50
MAX_ATTENDANCE_DAYS = 7
MAX_APPROVAL_SPAN_MS = 30 * 86_400_000
MAX_USER_PAGE = 100
MAX_GROUP_PAGE = 10  # getsimplegroups `size` (documented maximum 10)
GROUP_MEMBER_PAGE = 100  # memberusers/list rows per page: assumption (no size parameter)
MAX_HRM_PAGE = 50  # dismissions `maxResults` and dimissionInfos `userIdList` (documented 50)
# API families for deny_api: "hrm" denies every HR (智能人事) API at once.
API_FAMILIES = {"hrm": ("hrm/employees/dismissions", "hrm/employees/dimissionInfos")}
FAULT_KINDS = ("busy", "http5xx", "ban", "qps_global", "token_expired")

BAN_PAGE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>访问被拒绝</title></head>'
    "<body><h1>访问过于频繁</h1><p>您的IP访问频率过高，已被暂时限制访问，请稍后再试。</p>"
    "</body></html>"
)


def _shanghai_today() -> date:
    return datetime.now(SHANGHAI).date()


@dataclass(frozen=True)
class DingTalkSimConfig:
    """Simulator settings; ``today`` is the starting clock (default: today in Asia/Shanghai)."""

    seed: int = 7
    employees: int = 60
    today: date = field(default_factory=_shanghai_today)
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


@dataclass
class _Faults:
    busy: float = 0.0
    http5xx: float = 0.0
    slow: float = 0.0
    slow_ms: int = 300
    ban: float = 0.0
    qps_global: float = 0.0
    token_expired: float = 0.0


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"

    @property
    def ok(self) -> bool:
        if self.status >= 300 or not self.content_type.startswith("application/json"):
            return False
        try:
            payload = json.loads(self.body)
        except ValueError:
            return False
        return not isinstance(payload, dict) or payload.get("errcode", 0) == 0


def _json_reply(payload: Any, status: int = 200) -> _Reply:
    return _Reply(status, json.dumps(payload, ensure_ascii=False).encode())


@dataclass(frozen=True)
class _Request:
    method: str
    api: str
    new_host: bool
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    request_id: str

    def json(self) -> Any:
        if not self.body:
            return {}
        return json.loads(self.body)


class _BadParam(Exception):
    """A parameter error; legacy and new-host forms are chosen by the caller."""

    def __init__(self, message: str, errcode: int = 40035) -> None:
        super().__init__(message)
        self.message = message
        self.errcode = errcode


@dataclass(frozen=True)
class _Route:
    api: str
    method: str
    kind: str  # "token" | "org" | "metered"
    handler: Callable[[DingTalkSimulator, _Request], _Reply]


def _int_param(value: Any, name: str, *, errcode: int = 40035) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _BadParam(f"{name} must be an integer", errcode)
    return value


def _parse_work_date(value: Any, name: str) -> date:
    if not isinstance(value, str):
        raise _BadParam(f"{name} must be a 'yyyy-MM-dd HH:mm:ss' string")
    try:
        return datetime.strptime(value.strip()[:10], "%Y-%m-%d").date()
    except ValueError as exc:
        raise _BadParam(f"{name} must be a 'yyyy-MM-dd HH:mm:ss' string") from exc


def _parse_datetime(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise _BadParam(f"{name} must be a 'yyyy-MM-dd HH:mm:ss' string")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=SHANGHAI)
        except ValueError:
            continue
    raise _BadParam(f"{name} must be a 'yyyy-MM-dd HH:mm:ss' string")


def _user_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(u, str) for u in value):
        raise _BadParam(f"{name} must be a non-empty list of userid strings")
    if len(value) > MAX_USERS_PER_CALL:
        raise _BadParam(f"{name} has {len(value)} userids; at most {MAX_USERS_PER_CALL}")
    return list(dict.fromkeys(value))


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
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._current_token: str | None = None
        self._denied: set[str] = set()
        self._by_api: dict[str, dict[str, int]] = {}
        self._metered: dict[str, int] = {}  # "YYYY-MM" -> served metered calls
        self._qps_windows: dict[str, tuple[int, int]] = {}  # api -> (second, calls)
        self._ip_calls: dict[str, deque[float]] = {}
        self._ip_banned_until: dict[str, float] = {}
        self._ban_flip = False
        each = cfg.fault_rate / len(FAULT_KINDS)
        self._faults = _Faults(
            busy=each, http5xx=each, ban=each, qps_global=each, token_expired=each
        )
        self._validate_faults(self._faults)
        self._fault_rng = random.Random(cfg.seed)
        self._depts = {d["dept_id"]: d for d in self.company.departments()}
        self._children: dict[int, list[int]] = {ROOT_DEPT_ID: []}
        for d in self.company.departments():
            self._children.setdefault(d["dept_id"], [])
            self._children.setdefault(d["parent_id"], []).append(d["dept_id"])
        self._members: dict[int, list[dict[str, Any]]] = {}
        for u in self.company.users():
            for dept in u["dept_id_list"]:
                self._members.setdefault(dept, []).append(u)
        for api in cfg.denied_apis:
            self.deny_api(api)

    # ---------------------------------------------------------------- Python control API

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
        """Start serving on a daemon thread (port 0 picks a free port)."""
        error = _Reply(500, b"internal error", "text/plain")
        return serve(self.handle, error, logger, "dingtalk-sim", host, port)

    @property
    def today(self) -> date:
        with self._lock:
            return self._today

    def set_today(self, today: date) -> None:
        with self._lock:
            self._today = today

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
        faults = _Faults(busy, http5xx, slow, slow_ms, ban, qps_global, token_expired)
        self._validate_faults(faults)
        with self._lock:
            self._faults = faults
            if seed is not None:
                self._fault_rng = random.Random(seed)

    def faults(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self._faults)

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._current_token = None

    def deny_api(self, api: str) -> None:
        """Answer the permission error on ``api`` (e.g. "attendance/list", or the family "hrm")
        from now on."""
        with self._lock:
            self._denied.update(_expand_api(api))

    def allow_api(self, api: str) -> None:
        with self._lock:
            self._denied.difference_update(_expand_api(api))

    def unban(self) -> None:
        """Lift every per-IP ban and forget the per-IP call history."""
        with self._lock:
            self._ip_calls.clear()
            self._ip_banned_until.clear()

    def calls(self) -> dict[str, Any]:
        with self._lock:
            month = self._today.strftime("%Y-%m")
            return {
                "by_api": {api: dict(c) for api, c in sorted(self._by_api.items())},
                "metered_this_month": self._metered.get(month, 0),
                "month": month,
            }

    def reset_calls(self) -> None:
        """Zero the per-API counters and the monthly metered-call counts (the quota)."""
        with self._lock:
            self._by_api.clear()
            self._metered.clear()

    def truth_attendance(
        self, date_from: date, date_to: date, userids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """What ``attendance/list`` would return for the range at the current clock, by id."""
        today = self.today
        start = max(date_from, today - timedelta(days=self.config.history_days))
        ids = self.company.userids() if userids is None else userids
        out: list[dict[str, Any]] = []
        for uid in dict.fromkeys(ids):
            d = start
            while d <= date_to:
                out.extend(self.company.attendance(uid, d, today))
                d += timedelta(days=1)
        out.sort(key=lambda r: r["id"])
        return out

    def truth_approvals(
        self, date_from: date, date_to: date, userids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Approvals overlapping [from 00:00, to 23:59:59] visible now, sorted by approveId."""
        today = self.today
        lo = local_midnight_ms(date_from)
        hi = local_midnight_ms(date_to + timedelta(days=1)) - 1
        horizon = today - timedelta(days=self.config.history_days)
        ids = self.company.userids() if userids is None else userids
        out: list[dict[str, Any]] = []
        for uid in dict.fromkeys(ids):
            out.extend(self.company.approvals_between_ms(uid, lo, hi, today, served_from=horizon))
        out.sort(key=lambda a: a["approveId"])
        return out

    def truth_users(self) -> list[dict[str, Any]]:
        """What ``user/list`` returns now: leavers are gone once their last work day is past."""
        return self.company.users(self.today)

    def truth_groups(self) -> dict[str, Any]:
        """Groups as ``getsimplegroups`` serves them, their members now, and who is in none."""
        today = self.today
        groups = self.company.groups(today)
        members = {
            str(g["group_id"]): self.company.group_members(g["group_id"], today) for g in groups
        }
        grouped = {uid for ids in members.values() for uid in ids}
        no_group = [u["userid"] for u in self.company.users(today) if u["userid"] not in grouped]
        return {"groups": groups, "members": members, "no_group": no_group}

    def truth_leavers(self) -> list[dict[str, Any]]:
        """Dimission infos of everyone who has left by the clock, latest last work day first."""
        return self.company.leavers(self.today)

    def truth_departments(self) -> list[dict[str, Any]]:
        return self.company.departments()

    # ---------------------------------------------------------------- request handling

    def handle(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        client_ip: str,
    ) -> _Reply:
        """Answer one request; ``headers`` keys are lower-case."""
        parts = urlsplit(target)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if path.startswith("/_sim/"):
            return self._admin(method, path, query, body)

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
    ) -> _Reply:
        new_host = path.startswith(NEW_HOST_PREFIX)
        route = _ROUTES.get(path)
        request_id = uuid.uuid4().hex[:16]
        if self._ip_banned(client_ip):
            return _Reply(200, BAN_PAGE.encode(), "text/html; charset=utf-8")
        if route is None:
            return self._error_404(new_host, path, request_id)
        req = _Request(method, route.api, new_host, query, headers, body, request_id)
        self._count(route.api, "total")
        if method != route.method:
            return _json_reply({"code": "MethodNotAllowed", "message": f"use {route.method}"}, 405)

        if not self._take_qps_slot(route.api):
            self._count(route.api, "rejected_qps")
            return self._error(
                req,
                90018,
                "当前应用调用该接口超过限流阈值，请降低调用频率",
                403,
                "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
            )

        if route.kind != "token":
            denied = self._check_token(req)
            if denied is not None:
                return denied
            with self._lock:
                is_denied = route.api in self._denied
            if is_denied:
                return self._permission_error(req)
            fault = self._draw_fault(req)
            if fault is not None:
                self._count(route.api, "faults")
                return fault

        reserved_month: str | None = None
        if route.kind == "metered":
            reserved_month = self._reserve_quota()
            if reserved_month is None:
                return self._error(
                    req,
                    90020,
                    "您的企业本月api调用量已超过限制",
                    403,
                    "Forbidden.AccessDenied.ApiCountLimitForOrg",
                )
        try:
            reply = route.handler(self, req)
        except _BadParam as exc:
            reply = self._error(req, exc.errcode, exc.message, 400, "InvalidParameter")
        except ValueError:  # unparseable JSON body
            reply = self._error(req, 40035, "请求体不是合法的JSON", 400, "InvalidParameter")
        ok = reply.ok
        if ok:
            self._count(route.api, "ok")
        if reserved_month is not None:
            with self._lock:
                if ok:
                    self._count_locked(route.api, "metered")
                else:
                    self._metered[reserved_month] -= 1
        return reply

    # ---------------------------------------------------------------- limits and state helpers

    def _count(self, api: str, key: str) -> None:
        with self._lock:
            self._count_locked(api, key)

    def _count_locked(self, api: str, key: str) -> None:
        counters = self._by_api.get(api)
        if counters is None:
            counters = self._by_api[api] = dict.fromkeys(
                ("total", "ok", "metered", "rejected_qps", "faults"), 0
            )
        counters[key] += 1

    def _ip_banned(self, ip: str) -> bool:
        cfg = self.config
        now = time.monotonic()
        with self._lock:
            until = self._ip_banned_until.get(ip)
            if until is not None:
                if now < until:
                    return True
                del self._ip_banned_until[ip]
            calls = self._ip_calls.setdefault(ip, deque())
            calls.append(now)
            while calls and calls[0] <= now - cfg.ip_window_s:
                calls.popleft()
            if len(calls) > cfg.ip_limit:
                self._ip_banned_until[ip] = now + cfg.ip_ban_s
                calls.clear()
                logger.debug("dingtalk sim: banning %s for %.0f s", ip, cfg.ip_ban_s)
                return True
        return False

    def _take_qps_slot(self, api: str) -> bool:
        second = int(time.monotonic())
        with self._lock:
            window, used = self._qps_windows.get(api, (second, 0))
            if window != second:
                window, used = second, 0
            if used >= self.config.qps:
                return False
            self._qps_windows[api] = (window, used + 1)
            return True

    def _reserve_quota(self) -> str | None:
        with self._lock:
            month = self._today.strftime("%Y-%m")
            used = self._metered.get(month, 0)
            if used >= self.config.monthly_quota:
                return None
            self._metered[month] = used + 1
            return month

    def _issue_token(self) -> tuple[str, int]:
        ttl = self.config.token_ttl_s
        now = time.monotonic()
        with self._lock:
            token = self._current_token
            if token is None or self._tokens.get(token, 0.0) <= now:
                token = secrets.token_hex(16)
                self._current_token = token
            self._tokens[token] = now + ttl
            return token, int(ttl)

    def _token_valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    def _check_token(self, req: _Request) -> _Reply | None:
        token = req.headers.get(TOKEN_HEADER) if req.new_host else req.query.get("access_token")
        if not token:
            return self._error(req, 41001, "缺少参数access_token", 400, "InvalidAuthentication")
        if not self._token_valid(token):
            return self._token_error(req)
        return None

    def _token_error(self, req: _Request) -> _Reply:
        return self._error(req, 42001, "不合法的access_token", 400, "InvalidAuthentication")

    def _permission_error(self, req: _Request) -> _Reply:
        if req.new_host:
            return self._new_error(
                req,
                403,
                "Forbidden.AccessDenied.AccessTokenPermissionDenied",
                "没有调用该接口的权限",
            )
        return _json_reply(
            {
                "errcode": 88,
                "sub_code": "60011",
                "sub_msg": "没有调用该接口的权限",
                "errmsg": "ding talk error[subcode=60011,submsg=没有调用该接口的权限]",
                "request_id": req.request_id,
            }
        )

    def _draw_fault(self, req: _Request) -> _Reply | None:
        with self._lock:
            f = self._faults
            r = self._fault_rng.random()
            slow = f.slow > 0 and self._fault_rng.random() < f.slow
            alt = self._fault_rng.random() < 0.5
        if slow:
            time.sleep(f.slow_ms / 1000)
        if (r := r - f.busy) < 0:
            if req.new_host:
                return self._new_error(req, 503, "ServiceUnavailable", "系统繁忙")
            return self._error(req, -1, "系统繁忙", 503, "ServiceUnavailable")
        if (r := r - f.http5xx) < 0:
            status = 502 if alt else 500
            text = "Bad Gateway" if status == 502 else "Internal Server Error"
            page = f"<html><body><h1>{status} {text}</h1></body></html>"
            return _Reply(status, page.encode(), "text/html; charset=utf-8")
        if (r := r - f.ban) < 0:
            with self._lock:
                self._ban_flip = not self._ban_flip
                html = self._ban_flip
            if html:
                return _Reply(200, BAN_PAGE.encode(), "text/html; charset=utf-8")
            uid = uuid.uuid4().hex
            return _json_reply(
                {"status": 1111, "wait": 5, "source": "x5", "punish": "deny", "uuid": uid}
            )
        if (r := r - f.qps_global) < 0:
            return self._error(
                req,
                90002,
                "服务器繁忙，接口调用超过全局限流阈值",
                403,
                "Forbidden.AccessDenied.QpsLimitForApi",
            )
        if r - f.token_expired < 0:
            return self._token_error(req)
        return None

    @staticmethod
    def _validate_faults(f: _Faults) -> None:
        probs = {k: getattr(f, k) for k in (*FAULT_KINDS, "slow")}
        for kind, p in probs.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"fault probability {kind}={p} must be within 0..1")
        if sum(getattr(f, k) for k in FAULT_KINDS) > 1.0 + 1e-9:
            raise ValueError("fault probabilities (without slow) must sum to at most 1")
        if f.slow_ms < 0:
            raise ValueError("slow_ms must be >= 0")

    # ---------------------------------------------------------------- reply builders

    @staticmethod
    def _new_error(req: _Request, status: int, code: str, message: str) -> _Reply:
        return _json_reply({"code": code, "message": message, "requestid": req.request_id}, status)

    def _error(self, req: _Request, errcode: int, errmsg: str, status: int, code: str) -> _Reply:
        """A legacy errcode envelope (HTTP 200) or a new-host HTTP error, by the request's host."""
        if req.new_host:
            return self._new_error(req, status, code, errmsg)
        return _json_reply({"errcode": errcode, "errmsg": errmsg, "request_id": req.request_id})

    @staticmethod
    def _error_404(new_host: bool, path: str, request_id: str) -> _Reply:
        if new_host:
            body = {"code": "NotFound", "message": f"no such API {path}", "requestid": request_id}
            return _json_reply(body, 404)
        return _json_reply({"errcode": 404, "errmsg": f"no such API {path}"}, 404)

    # ---------------------------------------------------------------- API handlers

    def _gettoken(self, req: _Request) -> _Reply:
        key, secret = req.query.get("appkey"), req.query.get("appsecret")
        if key != self.config.app_key or secret != self.config.app_secret:
            return self._error(
                req, 40001, "appkey或appsecret不正确", 400, "invalidClientIdOrSecret"
            )
        token, ttl = self._issue_token()
        return _json_reply({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": ttl})

    def _access_token(self, req: _Request) -> _Reply:
        try:
            body = req.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or (
            body.get("appKey") != self.config.app_key
            or body.get("appSecret") != self.config.app_secret
        ):
            return self._new_error(
                req, 400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret"
            )
        token, ttl = self._issue_token()
        return _json_reply({"accessToken": token, "expireIn": ttl})

    def _org_body(self, req: _Request) -> tuple[dict[str, Any], int]:
        body = req.json()
        if not isinstance(body, dict):
            raise _BadParam("the body must be a JSON object")
        dept_id = _int_param(body.get("dept_id"), "dept_id")
        if dept_id != ROOT_DEPT_ID and dept_id not in self._depts:
            raise _BadParam("部门不存在", 60003)
        return body, dept_id

    def _ok(self, req: _Request, result: Any) -> _Reply:
        return _json_reply(
            {"errcode": 0, "errmsg": "ok", "request_id": req.request_id, "result": result}
        )

    def _listsubid(self, req: _Request) -> _Reply:
        _, dept_id = self._org_body(req)
        return self._ok(req, {"dept_id_list": list(self._children.get(dept_id, []))})

    def _listsub(self, req: _Request) -> _Reply:
        _, dept_id = self._org_body(req)
        return self._ok(req, [dict(self._depts[c]) for c in self._children.get(dept_id, [])])

    def _user_list(self, req: _Request) -> _Reply:
        body, dept_id = self._org_body(req)
        cursor = body.get("cursor", 0)
        cursor = 0 if cursor is None else _int_param(cursor, "cursor")
        size = body.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_USER_PAGE:
            raise _BadParam(f"size must be 1..{MAX_USER_PAGE}", 40069)
        if cursor < 0:
            raise _BadParam("cursor must be >= 0")
        today = self.today
        members = [
            u
            for u in self._members.get(dept_id, [])
            if not self.company.has_left(u["userid"], today)
        ]
        page = [
            {**u, "dept_id_list": list(u["dept_id_list"])} for u in members[cursor : cursor + size]
        ]
        has_more = cursor + size < len(members)
        result: dict[str, Any] = {"has_more": has_more, "list": page}
        if has_more:
            result["next_cursor"] = cursor + size
        return self._ok(req, result)

    def _attendance_list(self, req: _Request) -> _Reply:
        body = req.json()
        if not isinstance(body, dict):
            raise _BadParam("the body must be a JSON object")
        d_from = _parse_work_date(body.get("workDateFrom"), "workDateFrom")
        d_to = _parse_work_date(body.get("workDateTo"), "workDateTo")
        users = _user_list(body.get("userIdList"), "userIdList")
        offset = _int_param(body.get("offset", 0), "offset")
        limit = _int_param(body.get("limit"), "limit")
        if offset < 0:
            raise _BadParam("offset must be >= 0")
        if not 1 <= limit <= MAX_ATTENDANCE_LIMIT:
            raise _BadParam(f"limit must be 1..{MAX_ATTENDANCE_LIMIT}")
        if d_to < d_from:
            raise _BadParam("workDateTo is before workDateFrom")
        if (d_to - d_from).days + 1 > MAX_ATTENDANCE_DAYS:
            raise _BadParam("时间跨度太大", 41041)
        records: list[dict[str, Any]] = []
        if not body.get("isI18n"):
            today = self.today
            d = max(d_from, today - timedelta(days=self.config.history_days))
            while d <= d_to:
                for uid in users:
                    records.extend(self.company.attendance(uid, d, today))
                d += timedelta(days=1)
        page = records[offset : offset + limit]
        return _json_reply(
            {
                "errcode": 0,
                "errmsg": "ok",
                "hasMore": offset + limit < len(records),
                "recordresult": page,
                "request_id": req.request_id,
            }
        )

    def _attendance_list_record(self, req: _Request) -> _Reply:
        body = req.json()
        if not isinstance(body, dict):
            raise _BadParam("the body must be a JSON object")
        users = _user_list(body.get("userIds"), "userIds")
        t_from = _parse_datetime(body.get("checkDateFrom"), "checkDateFrom")
        t_to = _parse_datetime(body.get("checkDateTo"), "checkDateTo")
        if t_to < t_from:
            raise _BadParam("checkDateTo is before checkDateFrom")
        if t_to - t_from > timedelta(days=MAX_ATTENDANCE_DAYS):
            raise _BadParam("时间跨度太大", 41041)
        lo, hi = int(t_from.timestamp() * 1000), int(t_to.timestamp() * 1000)
        today = self.today
        horizon = today - timedelta(days=self.config.history_days)
        out: list[dict[str, Any]] = []
        d = max(t_from.date() - timedelta(days=1), horizon)
        while d <= t_to.date():
            for uid in users:
                for rec in self.company.attendance(uid, d, today):
                    if "recordId" in rec and lo <= rec["userCheckTime"] <= hi:
                        punch = {k: v for k, v in rec.items() if k not in ("id", "recordId")}
                        out.append({"id": rec["recordId"], **punch, "isLegal": "Y"})
            d += timedelta(days=1)
        out.sort(key=lambda r: (r["userCheckTime"], r["id"]))
        return _json_reply(
            {"errcode": 0, "errmsg": "ok", "recordresult": out, "request_id": req.request_id}
        )

    def _approvals_query(self, req: _Request) -> _Reply:
        body = req.json()
        if not isinstance(body, dict):
            raise _BadParam("the body must be a JSON object")
        raw = body.get("userIds")
        if not isinstance(raw, str):
            raise _BadParam("userIds must be a comma-separated string")
        users = list(dict.fromkeys(u.strip() for u in raw.split(",") if u.strip()))
        if not users:
            raise _BadParam("userIds is empty")
        if len(users) > MAX_USERS_PER_CALL:
            raise _BadParam(f"userIds has {len(users)} userids; at most {MAX_USERS_PER_CALL}")
        biz_raw = body.get("bizTypes")
        biz_types: set[int] | None = None
        if biz_raw is not None:
            if not isinstance(biz_raw, list):
                raise _BadParam("bizTypes must be a list of integers")
            biz_types = {_int_param(b, "bizTypes") for b in biz_raw} or None
        t_from = _int_param(body.get("fromDateTime"), "fromDateTime")
        t_to = _int_param(body.get("toDateTime"), "toDateTime")
        if t_to < t_from:
            raise _BadParam("toDateTime is before fromDateTime")
        if t_to - t_from > MAX_APPROVAL_SPAN_MS:
            raise _BadParam("fromDateTime and toDateTime may be at most 30 days apart")
        today = self.today
        horizon = today - timedelta(days=self.config.history_days)
        result: list[dict[str, Any]] = []
        for uid in users:
            for a in self.company.approvals_between_ms(
                uid, t_from, t_to, today, served_from=horizon
            ):
                if biz_types is None or a["bizType"] in biz_types:
                    result.append(a)
        return _json_reply({"result": result})

    def _simple_groups(self, req: _Request) -> _Reply:
        """Legacy ``POST /topapi/attendance/getsimplegroups`` ``{offset, size}``."""
        body = req.json()
        if not isinstance(body, dict):
            raise _BadParam("the body must be a JSON object")
        offset = _int_param(body.get("offset", 0), "offset")
        size = _int_param(body.get("size", MAX_GROUP_PAGE), "size")
        if offset < 0:
            raise _BadParam("offset must be >= 0")
        if not 1 <= size <= MAX_GROUP_PAGE:
            raise _BadParam(f"size must be 1..{MAX_GROUP_PAGE}")
        groups = self.company.groups(self.today)
        page = groups[offset : offset + size]
        return self._ok(req, {"has_more": offset + size < len(groups), "groups": page})

    def _group_member_users(self, req: _Request) -> _Reply:
        """Legacy ``POST /topapi/attendance/group/memberusers/list`` ``{op_user_id, group_id,
        cursor}``: every member's userid, however they were added (by department or person)."""
        body = req.json()
        if not isinstance(body, dict):
            raise _BadParam("the body must be a JSON object")
        op = body.get("op_user_id")
        if not isinstance(op, str) or not self.company.has_user(op):
            raise _BadParam("op_user_id must be the userid of an existing user")
        group_id = _int_param(body.get("group_id"), "group_id")
        cursor = body.get("cursor", 0)
        cursor = 0 if cursor is None else _int_param(cursor, "cursor")
        if cursor < 0:
            raise _BadParam("cursor must be >= 0")
        if group_id not in {g["group_id"] for g in self.company.groups(self.today)}:
            raise _BadParam(f"考勤组不存在: {group_id}")
        members = self.company.group_members(group_id, self.today)
        page = members[cursor : cursor + GROUP_MEMBER_PAGE]
        has_more = cursor + GROUP_MEMBER_PAGE < len(members)
        result: dict[str, Any] = {"has_more": has_more, "result": page}
        if has_more:
            result["cursor"] = cursor + GROUP_MEMBER_PAGE
        return self._ok(req, result)

    def _dismissions(self, req: _Request) -> _Reply:
        """New host ``GET /v1.0/hrm/employees/dismissions?maxResults=&nextToken=``."""
        max_results = _query_int(req.query, "maxResults", None)
        token = _query_int(req.query, "nextToken", 0)
        if not 1 <= max_results <= MAX_HRM_PAGE:
            raise _BadParam(f"maxResults must be 1..{MAX_HRM_PAGE}")
        if token < 0:
            raise _BadParam("nextToken must be >= 0")
        ids = [d["userId"] for d in self.company.leavers(self.today)]
        page = ids[token : token + max_results]
        has_more = token + max_results < len(ids)
        body: dict[str, Any] = {"userIdList": page, "hasMore": has_more}
        if has_more:
            body["nextToken"] = token + max_results
        return _json_reply(body)

    def _dimission_infos(self, req: _Request) -> _Reply:
        """New host ``GET /v1.0/hrm/employees/dimissionInfos?userIdList=["a","b"]`` (the SDK sends
        the list as a JSON array string); people who have not left are left out."""
        raw = req.query.get("userIdList")
        try:
            ids = json.loads(raw) if raw is not None else None
        except ValueError:
            ids = None
        if not isinstance(ids, list) or not ids or not all(isinstance(u, str) for u in ids):
            raise _BadParam('userIdList must be a JSON array of userids, e.g. ["a","b"]')
        if len(ids) > MAX_HRM_PAGE:
            raise _BadParam(f"userIdList has {len(ids)} userids; at most {MAX_HRM_PAGE}")
        today = self.today
        infos = []
        for uid in dict.fromkeys(ids):
            info = self.company.dimission(uid, today) if self.company.has_user(uid) else None
            if info is not None:
                infos.append(info)
        return _json_reply({"result": infos})

    # ---------------------------------------------------------------- admin endpoints

    def _admin(self, method: str, path: str, query: dict[str, str], body: bytes) -> _Reply:
        try:
            payload = json.loads(body) if body else {}
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            return self._admin_route(method, path.removeprefix("/_sim/"), query, payload)
        except (ValueError, TypeError, KeyError) as exc:
            return _json_reply({"error": str(exc)}, 400)

    def _admin_route(
        self, method: str, name: str, query: dict[str, str], payload: dict[str, Any]
    ) -> _Reply:
        get, post = method == "GET", method == "POST"
        if name == "calls" and get:
            return _json_reply(self.calls())
        if name == "reset-calls" and post:
            self.reset_calls()
            return _json_reply({"ok": True})
        if name == "clock":
            if post:
                self.set_today(date.fromisoformat(str(payload["today"])))
            if post or get:
                return _json_reply({"today": self.today.isoformat()})
        if name == "faults":
            if post:
                self.set_faults(**payload)
            if post or get:
                return _json_reply(self.faults())
        if name == "expire-tokens" and post:
            self.expire_tokens()
            return _json_reply({"ok": True})
        if name in ("deny", "allow") and post:
            api = payload.get("api")
            if not isinstance(api, str):
                raise ValueError('give {"api": "attendance/list"}')
            (self.deny_api if name == "deny" else self.allow_api)(api)
            return _json_reply({"ok": True})
        if name == "unban" and post:
            self.unban()
            return _json_reply({"ok": True})
        if name.startswith("truth/") and get:
            return self._truth(name.removeprefix("truth/"), query)
        return _json_reply({"error": f"no admin endpoint {method} /_sim/{name}"}, 404)

    def _truth(self, what: str, query: dict[str, str]) -> _Reply:
        if what == "users":
            return _json_reply(self.truth_users())
        if what == "departments":
            return _json_reply(self.truth_departments())
        if what == "groups":
            return _json_reply(self.truth_groups())
        if what == "leavers":
            return _json_reply(self.truth_leavers())
        if what not in ("attendance", "approvals"):
            return _json_reply({"error": f"no truth for {what}"}, 404)
        if "from" not in query or "to" not in query:
            raise ValueError("give from=YYYY-MM-DD&to=YYYY-MM-DD")
        d_from, d_to = date.fromisoformat(query["from"]), date.fromisoformat(query["to"])
        ids = [u for u in query["userids"].split(",") if u] if query.get("userids") else None
        if what == "attendance":
            return _json_reply(self.truth_attendance(d_from, d_to, ids))
        return _json_reply(self.truth_approvals(d_from, d_to, ids))


def _normalise_api(api: str) -> str:
    api = api.strip()
    if api.startswith(NEW_HOST_PREFIX):
        api = api[len(NEW_HOST_PREFIX) :]
    return api.lstrip("/")


def _expand_api(api: str) -> tuple[str, ...]:
    name = _normalise_api(api)
    return API_FAMILIES.get(name, (name,))


def _query_int(query: dict[str, str], name: str, default: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        if default is None:
            raise _BadParam(f"{name} is required")
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise _BadParam(f"{name} must be an integer") from exc


_ROUTES: dict[str, _Route] = {
    "/gettoken": _Route("gettoken", "GET", "token", DingTalkSimulator._gettoken),
    "/v1.0/oauth2/accessToken": _Route(
        "oauth2/accessToken", "POST", "token", DingTalkSimulator._access_token
    ),
    "/topapi/v2/department/listsubid": _Route(
        "topapi/v2/department/listsubid", "POST", "org", DingTalkSimulator._listsubid
    ),
    "/topapi/v2/department/listsub": _Route(
        "topapi/v2/department/listsub", "POST", "org", DingTalkSimulator._listsub
    ),
    "/topapi/v2/user/list": _Route(
        "topapi/v2/user/list", "POST", "org", DingTalkSimulator._user_list
    ),
    "/attendance/list": _Route(
        "attendance/list", "POST", "metered", DingTalkSimulator._attendance_list
    ),
    "/attendance/listRecord": _Route(
        "attendance/listRecord", "POST", "metered", DingTalkSimulator._attendance_list_record
    ),
    "/v1.0/attendance/approvals/query": _Route(
        "attendance/approvals/query", "POST", "metered", DingTalkSimulator._approvals_query
    ),
    "/topapi/attendance/getsimplegroups": _Route(
        "topapi/attendance/getsimplegroups", "POST", "metered", DingTalkSimulator._simple_groups
    ),
    "/topapi/attendance/group/memberusers/list": _Route(
        "topapi/attendance/group/memberusers/list",
        "POST",
        "metered",
        DingTalkSimulator._group_member_users,
    ),
    # HR (智能人事) APIs: not attendance or approval APIs, so not metered (assumption).
    "/v1.0/hrm/employees/dismissions": _Route(
        "hrm/employees/dismissions", "GET", "org", DingTalkSimulator._dismissions
    ),
    "/v1.0/hrm/employees/dimissionInfos": _Route(
        "hrm/employees/dimissionInfos", "GET", "org", DingTalkSimulator._dimission_infos
    ),
}


def build_arg_parser(prog: str = "attendance-pipeline sim dingtalk") -> argparse.ArgumentParser:
    d = DingTalkSimConfig(today=date(2000, 1, 1))
    p = argparse.ArgumentParser(prog=prog, description="Run the DingTalk Open API simulator.")
    p.add_argument("--port", type=bounded(int, 0, 65535), default=8701, help="default 8701")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    p.add_argument("--employees", type=bounded(int, 1, 100_000), default=d.employees)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--today", type=iso_date, default=None, help="sim clock; default real today")
    p.add_argument("--qps", type=bounded(int, 1), default=d.qps, help="per-API calls per second")
    p.add_argument("--latency-ms", type=bounded(int, 0), default=d.latency_ms)
    p.add_argument("--fault-rate", type=bounded(float, 0.0, 1.0), default=d.fault_rate)
    p.add_argument("--monthly-quota", type=bounded(int, 0), default=d.monthly_quota)
    p.add_argument("--app-key", default=d.app_key)
    p.add_argument("--app-secret", default=d.app_secret)
    p.add_argument(
        "--deny-api",
        action="append",
        default=[],
        metavar="API",
        help='answer the no-permission error on this API (repeatable; "hrm" = the HR APIs)',
    )
    p.add_argument("--verbose", "-v", action="store_true", help="log every request (DEBUG)")
    return p


def main_dingtalk(argv: list[str] | None = None) -> int:
    """Serve the simulator until SIGINT/SIGTERM; prints one line with the URL."""
    args = build_arg_parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(message)s")
    cfg = DingTalkSimConfig(
        seed=args.seed,
        employees=args.employees,
        today=args.today or _shanghai_today(),
        qps=args.qps,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        monthly_quota=args.monthly_quota,
        app_key=args.app_key,
        app_secret=args.app_secret,
        denied_apis=tuple(args.deny_api),
    )
    sim = DingTalkSimulator(cfg)
    return serve_until_signalled(
        sim.serve,
        args.host,
        args.port,
        lambda url: (
            f"DingTalk simulator listening on {url} "
            f"(seed {cfg.seed}, {cfg.employees} employees, today {cfg.today.isoformat()})"
        ),
    )


__all__ = [
    "DingTalkSimConfig",
    "DingTalkSimulator",
    "RunningSimulator",
    "build_arg_parser",
    "main_dingtalk",
]

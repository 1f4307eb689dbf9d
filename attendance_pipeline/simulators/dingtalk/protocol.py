"""The DingTalk wire shapes every API module shares: the request and reply, the route, the two
error envelopes (legacy errcode at HTTP 200, new-host HTTP errors) and parameter parsing."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from attendance_pipeline.simulators.dingtalk.company import SHANGHAI, Company

NEW_HOST_PREFIX = "/v1.0/"
MAX_USERS_PER_CALL = 50

BAN_PAGE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>访问被拒绝</title></head>'
    "<body><h1>访问过于频繁</h1><p>您的IP访问频率过高，已被暂时限制访问，请稍后再试。</p>"
    "</body></html>"
)


@dataclass(frozen=True)
class Reply:
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


def json_reply(payload: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(payload, ensure_ascii=False).encode())


def ban_page() -> Reply:
    """The HTML page (at HTTP 200) a banned IP gets instead of JSON."""
    return Reply(200, BAN_PAGE.encode(), "text/html; charset=utf-8")


@dataclass(frozen=True)
class Request:
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

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise BadParam("the body must be a JSON object")
        return body


class BadParam(Exception):
    """A parameter error; legacy and new-host forms are chosen by the caller."""

    def __init__(self, message: str, errcode: int = 40035) -> None:
        super().__init__(message)
        self.message = message
        self.errcode = errcode


Handler = Callable[[Request], Reply]


class CompanyApi:
    """An API family served from the company at the simulator's clock (``today()``); work dates
    older than ``history_days`` are silently not served."""

    def __init__(
        self, company: Company, today: Callable[[], date], history_days: int = 180
    ) -> None:
        self.company = company
        self._today = today
        self._history_days = history_days


@dataclass(frozen=True)
class Route:
    """``kind``: "token" (no token needed), "org" (token, not metered) or "metered"."""

    path: str
    method: str
    kind: str
    handler: Handler

    @property
    def api(self) -> str:
        """The API's name in counters and ``deny_api``: the path without host prefix."""
        return normalise_api(self.path)


def normalise_api(api: str) -> str:
    api = api.strip()
    if api.startswith(NEW_HOST_PREFIX):
        api = api[len(NEW_HOST_PREFIX) :]
    return api.lstrip("/")


# -------------------------------------------------------------------- replies


def new_error(req: Request, status: int, code: str, message: str) -> Reply:
    return json_reply({"code": code, "message": message, "requestid": req.request_id}, status)


def error(req: Request, errcode: int, errmsg: str, status: int, code: str) -> Reply:
    """A legacy errcode envelope (HTTP 200) or a new-host HTTP error, by the request's host."""
    if req.new_host:
        return new_error(req, status, code, errmsg)
    return json_reply({"errcode": errcode, "errmsg": errmsg, "request_id": req.request_id})


def error_404(new_host: bool, path: str, request_id: str) -> Reply:
    if new_host:
        body = {"code": "NotFound", "message": f"no such API {path}", "requestid": request_id}
        return json_reply(body, 404)
    return json_reply({"errcode": 404, "errmsg": f"no such API {path}"}, 404)


def token_error(req: Request) -> Reply:
    return error(req, 42001, "不合法的access_token", 400, "InvalidAuthentication")


def permission_error(req: Request) -> Reply:
    if req.new_host:
        return new_error(
            req, 403, "Forbidden.AccessDenied.AccessTokenPermissionDenied", "没有调用该接口的权限"
        )
    return json_reply(
        {
            "errcode": 88,
            "sub_code": "60011",
            "sub_msg": "没有调用该接口的权限",
            "errmsg": "ding talk error[subcode=60011,submsg=没有调用该接口的权限]",
            "request_id": req.request_id,
        }
    )


def ok_result(req: Request, result: Any) -> Reply:
    """A legacy success envelope around ``result``."""
    return json_reply(
        {"errcode": 0, "errmsg": "ok", "request_id": req.request_id, "result": result}
    )


# -------------------------------------------------------------------- parameters


def int_param(value: Any, name: str, *, errcode: int = 40035) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadParam(f"{name} must be an integer", errcode)
    return value


def cursor_param(body: dict[str, Any], name: str = "cursor") -> int:
    """A paging cursor: absent or null is 0; negative is refused."""
    cursor = body.get(name, 0)
    cursor = 0 if cursor is None else int_param(cursor, name)
    if cursor < 0:
        raise BadParam(f"{name} must be >= 0")
    return cursor


def query_int(query: dict[str, str], name: str, default: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        if default is None:
            raise BadParam(f"{name} is required")
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise BadParam(f"{name} must be an integer") from exc


def parse_work_date(value: Any, name: str) -> date:
    if not isinstance(value, str):
        raise BadParam(f"{name} must be a 'yyyy-MM-dd HH:mm:ss' string")
    try:
        return datetime.strptime(value.strip()[:10], "%Y-%m-%d").date()
    except ValueError as exc:
        raise BadParam(f"{name} must be a 'yyyy-MM-dd HH:mm:ss' string") from exc


def parse_datetime(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise BadParam(f"{name} must be a 'yyyy-MM-dd HH:mm:ss' string")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=SHANGHAI)
        except ValueError:
            continue
    raise BadParam(f"{name} must be a 'yyyy-MM-dd HH:mm:ss' string")


def user_list(value: Any, name: str, limit: int = MAX_USERS_PER_CALL) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(u, str) for u in value):
        raise BadParam(f"{name} must be a non-empty list of userid strings")
    if len(value) > limit:
        raise BadParam(f"{name} has {len(value)} userids; at most {limit}")
    return list(dict.fromkeys(value))

"""How the DingTalk client talks to DingTalk: tokens, rate limits, retries and reply checks.

`DingTalkTransport` is the base of `DingTalkClient` (the API families in `contacts`,
`attendance`, `approvals` and `hrm` build on it). It keeps one access token, cached and refreshed
a few minutes before expiry (a rejected token is dropped, fetched again and the call retried); at
most `qps` calls per second per API (sliding window) shared by all worker threads; and a count of
the metered calls DingTalk served. Retries are the project's one mechanism
(`attendance_pipeline.http_retry`); this module only classifies both hosts' replies:

- retried with backoff: 90002, -1, 429/5xx, network errors and the IP-ban page (its `wait`);
- retried after `qps_wait_s` without using up an attempt: 90018 (the per-second window);
- fatal with a message a person can act on: 90020, permission and parameter errors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

import requests

from attendance_pipeline.china_time import today_in_china, windows
from attendance_pipeline.dingtalk.errors import (
    DingTalkAuthError,
    DingTalkBadReply,
    DingTalkBadRequest,
    DingTalkError,
    DingTalkHorizonError,
    DingTalkHrmPermissionError,
    DingTalkPermissionError,
    DingTalkQuotaExceeded,
    DingTalkUnavailable,
)
from attendance_pipeline.dingtalk.ratelimit import SlidingWindowLimiter
from attendance_pipeline.http_retry import (
    RetriesExhausted,
    Retryable,
    RetryBounds,
    ThreadSessions,
    call_with_retries,
)

log = logging.getLogger(__name__)

ATTENDANCE_LIST = "attendance/list"
APPROVALS_QUERY = "attendance/approvals/query"
# Attendance groups: legacy TOP API names (DingTalk's legacy SDK classes
# OapiAttendanceGetsimplegroupsRequest/Response and OapiAttendanceGroupMemberusersListRequest/
# Response; the new SDK has only the new-host twin GetSimpleGroups, whose paging it leaves open).
GROUPS_LIST = "attendance/getsimplegroups"
GROUP_MEMBERS = "attendance/group/memberusers/list"
# Planned shifts of one day, whole company (legacy OapiAttendanceListscheduleRequest: workDate,
# offset, size <= 200; result.schedules[] with plan_id, check_type, userid, class_id,
# class_setting_id, plan_check_time "yyyy-MM-dd HH:mm:ss", group_id; result.has_more).
SCHEDULE_LIST = "attendance/listschedule"
# HR (智能人事) dismissions, new host: alibabacloud_dingtalk.hrm_1_0 QueryDismissionStaffIdList
# (GET, query maxResults/nextToken; body userIdList/hasMore/nextToken) and
# QueryHrmEmployeeDismissionInfo (GET, query userIdList as a JSON array; body result[] of
# QueryHrmEmployeeDismissionInfoResponseBodyResult: userId, name, lastWorkDay (epoch ms),
# mainDeptId, mainDeptName, deptList[{dept_id, dept_path}], ...).
DISMISSIONS = "hrm/employees/dismissions"
DIMISSION_INFOS = "hrm/employees/dimissionInfos"
# Attendance APIs are metered (the contract), the group ones included; the HR APIs are neither
# attendance nor approval APIs, so they are not (assumption, like the contacts APIs).
# The smart report (`report.py`): legacy TOP APIs, attendance APIs and so metered.
REPORT_APIS = frozenset(
    {"attendance/getattcolumns", "attendance/getcolumnval", "attendance/getleavetimebynames"}
)
METERED_APIS = frozenset(
    {ATTENDANCE_LIST, APPROVALS_QUERY, GROUPS_LIST, GROUP_MEMBERS, SCHEDULE_LIST, *REPORT_APIS}
)
# The console names of the permissions (the SDK does not name them: assumption, docs/dingtalk.md).
HRM_PERMISSION = "智能人事-员工花名册/离职信息读权限 (HRM read)"

TOKEN_CODES = frozenset({40001, 40014, 41001, 42001, 33001})
PERMISSION_HINTS = {
    60011: "the app lacks the permission for this API: grant it in the DingTalk developer console "
    "(考勤/通讯录 read)",
    60020: "this machine's IP is not in the app's whitelist: add it in the developer console",
    50002: "a user is outside the app's visible scope: widen the app's scope",
    50004: "a department is outside the app's visible scope: widen the app's scope",
}
BAD_REQUEST_CODES = frozenset({41041, 40035, 400002, 40069, 60003})

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class DingTalkOptions:
    """Everything the client needs; limits default to the contract's values."""

    base_url: str
    api_base_url: str
    app_key: str
    app_secret: str
    qps: int = 20
    qps_period_s: float = 1.05  # a little over DingTalk's 1 s window absorbs network jitter
    workers: int = 4
    timeout_s: float = 15.0
    max_attempts: int = 8
    max_retry_seconds: float = 180.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    qps_wait_s: float = 1.0
    ban_pause_s: float | None = None  # None: the ban reply's `wait` (minutes), else 300 s
    token_refresh_margin_s: float = 300.0
    horizon_days: int = 180
    user_chunk: int = 50
    page_size: int = 50
    attendance_span_days: int = 7
    approvals_span_days: int = 30
    user_page_size: int = 100
    group_page_size: int = 10  # getsimplegroups `size`: documented maximum 10
    hrm_page_size: int = 50  # dismissions `maxResults` / dimissionInfos `userIdList`: at most 50
    # Where a person fixes rejected credentials (an organisation's own variables, orgs.yaml).
    credentials_hint: str = "DINGTALK_APP_KEY and DINGTALK_APP_SECRET"
    today: date | None = None  # for the horizon check; None is today in China


class _TokenRejected(Exception):
    pass


class DingTalkTransport:
    """Calls to both DingTalk hosts with one token, per-API rate limits, retries and counters."""

    def __init__(
        self,
        options: DingTalkOptions,
        *,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.options = options
        self._sleep = sleep
        self._progress = progress
        self._sessions = ThreadSessions()
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = threading.Lock()
        self._limiters: dict[str, SlidingWindowLimiter] = {}
        self._limiters_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.metered_calls: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.token_fetches = 0

    @property
    def metered_total(self) -> int:
        """Metered calls DingTalk served to this client (what counts against the quota)."""
        return sum(self.metered_calls.values())

    def _map(self, fn: Callable[[T], R], items: Sequence[T], label: str | None = None) -> list[R]:
        """Run fn over items on the worker pool, in order, reporting progress."""
        if not items:
            return []
        done = 0
        out: list[R] = []
        workers = max(1, min(self.options.workers, len(items)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dingtalk") as pool:
            for result in pool.map(fn, items):
                out.append(result)
                done += 1
                if label and self._progress:
                    self._progress(label, done, len(items))
        return out

    def _user_windows(
        self, api: str, userids: Sequence[str], start: date, end: date, span_days: int
    ) -> list[tuple[list[str], tuple[date, date]]]:
        """(users, window) pairs covering userids x start..end within the contract's limits
        (`user_chunk` users, `span_days` days), after the horizon check."""
        self._check_horizon(api, start, end)
        return [
            (chunk, window)
            for window in windows(start, end, span_days)
            for chunk in chunks(sorted(set(userids)), self.options.user_chunk)
        ]

    def _check_horizon(self, api: str, start: date, end: date) -> None:
        if end < start:
            raise DingTalkBadRequest(api, f"the range ends ({end}) before it starts ({start})")
        today = self.options.today or today_in_china()
        oldest = today - timedelta(days=self.options.horizon_days)
        if start < oldest:
            raise DingTalkHorizonError(
                api,
                f"{start} is older than DingTalk serves (about {self.options.horizon_days} days, "
                f"so nothing before {oldest}); stored raw partitions for those days are kept",
            )

    # ------------------------------------------------------------------ calls

    def _legacy(self, api: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(api, "legacy", path, body)

    def _new_host(self, api: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(api, "new", path, body)

    def _new_host_get(self, api: str, path: str, query: dict[str, Any]) -> dict[str, Any]:
        return self._call(api, "new-get", path, query)

        return self._call(api, "new-get", path, query)

    def _call(self, api: str, host: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return call_with_retries(
                lambda: self._attempt(api, host, path, body),
                self._bounds,
                sleep=self._sleep,
                on_retry=lambda number, problem: self._note_retry(api, number, problem),
            )
        except RetriesExhausted as exc:
            message = self._redact(str(exc))
            if exc.last.reason.startswith("access token"):
                raise DingTalkAuthError(
                    api, f"{message}; check the app's key, secret and permissions"
                ) from None
            raise DingTalkUnavailable(api, message) from None

    @property
    def _bounds(self) -> RetryBounds:
        # A ban's pause (5 minutes) is longer than the time budget: it is still waited.
        return RetryBounds(
            max_attempts=self.options.max_attempts,
            max_seconds=self.options.max_retry_seconds,
            backoff_initial_s=self.options.backoff_initial_s,
            backoff_max_s=self.options.backoff_max_s,
            wait_past_deadline=True,
        )

    def _note_retry(self, api: str, number: int, problem: Retryable) -> None:
        with self._stats_lock:
            self.retries[problem.reason.split(":")[0]] += 1
        log.info("DingTalk %s: retry %d (%s)", api, number, self._redact(problem.reason))

    def _attempt(self, api: str, host: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        token = self._access_token()
        try:
            return self._send(api, host, path, body, token)
        except _TokenRejected:
            # Drop the token (unless another thread already replaced it), fetch a new one and
            # try again.
            self._drop_token(token)
            raise Retryable("access token expired or invalid", wait_s=0.0) from None

    def _send(
        self, api: str, host: str, path: str, body: dict[str, Any], token: str
    ) -> dict[str, Any]:
        limiter = self._limiter(api)
        limiter.acquire()
        with self._stats_lock:
            self.attempts[api] += 1
        try:
            if host == "legacy":
                response = self._sessions.get().post(
                    self.options.base_url.rstrip("/") + path,
                    params={"access_token": token},
                    json=body,
                    timeout=self.options.timeout_s,
                )
            elif host == "new-get":
                response = self._sessions.get().get(
                    self.options.api_base_url.rstrip("/") + path,
                    headers={"x-acs-dingtalk-access-token": token},
                    params=body,
                    timeout=self.options.timeout_s,
                )
            else:
                response = self._sessions.get().post(
                    self.options.api_base_url.rstrip("/") + path,
                    headers={"x-acs-dingtalk-access-token": token},
                    json=body,
                    timeout=self.options.timeout_s,
                )
        except requests.RequestException as exc:
            raise Retryable(f"network: {type(exc).__name__}") from None
        payload = self._decode(api, response)
        if host == "legacy":
            self._check_legacy(api, response.status_code, payload)
        else:
            self._check_new_host(api, response.status_code, payload)
        if api in METERED_APIS:
            with self._stats_lock:
                self.metered_calls[api] += 1
        return payload

    def _decode(self, api: str, response: requests.Response) -> dict[str, Any]:
        status = response.status_code
        text = response.text
        is_html = (
            "html" in response.headers.get("Content-Type", "").lower() or text.lstrip()[:1] == "<"
        )
        if is_html and status < 500:
            raise Retryable("ip ban: HTML ban page", wait_s=self._ban_pause(None))
        try:
            payload = response.json()
        except ValueError:
            if status == 429 or status >= 500:
                raise Retryable(f"http {status}") from None
            raise DingTalkBadReply(api, f"HTTP {status} with a body that is not JSON") from None
        if not isinstance(payload, dict):
            raise DingTalkBadReply(api, f"HTTP {status} with a JSON {type(payload).__name__}")
        if payload.get("status") == 1111:
            raise Retryable("ip ban: status 1111", wait_s=self._ban_pause(payload.get("wait")))
        return payload

    def _check_legacy(self, api: str, status: int, payload: dict[str, Any]) -> None:
        if status == 429 or status >= 500:
            raise Retryable(f"http {status}")
        errcode = _int(payload.get("errcode", 0))
        code = errcode
        if errcode == 88 and payload.get("sub_code"):
            code = _int(payload["sub_code"])
        if code == 0:
            return
        message = str(payload.get("sub_msg") or payload.get("errmsg") or "")
        if code in TOKEN_CODES:
            raise _TokenRejected(code)
        if code == 90018:
            raise Retryable(
                "qps: 90018 per-app rate limit", wait_s=self.options.qps_wait_s, counts=False
            )
        if code == 90002:
            raise Retryable("qps: 90002 global rate limit")
        if code == -1:
            raise Retryable("busy: -1 system busy")
        self._raise_final(api, code, message)

    def _check_new_host(self, api: str, status: int, payload: dict[str, Any]) -> None:
        if status == 200:
            return
        code = str(payload.get("code", ""))
        message = str(payload.get("message", ""))
        if status == 401 or code == "InvalidAuthentication":
            raise _TokenRejected(code)
        if code == "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi":
            raise Retryable("qps: per-app rate limit", wait_s=self.options.qps_wait_s)
        if code == "Forbidden.AccessDenied.QpsLimitForApi":
            raise Retryable("qps: global rate limit")
        if status == 429 or status >= 500:
            raise Retryable(f"http {status}")
        if code == "Forbidden.AccessDenied.ApiCountLimitForOrg":
            self._raise_final(api, 90020, message)
        if "PermissionDenied" in code or status == 403:
            self._raise_permission(api, message, code or status)
        raise DingTalkBadRequest(api, f"HTTP {status}: {message}", code=code or status)

    def _raise_final(self, api: str, code: int, message: str) -> None:
        if code == 90020:
            raise DingTalkQuotaExceeded(
                api,
                "the organisation's monthly quota of metered calls is used up; metered calls "
                f"this run: {self.metered_total}. Wait for next month, narrow the window, or "
                "upgrade the DingTalk edition",
                code=code,
            )
        if code == 60011:
            self._raise_permission(api, message, code)
        if code in PERMISSION_HINTS:
            raise DingTalkPermissionError(api, f"{PERMISSION_HINTS[code]} ({message})", code=code)
        if code in BAD_REQUEST_CODES:
            raise DingTalkBadRequest(api, f"parameters rejected: {message}", code=code)
        raise DingTalkError(api, message or "unexpected error", code=code)

    @staticmethod
    def _raise_permission(api: str, message: str, code: str | int) -> None:
        if api in (DISMISSIONS, DIMISSION_INFOS):
            raise DingTalkHrmPermissionError(
                api,
                "the app may not read 智能人事 (HR) data, which the leavers come from: grant "
                f"{HRM_PERMISSION} to the app in the DingTalk developer console (应用 → 权限管理) "
                f"and publish it ({message})",
                code=code,
            )
        raise DingTalkPermissionError(api, f"{PERMISSION_HINTS[60011]} ({message})", code=code)

    def _ban_pause(self, wait: Any) -> float:
        if self.options.ban_pause_s is not None:
            return self.options.ban_pause_s
        minutes = _int(wait) if wait is not None else 5
        return max(1, minutes) * 60.0

    # ------------------------------------------------------------------ token and plumbing

    def _access_token(self) -> str:
        with self._token_lock:
            now = time.monotonic()
            if self._token and now < self._token_expires_at - self.options.token_refresh_margin_s:
                return self._token
            self._token, ttl = self._fetch_token()
            self._token_expires_at = time.monotonic() + ttl
            return self._token

    def _drop_token(self, rejected: str) -> None:
        with self._token_lock:
            if self._token == rejected:
                self._token = None
                self._token_expires_at = 0.0

    def _fetch_token(self) -> tuple[str, float]:
        """The new host's token flow: the secret travels in the body, never in a URL."""
        try:
            return call_with_retries(self._token_attempt, self._bounds, sleep=self._sleep)
        except RetriesExhausted as exc:
            raise DingTalkUnavailable(
                "oauth2/accessToken",
                f"no token after {exc.attempts} attempts (last: {exc.last.reason}); is DingTalk "
                f"reachable at {self.options.api_base_url}?",
            ) from None

    def _token_attempt(self) -> tuple[str, float]:
        url = self.options.api_base_url.rstrip("/") + "/v1.0/oauth2/accessToken"
        body = {"appKey": self.options.app_key, "appSecret": self.options.app_secret}
        try:
            response = self._sessions.get().post(url, json=body, timeout=self.options.timeout_s)
        except requests.RequestException as exc:
            raise Retryable(f"network: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise Retryable(f"http {response.status_code}")
        if response.status_code != 200:
            raise DingTalkAuthError(
                "oauth2/accessToken",
                f"DingTalk rejected the app key/secret (HTTP {response.status_code}); "
                f"check {self.options.credentials_hint}",
            )
        payload = response.json()
        token = payload.get("accessToken")
        if not isinstance(token, str):
            raise DingTalkBadReply("oauth2/accessToken", "reply has no accessToken")
        with self._stats_lock:
            self.token_fetches += 1
        return token, float(payload.get("expireIn", 7200))

    def _limiter(self, api: str) -> SlidingWindowLimiter:
        with self._limiters_lock:
            limiter = self._limiters.get(api)
            if limiter is None:
                limiter = SlidingWindowLimiter(self.options.qps, self.options.qps_period_s)
                self._limiters[api] = limiter
            return limiter

    def _redact(self, text: str) -> str:
        for secret in (self.options.app_secret, self._token):
            if secret:
                text = text.replace(secret, "***")
        return text


def chunks(items: list[str], size: int) -> list[list[str]]:
    """`items` in consecutive lists of at most `size`."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def field(reply: dict[str, Any], key: str, api: str, kind: type) -> Any:
    """`reply[key]`, which must be a `kind`, else a DingTalkBadReply naming the API."""
    value = reply.get(key)
    if not isinstance(value, kind):
        raise DingTalkBadReply(api, f"reply field `{key}` is missing or not a {kind.__name__}")
    return value


def unique_by(
    api: str,
    pages: Iterable[list[dict[str, Any]]],
    id_key: str,
    id_type: Callable[[Any], Any],
    required: Sequence[str],
    what: str,
) -> list[dict[str, Any]]:
    """The items of all pages once per `id_key` (the first seen), sorted by `id_type(id)`; an item
    without one of the `required` keys is a DingTalkBadReply."""
    by_id: dict[Any, dict[str, Any]] = {}
    for page in pages:
        for index, item in enumerate(page):
            for key in (id_key, *required):
                if key not in item:
                    raise DingTalkBadReply(api, f"{what} {index} of a reply lacks `{key}`")
            by_id.setdefault(id_type(item[id_key]), item)
    return [by_id[k] for k in sorted(by_id)]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -99999

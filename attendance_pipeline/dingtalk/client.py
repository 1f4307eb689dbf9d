"""DingTalk Open API client: tokens, rate limits, retries, chunking and paging.

Plain Python (no Dagster import). The Dagster resource in `resources/dingtalk.py` builds one of
these per run. What it guarantees, following `shared/contracts/dingtalk.md`:

- one access token, cached and refreshed a few minutes before expiry; a rejected token is dropped,
  fetched again and the call retried;
- at most `qps` calls per second per API (sliding window), shared by all worker threads;
- retries with backoff on 90018, 90002, -1, 429/5xx, network errors and the IP-ban page, bounded in
  attempts and seconds; 90020, permission and parameter errors fail at once with a clear message;
- requests cut to the contract's limits (50 users x 7 days for results, 30 days for approvals),
  paged until `hasMore` is false, de-duplicated by `id` / `approveId`;
- a count of metered calls (attendance and approval APIs, the attendance-group ones included)
  that were served.

Attendance groups and leavers (`docs/dingtalk.md` gives every parameter and where its name comes
from): `attendance_group_map` pages legacy `getsimplegroups` and each group's
`group/memberusers/list`; `leavers` pages the new host's `hrm/employees/dismissions` and reads
`hrm/employees/dimissionInfos` in chunks of 50.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypedDict, TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from attendance_pipeline.china_time import (
    date_to_ms,
    dingtalk_date_string,
    ms_to_date,
    today_in_china,
    windows,
)
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

log = logging.getLogger(__name__)

ATTENDANCE_LIST = "attendance/list"
APPROVALS_QUERY = "attendance/approvals/query"
# Attendance groups: legacy TOP API names (DingTalk's legacy SDK classes
# OapiAttendanceGetsimplegroupsRequest/Response and OapiAttendanceGroupMemberusersListRequest/
# Response; the new SDK has only the new-host twin GetSimpleGroups, whose paging it leaves open).
GROUPS_LIST = "attendance/getsimplegroups"
GROUP_MEMBERS = "attendance/group/memberusers/list"
# HR (智能人事) dismissions, new host: alibabacloud_dingtalk.hrm_1_0 QueryDismissionStaffIdList
# (GET, query maxResults/nextToken; body userIdList/hasMore/nextToken) and
# QueryHrmEmployeeDismissionInfo (GET, query userIdList as a JSON array; body result[] of
# QueryHrmEmployeeDismissionInfoResponseBodyResult: userId, name, lastWorkDay (epoch ms),
# mainDeptId, mainDeptName, deptList[{dept_id, dept_path}], ...).
DISMISSIONS = "hrm/employees/dismissions"
DIMISSION_INFOS = "hrm/employees/dimissionInfos"
# Attendance APIs are metered (the contract), the group ones included; the HR APIs are neither
# attendance nor approval APIs, so they are not (assumption, like the contacts APIs).
METERED_APIS = frozenset({ATTENDANCE_LIST, APPROVALS_QUERY, GROUPS_LIST, GROUP_MEMBERS})
# The console names of the permissions (the SDK does not name them: assumption, docs/dingtalk.md).
HRM_PERMISSION = "智能人事-员工花名册/离职信息读权限 (HRM read)"
ALL_BIZ_TYPES = (1, 2, 3, 4, 5)

TOKEN_CODES = frozenset({40001, 40014, 41001, 42001, 33001})
PERMISSION_HINTS = {
    60011: "the app lacks the permission for this API: grant it in the DingTalk developer console "
    "(考勤/通讯录 read)",
    60020: "this machine's IP is not in the app's whitelist: add it in the developer console",
    50002: "a user is outside the app's visible scope: widen the app's scope",
    50004: "a department is outside the app's visible scope: widen the app's scope",
}
BAD_REQUEST_CODES = frozenset({41041, 40035, 400002, 40069, 60003})


class Leaver(TypedDict):
    """One person who left, from the dimission info."""

    userid: str
    last_work_date: date
    name: str | None
    dept_ids: list[int]
    main_dept_id: int | None


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
    today: date | None = None  # for the horizon check; None is today in China


class _Retryable(Exception):
    """An attempt failed in a way that another attempt may fix."""

    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


class _TokenRejected(Exception):
    pass


class DingTalkClient:
    """A client for the parts of the DingTalk Open API this pipeline reads."""

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
        self._local = threading.local()
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

    # ------------------------------------------------------------------ public reads

    def list_departments(self) -> list[dict[str, Any]]:
        """Every department under the root, walking `listsub` one level at a time."""
        found: list[dict[str, Any]] = []
        level = [1]
        seen = {1}
        while level:
            replies = self._map(
                lambda dept_id: self._legacy(
                    "department/listsub",
                    "/topapi/v2/department/listsub",
                    {"dept_id": dept_id, "language": "zh_CN"},
                ),
                level,
            )
            next_level = []
            for reply in replies:
                for dept in _field(reply, "result", "department/listsub", list):
                    dept_id = int(dept["dept_id"])
                    if dept_id not in seen:
                        seen.add(dept_id)
                        found.append(dept)
                        next_level.append(dept_id)
            level = next_level
        return found

    def list_users(self, dept_ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Every user of the given departments (default: the whole tree), once each.

        A person in two departments is listed by both; they are merged by `userid` with the union
        of their `dept_id_list`.
        """
        if dept_ids is None:
            dept_ids = [1, *(int(d["dept_id"]) for d in self.list_departments())]
        pages = self._map(self._users_of_department, list(dept_ids))
        merged: dict[str, dict[str, Any]] = {}
        for users in pages:
            for user in users:
                userid = user.get("userid")
                if not isinstance(userid, str) or not userid:
                    raise DingTalkBadReply("user/list", f"a user has no `userid`: {sorted(user)}")
                if userid in merged:
                    known = merged[userid].setdefault("dept_id_list", [])
                    known.extend(d for d in user.get("dept_id_list", []) if d not in known)
                else:
                    merged[userid] = dict(user)
        return [merged[k] for k in sorted(merged)]

    def attendance(self, userids: Sequence[str], start: date, end: date) -> list[dict[str, Any]]:
        """Attendance results (one record per scheduled check point) for start..end inclusive."""
        self._check_horizon(ATTENDANCE_LIST, start, end)
        tasks = [
            (chunk, window)
            for window in windows(start, end, self.options.attendance_span_days)
            for chunk in _chunks(sorted(set(userids)), self.options.user_chunk)
        ]
        results = self._map(lambda task: self._attendance_chunk(*task), tasks, ATTENDANCE_LIST)
        by_id: dict[int, dict[str, Any]] = {}
        for records in results:
            for index, record in enumerate(records):
                for key in ("id", "userId", "workDate", "checkType", "timeResult"):
                    if key not in record:
                        raise DingTalkBadReply(
                            ATTENDANCE_LIST, f"record {index} of a reply lacks `{key}`"
                        )
                by_id.setdefault(int(record["id"]), record)
        return [by_id[k] for k in sorted(by_id)]

    def approvals(
        self,
        userids: Sequence[str],
        start: date,
        end: date,
        biz_types: Sequence[int] = ALL_BIZ_TYPES,
    ) -> list[dict[str, Any]]:
        """Approvals of the users overlapping start 00:00 .. end 24:00 (China time)."""
        self._check_horizon(APPROVALS_QUERY, start, end)
        tasks = [
            (chunk, window)
            for window in windows(start, end, self.options.approvals_span_days)
            for chunk in _chunks(sorted(set(userids)), self.options.user_chunk)
        ]

        def fetch(task: tuple[list[str], tuple[date, date]]) -> list[dict[str, Any]]:
            chunk, (first, last) = task
            reply = self._new_host(
                APPROVALS_QUERY,
                "/v1.0/attendance/approvals/query",
                {
                    "userIds": ",".join(chunk),
                    "bizTypes": list(biz_types),
                    "fromDateTime": date_to_ms(first),
                    "toDateTime": date_to_ms(last + timedelta(days=1)) - 1,
                },
            )
            return list(_field(reply, "result", APPROVALS_QUERY, list))

        by_id: dict[str, dict[str, Any]] = {}
        for approvals in self._map(fetch, tasks, APPROVALS_QUERY):
            for index, approval in enumerate(approvals):
                for key in ("approveId", "userId", "bizType", "durationUnit", "beginTime"):
                    if key not in approval:
                        raise DingTalkBadReply(
                            APPROVALS_QUERY, f"approval {index} of a reply lacks `{key}`"
                        )
                by_id.setdefault(str(approval["approveId"]), approval)
        return [by_id[k] for k in sorted(by_id)]

    def attendance_groups(self) -> list[dict[str, Any]]:
        """Every attendance group (legacy `getsimplegroups`, offset/size pages): group_id,
        group_name, type, member_count, ..."""
        groups: list[dict[str, Any]] = []
        offset = 0
        size = self.options.group_page_size
        while True:
            reply = self._legacy(
                GROUPS_LIST, "/topapi/attendance/getsimplegroups", {"offset": offset, "size": size}
            )
            result = _field(reply, "result", GROUPS_LIST, dict)
            page = result.get("groups") or []
            if not isinstance(page, list):
                raise DingTalkBadReply(GROUPS_LIST, "`result.groups` is not a list")
            for group in page:
                if "group_id" not in group:
                    raise DingTalkBadReply(GROUPS_LIST, "a group has no `group_id`")
            groups.extend(page)
            if not result.get("has_more") or not page:
                return groups
            offset += size

    def attendance_group_members(self, group_id: int, op_user_id: str) -> list[str]:
        """Userids of one group's members, however they were added (`memberusers/list`)."""
        members: list[str] = []
        cursor: int = 0
        while True:
            reply = self._legacy(
                GROUP_MEMBERS,
                "/topapi/attendance/group/memberusers/list",
                {"op_user_id": op_user_id, "group_id": int(group_id), "cursor": cursor},
            )
            result = _field(reply, "result", GROUP_MEMBERS, dict)
            members.extend(str(u) for u in result.get("result") or [])
            if not result.get("has_more"):
                return members
            if result.get("cursor") is None:
                raise DingTalkBadReply(GROUP_MEMBERS, "`has_more` without a `cursor`")
            cursor = int(result["cursor"])

    def attendance_group_map(self, op_user_id: str) -> dict[str, int]:
        """{userid: attendance group id} for the whole company; people absent from the map are in
        no attendance group (they do not punch). `op_user_id`: an admin's userid, which the
        member-list API requires as the operator."""
        groups = self.attendance_groups()
        ids = [int(g["group_id"]) for g in groups]
        lists = self._map(lambda gid: self.attendance_group_members(gid, op_user_id), ids)
        found: dict[str, int] = {}
        for group_id, members in zip(ids, lists, strict=True):
            for userid in members:
                if found.setdefault(userid, group_id) != group_id:
                    log.warning(
                        "DingTalk: %s is in attendance groups %s and %s; keeping the first",
                        userid,
                        found[userid],
                        group_id,
                    )
        return found

    def leavers(self, since: date | None = None) -> list[Leaver]:
        """People who left, with their last work day (`since`: only those whose last work day is
        on or after it), latest first as DingTalk lists them.

        Raises DingTalkHrmPermissionError, naming the permission to grant, when the app may not
        read 智能人事 data.
        """
        userids: list[str] = []
        token = 0
        while True:
            reply = self._new_host_get(
                DISMISSIONS,
                "/v1.0/hrm/employees/dismissions",
                {"maxResults": self.options.hrm_page_size, "nextToken": token},
            )
            page = reply.get("userIdList") or []
            if not isinstance(page, list):
                raise DingTalkBadReply(DISMISSIONS, "`userIdList` is not a list")
            userids.extend(str(u) for u in page)
            if not reply.get("hasMore") or not page:
                break
            if reply.get("nextToken") is None:
                raise DingTalkBadReply(DISMISSIONS, "`hasMore` without a `nextToken`")
            token = int(reply["nextToken"])
        chunks = _chunks(list(dict.fromkeys(userids)), self.options.hrm_page_size)
        replies = self._map(
            lambda chunk: self._new_host_get(
                DIMISSION_INFOS,
                "/v1.0/hrm/employees/dimissionInfos",
                {"userIdList": json.dumps(chunk)},
            ),
            chunks,
        )
        out: list[Leaver] = []
        for reply in replies:
            for info in _field(reply, "result", DIMISSION_INFOS, list):
                if "userId" not in info or info.get("lastWorkDay") is None:
                    raise DingTalkBadReply(
                        DIMISSION_INFOS, "a dimission info lacks `userId` or `lastWorkDay`"
                    )
                last = ms_to_date(int(info["lastWorkDay"]))
                if since is not None and last < since:
                    continue
                depts = [int(d["dept_id"]) for d in info.get("deptList") or [] if "dept_id" in d]
                main = info.get("mainDeptId")
                if not depts and main is not None:
                    depts = [int(main)]
                out.append(
                    Leaver(
                        userid=str(info["userId"]),
                        last_work_date=last,
                        name=info.get("name"),
                        dept_ids=depts,
                        main_dept_id=int(main) if main is not None else None,
                    )
                )
        return out

    @property
    def metered_total(self) -> int:
        """Metered calls DingTalk served to this client (what counts against the quota)."""
        return sum(self.metered_calls.values())

    # ------------------------------------------------------------------ chunks and pages

    def _attendance_chunk(
        self, chunk: list[str], window: tuple[date, date]
    ) -> list[dict[str, Any]]:
        first, last = window
        records: list[dict[str, Any]] = []
        offset = 0
        while True:
            reply = self._legacy(
                ATTENDANCE_LIST,
                "/attendance/list",
                {
                    "workDateFrom": dingtalk_date_string(first),
                    "workDateTo": dingtalk_date_string(last),
                    "userIdList": chunk,
                    "offset": offset,
                    "limit": self.options.page_size,
                    "isI18n": False,
                },
            )
            page = reply.get("recordresult") or []
            if not isinstance(page, list):
                raise DingTalkBadReply(ATTENDANCE_LIST, "`recordresult` is not a list")
            records.extend(page)
            if not reply.get("hasMore"):
                return records
            offset += self.options.page_size

    def _users_of_department(self, dept_id: int) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = []
        cursor = 0
        while True:
            reply = self._legacy(
                "user/list",
                "/topapi/v2/user/list",
                {"dept_id": dept_id, "cursor": cursor, "size": self.options.user_page_size},
            )
            result = _field(reply, "result", "user/list", dict)
            users.extend(result.get("list") or [])
            if not result.get("has_more"):
                return users
            cursor = result["next_cursor"]

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

    def _call(self, api: str, host: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        counted = 0  # attempts that count towards max_attempts (rate-limit waits do not)

        def give_up(state: RetryCallState) -> bool:
            nonlocal counted
            exc = state.outcome.exception() if state.outcome else None
            if not (isinstance(exc, _Retryable) and exc.reason.startswith("qps: 90018")):
                counted += 1
            elapsed = time.monotonic() - started
            return counted >= self.options.max_attempts or elapsed >= self.options.max_retry_seconds

        retrying = Retrying(
            stop=give_up,
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda state: self._note_retry(api, state),
        )
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        return self._attempt(api, host, path, body)
                    except _TokenRejected as exc:
                        # Drop the token (unless another thread already replaced it), fetch a
                        # new one and try again.
                        self._drop_token(str(exc))
                        raise _Retryable("access token expired or invalid", wait_s=0.0) from None
        except _Retryable as exc:
            elapsed = time.monotonic() - started
            attempts = retrying.statistics.get("attempt_number", "?")
            message = (
                f"gave up after {attempts} attempts in {elapsed:.1f} s; "
                f"last problem: {self._redact(exc.reason)}"
            )
            if exc.reason.startswith("access token"):
                raise DingTalkAuthError(
                    api, f"{message}; check the app's key, secret and permissions"
                ) from None
            raise DingTalkUnavailable(api, message) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _note_retry(self, api: str, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = exc.reason if isinstance(exc, _Retryable) else repr(exc)
        with self._stats_lock:
            self.retries[reason.split(":")[0]] += 1
        log.info("DingTalk %s: retry %d (%s)", api, state.attempt_number, self._redact(reason))

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.wait_s is not None:
            return exc.wait_s
        backoff = self.options.backoff_initial_s * 2 ** (state.attempt_number - 1)
        return min(self.options.backoff_max_s, backoff) * random.uniform(0.75, 1.25)

    def _attempt(self, api: str, host: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        token = self._access_token()
        try:
            return self._send(api, host, path, body, token)
        except _TokenRejected:
            raise _TokenRejected(token) from None

    def _send(
        self, api: str, host: str, path: str, body: dict[str, Any], token: str
    ) -> dict[str, Any]:
        limiter = self._limiter(api)
        limiter.acquire()
        with self._stats_lock:
            self.attempts[api] += 1
        try:
            if host == "legacy":
                response = self._session().post(
                    self.options.base_url.rstrip("/") + path,
                    params={"access_token": token},
                    json=body,
                    timeout=self.options.timeout_s,
                )
            elif host == "new-get":
                response = self._session().get(
                    self.options.api_base_url.rstrip("/") + path,
                    headers={"x-acs-dingtalk-access-token": token},
                    params=body,
                    timeout=self.options.timeout_s,
                )
            else:
                response = self._session().post(
                    self.options.api_base_url.rstrip("/") + path,
                    headers={"x-acs-dingtalk-access-token": token},
                    json=body,
                    timeout=self.options.timeout_s,
                )
        except requests.RequestException as exc:
            raise _Retryable(f"network: {type(exc).__name__}") from None
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
            raise _Retryable("ip ban: HTML ban page", wait_s=self._ban_pause(None))
        try:
            payload = response.json()
        except ValueError:
            if status == 429 or status >= 500:
                raise _Retryable(f"http {status}") from None
            raise DingTalkBadReply(api, f"HTTP {status} with a body that is not JSON") from None
        if not isinstance(payload, dict):
            raise DingTalkBadReply(api, f"HTTP {status} with a JSON {type(payload).__name__}")
        if payload.get("status") == 1111:
            raise _Retryable("ip ban: status 1111", wait_s=self._ban_pause(payload.get("wait")))
        return payload

    def _check_legacy(self, api: str, status: int, payload: dict[str, Any]) -> None:
        if status == 429 or status >= 500:
            raise _Retryable(f"http {status}")
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
            raise _Retryable("qps: 90018 per-app rate limit", wait_s=self.options.qps_wait_s)
        if code == 90002:
            raise _Retryable("qps: 90002 global rate limit")
        if code == -1:
            raise _Retryable("busy: -1 system busy")
        self._raise_final(api, code, message)

    def _check_new_host(self, api: str, status: int, payload: dict[str, Any]) -> None:
        if status == 200:
            return
        code = str(payload.get("code", ""))
        message = str(payload.get("message", ""))
        if status == 401 or code == "InvalidAuthentication":
            raise _TokenRejected(code)
        if code == "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi":
            raise _Retryable("qps: per-app rate limit", wait_s=self.options.qps_wait_s)
        if code == "Forbidden.AccessDenied.QpsLimitForApi":
            raise _Retryable("qps: global rate limit")
        if status == 429 or status >= 500:
            raise _Retryable(f"http {status}")
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
        url = self.options.api_base_url.rstrip("/") + "/v1.0/oauth2/accessToken"
        body = {"appKey": self.options.app_key, "appSecret": self.options.app_secret}
        last = "no attempt"
        for attempt in range(1, self.options.max_attempts + 1):
            try:
                response = self._session().post(url, json=body, timeout=self.options.timeout_s)
            except requests.RequestException as exc:
                last = f"network: {type(exc).__name__}"
            else:
                if response.status_code == 200:
                    payload = response.json()
                    token = payload.get("accessToken")
                    if not isinstance(token, str):
                        raise DingTalkBadReply("oauth2/accessToken", "reply has no accessToken")
                    with self._stats_lock:
                        self.token_fetches += 1
                    return token, float(payload.get("expireIn", 7200))
                if response.status_code < 500 and response.status_code != 429:
                    raise DingTalkAuthError(
                        "oauth2/accessToken",
                        f"DingTalk rejected the app key/secret (HTTP {response.status_code}); "
                        "check DINGTALK_APP_KEY and DINGTALK_APP_SECRET",
                    )
                last = f"http {response.status_code}"
            self._sleep(min(self.options.backoff_max_s, self.options.backoff_initial_s * attempt))
        raise DingTalkUnavailable(
            "oauth2/accessToken",
            f"no token after {self.options.max_attempts} attempts (last: {last}); is DingTalk "
            f"reachable at {self.options.api_base_url}?",
        )

    def _limiter(self, api: str) -> SlidingWindowLimiter:
        with self._limiters_lock:
            limiter = self._limiters.get(api)
            if limiter is None:
                limiter = SlidingWindowLimiter(self.options.qps, self.options.qps_period_s)
                self._limiters[api] = limiter
            return limiter

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _redact(self, text: str) -> str:
        for secret in (self.options.app_secret, self._token):
            if secret:
                text = text.replace(secret, "***")
        return text


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _field(reply: dict[str, Any], key: str, api: str, kind: type) -> Any:
    value = reply.get(key)
    if not isinstance(value, kind):
        raise DingTalkBadReply(api, f"reply field `{key}` is missing or not a {kind.__name__}")
    return value


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -99999


__all__ = ["ALL_BIZ_TYPES", "DingTalkClient", "DingTalkError", "DingTalkOptions", "Leaver"]

"""Jira worklogs (Cloud REST v3 by default, Data Center REST v2 with `api_version=2`).

Jira makes the caller the author of every worklog, so this adapter logs as a service account and
says who the work belongs to twice:

- the worklog property `attendance` = `{"key": worklog_key, "pm_user": ..., "userid": ...}`
  (set inline on create and update, read back with `expand=properties`): the source of truth for
  the key and the employee;
- the comment: the planned comment, then a last line "Logged for <name> (<pm_user>), DingTalk
  <userid> [att:<key>]" (an Atlassian document in v3, a string in v2). It is a fallback when a
  property was removed, and what people see in Jira.

`pm_user` is the employee's accountId (Data Center: the username); `issue` is the issue key.
Every write sends `adjustEstimate=leave&notifyUsers=false`, `started` is the work date at 09:00
`+0800` (`yyyy-MM-dd'T'HH:mm:ss.SSS+0800`), under 60 s is refused before any call, and writes to
one issue are serialised (Jira's per-issue write limits; parallel writes have left issue totals
inconsistent). 429/503 `Retry-After` is honoured by `PMHttp`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from attendance_pipeline.china_time import SHANGHAI, date_to_ms
from attendance_pipeline.pm.base import PlannedWorklog, PMUser, RemoteWorklog, TaggedText
from attendance_pipeline.pm.http import HttpWorklogStore, RetryPolicy

log = logging.getLogger(__name__)

PROPERTY_KEY = "attendance"
MIN_SECONDS = 60
WRITE_FLAGS = {"adjustEstimate": "leave", "notifyUsers": "false"}
SIGNATURE = re.compile(r"\(([^()\s]+)\), DingTalk \S+ \[att:[0-9a-f]{16}\]")


def started_text(work_date: date) -> str:
    """The `started` Jira accepts: the work date at 09:00 in China, with milliseconds."""
    return f"{work_date.isoformat()}T09:00:00.000+0800"


def jira_messages(payload: dict[str, Any]) -> list[str]:
    """`{"errorMessages": [...], "errors": {field: msg}}` as a list of messages."""
    messages = [str(m) for m in payload.get("errorMessages") or []]
    errors = payload.get("errors") or {}
    if isinstance(errors, dict):
        messages.extend(f"{field}: {msg}" for field, msg in errors.items())
    if not messages and payload.get("message"):
        messages.append(str(payload["message"]))
    return messages


class JiraWorklogStore(HttpWorklogStore):
    """Worklogs in Jira, logged by one service account on behalf of employees."""

    system = "jira"

    def __init__(
        self,
        base_url: str,
        *,
        email: str | None = None,
        api_token: str | None = None,
        personal_access_token: str | None = None,
        api_version: Literal[2, 3] = 3,
        policy: RetryPolicy | None = None,
        page_size: int = 1000,
    ) -> None:
        """Cloud: `email` + `api_token` (Basic). Data Center: `personal_access_token` (Bearer)."""
        if api_version not in (2, 3):
            raise ValueError("api_version must be 2 (Data Center) or 3 (Cloud)")
        headers: dict[str, str] = {}
        auth: tuple[str, str] | None = None
        if personal_access_token:
            headers["Authorization"] = f"Bearer {personal_access_token}"
        elif email and api_token:
            auth = (email, api_token)
        else:
            raise ValueError("Jira needs email + api_token (Cloud) or personal_access_token (DC)")
        self.api_version = api_version
        self.page_size = page_size
        self._api = f"rest/api/{api_version}"
        super().__init__(
            base_url,
            policy=policy,
            auth=auth,
            headers=headers,
            error_messages=jira_messages,
            secrets=[s for s in (api_token, personal_access_token) if s],
        )
        self._names: dict[str, str] = {}
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()

    def _shown(self) -> dict[str, object]:
        return {"api_version": self.api_version}

    # ------------------------------------------------------------------ WorklogStore

    def list_users(self) -> list[PMUser]:
        """Every human account (Cloud `users/search`; DC `user/search?username=.`), paged."""
        users: list[PMUser] = []
        for raw in self._user_pages():
            if raw.get("accountType") not in (None, "atlassian"):
                continue  # apps and service-desk customers cannot be employees
            if self.api_version == 3:
                pm_user = str(raw.get("accountId") or "")
                login = None
            else:
                pm_user = str(raw.get("name") or raw.get("key") or "")
                login = pm_user or None
            if not pm_user:
                continue
            name = raw.get("displayName")
            if name:
                self._names[pm_user] = str(name)
            users.append(
                PMUser(
                    pm_user=pm_user,
                    login=login,
                    email=raw.get("emailAddress") or None,
                    name=name,
                    active=bool(raw.get("active", True)),
                )
            )
        return users

    def list_worklogs(
        self, pm_users: list[str], issues: list[str], start: date, end: date
    ) -> list[RemoteWorklog]:
        """Our worklogs on these issues for these employees, started start..end (China dates)."""
        wanted = set(pm_users)
        params = {
            "startedAfter": date_to_ms(start),
            "startedBefore": date_to_ms(end + timedelta(days=1)),
            "expand": "properties",
        }
        found: list[RemoteWorklog] = []
        for issue in dict.fromkeys(issues):
            for raw in self._worklog_pages(issue, params):
                remote = self._remote(issue, raw)
                if remote and remote.pm_user in wanted and start <= remote.work_date <= end:
                    found.append(remote)
        return found

    def create(self, planned: PlannedWorklog) -> RemoteWorklog:
        """POST the worklog with its property; the author will be the service account."""
        operation = f"create {planned.worklog_key} on {planned.issue}"
        self._check(planned, operation)
        with self._issue_lock(planned.issue):
            response = self._http.request(
                "POST",
                f"{self._api}/issue/{quote(planned.issue, safe='')}/worklog",
                operation=operation,
                write=True,
                params=WRITE_FLAGS,
                json=self._body(planned),
            )
        payload = self._http.json(response, operation)
        if not isinstance(payload, dict) or not payload.get("id"):
            raise self._http.error(operation, "the reply has no worklog `id`")
        return planned.as_remote(str(payload["id"]))

    def update(self, remote: RemoteWorklog, planned: PlannedWorklog) -> RemoteWorklog:
        """PUT seconds, comment and property; a worklog cannot move to another issue."""
        operation = f"update {planned.worklog_key} (worklog {remote.remote_id})"
        self._check(planned, operation)
        if remote.issue != planned.issue:
            raise self._http.error(
                operation,
                f"a Jira worklog cannot move from {remote.issue} to {planned.issue}: delete and "
                "create instead",
            )
        with self._issue_lock(remote.issue):
            self._http.request(
                "PUT",
                self._worklog_path(remote),
                operation=operation,
                write=True,
                params=WRITE_FLAGS,
                json=self._body(planned),
            )
        return planned.as_remote(remote.remote_id)

    def delete(self, remote: RemoteWorklog) -> None:
        """DELETE the worklog; one that is already gone counts as deleted."""
        operation = f"delete {remote.worklog_key} (worklog {remote.remote_id})"
        with self._issue_lock(remote.issue):
            response = self._http.request(
                "DELETE",
                self._worklog_path(remote),
                operation=operation,
                write=True,
                params=WRITE_FLAGS,
                accept=(404,),
            )
        if response.status_code == 404:
            log.info("jira %s: already gone (404)", operation)

    # ------------------------------------------------------------------ internals

    def _check(self, planned: PlannedWorklog, operation: str) -> None:
        if planned.seconds < MIN_SECONDS:
            raise self._http.error(
                operation,
                f"{planned.seconds} s is under Jira's minimum of {MIN_SECONDS} s per worklog",
            )

    def _body(self, planned: PlannedWorklog) -> dict[str, Any]:
        name = self._names.get(planned.pm_user, planned.pm_user)
        signature = f"Logged for {name} ({planned.pm_user}), DingTalk {planned.userid}"
        text = TaggedText.write(planned.comment, planned.worklog_key, signature)
        comment: Any = text if self.api_version == 2 else _document(text)
        value = {"key": planned.worklog_key, "pm_user": planned.pm_user, "userid": planned.userid}
        return {
            "started": started_text(planned.work_date),
            "timeSpentSeconds": planned.seconds,
            "comment": comment,
            "properties": [{"key": PROPERTY_KEY, "value": value}],
        }

    def _remote(self, issue: str, raw: dict[str, Any]) -> RemoteWorklog | None:
        text = _comment_text(raw.get("comment"))
        text_key, human = TaggedText.read(text)
        value: dict[str, Any] = {}
        for prop in raw.get("properties") or []:
            if isinstance(prop, dict) and prop.get("key") == PROPERTY_KEY:
                candidate = prop.get("value")
                value = candidate if isinstance(candidate, dict) else {}
        key = value.get("key") or text_key
        if not key:
            return None  # not ours
        pm_user = value.get("pm_user")
        if not pm_user:
            signature = SIGNATURE.search(text)
            if not signature:
                log.warning("jira worklog %s on %s: our key, no employee", raw.get("id"), issue)
                return None
            pm_user = signature.group(1)
        try:
            started = datetime.strptime(str(raw["started"]), "%Y-%m-%dT%H:%M:%S.%f%z")
            seconds = int(raw["timeSpentSeconds"])
            remote_id = str(raw["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self._http.error(
                f"list {issue}", f"a worklog has an unexpected shape ({exc})"
            ) from None
        return RemoteWorklog(
            remote_id=remote_id,
            worklog_key=str(key),
            pm_user=str(pm_user),
            issue=issue,
            work_date=started.astimezone(SHANGHAI).date(),
            seconds=seconds,
            comment=human,
        )

    def _worklog_pages(self, issue: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        operation = f"list worklogs of {issue}"
        start_at = 0
        while True:
            response = self._http.request(
                "GET",
                f"{self._api}/issue/{quote(issue, safe='')}/worklog",
                operation=operation,
                write=False,
                params={**params, "startAt": start_at, "maxResults": self.page_size},
            )
            payload = self._http.json(response, operation)
            worklogs = payload.get("worklogs") if isinstance(payload, dict) else None
            if not isinstance(worklogs, list):
                raise self._http.error(operation, "the reply has no `worklogs` list")
            yield from (w for w in worklogs if isinstance(w, dict))
            start_at += len(worklogs)
            if not worklogs or start_at >= int(payload.get("total", 0)):
                return

    def _user_pages(self) -> Iterator[dict[str, Any]]:
        path = "rest/api/3/users/search" if self.api_version == 3 else "rest/api/2/user/search"
        extra = {} if self.api_version == 3 else {"username": "."}
        start_at = 0
        while True:
            response = self._http.request(
                "GET",
                path,
                operation="list users",
                write=False,
                params={**extra, "startAt": start_at, "maxResults": self.page_size},
            )
            page = self._http.json(response, "list users")
            if not isinstance(page, list):
                raise self._http.error("list users", "the reply is not a list of users")
            if not page:
                return  # users/search may return short pages before the end: stop on empty
            yield from (u for u in page if isinstance(u, dict))
            start_at += len(page)

    def _worklog_path(self, remote: RemoteWorklog) -> str:
        issue = quote(remote.issue, safe="")
        return f"{self._api}/issue/{issue}/worklog/{quote(remote.remote_id, safe='')}"

    def _issue_lock(self, issue: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[issue]


def _document(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian document: one paragraph per non-empty line."""
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]}
        for line in text.splitlines()
        if line.strip()
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def _comment_text(comment: Any) -> str:
    """A v2 string or a v3 Atlassian document as text, one line per block."""
    if comment is None:
        return ""
    if isinstance(comment, str):
        return comment
    if not isinstance(comment, Mapping):
        return str(comment)

    def inline(node: Any) -> str:
        if not isinstance(node, Mapping):
            return ""
        if node.get("type") == "text":
            return str(node.get("text", ""))
        if node.get("type") == "hardBreak":
            return "\n"
        if node.get("type") == "mention":
            return str((node.get("attrs") or {}).get("text", ""))
        return "".join(inline(child) for child in node.get("content") or [])

    blocks = comment.get("content") or []
    return "\n".join(inline(block) for block in blocks)

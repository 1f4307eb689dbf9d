"""Redmine time entries over Redmine's REST API (tested against Redmine 5.0 from Debian 12).

- `pm_user` is the Redmine user id and `issue` the issue id, both as strings of digits. The API
  key's user logs time *for* `pm_user` with `user_id`: that needs the permission "Log spent time
  for other users" (the default Manager role has it) in the issue's project, and the target user
  must be a member of that project with a role allowed to log time (else Redmine answers 422
  "User is invalid", explained in the error).
- Redmine has no external-id field: our key is a tag at the end of `comments` (one line, at most
  255 characters; a longer human comment is shortened, never the tag). Only entries carrying a
  tag are listed, so entries people log by hand are never touched.
- `hours` is written with 4 decimals (so split worklogs add up in Redmine's totals); the API reads
  it back rounded to 2 decimals (36 s), so the adapter reads durations back as whole minutes,
  which is exact for the plan's whole-minute worklogs (two minutes never round to the same
  hundredth of an hour).
- `activity_id` is required by Redmine: given, or discovered once from
  `/enumerations/time_entry_activities.json` (preferring "Development").
- `list_worklogs` filters users on the server, batching up to `USERS_PER_LIST` ids in one
  `user_id=1|2|…` filter (Redmine's multi-value short filter), pages with `offset`/`limit=100` by
  `total_count`, and filters issues and dates again on the client. Dates are checked here: Redmine
  silently ignores an invalid `from`/`to` and would return everything.
- Retries and error mapping are `PMHttp`'s: reads retry with backoff; a write whose reply was lost
  raises `OutcomeUnknown` (the pusher re-lists). A missing or wrong key is a 401 with an empty body
  on writes and on `/users*`, but Redmine answers *reads* of time entries and enumerations with a
  wrong key as if anonymous (200, public projects only): the store checks the key once with
  `/users/current.json` before its first listing.

Demo and test set-up (a project, users, memberships, issues) is `pm/redmine_seed.py`, which this
adapter does not import.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import requests

from attendance_pipeline.pm.base import (
    KEY_TAG,
    PlannedWorklog,
    PMError,
    PMUser,
    RemoteWorklog,
    key_from_text,
    key_tag,
)
from attendance_pipeline.pm.http import STATUS_HINTS, PMHttp, RetryPolicy

SYSTEM = "redmine"
PAGE_LIMIT = 100  # Redmine caps `limit` at 100
USERS_PER_LIST = 50  # ids per `user_id=a|b|…` filter: keeps the URL far below WEBrick's 2083 bytes
COMMENT_LIMIT = 255  # Redmine 5 allows 1024; older Redmine and many plugins 255
HOURS_DECIMALS = 4
PREFERRED_ACTIVITY = "development"
BAD_KEY = "Redmine rejected the API key (set REDMINE_API_KEY)"
NOT_MEMBER = (
    "the user must be a member of the issue's project with a role that may log time, and the API "
    "key's user needs 'Log spent time for other users' there (e.g. both with the Manager role)"
)
_DIGITS = re.compile(r"[1-9][0-9]{0,17}")


def describe_redmine_error(response: requests.Response) -> str:
    """Redmine's errors: 401 (empty body) → the key; 422 → its `errors` list; else status + hint."""
    status = response.status_code
    if status == 401:
        return BAD_KEY
    errors = error_list(response)
    if errors:
        return f"HTTP {status}: " + "; ".join(errors)
    if status == 403:
        return (
            "HTTP 403: the API key's user is not allowed to do this (check its roles and "
            "permissions; listing users needs an administrator)"
        )
    hint = STATUS_HINTS.get(status, "")
    snippet = " ".join(response.text.split())[:160] if "json" in _content_type(response) else ""
    return ": ".join(p for p in (f"HTTP {status}", hint, snippet) if p)


def _content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").lower()


def error_list(response: requests.Response) -> list[str]:
    """The `errors` of a 422 body (`{"errors": ["…"]}`), or []."""
    if "json" not in _content_type(response):
        return []
    try:
        payload = response.json()
    except ValueError:
        return []
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if isinstance(errors, str):
        return [errors]
    if isinstance(errors, list):
        return [str(e) for e in errors if e]
    return []


def hours_value(seconds: int) -> float:
    """Seconds as Redmine `hours` (4 decimals: the error stays below 0.2 s)."""
    return round(seconds / 3600, HOURS_DECIMALS)


def seconds_from_hours(hours: Any) -> int:
    """Redmine's `hours` (read back rounded to 2 decimals) as seconds in whole minutes."""
    return round(float(hours) * 60) * 60


def tagged_comment(comment: str, key: str) -> str:
    """One line: the human comment (shortened to fit 255 characters), then our key tag."""
    tag = key_tag(key)
    text = " ".join(KEY_TAG.sub(" ", comment or "").split())
    room = COMMENT_LIMIT - len(tag) - 1
    if len(text) > room:
        text = text[: room - 1].rstrip() + "…"
    return f"{text} {tag}" if text else tag


def untagged_comment(text: str | None) -> str:
    """The human part of a tagged comment."""
    return " ".join(KEY_TAG.sub(" ", text or "").split())


def _check_id(value: str, what: str, operation: str) -> str:
    text = str(value).strip()
    if not _DIGITS.fullmatch(text):
        raise PMError(SYSTEM, operation, f"{what} {value!r} is not a Redmine numeric id")
    return text


def _check_day(value: object, what: str) -> date:
    # A datetime is a date too, but its isoformat() has a time part that Redmine would ignore.
    if type(value) is not date:
        raise ValueError(f"{what} must be a datetime.date, got {value!r}")
    return value


class RedmineHttp(PMHttp):
    """`PMHttp` for one Redmine, the key in a header (never in the URL), plus JSON reads and
    paging; shared by the store and `redmine_seed`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 15,
        max_attempts: int = 5,
        session: requests.Session | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("Redmine needs an API key (set REDMINE_API_KEY)")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"Redmine base URL {base_url!r} is not an http(s) URL")
        super().__init__(
            SYSTEM,
            base_url,
            headers={"Accept": "application/json", "X-Redmine-API-Key": api_key},
            describe=describe_redmine_error,
            policy=RetryPolicy(max_attempts=max_attempts, timeout_s=timeout_s),
            secrets=[api_key],
            session=session,
        )

    def get(self, path: str, operation: str, params: Any = None) -> dict[str, Any]:
        """GET a JSON object."""
        response = self.request("GET", path, operation=operation, write=False, params=params)
        payload = self.json(response, operation)
        if not isinstance(payload, dict):
            raise self.error(operation, f"GET {path}: the reply is not a JSON object")
        return payload

    def pages(
        self, path: str, collection: str, operation: str, params: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paged collection (`offset`/`limit`, until `total_count`)."""
        offset = 0
        seen: set[Any] = set()
        while True:
            payload = self.get(
                path, operation, {**(params or {}), "offset": offset, "limit": PAGE_LIMIT}
            )
            items = payload.get(collection)
            if not isinstance(items, list):
                raise self.error(operation, f"GET {path}: the reply has no `{collection}` list")
            for item in items:
                if isinstance(item, dict) and item.get("id") not in seen:
                    seen.add(item.get("id"))
                    yield item
            offset += len(items)
            total = payload.get("total_count")
            if not items or not isinstance(total, int) or offset >= total:
                return


class RedmineWorklogStore:
    """Time entries in one Redmine, written for other users (`user_id`) with one API key."""

    system = SYSTEM

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        activity_id: int | None = None,
        timeout_s: float = 15,
        max_attempts: int = 5,
        session: requests.Session | None = None,
    ) -> None:
        self._http = RedmineHttp(
            base_url, api_key, timeout_s=timeout_s, max_attempts=max_attempts, session=session
        )
        self._activity_id = activity_id
        self._lock = threading.Lock()
        self._key_checked = False

    def __repr__(self) -> str:
        return f"RedmineWorklogStore({self._http.base_url!r})"

    # ------------------------------------------------------------------ WorklogStore

    def list_users(self) -> list[PMUser]:
        """Active users (`active=True`) and locked ones (`active=False`); needs an admin key."""
        users = []
        for status, active in (("1", True), ("3", False)):
            for item in self._http.pages("users.json", "users", "list users", {"status": status}):
                name = " ".join(
                    str(item.get(part) or "").strip() for part in ("firstname", "lastname")
                ).strip()
                users.append(
                    PMUser(
                        pm_user=str(item["id"]),
                        login=item.get("login") or None,
                        email=item.get("mail") or None,
                        name=name or None,
                        active=active,
                    )
                )
        return users

    def list_worklogs(
        self, pm_users: list[str], issues: list[str], start: date, end: date
    ) -> list[RemoteWorklog]:
        """Entries carrying our key, of these users on these issues, spent_on start..end."""
        operation = "list worklogs"
        _check_day(start, "start")
        _check_day(end, "end")
        if start > end:
            raise ValueError(f"start {start} is after end {end}")
        users = list(dict.fromkeys(_check_id(u, "user", operation) for u in pm_users))
        wanted_issues = {_check_id(i, "issue", operation) for i in issues}
        if users:
            self._check_key(operation)
        found: dict[str, RemoteWorklog] = {}
        for first in range(0, len(users), USERS_PER_LIST):
            batch = users[first : first + USERS_PER_LIST]
            batch_set = set(batch)
            params = {"user_id": "|".join(batch), "from": start.isoformat(), "to": end.isoformat()}
            for entry in self._http.pages("time_entries.json", "time_entries", operation, params):
                remote = self._remote(entry)
                if (
                    remote is not None
                    and remote.pm_user in batch_set
                    and remote.issue in wanted_issues
                    and start <= remote.work_date <= end
                ):
                    found[remote.remote_id] = remote
        return list(found.values())

    def create(self, planned: PlannedWorklog) -> RemoteWorklog:
        """POST /time_entries.json → 201 with the entry."""
        operation = f"create {planned.worklog_key}"
        body = {"time_entry": self._fields(planned, operation)}
        response = self._http.request(
            "POST",
            "time_entries.json",
            operation=operation,
            write=True,
            json=body,
            accept=(404, 422),
        )
        if response.status_code >= 300:
            raise self._refused(operation, planned, response)
        payload = self._http.json(response, operation)
        entry = payload.get("time_entry") if isinstance(payload, dict) else None
        remote = self._remote(entry) if isinstance(entry, dict) else None
        if remote is None:
            raise self._http.error(operation, "the reply does not hold the created time entry")
        return remote

    def update(self, remote: RemoteWorklog, planned: PlannedWorklog) -> RemoteWorklog:
        """PUT /time_entries/{id}.json (204): hours, comments, and user/issue/date if they moved."""
        operation = f"update {planned.worklog_key} (time entry {remote.remote_id})"
        entry_id = _check_id(remote.remote_id, "time entry", operation)
        body = {"time_entry": self._fields(planned, operation)}
        response = self._http.request(
            "PUT",
            f"time_entries/{entry_id}.json",
            operation=operation,
            write=True,
            json=body,
            accept=(404, 422),
        )
        if response.status_code == 404:
            raise self._http.error(
                operation, f"time entry {entry_id} no longer exists (deleted in Redmine?)"
            )
        if response.status_code >= 300:
            raise self._refused(operation, planned, response)
        # What a listing will read back: hours rounded, the comment as shortened to fit.
        return replace(
            planned.as_remote(entry_id),
            seconds=seconds_from_hours(hours_value(planned.seconds)),
            comment=untagged_comment(tagged_comment(planned.comment, planned.worklog_key)),
        )

    def delete(self, remote: RemoteWorklog) -> None:
        """DELETE /time_entries/{id}.json (204); a 404 means it is already gone, which is fine."""
        operation = f"delete {remote.worklog_key} (time entry {remote.remote_id})"
        entry_id = _check_id(remote.remote_id, "time entry", operation)
        self._http.request(
            "DELETE",
            f"time_entries/{entry_id}.json",
            operation=operation,
            write=True,
            accept=(404,),
        )

    # ------------------------------------------------------------------ internals

    def _check_key(self, operation: str) -> None:
        """Fail on a wrong key before reading: Redmine answers a *read* with a wrong key as if
        anonymous (200, public data only), so an empty list would look like "nothing logged"."""
        with self._lock:
            if self._key_checked:
                return
            # 401 for a wrong key
            self._http.request("GET", "users/current.json", operation=operation, write=False)
            self._key_checked = True

    def activity_id(self) -> int:
        """The activity for our entries: the configured one, else "Development", else the default,
        else the first active one (looked up once)."""
        with self._lock:
            if self._activity_id is None:
                self._activity_id = self._discover_activity()
            return self._activity_id

    def _discover_activity(self) -> int:
        operation = "find the time-entry activity"
        payload = self._http.get("enumerations/time_entry_activities.json", operation)
        items = payload.get("time_entry_activities")
        active = [
            a
            for a in (items if isinstance(items, list) else [])
            if isinstance(a, dict) and isinstance(a.get("id"), int) and a.get("active", True)
        ]
        for choice in (
            [a for a in active if str(a.get("name", "")).strip().lower() == PREFERRED_ACTIVITY],
            [a for a in active if a.get("is_default")],
            active,
        ):
            if choice:
                return int(choice[0]["id"])
        raise self._http.error(
            operation,
            "Redmine has no active time-entry activity: add one under Administration → "
            "Enumerations, or configure the activity id",
        )

    def _fields(self, planned: PlannedWorklog, operation: str) -> dict[str, Any]:
        _check_day(planned.work_date, "work_date")
        if planned.seconds <= 0:
            raise PMError(SYSTEM, operation, f"{planned.seconds} s is not a positive duration")
        return {
            "issue_id": int(_check_id(planned.issue, "issue", operation)),
            "user_id": int(_check_id(planned.pm_user, "user", operation)),
            "spent_on": planned.work_date.isoformat(),
            "hours": hours_value(planned.seconds),
            "activity_id": self.activity_id(),
            "comments": tagged_comment(planned.comment, planned.worklog_key),
        }

    def _refused(
        self, operation: str, planned: PlannedWorklog, response: requests.Response
    ) -> PMError:
        """A 404/422 on a write, said in terms of the plan."""
        where = f"user {planned.pm_user}, issue {planned.issue}, {planned.work_date}"
        if response.status_code == 404:
            return self._http.error(
                operation,
                f"HTTP 404: not found (is PM_BASE_URL Redmine's root URL? does issue "
                f"{planned.issue} exist?)",
            )
        errors = error_list(response) or [describe_redmine_error(response)]
        hints = []
        if any(e.startswith("User ") for e in errors):
            hints.append(NOT_MEMBER)
        if any(e.startswith(("Issue ", "Project ")) for e in errors):
            hints.append(
                f"issue {planned.issue} must exist and be visible to the API key's user, and its "
                "project must have time tracking enabled"
            )
        if any(e.startswith("Activity ") for e in errors):
            hints.append("the activity must be active in the issue's project")
        message = f"Redmine refused the time entry ({where}): " + "; ".join(errors)
        if hints:
            message += " (" + "; ".join(hints) + ")"
        return self._http.error(operation, message)

    def _remote(self, entry: dict[str, Any]) -> RemoteWorklog | None:
        """A listed/created entry as a RemoteWorklog, or None when it does not carry our key."""
        comments = entry.get("comments")
        key = key_from_text(comments if isinstance(comments, str) else None)
        issue = entry.get("issue")
        user = entry.get("user")
        if key is None or not isinstance(issue, dict) or not isinstance(user, dict):
            return None
        try:
            return RemoteWorklog(
                remote_id=str(int(entry["id"])),
                worklog_key=key,
                pm_user=str(int(user["id"])),
                issue=str(int(issue["id"])),
                work_date=date.fromisoformat(str(entry["spent_on"])),
                seconds=seconds_from_hours(entry["hours"]),
                comment=untagged_comment(comments),
            )
        except (KeyError, TypeError, ValueError):
            return None

"""ZenTao effort (工时) over the ZenTao REST API v1 (`/api.php/v1`).

- ZenTao records effort as the token's owner, so each employee's own account logs in: passwords
  come from a secrets source (a `Callable[[str], str]` lookup by account, or a mapping), never
  from config files. An optional admin account reads tasks and efforts and lists users.
- A login (`POST /tokens`) happens once per account; the token is cached and fetched again once
  when a call answers 401. A refused login is **never** retried (failed logins count towards an
  account lock-out): it raises at once naming the account, and that account is not tried again by
  this store.
- `pm_user` is the account, `issue` the task id. Recording work sends the task's **current**
  `left` (read just before), so an effort never finishes a task by accident; `0` is sent only
  when the task already has nothing left. The key is a tag on the `work` text's last line.
  Future dates are refused before any call (ZenTao rejects them too). Since a duplicate could
  never be removed over REST, a create first reads the task's efforts and returns the one already
  carrying the key instead of recording it twice.
- **Limit: ZenTao has no REST route to edit or delete a recorded effort.** `update` and `delete`
  raise a PMError saying so; a person corrects the effort in ZenTao (the pusher reports it).
- `consumed` is hours, written with up to 4 decimals and read back rounded to the whole minute.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from attendance_pipeline.china_time import today_in_china
from attendance_pipeline.pm.base import (
    OutcomeUnknown,
    PlannedWorklog,
    PMUser,
    RemoteWorklog,
    TaggedText,
)
from attendance_pipeline.pm.http import HttpWorklogStore, RetryPolicy

log = logging.getLogger(__name__)

API = "api.php/v1"
NO_EDIT = "ZenTao cannot edit or delete recorded effort over REST; correct it in ZenTao"
USER_PAGE = 500


def zentao_messages(payload: dict[str, Any]) -> list[str]:
    """ZenTao errors are `{"error": "..."}` with the HTTP code."""
    return [str(payload.get("error") or payload.get("message") or "")]


class ZenTaoWorklogStore(HttpWorklogStore):
    """Effort on ZenTao tasks, recorded by each employee's own account."""

    system = "zentao"

    def __init__(
        self,
        base_url: str,
        *,
        passwords: Callable[[str], str] | Mapping[str, str],
        admin_account: str | None = None,
        policy: RetryPolicy | None = None,
        today: Callable[[], date] = today_in_china,
    ) -> None:
        """`passwords` looks up an account's password (the admin's too); `base_url` is the site
        root, e.g. https://zentao.example.com (or …/zentao for a sub-path install)."""
        self.admin_account = admin_account
        self._passwords = passwords
        self._today = today
        super().__init__(base_url, policy=policy, error_messages=zentao_messages)
        self._tokens: dict[str, str] = {}
        self._refused: dict[str, str] = {}  # account -> why its login failed (never retried)
        self._account_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def _shown(self) -> dict[str, object]:
        return {"admin_account": self.admin_account}

    # ------------------------------------------------------------------ WorklogStore

    def list_users(self) -> list[PMUser]:
        """Every account (`GET /users`, paged), read with the admin account."""
        admin = self._admin("list users")
        users: list[PMUser] = []
        page = 1
        while True:
            payload = self._json(
                admin,
                "GET",
                "users",
                "list users",
                params={"page": page, "limit": USER_PAGE},
            )
            batch = payload.get("users") if isinstance(payload, dict) else None
            if not isinstance(batch, list):
                raise self._http.error("list users", "the reply has no `users` list")
            for raw in batch:
                if not isinstance(raw, dict) or not raw.get("account"):
                    continue
                active = str(raw.get("deleted", "0")) in ("0", "", "False", "false")
                login = str(raw["account"])
                users.append(PMUser.by_login(login, raw.get("email"), raw.get("realname"), active))
            total = int(payload.get("total", 0) or 0)
            if not batch or page * USER_PAGE >= total:
                return users
            page += 1

    def list_worklogs(
        self, pm_users: list[str], issues: list[str], start: date, end: date
    ) -> list[RemoteWorklog]:
        """Our efforts (tag in `work`) by these accounts on these tasks, dated start..end."""
        if not pm_users or not issues:
            return []
        reader = self.admin_account or pm_users[0]
        wanted = set(pm_users)
        found = []
        for issue in dict.fromkeys(issues):
            for remote in self._efforts(reader, issue):
                if remote.pm_user in wanted and start <= remote.work_date <= end:
                    found.append(remote)
        return found

    def create(self, planned: PlannedWorklog) -> RemoteWorklog:
        """Record effort as the employee, keeping the task's `left` as it is."""
        operation = f"create {planned.worklog_key}"
        task_id = self._task_id(planned.issue, operation)
        today = self._today()
        if planned.work_date > today:
            raise self._http.error(
                operation,
                f"{planned.work_date} is in the future (today is {today} in China); ZenTao "
                "refuses effort on future dates",
            )
        account = planned.pm_user
        self._token(account)  # a refused login fails before anything else is read
        reader = self.admin_account or account
        for remote in self._efforts(reader, planned.issue):
            if remote.worklog_key == planned.worklog_key and remote.pm_user == account:
                # Already recorded (an earlier reply was lost): an effort can never be deleted
                # over REST, so a second one must not be written.
                log.info("zentao %s: already recorded as effort %s", operation, remote.remote_id)
                return remote
        left = self._current_left(account, task_id, operation)
        self._json(
            account,
            "POST",
            f"tasks/{task_id}/estimate",
            operation,
            write=True,
            body={
                "dates": [planned.work_date.isoformat()],
                "consumed": [_hours(planned.seconds)],
                "left": [left],
                "work": [TaggedText.write(planned.comment, planned.worklog_key)],
            },
        )
        # The reply is the task, not the effort: find the effort's id by our key.
        for remote in self._efforts(reader, planned.issue):
            if remote.worklog_key == planned.worklog_key and remote.pm_user == account:
                return planned.as_remote(remote.remote_id)
        raise OutcomeUnknown(
            self.system,
            operation,
            f"ZenTao accepted the effort on task {task_id} but it is not listed; re-list",
        )

    def update(self, remote: RemoteWorklog, planned: PlannedWorklog) -> RemoteWorklog:
        """Not possible over REST (see the module docstring)."""
        raise self._http.error(f"update {remote.worklog_key} (effort {remote.remote_id})", NO_EDIT)

    def delete(self, remote: RemoteWorklog) -> None:
        """Not possible over REST (see the module docstring)."""
        raise self._http.error(f"delete {remote.worklog_key} (effort {remote.remote_id})", NO_EDIT)

    # ------------------------------------------------------------------ internals

    def _efforts(self, reader: str, issue: str) -> list[RemoteWorklog]:
        operation = f"list effort of task {issue}"
        task_id = self._task_id(issue, operation)
        payload = self._json(reader, "GET", f"tasks/{task_id}/estimate", operation)
        efforts = payload.get("effort") if isinstance(payload, dict) else None
        if efforts is None:
            efforts = []  # ZenTao omits the list for a task without effort
        if not isinstance(efforts, list):
            raise self._http.error(operation, "`effort` is not a list")
        found = []
        for raw in efforts:
            if not isinstance(raw, dict):
                continue
            key, human = TaggedText.read(str(raw.get("work") or ""))
            if not key:
                continue
            try:
                found.append(
                    RemoteWorklog(
                        remote_id=str(raw["id"]),
                        worklog_key=key,
                        pm_user=str(raw["account"]),
                        issue=issue,
                        work_date=date.fromisoformat(str(raw["date"])[:10]),
                        seconds=round(float(raw["consumed"]) * 60) * 60,
                        comment=human,
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise self._http.error(
                    operation, f"an effort has an unexpected shape ({exc})"
                ) from None
        return found

    def _current_left(self, account: str, task_id: str, operation: str) -> float:
        """The task's `left` as ZenTao holds it now; never guessed (a wrong 0 closes a task)."""
        task = self._json(self.admin_account or account, "GET", f"tasks/{task_id}", operation)
        left = task.get("left") if isinstance(task, dict) else None
        try:
            value = float(left)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise self._http.error(
                operation, f"task {task_id} has no readable `left` ({left!r}); nothing recorded"
            ) from None
        if value < 0:
            raise self._http.error(operation, f"task {task_id} has a negative `left` ({value})")
        return value

    def _json(
        self,
        account: str,
        method: str,
        path: str,
        operation: str,
        *,
        write: bool = False,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """A call as `account`; a 401 drops the token, logs in again and retries once."""
        for attempt in (1, 2):
            token = self._token(account)
            response = self._http.request(
                method,
                f"{API}/{path}",
                operation=operation,
                write=write,
                params=params,
                json=body,
                headers={"Token": token},
                accept=(401,) if attempt == 1 else (),
            )
            if response.status_code != 401:
                return self._http.json(response, operation)
            self._drop_token(account, token)
        raise AssertionError("unreachable")  # pragma: no cover

    def _token(self, account: str) -> str:
        with self._guard:
            lock = self._account_locks[account]
        with lock:
            if account in self._refused:
                raise self._http.error(f"log in as {account}", self._refused[account])
            token = self._tokens.get(account)
            if token:
                return token
            token = self._login(account)
            self._tokens[account] = token
            return token

    def _login(self, account: str) -> str:
        operation = f"log in as {account}"
        password = self._password(account, operation)
        self._http.add_secret(password)
        try:
            response = self._http.request(
                "POST",
                f"{API}/tokens",
                operation=operation,
                write=True,
                json={"account": account, "password": password},
                accept=(400, 401, 403),
            )
        except OutcomeUnknown as exc:
            raise self._http.error(
                operation,
                f"{exc}; the login is not repeated blindly (failed logins lock accounts)",
                retryable=True,
            ) from None
        if response.status_code >= 400:
            why = (
                f"login refused ({self._http.describe(response)}); not retried, as failed "
                "logins lock the account: check this account's password in the secrets source"
            )
            self._refused[account] = why
            raise self._http.error(operation, why)
        payload = self._http.json(response, operation)
        token = payload.get("token") if isinstance(payload, dict) else None
        if not token:
            raise self._http.error(operation, "the reply has no `token`")
        self._http.add_secret(str(token))
        return str(token)

    def _drop_token(self, account: str, token: str) -> None:
        with self._guard:
            lock = self._account_locks[account]
        with lock:
            if self._tokens.get(account) == token:
                del self._tokens[account]

    def _password(self, account: str, operation: str) -> str:
        source = self._passwords
        try:
            password = source[account] if isinstance(source, Mapping) else source(account)
        except (KeyError, LookupError):
            password = ""
        if not password:
            raise self._http.error(
                operation, f"no password for ZenTao account {account!r} in the secrets source"
            )
        return password

    def _admin(self, operation: str) -> str:
        if not self.admin_account:
            raise self._http.error(operation, "needs admin_account (ZenTao user listing)")
        return self.admin_account

    def _task_id(self, issue: str, operation: str) -> str:
        if not issue.isdigit():
            raise self._http.error(operation, f"issue {issue!r} is not a ZenTao task id")
        return issue


def _hours(seconds: int) -> float:
    return round(seconds / 3600, 4)

"""ZenTao REST v1: token login, users, tasks and their efforts (工时, "estimate" routes).

- ``POST /api.php/v1/tokens {"account", "password"}`` -> 201 ``{"token"}``; a wrong password is
  400 and counts towards a lock-out: after ``max_failed_logins`` failures the account is locked
  for ``lock_s`` seconds and every login (even a right one) is 400 "locked". Each employee's
  password is ``sim-pass-<account>``; the admin account ``sim-user`` has ``sim-token``.
- Tokens (header ``Token``) expire after ``token_ttl_s`` idle seconds; then 401.
- ``POST /api.php/v1/tasks/{id}/estimate`` records efforts for the token's owner (never anyone
  else); a date after "today" (Asia/Shanghai, or the simulator's clock) is 400; ``left`` sets the
  task's remaining hours, and 0 finishes the task (counted as ``tasks_finished``).
- There is no route to edit or delete an effort: those paths are 404 like any unknown path.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from attendance_pipeline.simulators.pm.accounts import SERVICE_LOGIN, SIM_TOKEN, Directory
from attendance_pipeline.simulators.pm.routing import (
    BadRequest,
    NotFound,
    Reply,
    Request,
    Route,
    int_or,
    json_reply,
    route,
)
from attendance_pipeline.simulators.pm.store import Store
from attendance_pipeline.simulators.scaffold import Tally

ZENTAO_DDL = """
CREATE TABLE IF NOT EXISTS zentao_task (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    estimate REAL NOT NULL,
    consumed REAL NOT NULL,
    left_hours REAL NOT NULL,
    status TEXT NOT NULL,
    finished_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS zentao_effort (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL,
    account TEXT NOT NULL,
    date TEXT NOT NULL,
    consumed REAL NOT NULL,
    left_hours REAL NOT NULL,
    work TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS zentao_effort_by_task ON zentao_effort (task_id, date);
"""
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
WRONG_PASSWORD = "登录失败，请检查您的用户名或密码是否填写正确。(wrong account or password)"


@dataclass(frozen=True)
class ZenTaoLimits:
    token_ttl_s: float = 1440.0  # PHP's default session lifetime: 24 idle minutes
    max_failed_logins: int = 5
    lock_s: float = 600.0


def _number(value: Any, name: str, *, positive: bool) -> float:
    """A JSON number or a numeric string (ZenTao's PHP accepts both)."""
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a number, not {value!r}") from None
    if number < 0 or (positive and number <= 0):
        raise BadRequest(f"{name} must be {'above' if positive else 'at least'} 0, not {value!r}")
    return number


class ZenTaoApi:
    """``/api.php/v1/...``: tokens, users, tasks and efforts."""

    name = "zentao"

    def __init__(
        self,
        store: Store,
        directory: Directory,
        notes: Tally,
        today: Callable[[], date],
        limits: ZenTaoLimits | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.notes = notes
        self.today = today
        self.limits = limits or ZenTaoLimits()
        self.public_url = ""
        self._accounts = {SERVICE_LOGIN: directory.service}
        self._accounts.update((a.login, a) for a in directory.members())
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[str, float]] = {}  # token -> (account, idle expiry)
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        store.create_tables(ZENTAO_DDL, {"zentao_effort": 1})
        self._seed_tasks()

    def _seed_tasks(self) -> None:
        with self.store.transaction():
            if self.store.one("SELECT 1 FROM zentao_task LIMIT 1") is not None:
                return
            for task in self.directory.zentao_tasks:
                estimate = 40.0 + 8.0 * (task.id % 5)
                self.store.insert(
                    "INSERT INTO zentao_task (id, name, estimate, consumed, left_hours, status, "
                    "finished_by) VALUES (?, ?, ?, 0, ?, 'wait', '')",
                    (task.id, task.name, estimate, estimate),
                )

    # ---------------------------------------------------------------- sessions and lock-out

    def password_of(self, account: str) -> str:
        return SIM_TOKEN if account == SERVICE_LOGIN else f"sim-pass-{account}"

    def expire_tokens(self) -> None:
        with self._lock:
            self._sessions.clear()

    def unlock_accounts(self) -> None:
        with self._lock:
            self._failures.clear()
            self._locked_until.clear()

    # ---------------------------------------------------------------- SystemApi

    def routes(self) -> list[Route]:
        v1 = "/api.php/v1"
        return [
            route("POST", f"{v1}/tokens", "login", self._login),
            route("GET", f"{v1}/users", "read", self._users),
            route("GET", f"{v1}/user", "read", self._me),
            route("GET", f"{v1}/tasks/{{id}}", "read", self._task_get),
            route("GET", f"{v1}/tasks/{{id}}/estimate", "read", self._efforts),
            route("POST", f"{v1}/tasks/{{id}}/estimate", "write", self._record),
        ]

    def authenticate(self, req: Request) -> str | None:
        token = req.headers.get("token", "").strip()
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            account, expiry = session
            if expiry <= now:
                del self._sessions[token]
                return None
            self._sessions[token] = (account, now + self.limits.token_ttl_s)
            return account

    def error(self, status: int, message: str, field: str | None = None) -> Reply:
        return json_reply({"error": message}, status)

    def unmatched(self, req: Request, allowed: list[str]) -> Reply:
        return self.error(404, "404 Not found")

    def serial_key(self, req: Request) -> str | None:
        return None

    def users(self) -> list[dict[str, Any]]:
        return [self._user_json(a) for a in self._accounts]

    def issues(self) -> list[str]:
        return [t.key for t in self.directory.zentao_tasks]

    def worklogs(self) -> list[dict[str, Any]]:
        return [
            {
                **self._effort_json(r),
                "id": str(r["id"]),
                "issue": str(r["task_id"]),
                "author": r["account"],
                "work_date": r["date"],
                "seconds": round(r["consumed"] * 3600),
                "text": r["work"],
            }
            for r in self.store.query("SELECT * FROM zentao_effort ORDER BY id")
        ]

    def edit_worklog(self, remote_id: str, seconds: int) -> bool:
        """A person edits the effort in ZenTao's web UI; the task's consumed follows."""
        with self.store.transaction():
            row = self.store.one("SELECT * FROM zentao_effort WHERE id = ?", (int_or(remote_id),))
            if row is None:
                return False
            hours = seconds / 3600
            self.store.execute(
                "UPDATE zentao_effort SET consumed = ? WHERE id = ?", (hours, row["id"])
            )
            self.store.execute(
                "UPDATE zentao_task SET consumed = consumed + ? WHERE id = ?",
                (hours - row["consumed"], row["task_id"]),
            )
        return True

    # ---------------------------------------------------------------- JSON shapes

    def _user_json(self, login: str) -> dict[str, Any]:
        account = self._accounts[login]
        return {
            "id": account.number,
            "account": account.login,
            "realname": account.name,
            "email": account.email or "",
            "role": "admin" if account.kind == "service" else "dev",
            "dept": 0,
        }

    @staticmethod
    def _task_json(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "project": 1,
            "execution": 1,
            "name": row["name"],
            "type": "devel",
            "status": row["status"],
            "estimate": row["estimate"],
            "consumed": round(row["consumed"], 4),
            "left": row["left_hours"],
            "finishedBy": row["finished_by"],
        }

    @staticmethod
    def _effort_json(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "objectType": "task",
            "objectID": row["task_id"],
            "account": row["account"],
            "date": row["date"],
            "consumed": row["consumed"],
            "left": row["left_hours"],
            "work": row["work"],
        }

    # ---------------------------------------------------------------- handlers

    def _login(self, req: Request) -> Reply:
        body = req.json_object()
        account, password = body.get("account"), body.get("password")
        if not isinstance(account, str) or not isinstance(password, str) or not account:
            raise BadRequest("account and password are required")
        now = time.monotonic()
        with self._lock:
            if self._locked_until.get(account, 0.0) > now:
                minutes = max(1, round(self.limits.lock_s / 60))
                return self.error(
                    400,
                    f"account {account} is locked after {self.limits.max_failed_logins} failed "
                    f"logins: try again in {minutes} minutes",
                )
            if account not in self._accounts or password != self.password_of(account):
                failures = self._failures.get(account, 0) + 1
                self._failures[account] = failures
                self.notes.bump("failed_logins")
                if failures >= self.limits.max_failed_logins:
                    self._locked_until[account] = now + self.limits.lock_s
                    self._failures.pop(account)
                return self.error(400, WRONG_PASSWORD)
            self._failures.pop(account, None)
            token = secrets.token_hex(16)
            self._sessions[token] = (account, now + self.limits.token_ttl_s)
        return json_reply({"token": token}, 201)

    def _users(self, req: Request) -> Reply:
        everyone = list(self._accounts)
        limit = req.int_arg("limit", len(everyone), lo=1)  # no limit given: everyone
        page = req.int_arg("page", 1, lo=1)
        chunk = everyone[(page - 1) * limit : page * limit]
        return json_reply(
            {
                "page": page,
                "total": len(everyone),
                "limit": limit,
                "users": [self._user_json(a) for a in chunk],
            }
        )

    def _me(self, req: Request) -> Reply:
        return json_reply({"profile": self._user_json(req.caller)})

    def _task(self, req: Request) -> sqlite3.Row:
        row = self.store.one("SELECT * FROM zentao_task WHERE id = ?", (int_or(req.params["id"]),))
        if row is None:
            raise NotFound(f"task {req.params['id']} not found")
        return row

    def _task_get(self, req: Request) -> Reply:
        return json_reply(self._task_json(self._task(req)))

    def _efforts(self, req: Request) -> Reply:
        task = self._task(req)
        rows = self.store.query(
            "SELECT * FROM zentao_effort WHERE task_id = ? ORDER BY date, id", (task["id"],)
        )
        return json_reply({"effort": [self._effort_json(r) for r in rows]})

    def _record(self, req: Request) -> Reply:
        task = self._task(req)
        body = req.json_object()
        arrays: dict[str, list[Any]] = {}
        for name in ("dates", "consumed", "left", "work"):
            value = body.get(name, [] if name == "work" else None)
            if not isinstance(value, list):
                raise BadRequest(f"{name} must be a list")
            arrays[name] = value
        n = len(arrays["dates"])
        work = arrays["work"] or [""] * n
        if n == 0 or len(arrays["consumed"]) != n or len(arrays["left"]) != n or len(work) != n:
            raise BadRequest("dates, consumed, left and work must be lists of the same length")
        today = self.today()
        rows: list[tuple[str, float, float, str]] = []
        columns = zip(arrays["dates"], arrays["consumed"], arrays["left"], work, strict=True)
        for day, consumed, left, text in columns:
            if not isinstance(day, str) or not DATE.match(day):
                raise BadRequest(f"date {day!r} is not like 2026-11-03")
            try:
                when = date.fromisoformat(day)
            except ValueError:
                raise BadRequest(f"date {day!r} is not a real date") from None
            if when > today:
                raise BadRequest(
                    f"date {day} is in the future: work can be recorded up to today ({today})"
                )
            rows.append(
                (
                    day,
                    _number(consumed, "consumed", positive=True),
                    _number(left, "left", positive=False),
                    str(text),
                )
            )
        for day, consumed, left, text in rows:
            self.store.insert(
                "INSERT INTO zentao_effort (task_id, account, date, consumed, left_hours, work) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (task["id"], req.caller, day, consumed, left, text),
            )
        left_now = rows[-1][2]
        finished = left_now == 0
        if finished and task["status"] != "done":
            self.notes.bump("tasks_finished")
        status = "done" if finished else "doing"
        self.store.execute(
            "UPDATE zentao_task SET consumed = consumed + ?, left_hours = ?, status = ?, "
            "finished_by = ? WHERE id = ?",
            (
                sum(r[1] for r in rows),
                left_now,
                status,
                req.caller if finished else task["finished_by"],
                task["id"],
            ),
        )
        return self._task_get(req)

"""TAPD timesheets (花费工时) in workspace 100.

TAPD's habits, as the adapter meets them: everything answers HTTP 200 and only ``status == 1``
means success (business errors are ``{"status": 0, "data": {}, "info": "..."}``; auth failures
are 401); an unknown path answers 200 ``Hello world`` (text/html); one timesheet per
(entity_type, entity_id, spentdate, owner): a second create for the same natural key is refused
with status 0 "timesheet exists" (the existing record is untouched, its id is not given back);
an update is the create POST with ``id``, where ``timespent``/``memo``/``timeremain`` change and a
different owner, date or entity is refused; a delete that partly fails still says ``status: 1``
and lists the ids in ``data.data.failed``.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date, datetime
from http import HTTPStatus
from typing import Any

from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.simulators.pm.accounts import (
    SERVICE_LOGIN,
    SIM_TOKEN,
    TAPD_WORKSPACE_ID,
    Directory,
)
from attendance_pipeline.simulators.pm.jira import basic_credentials
from attendance_pipeline.simulators.pm.routing import (
    BadRequest,
    Reply,
    Request,
    Route,
    int_or,
    json_reply,
    route,
)
from attendance_pipeline.simulators.pm.store import Store

TAPD_DDL = """
CREATE TABLE IF NOT EXISTS tapd_timesheet (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id INTEGER NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id INTEGER NOT NULL,
    owner TEXT NOT NULL,
    spentdate TEXT NOT NULL,
    timespent TEXT NOT NULL,
    timeremain TEXT NOT NULL,
    memo TEXT NOT NULL,
    creator TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    UNIQUE (workspace_id, entity_type, entity_id, spentdate, owner)
);
CREATE INDEX IF NOT EXISTS tapd_timesheet_by_owner ON tapd_timesheet (owner, spentdate);
"""
FIRST_TIMESHEET_ID = 1_100_000_001
ENTITY_TYPES = ("story", "task", "bug")
DEFAULT_LIMIT = 30
MAX_LIMIT = 200
MAX_DELETE = 100
HELLO = Reply(200, b"Hello world", content_type="text/html; charset=UTF-8")
NGINX_PAGE = (
    "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}</h1>"
    "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NUMBER = re.compile(r"^\d+(\.\d+)?$")


def _now_text() -> str:
    return datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _date(value: str, name: str) -> str:
    if not DATE.match(value):
        raise BadRequest(f"{name} must be a date like 2026-11-03, not {value!r}")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} {value!r} is not a real date") from None
    return value


def _hours(value: str, name: str, *, positive: bool) -> str:
    if not NUMBER.match(value) or (positive and float(value) <= 0):
        raise BadRequest(f"{name} must be a {'positive ' if positive else ''}number, not {value!r}")
    return value


def hours_text(seconds: int) -> str:
    """Seconds as TAPD hours text, up to 4 decimals: 27000 -> "7.5"."""
    return f"{seconds / 3600:.4f}".rstrip("0").rstrip(".") or "0"


class TapdApi:
    """``/timesheets``, ``/timesheets/delete_timesheets``, ``/workspaces/users``, stories, tasks."""

    name = "tapd"

    def __init__(self, store: Store, directory: Directory) -> None:
        self.store = store
        self.directory = directory
        self.public_url = ""
        self._members = {a.login: a for a in directory.members()}
        self._entities = {(e.key.split(":")[0], e.id) for e in directory.tapd_entities}
        store.create_tables(TAPD_DDL, {"tapd_timesheet": FIRST_TIMESHEET_ID})

    # ---------------------------------------------------------------- SystemApi

    def routes(self) -> list[Route]:
        return [
            route("POST", "/timesheets", "write", self._save),
            route("GET", "/timesheets", "read", self._list),
            route("POST", "/timesheets/delete_timesheets", "write", self._delete),
            route("GET", "/workspaces/users", "read", self._users),
            route("GET", "/stories", "read", self._stories),
            route("GET", "/tasks", "read", self._tasks),
        ]

    def authenticate(self, req: Request) -> str | None:
        return SERVICE_LOGIN if basic_credentials(req) == (SERVICE_LOGIN, SIM_TOKEN) else None

    def error(self, status: int, message: str, field: str | None = None) -> Reply:
        """5xx: the gateway's HTML page; 401/429: that status; anything else: 200, status 0."""
        if status >= 500:
            page = NGINX_PAGE.format(status=f"{status} {HTTPStatus(status).phrase}")
            return Reply(status, page.encode(), content_type="text/html")
        if status in (401, 429):
            return json_reply({"status": 0, "data": {}, "info": message}, status)
        return json_reply({"status": 0, "data": {}, "info": message})

    def unmatched(self, req: Request, allowed: list[str]) -> Reply:
        return HELLO

    def serial_key(self, req: Request) -> str | None:
        return None

    def users(self) -> list[dict[str, Any]]:
        return [self._member_json(a.login) for a in self.directory.members()]

    def issues(self) -> list[str]:
        return [e.key for e in self.directory.tapd_entities]

    def worklogs(self) -> list[dict[str, Any]]:
        return [
            {
                **self._json(r),
                "id": str(r["id"]),
                "issue": f"{r['entity_type']}:{r['entity_id']}",
                "author": r["owner"],
                "work_date": r["spentdate"],
                "seconds": round(float(r["timespent"]) * 3600),
                "text": r["memo"],
            }
            for r in self.store.query("SELECT * FROM tapd_timesheet ORDER BY id")
        ]

    def edit_worklog(self, remote_id: str, seconds: int) -> bool:
        with self.store.transaction():
            changed = self.store.execute(
                "UPDATE tapd_timesheet SET timespent = ?, modified = ? WHERE id = ?",
                (hours_text(seconds), _now_text(), remote_id),
            )
        return changed > 0

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _ok(data: Any) -> Reply:
        return json_reply({"status": 1, "data": data, "info": "success"})

    @staticmethod
    def _workspace(value: str | None) -> int:
        if not value:
            raise BadRequest("workspace_id is required")
        if value != str(TAPD_WORKSPACE_ID):
            raise BadRequest(f"workspace {value} does not exist or the API user cannot access it")
        return TAPD_WORKSPACE_ID

    @staticmethod
    def _json(row: sqlite3.Row) -> dict[str, str]:
        return {
            "id": str(row["id"]),
            "entity_type": row["entity_type"],
            "entity_id": str(row["entity_id"]),
            "timespent": row["timespent"],
            "timeremain": row["timeremain"],
            "spentdate": row["spentdate"],
            "owner": row["owner"],
            "created": row["created"],
            "modified": row["modified"],
            "creator": row["creator"],
            "memo": row["memo"],
            "workspace_id": str(row["workspace_id"]),
            "is_delete": "0",
        }

    def _member_json(self, login: str) -> dict[str, Any]:
        account = self._members[login]
        return {
            "id": str(account.number),
            "user": account.login,
            "name": account.name,
            "email": account.email or "",
            "workspace_id": str(TAPD_WORKSPACE_ID),
            "role_id": ["1000000000000000002"],
            "status": "1",
        }

    # ---------------------------------------------------------------- handlers

    def _save(self, req: Request) -> Reply:
        form = {k: v[-1].strip() for k, v in req.form().items()}
        workspace = self._workspace(form.get("workspace_id"))
        if form.get("id"):
            return self._update(req, workspace, form)
        entity_type = form.get("entity_type", "")
        if entity_type not in ENTITY_TYPES:
            raise BadRequest(f"entity_type must be one of {', '.join(ENTITY_TYPES)}")
        entity_id = form.get("entity_id", "")
        if not entity_id.isdigit() or (entity_type, int(entity_id)) not in self._entities:
            raise BadRequest(f"{entity_type} {entity_id!r} does not exist in workspace {workspace}")
        owner = form.get("owner", "")
        if owner not in self._members:
            raise BadRequest(f"owner {owner!r} is not a member of workspace {workspace}")
        spentdate = _date(form.get("spentdate", ""), "spentdate")
        timespent = _hours(form.get("timespent", ""), "timespent", positive=True)
        timeremain = _hours(form.get("timeremain") or "0", "timeremain", positive=False)
        exists = self.store.one(
            "SELECT id FROM tapd_timesheet WHERE workspace_id = ? AND entity_type = ? AND "
            "entity_id = ? AND spentdate = ? AND owner = ?",
            (workspace, entity_type, int(entity_id), spentdate, owner),
        )
        if exists is not None:
            raise BadRequest("timesheet exists")
        now = _now_text()
        sheet_id = self.store.insert(
            "INSERT INTO tapd_timesheet (workspace_id, entity_type, entity_id, owner, spentdate, "
            "timespent, timeremain, memo, creator, created, modified) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                workspace,
                entity_type,
                int(entity_id),
                owner,
                spentdate,
                timespent,
                timeremain,
                form.get("memo", ""),
                req.caller,
                now,
                now,
            ),
        )
        return self._ok({"Timesheet": self._json(self._row(sheet_id))})

    def _row(self, sheet_id: int) -> sqlite3.Row:
        row = self.store.one("SELECT * FROM tapd_timesheet WHERE id = ?", (sheet_id,))
        assert row is not None
        return row

    def _update(self, req: Request, workspace: int, form: dict[str, str]) -> Reply:
        raw_id = form["id"]
        row = self.store.one(
            "SELECT * FROM tapd_timesheet WHERE id = ? AND workspace_id = ?",
            (int(raw_id) if raw_id.isdigit() else -1, workspace),
        )
        if row is None:
            raise BadRequest(f"timesheet {raw_id} does not exist")
        for name in ("owner", "spentdate", "entity_type", "entity_id"):
            if name in form and form[name] != str(row[name]):
                raise BadRequest(
                    f"a timesheet's {name} cannot change ({row[name]} -> {form[name]}): delete "
                    "it and create another"
                )
        timespent = row["timespent"]
        if "timespent" in form:
            timespent = _hours(form["timespent"], "timespent", positive=True)
        timeremain = row["timeremain"]
        if "timeremain" in form:
            timeremain = _hours(form["timeremain"], "timeremain", positive=False)
        self.store.execute(
            "UPDATE tapd_timesheet SET timespent = ?, timeremain = ?, memo = ?, modified = ? "
            "WHERE id = ?",
            (timespent, timeremain, form.get("memo", row["memo"]), _now_text(), row["id"]),
        )
        return self._ok({"Timesheet": self._json(self._row(row["id"]))})

    def _delete(self, req: Request) -> Reply:
        form = req.form()
        workspace = self._workspace((form.get("workspace_id") or [""])[-1])
        ids = [i.strip() for i in form.get("cost_ids[]", []) if i.strip()]
        ids += [i.strip() for v in form.get("cost_ids", []) for i in v.split(",") if i.strip()]
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise BadRequest("cost_ids is required")
        if len(ids) > MAX_DELETE:
            raise BadRequest(f"at most {MAX_DELETE} cost_ids per call, not {len(ids)}")
        numeric = [int(i) for i in ids if i.isdigit()]
        marks = ",".join("?" * len(numeric))
        rows = self.store.query(
            f"SELECT id, entity_type, entity_id FROM tapd_timesheet "
            f"WHERE workspace_id = ? AND id IN ({marks})",
            [workspace, *numeric],
        )
        if len({(r["entity_type"], r["entity_id"]) for r in rows}) > 1:
            raise BadRequest("cost_ids must all belong to the same entity")
        found = {str(r["id"]) for r in rows}
        self.store.execute(
            f"DELETE FROM tapd_timesheet WHERE workspace_id = ? AND id IN ({marks})",
            [workspace, *numeric],
        )
        outcome = {
            "success": [i for i in ids if i in found],
            "failed": [i for i in ids if i not in found],
        }
        return self._ok({"data": outcome})

    def _list(self, req: Request) -> Reply:
        where = ["workspace_id = ?"]
        args: list[Any] = [self._workspace(req.arg("workspace_id"))]
        for name in ("owner", "entity_type", "entity_id", "id"):
            value = req.arg(name)
            if value:
                where.append(f"{name} = ?")
                args.append(value if name in ("owner", "entity_type") else int_or(value))
        spent = req.arg("spentdate")
        if spent:
            first, sep, last = spent.partition("~")
            if sep:
                where.append("spentdate BETWEEN ? AND ?")
                args += [_date(first, "spentdate"), _date(last, "spentdate")]
            else:
                where.append("spentdate = ?")
                args.append(_date(first, "spentdate"))
        limit = min(req.int_arg("limit", DEFAULT_LIMIT, lo=1), MAX_LIMIT)
        page = req.int_arg("page", 1, lo=1)
        rows = self.store.query(
            f"SELECT * FROM tapd_timesheet WHERE {' AND '.join(where)} ORDER BY id "
            "LIMIT ? OFFSET ?",
            [*args, limit, (page - 1) * limit],
        )
        return self._ok([{"Timesheet": self._json(r)} for r in rows])

    def _users(self, req: Request) -> Reply:
        self._workspace(req.arg("workspace_id"))
        return self._ok([{"UserWorkspace": u} for u in self.users()])

    def _entities_of(self, req: Request, entity_type: str, wrapper: str) -> Reply:
        workspace = self._workspace(req.arg("workspace_id"))
        items = [
            {
                wrapper: {
                    "id": str(e.id),
                    "name": e.name,
                    "workspace_id": str(workspace),
                    "status": "open",
                }
            }
            for e in self.directory.tapd_entities
            if e.key.startswith(f"{entity_type}:")
        ]
        return self._ok(items)

    def _stories(self, req: Request) -> Reply:
        return self._entities_of(req, "story", "Story")

    def _tasks(self, req: Request) -> Reply:
        return self._entities_of(req, "task", "Task")

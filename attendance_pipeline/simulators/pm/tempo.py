"""Tempo Cloud REST v4 worklogs (a Jira app: its authors are Jira accountIds, its issues Jira ids).

Tempo logs for others (``authorAccountId``, any active Jira account: the service account has
"Log Work for Others"). Work attributes must be defined first; the simulator defines
``_attendance_`` (a static text attribute, listed by ``GET /4/work-attributes``) and refuses any
other key. ``limit`` above 1000 is silently capped, as Tempo does: page with ``metadata.next``.
Tempo worklogs are kept apart from Jira's own worklog lists here.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from attendance_pipeline.simulators.pm.accounts import SIM_TOKEN, Directory, WorkItem
from attendance_pipeline.simulators.pm.jira import bearer_token, now_ms, user_json
from attendance_pipeline.simulators.pm.routing import (
    BadRequest,
    NotFound,
    Reply,
    Request,
    Route,
    empty_reply,
    int_or,
    json_reply,
    route,
)
from attendance_pipeline.simulators.pm.store import Store

TEMPO_DDL = """
CREATE TABLE IF NOT EXISTS tempo_worklog (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id INTEGER NOT NULL,
    author TEXT NOT NULL,
    start_date TEXT NOT NULL,
    start_time TEXT NOT NULL,
    seconds INTEGER NOT NULL,
    billable_seconds INTEGER NOT NULL,
    description TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tempo_worklog_by_date ON tempo_worklog (start_date);
"""
WORK_ATTRIBUTES = (
    {"key": "_attendance_", "name": "Attendance key", "type": "INPUT_FIELD", "required": False},
)
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date(value: Any, name: str) -> str:
    if not isinstance(value, str) or not DATE.match(value):
        raise BadRequest(f"{name} must be a date like 2026-11-03, not {value!r}")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} {value!r} is not a real date") from None
    return value


class TempoApi:
    """``/4/worklogs`` and ``/4/work-attributes``."""

    name = "tempo"

    def __init__(self, store: Store, directory: Directory) -> None:
        self.store = store
        self.directory = directory
        self.public_url = ""
        store.create_tables(TEMPO_DDL, {"tempo_worklog": 1})

    # ---------------------------------------------------------------- SystemApi

    def routes(self) -> list[Route]:
        return [
            route("GET", "/4/worklogs", "read", self._list),
            route("POST", "/4/worklogs", "write", self._create),
            route("GET", "/4/worklogs/{id}", "read", self._get),
            route("PUT", "/4/worklogs/{id}", "write", self._update),
            route("DELETE", "/4/worklogs/{id}", "write", self._delete),
            route("GET", "/4/work-attributes", "read", self._attributes),
        ]

    def authenticate(self, req: Request) -> str | None:
        return self.directory.service.account_id if bearer_token(req) == SIM_TOKEN else None

    def error(self, status: int, message: str, field: str | None = None) -> Reply:
        return json_reply({"errors": [{"message": message}]}, status)

    def unmatched(self, req: Request, allowed: list[str]) -> Reply:
        if allowed:
            return self.error(405, f"{req.method} is not allowed here; use {', '.join(allowed)}")
        return self.error(404, f"no Tempo resource at {req.path}")

    def serial_key(self, req: Request) -> str | None:
        return None

    def users(self) -> list[dict[str, Any]]:
        """Tempo has no user list of its own: its authors are the Jira site's accounts."""
        return [user_json(a, "3", self.public_url) for a in self.directory.members(jira=True)]

    def issues(self) -> list[str]:
        """Tempo v4 takes the numeric Jira issue id."""
        return [str(i.id) for i in self.directory.jira_issues]

    def worklogs(self) -> list[dict[str, Any]]:
        keys = {i.id: i.key for i in self.directory.jira_issues}
        return [
            {
                "id": str(r["id"]),
                "issue": str(r["issue_id"]),
                "issue_key": keys.get(r["issue_id"]),
                "author": r["author"],
                "work_date": r["start_date"],
                "start_time": r["start_time"],
                "seconds": r["seconds"],
                "text": r["description"],
                "attributes": {a["key"]: a["value"] for a in json.loads(r["attributes"])},
            }
            for r in self.store.query("SELECT * FROM tempo_worklog ORDER BY id")
        ]

    def edit_worklog(self, remote_id: str, seconds: int) -> bool:
        with self.store.transaction():
            changed = self.store.execute(
                "UPDATE tempo_worklog SET seconds = ?, billable_seconds = ?, updated_ms = ? "
                "WHERE id = ?",
                (seconds, seconds, now_ms(), int_or(remote_id)),
            )
        return changed > 0

    # ---------------------------------------------------------------- handlers

    def _validated(self, body: dict[str, Any]) -> dict[str, Any]:
        issue_id = body.get("issueId")
        issue: WorkItem | None = None
        if isinstance(issue_id, int) and not isinstance(issue_id, bool):
            issue = self.directory.jira_issue(str(issue_id))
        if issue is None:
            raise BadRequest(f"Issue with id {issue_id!r} does not exist (issueId is required)")
        seconds = body.get("timeSpentSeconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise BadRequest("timeSpentSeconds must be a positive whole number of seconds")
        billable = body.get("billableSeconds", seconds)
        if isinstance(billable, bool) or not isinstance(billable, int) or billable < 0:
            raise BadRequest("billableSeconds must be a whole number of seconds >= 0")
        start_time = body.get("startTime", "00:00:00")
        if not isinstance(start_time, str) or not TIME.match(start_time):
            raise BadRequest(f"startTime must look like 09:00:00, not {start_time!r}")
        description = body.get("description")
        if description is None or description == "":
            description = f"Working on issue {issue.key}"
        if not isinstance(description, str):
            raise BadRequest("description must be a string")
        author_id = body.get("authorAccountId")
        author = self.directory.by_account_id(author_id) if isinstance(author_id, str) else None
        if author is None or not author.active:
            raise BadRequest(f"authorAccountId {author_id!r} is not an active Jira user")
        return {
            "issue_id": issue.id,
            "author": author.account_id,
            "start_date": _date(body.get("startDate"), "startDate"),
            "start_time": start_time,
            "seconds": seconds,
            "billable_seconds": billable,
            "description": description,
            "attributes": json.dumps(self._attribute_values(body.get("attributes"))),
        }

    def _attribute_values(self, value: Any) -> list[dict[str, str]]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise BadRequest("attributes must be a list of {key, value}")
        known = {a["key"] for a in WORK_ATTRIBUTES}
        out: list[dict[str, str]] = []
        for item in value:
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                raise BadRequest("each attribute needs a key and a value")
            if item["key"] not in known:
                raise BadRequest(f"Work attribute '{item['key']}' does not exist")
            out.append({"key": item["key"], "value": str(item.get("value", ""))})
        return out

    def _row(self, req: Request) -> sqlite3.Row:
        row = self.store.one(
            "SELECT * FROM tempo_worklog WHERE id = ?", (int_or(req.params["id"]),)
        )
        if row is None:
            raise NotFound(f"Worklog with id {req.params['id']} not found")
        return row

    def _json(self, base: str, row: sqlite3.Row) -> dict[str, Any]:
        worklog_id = row["id"]
        return {
            "self": f"{base}/4/worklogs/{worklog_id}",
            "tempoWorklogId": worklog_id,
            "issue": {"self": f"{base}/rest/api/2/issue/{row['issue_id']}", "id": row["issue_id"]},
            "timeSpentSeconds": row["seconds"],
            "billableSeconds": row["billable_seconds"],
            "startDate": row["start_date"],
            "startTime": row["start_time"],
            "description": row["description"],
            "createdAt": _utc(row["created_ms"]),
            "updatedAt": _utc(row["updated_ms"]),
            "author": {
                "self": f"{base}/rest/api/2/user?accountId={row['author']}",
                "accountId": row["author"],
            },
            "attributes": {
                "self": f"{base}/4/worklogs/{worklog_id}/work-attribute-values",
                "values": json.loads(row["attributes"]),
            },
        }

    def _reply(self, req: Request, worklog_id: int) -> Reply:
        row = self.store.one("SELECT * FROM tempo_worklog WHERE id = ?", (worklog_id,))
        assert row is not None
        return json_reply(self._json(req.base_url, row))

    def _create(self, req: Request) -> Reply:
        fields = self._validated(req.json_object())
        now = now_ms()
        fields.update(created_ms=now, updated_ms=now)
        names = ", ".join(fields)
        worklog_id = self.store.insert(
            f"INSERT INTO tempo_worklog ({names}) VALUES ({', '.join('?' * len(fields))})",
            list(fields.values()),
        )
        return self._reply(req, worklog_id)

    def _update(self, req: Request) -> Reply:
        row = self._row(req)
        fields = self._validated(req.json_object())  # v4 PUT replaces the whole worklog
        fields["updated_ms"] = now_ms()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self.store.execute(
            f"UPDATE tempo_worklog SET {assignments} WHERE id = ?", [*fields.values(), row["id"]]
        )
        return self._reply(req, row["id"])

    def _delete(self, req: Request) -> Reply:
        row = self._row(req)
        self.store.execute("DELETE FROM tempo_worklog WHERE id = ?", (row["id"],))
        return empty_reply(204)

    def _get(self, req: Request) -> Reply:
        return self._reply(req, self._row(req)["id"])

    def _list(self, req: Request) -> Reply:
        where: list[str] = []
        args: list[Any] = []
        if req.arg("from"):
            where.append("start_date >= ?")
            args.append(_date(req.arg("from"), "from"))
        if req.arg("to"):
            where.append("start_date <= ?")
            args.append(_date(req.arg("to"), "to"))
        issue_ids = [int_or(i) for v in req.query.get("issueId", []) for i in v.split(",") if i]
        if issue_ids:
            where.append(f"issue_id IN ({','.join('?' * len(issue_ids))})")
            args.extend(issue_ids)
        offset = req.int_arg("offset", 0)
        limit = min(req.int_arg("limit", DEFAULT_LIMIT, lo=1), MAX_LIMIT)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        total_row = self.store.one(f"SELECT COUNT(*) AS n FROM tempo_worklog {clause}", args)
        total = total_row["n"] if total_row is not None else 0
        rows = self.store.query(
            f"SELECT * FROM tempo_worklog {clause} ORDER BY start_date, start_time, id "
            "LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        metadata: dict[str, Any] = {"count": len(rows), "offset": offset, "limit": limit}
        if offset + limit < total:
            metadata["next"] = self._page_url(req, offset + limit, limit)
        if offset > 0:
            metadata["previous"] = self._page_url(req, max(0, offset - limit), limit)
        return json_reply(
            {
                "self": self._page_url(req, offset, limit),
                "metadata": metadata,
                "results": [self._json(req.base_url, r) for r in rows],
            }
        )

    def _page_url(self, req: Request, offset: int, limit: int) -> str:
        query = [(k, v) for k, vs in req.query.items() if k not in ("offset", "limit") for v in vs]
        query += [("offset", str(offset)), ("limit", str(limit))]
        return f"{req.base_url}{req.path}?{urlencode(query)}"

    def _attributes(self, req: Request) -> Reply:
        results = [dict(a) for a in WORK_ATTRIBUTES]
        metadata = {"count": len(results), "offset": 0, "limit": MAX_LIMIT}
        body = {"self": f"{req.base_url}/4/work-attributes", "metadata": metadata}
        return json_reply({**body, "results": results})

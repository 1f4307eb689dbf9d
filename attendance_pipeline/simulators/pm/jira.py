"""Jira worklogs: Cloud REST v3 and Data Center REST v2, with worklog properties.

What an adapter must get right, enforced here: ``started`` exactly ``yyyy-MM-dd'T'HH:mm:ss.SSSZ``
(``+0800`` offset), at least 60 s, a v3 comment as an Atlassian document and a v2 comment as a
string, and the author is always the caller. ``adjustEstimate=leave`` / ``notifyUsers=false`` are
not required, but every write without them is counted (``estimate_changed`` / ``notified``).
``started`` comes back as the same instant in the service account's zone (Asia/Shanghai).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sqlite3
import time
from datetime import datetime
from functools import partial
from typing import Any

from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.simulators.pm.accounts import (
    JIRA_PROJECT,
    SERVICE_LOGIN,
    SIM_TOKEN,
    Account,
    Directory,
    WorkItem,
)
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
from attendance_pipeline.simulators.scaffold import Tally

JIRA_DDL = """
CREATE TABLE IF NOT EXISTS jira_worklog (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id INTEGER NOT NULL,
    author TEXT NOT NULL,
    update_author TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    seconds INTEGER NOT NULL,
    comment TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jira_worklog_by_issue ON jira_worklog (issue_id, started_ms);
CREATE TABLE IF NOT EXISTS jira_worklog_property (
    worklog_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (worklog_id, key)
);
"""
FIRST_WORKLOG_ID = 10_100
STARTED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{4}$")
STARTED_HINT = "yyyy-MM-dd'T'HH:mm:ss.SSSZ, e.g. 2026-11-03T09:00:00.000+0800"
MIN_SECONDS = 60
MAX_WORKLOG_PAGE = 5000
MAX_USER_PAGE = 1000
DEFAULT_USER_PAGE = 50
PROPERTY_MAX_CHARS = 32_768
PROPERTY_KEY_MAX = 255


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def jira_time(ms: int) -> str:
    """Epoch ms as Jira writes times: ``2026-11-03T09:00:00.000+0800`` (Asia/Shanghai)."""
    moment = datetime.fromtimestamp(ms // 1000, SHANGHAI)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}{moment:%z}"


def jira_duration(seconds: int) -> str:
    """``timeSpent`` as Jira prints it (8-hour days, 5-day weeks): 28800 -> "1d"."""
    parts: list[str] = []
    rest = seconds // 60
    for unit, size in (("w", 5 * 8 * 60), ("d", 8 * 60), ("h", 60), ("m", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0m"


def parse_started(value: Any) -> int:
    """A Jira ``started`` string to epoch ms; anything but the exact format is a 400."""
    if not isinstance(value, str) or not STARTED.match(value):
        raise BadRequest(f"Invalid started date {value!r}: expected {STARTED_HINT}", "started")
    try:
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        raise BadRequest(
            f"Invalid started date {value!r}: not a real date/time", "started"
        ) from None
    return round(moment.timestamp() * 1000)


def adf_text(doc: dict[str, Any]) -> str:
    """The text of an Atlassian document, one line per block (hardBreak: a new line)."""

    def inline(node: Any) -> str:
        if not isinstance(node, dict):
            return ""
        if node.get("type") == "text":
            return str(node.get("text", ""))
        if node.get("type") == "hardBreak":
            return "\n"
        return "".join(inline(child) for child in node.get("content") or [])

    return "\n".join(inline(block) for block in doc.get("content") or [])


def adf_document(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian document, one paragraph per line."""
    content = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
        for line in text.split("\n")
    ]
    return {"type": "doc", "version": 1, "content": content}


def comment_text(value: Any, version: str) -> str:
    """v3 takes an Atlassian document, v2 a string; both are stored as plain text."""
    if value is None:
        return ""
    if version == "3":
        if (
            not isinstance(value, dict)
            or value.get("type") != "doc"
            or value.get("version") != 1
            or not isinstance(value.get("content"), list)
        ):
            raise BadRequest(
                "Comment must be an Atlassian Document "
                '({"type": "doc", "version": 1, "content": [...]}) in REST v3',
                "comment",
            )
        return adf_text(value)
    if not isinstance(value, str):
        raise BadRequest("Comment must be a string in REST v2", "comment")
    return value


def parse_properties(value: Any) -> list[tuple[str, str]]:
    """``[{key, value}]`` -> [(key, JSON text)], within Jira's size limits."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest("properties must be a list of {key, value}", "properties")
    out: list[tuple[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or "value" not in item:
            raise BadRequest("each property needs a key and a value", "properties")
        out.append((_property_key(item.get("key")), _property_value(item["value"])))
    return out


def _property_key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > PROPERTY_KEY_MAX:
        raise BadRequest(
            f"a property key must be a string of 1..{PROPERTY_KEY_MAX} characters", "properties"
        )
    return key


def _property_value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    if len(text) > PROPERTY_MAX_CHARS:
        raise BadRequest(
            f"a property value may hold at most {PROPERTY_MAX_CHARS} characters", "properties"
        )
    return text


def user_json(account: Account, version: str, base: str) -> dict[str, Any]:
    """A Jira user; e-mail only when the account has one, ``name``/``key`` only in v2 (DC)."""
    user: dict[str, Any] = {
        "self": f"{base}/rest/api/{version}/user?accountId={account.account_id}",
        "accountId": account.account_id,
        "accountType": "app" if account.kind == "service" else "atlassian",
        "displayName": account.name,
        "active": account.active,
        "timeZone": "Asia/Shanghai",
        "locale": "zh_CN",
    }
    if account.email:
        user["emailAddress"] = account.email
    if version == "2":
        user["name"] = account.login
        user["key"] = account.login
    return user


def basic_credentials(req: Request) -> tuple[str, str] | None:
    """(login, password) from ``Authorization: Basic``, or None."""
    scheme, _, value = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        login, sep, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (login, password) if sep else None


def bearer_token(req: Request) -> str | None:
    scheme, _, value = req.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


class JiraApi:
    """Jira's worklog, user and issue routes for REST v2 and v3."""

    name = "jira"

    def __init__(self, store: Store, directory: Directory, notes: Tally) -> None:
        self.store = store
        self.directory = directory
        self.notes = notes
        self.public_url = ""
        store.create_tables(JIRA_DDL, {"jira_worklog": FIRST_WORKLOG_ID})

    # ---------------------------------------------------------------- SystemApi

    def routes(self) -> list[Route]:
        out: list[Route] = []
        for v in ("2", "3"):
            api = f"/rest/api/{v}"
            wl = f"{api}/issue/{{key}}/worklog"
            out += [
                route("GET", f"{api}/myself", "read", partial(self._myself, v)),
                route("GET", f"{api}/users/search", "read", partial(self._users_search, v)),
                route("GET", f"{api}/user/search", "read", partial(self._user_search, v)),
                route("GET", f"{api}/issue/{{key}}", "read", partial(self._issue_get, v)),
                route("GET", wl, "read", partial(self._list, v)),
                route("POST", wl, "write", partial(self._create, v)),
                route("GET", f"{wl}/{{id}}", "read", partial(self._get, v)),
                route("PUT", f"{wl}/{{id}}", "write", partial(self._update, v)),
                route("DELETE", f"{wl}/{{id}}", "write", self._delete),
                route("GET", f"{wl}/{{id}}/properties", "read", partial(self._property_keys, v)),
                route("GET", f"{wl}/{{id}}/properties/{{prop}}", "read", self._property_get),
                route("PUT", f"{wl}/{{id}}/properties/{{prop}}", "write", self._property_put),
                route("DELETE", f"{wl}/{{id}}/properties/{{prop}}", "write", self._property_del),
            ]
        return out

    def authenticate(self, req: Request) -> str | None:
        """Basic ``sim-user:sim-token`` (or ``<account e-mail>:sim-token``), or Bearer."""
        if bearer_token(req) == SIM_TOKEN:
            return self.directory.service.account_id
        creds = basic_credentials(req)
        if creds is None or creds[1] != SIM_TOKEN:
            return None
        login = creds[0]
        if login == SERVICE_LOGIN:
            return self.directory.service.account_id
        account = self.directory.by_email(login)
        return account.account_id if account is not None and account.active else None

    def error(self, status: int, message: str, field: str | None = None) -> Reply:
        if field:
            return json_reply({"errorMessages": [], "errors": {field: message}}, status)
        return json_reply({"errorMessages": [message], "errors": {}}, status)

    def unmatched(self, req: Request, allowed: list[str]) -> Reply:
        if allowed:
            return self.error(405, f"{req.method} is not allowed here; use {', '.join(allowed)}")
        return self.error(404, f"null for uri: {req.base_url}{req.path}")

    def serial_key(self, req: Request) -> str | None:
        issue = self.directory.jira_issue(req.params.get("key", ""))
        return f"jira-issue:{issue.id}" if issue is not None else None

    def users(self) -> list[dict[str, Any]]:
        return [user_json(a, "3", self.public_url) for a in self.directory.members(jira=True)]

    def issues(self) -> list[str]:
        return [i.key for i in self.directory.jira_issues]

    def worklogs(self) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT * FROM jira_worklog ORDER BY id")
        props = self._properties_of([r["id"] for r in rows])
        keys = {i.id: i.key for i in self.directory.jira_issues}
        return [
            {
                "id": str(r["id"]),
                "issue": keys.get(r["issue_id"], str(r["issue_id"])),
                "issue_id": str(r["issue_id"]),
                "author": r["author"],
                "update_author": r["update_author"],
                "work_date": datetime.fromtimestamp(r["started_ms"] // 1000, SHANGHAI)
                .date()
                .isoformat(),
                "started": jira_time(r["started_ms"]),
                "seconds": r["seconds"],
                "text": r["comment"],
                "properties": {p["key"]: p["value"] for p in props.get(r["id"], [])},
                "created": jira_time(r["created_ms"]),
                "updated": jira_time(r["updated_ms"]),
            }
            for r in rows
        ]

    def edit_worklog(self, remote_id: str, seconds: int) -> bool:
        """A person edits the entry in Jira: they become the update author."""
        with self.store.transaction():
            changed = self.store.execute(
                "UPDATE jira_worklog SET seconds = ?, updated_ms = ?, update_author = author "
                "WHERE id = ?",
                (seconds, now_ms(), int_or(remote_id, -1)),
            )
        return changed > 0

    # ---------------------------------------------------------------- users and issues

    def _myself(self, v: str, req: Request) -> Reply:
        account = self.directory.by_account_id(req.caller)
        assert account is not None
        return json_reply(user_json(account, v, req.base_url))

    def _users_search(self, v: str, req: Request) -> Reply:
        return self._user_page(v, req, self.directory.members(jira=True))

    def _user_search(self, v: str, req: Request) -> Reply:
        """``user/search?query=`` (Cloud) or ``?username=`` (DC, where "." matches everyone)."""
        text = (req.arg("query") or req.arg("username") or "").strip().lower()
        if not text:
            raise BadRequest("The query parameter 'query' is required", "query")
        found = [
            a
            for a in self.directory.members(jira=True)
            if text == "."
            or any(text in (s or "").lower() for s in (a.login, a.email, a.name, a.account_id))
        ]
        return self._user_page(v, req, found)

    def _user_page(self, v: str, req: Request, accounts: list[Account]) -> Reply:
        start = req.int_arg("startAt", 0)
        size = min(req.int_arg("maxResults", DEFAULT_USER_PAGE), MAX_USER_PAGE)
        return json_reply([user_json(a, v, req.base_url) for a in accounts[start : start + size]])

    def _issue(self, req: Request) -> WorkItem:
        issue = self.directory.jira_issue(req.params["key"])
        if issue is None:
            raise NotFound("Issue does not exist or you do not have permission to see it.")
        return issue

    def _issue_get(self, v: str, req: Request) -> Reply:
        issue = self._issue(req)
        project = {**JIRA_PROJECT, "self": f"{req.base_url}/rest/api/{v}/project/10000"}
        return json_reply(
            {
                "id": str(issue.id),
                "key": issue.key,
                "self": f"{req.base_url}/rest/api/{v}/issue/{issue.id}",
                "fields": {"summary": issue.name, "project": project},
            }
        )

    # ---------------------------------------------------------------- worklogs

    def _worklog(self, req: Request, issue: WorkItem) -> sqlite3.Row:
        row = self.store.one(
            "SELECT * FROM jira_worklog WHERE id = ? AND issue_id = ?",
            (int_or(req.params["id"], -1), issue.id),
        )
        if row is None:
            raise NotFound(f"Cannot find worklog with id: {req.params['id']}")
        return row

    def _properties_of(self, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            marks = ",".join("?" * len(part))
            for p in self.store.query(
                f"SELECT * FROM jira_worklog_property WHERE worklog_id IN ({marks}) "
                "ORDER BY worklog_id, key",
                part,
            ):
                out.setdefault(p["worklog_id"], []).append(
                    {"key": p["key"], "value": json.loads(p["value"])}
                )
        return out

    def _worklog_json(
        self, v: str, base: str, row: sqlite3.Row, props: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        def person(account_id: str) -> dict[str, Any]:
            account = self.directory.by_account_id(account_id)
            return {"accountId": account_id} if account is None else user_json(account, v, base)

        out: dict[str, Any] = {
            "self": f"{base}/rest/api/{v}/issue/{row['issue_id']}/worklog/{row['id']}",
            "author": person(row["author"]),
            "updateAuthor": person(row["update_author"]),
        }
        if row["comment"]:
            out["comment"] = adf_document(row["comment"]) if v == "3" else row["comment"]
        out.update(
            created=jira_time(row["created_ms"]),
            updated=jira_time(row["updated_ms"]),
            started=jira_time(row["started_ms"]),
            timeSpent=jira_duration(row["seconds"]),
            timeSpentSeconds=row["seconds"],
            id=str(row["id"]),
            issueId=str(row["issue_id"]),
        )
        if props is not None:
            out["properties"] = props
        return out

    def _reply_worklog(self, v: str, req: Request, worklog_id: int, status: int) -> Reply:
        row = self.store.one("SELECT * FROM jira_worklog WHERE id = ?", (worklog_id,))
        assert row is not None
        props = self._properties_of([worklog_id]).get(worklog_id, []) if _expands(req) else None
        return json_reply(self._worklog_json(v, req.base_url, row, props), status)

    def _note_flags(self, req: Request) -> None:
        """Writes without ``adjustEstimate=leave`` / ``notifyUsers=false`` change estimates and
        mail watchers in a real Jira: count them so tests can prove the adapter sends both."""
        if req.arg("adjustEstimate") != "leave":
            self.notes.bump("estimate_changed")
        if req.arg("notifyUsers") != "false":
            self.notes.bump("notified")

    def _set_properties(self, worklog_id: int, props: list[tuple[str, str]]) -> None:
        for key, value in props:
            self.store.execute(
                "INSERT OR REPLACE INTO jira_worklog_property (worklog_id, key, value) "
                "VALUES (?, ?, ?)",
                (worklog_id, key, value),
            )

    def _list(self, v: str, req: Request) -> Reply:
        issue = self._issue(req)
        after = req.int_arg("startedAfter", 0)
        before = req.int_arg("startedBefore", 2**62)
        start = req.int_arg("startAt", 0)
        size = min(req.int_arg("maxResults", MAX_WORKLOG_PAGE), MAX_WORKLOG_PAGE)
        where = "issue_id = ? AND started_ms >= ? AND started_ms < ?"
        args = (issue.id, after, before)
        total_row = self.store.one(f"SELECT COUNT(*) AS n FROM jira_worklog WHERE {where}", args)
        rows = self.store.query(
            f"SELECT * FROM jira_worklog WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
            (*args, size, start),
        )
        props = self._properties_of([r["id"] for r in rows]) if _expands(req) else None
        worklogs = [
            self._worklog_json(
                v, req.base_url, r, None if props is None else props.get(r["id"], [])
            )
            for r in rows
        ]
        total = total_row["n"] if total_row is not None else 0
        return json_reply(
            {"startAt": start, "maxResults": size, "total": total, "worklogs": worklogs}
        )

    def _get(self, v: str, req: Request) -> Reply:
        row = self._worklog(req, self._issue(req))
        return self._reply_worklog(v, req, row["id"], 200)

    def _create(self, v: str, req: Request) -> Reply:
        issue = self._issue(req)
        body = req.json_object()
        if "started" not in body:
            raise BadRequest("Started date is required", "started")
        started = parse_started(body["started"])
        seconds = _seconds(body)
        comment = comment_text(body.get("comment"), v)
        props = parse_properties(body.get("properties"))
        now = now_ms()
        worklog_id = self.store.insert(
            "INSERT INTO jira_worklog (issue_id, author, update_author, started_ms, seconds, "
            "comment, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (issue.id, req.caller, req.caller, started, seconds, comment, now, now),
        )
        self._set_properties(worklog_id, props)
        self._note_flags(req)
        return self._reply_worklog(v, req, worklog_id, 201)

    def _update(self, v: str, req: Request) -> Reply:
        row = self._worklog(req, self._issue(req))
        body = req.json_object()
        started = parse_started(body["started"]) if "started" in body else row["started_ms"]
        seconds = _seconds(body) if "timeSpentSeconds" in body else row["seconds"]
        comment = comment_text(body["comment"], v) if "comment" in body else row["comment"]
        props = parse_properties(body.get("properties"))
        self.store.execute(
            "UPDATE jira_worklog SET started_ms = ?, seconds = ?, comment = ?, updated_ms = ?, "
            "update_author = ? WHERE id = ?",
            (started, seconds, comment, now_ms(), req.caller, row["id"]),
        )
        self._set_properties(row["id"], props)
        self._note_flags(req)
        return self._reply_worklog(v, req, row["id"], 200)

    def _delete(self, req: Request) -> Reply:
        row = self._worklog(req, self._issue(req))
        self.store.execute("DELETE FROM jira_worklog_property WHERE worklog_id = ?", (row["id"],))
        self.store.execute("DELETE FROM jira_worklog WHERE id = ?", (row["id"],))
        self._note_flags(req)
        return empty_reply(204)

    # ---------------------------------------------------------------- worklog properties

    def _property_row(self, req: Request) -> tuple[int, sqlite3.Row | None]:
        worklog = self._worklog(req, self._issue(req))
        key = _property_key(req.params["prop"])
        found = self.store.one(
            "SELECT * FROM jira_worklog_property WHERE worklog_id = ? AND key = ?",
            (worklog["id"], key),
        )
        return worklog["id"], found

    def _property_keys(self, v: str, req: Request) -> Reply:
        worklog = self._worklog(req, self._issue(req))
        base = f"{req.base_url}/rest/api/{v}/issue/{worklog['issue_id']}/worklog/{worklog['id']}"
        keys = [
            {"self": f"{base}/properties/{p['key']}", "key": p["key"]}
            for p in self._properties_of([worklog["id"]]).get(worklog["id"], [])
        ]
        return json_reply({"keys": keys})

    def _property_get(self, req: Request) -> Reply:
        _, found = self._property_row(req)
        if found is None:
            raise NotFound(f"The property with key '{req.params['prop']}' does not exist.")
        return json_reply({"key": found["key"], "value": json.loads(found["value"])})

    def _property_put(self, req: Request) -> Reply:
        worklog_id, found = self._property_row(req)
        self._set_properties(worklog_id, [(req.params["prop"], _property_value(req.json()))])
        return empty_reply(200 if found is not None else 201)

    def _property_del(self, req: Request) -> Reply:
        worklog_id, found = self._property_row(req)
        if found is None:
            raise NotFound(f"The property with key '{req.params['prop']}' does not exist.")
        self.store.execute(
            "DELETE FROM jira_worklog_property WHERE worklog_id = ? AND key = ?",
            (worklog_id, found["key"]),
        )
        return empty_reply(204)


def _expands(req: Request) -> bool:
    return "properties" in (req.arg("expand") or "").split(",")


def _seconds(body: dict[str, Any]) -> int:
    seconds = body.get("timeSpentSeconds")
    if seconds is None:
        raise BadRequest("You must indicate the time spent working.", "timeLogged")
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise BadRequest("timeSpentSeconds must be a whole number of seconds", "timeSpentSeconds")
    if seconds < MIN_SECONDS:
        raise BadRequest(
            f"Time spent must be at least one minute ({MIN_SECONDS} s), not {seconds} s",
            "timeLogged",
        )
    return seconds

"""TAPD timesheets (花费工时) over the TAPD open API.

- `pm_user` is the owner's nickname (TAPD lets the API user log for any owner); `issue` is
  `"<entity_type>:<entity_id>"` with entity_type story, task or bug, e.g. `"story:1001"`.
- TAPD keeps **one timesheet per (entity, spentdate, owner)**: that natural key is what makes a
  write idempotent. The adapter still writes our key as a tag on the memo's last line, because the
  adapter cannot recompute a worklog key (it does not know the DingTalk userid) and because only
  the tag tells our timesheets from people's.
- `list_worklogs` returns only timesheets whose memo carries our tag. A timesheet someone entered
  by hand is never listed, so the pusher never updates or deletes it. When a create meets one for
  the same natural key (checked by a read just before the write), it raises a PMError "a timesheet
  already exists for <owner> on <date> on <issue>" and writes nothing: a person decides (merge or
  remove it in TAPD). One already carrying the *same* key (an earlier create whose reply was lost)
  is updated instead, so a create is idempotent. Two planned worklogs with the same natural key
  (work and overtime on one entity and day) collide the same way: TAPD cannot hold both.
- `timespent` is a string of hours (or of `timespent_unit_hours`-hour units for projects that
  count days), written with up to 4 decimals and read back rounded to the whole minute (the plan
  is in whole minutes).
- `timeremain` is never sent: the contract lists no such field, and whether a real TAPD then
  leaves the entity's remaining effort alone is unverified.
- TAPD answers HTTP 200 for almost everything: every reply must be JSON with `status == 1`, and an
  unknown path answers 200 "Hello world", reported as a wrong base URL. A delete that says
  `status: 1` can still list the id under `data.data.failed`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from attendance_pipeline.pm.base import (
    OutcomeUnknown,
    PlannedWorklog,
    PMError,
    PMUser,
    RemoteWorklog,
    TaggedText,
)
from attendance_pipeline.pm.http import HttpWorklogStore, RetryPolicy

ENTITY_TYPES = ("story", "task", "bug")
PAGE_LIMIT = 200  # TAPD's maximum
NON_API_PAGE = "TAPD answered with a non-API page: check PM_BASE_URL"


def tapd_messages(payload: dict[str, Any]) -> list[str]:
    """TAPD errors are `{"status": 0, "info": "..."}`."""
    return [str(payload.get("info") or payload.get("message") or "")]


def parse_issue(issue: str) -> tuple[str, str]:
    """`"story:1001"` → `("story", "1001")`; anything else is a ValueError naming the form."""
    entity_type, _, entity_id = issue.partition(":")
    if entity_type not in ENTITY_TYPES or not entity_id.isdigit():
        raise ValueError(f"TAPD issue {issue!r} is not <story|task|bug>:<id>, e.g. story:1001")
    return entity_type, entity_id


class TapdWorklogStore(HttpWorklogStore):
    """Timesheets in one TAPD workspace."""

    system = "tapd"

    def __init__(
        self,
        base_url: str,
        *,
        api_user: str,
        api_password: str,
        workspace_id: int | str,
        timespent_unit_hours: float = 1.0,
        policy: RetryPolicy | None = None,
    ) -> None:
        """`base_url` is the API root (https://api.tapd.cn); Basic auth with the API account."""
        if not api_user or not api_password:
            raise ValueError("TAPD needs api_user and api_password")
        if timespent_unit_hours <= 0:
            raise ValueError("timespent_unit_hours must be positive")
        self.workspace_id = str(workspace_id)
        self.unit_hours = timespent_unit_hours
        super().__init__(
            base_url,
            policy=policy,
            auth=(api_user, api_password),
            error_messages=tapd_messages,
            secrets=[api_password],
        )

    def _shown(self) -> dict[str, object]:
        return {"workspace_id": self.workspace_id}

    # ------------------------------------------------------------------ WorklogStore

    def list_users(self) -> list[PMUser]:
        """The workspace's members (`GET /workspaces/users`); the nickname is the owner."""
        data = self._call(
            "GET", "workspaces/users", "list users", params={"workspace_id": self.workspace_id}
        )
        if not isinstance(data, list):
            raise self._http.error("list users", "`data` is not a list of members")
        users = []
        for item in data:
            member = item.get("UserWorkspace") if isinstance(item, dict) else None
            if not isinstance(member, dict) or not member.get("user"):
                continue
            active = str(member.get("status", "1")) in ("1", "active")
            users.append(
                PMUser.by_login(
                    str(member["user"]), member.get("email"), member.get("name"), active
                )
            )
        return users

    def list_worklogs(
        self, pm_users: list[str], issues: list[str], start: date, end: date
    ) -> list[RemoteWorklog]:
        """Our timesheets (memo tag) of these owners on these entities, spentdate start..end."""
        wanted = set(issues)
        found = []
        for owner in dict.fromkeys(pm_users):
            for sheet in self._timesheets({"owner": owner, "spentdate": f"{start}~{end}"}):
                remote = self._remote(sheet)
                if (
                    remote is not None
                    and remote.issue in wanted
                    and remote.pm_user == owner
                    and start <= remote.work_date <= end
                ):
                    found.append(remote)
        return found

    def create(self, planned: PlannedWorklog) -> RemoteWorklog:
        """POST /timesheets, after checking that no timesheet holds the natural key."""
        operation = f"create {planned.worklog_key}"
        entity_type, entity_id = self._entity(planned.issue, operation)
        natural = {
            "owner": planned.pm_user,
            "spentdate": planned.work_date.isoformat(),
            "entity_type": entity_type,
            "entity_id": entity_id,
        }
        for sheet in self._timesheets(natural):
            if any(str(sheet.get(name)) != value for name, value in natural.items()):
                continue
            remote = self._remote(sheet)
            if remote is not None and remote.worklog_key == planned.worklog_key:
                # An earlier create whose reply was lost: make it match the plan.
                return self.update(remote, planned)
            whose = f"our worklog {remote.worklog_key}" if remote else "not written by us"
            raise self._collision(operation, planned, f"id {sheet.get('id')}, {whose}")
        try:
            return self._save(operation, planned, natural)
        except PMError as exc:
            if isinstance(exc, OutcomeUnknown) or "timesheet exists" not in str(exc):
                raise
            raise self._collision(operation, planned, "written just now by someone") from None

    def update(self, remote: RemoteWorklog, planned: PlannedWorklog) -> RemoteWorklog:
        """The same POST with `id`: timespent and memo change; owner, date, entity cannot."""
        operation = f"update {planned.worklog_key} (timesheet {remote.remote_id})"
        if (remote.pm_user, remote.work_date, remote.issue) != (
            planned.pm_user,
            planned.work_date,
            planned.issue,
        ):
            raise self._http.error(
                operation,
                "TAPD cannot change a timesheet's owner, date or entity: delete and create",
            )
        return self._save(operation, planned, {"id": remote.remote_id})

    def delete(self, remote: RemoteWorklog) -> None:
        """POST /timesheets/delete_timesheets; `status: 1` is not enough, `failed` must be empty."""
        operation = f"delete {remote.worklog_key} (timesheet {remote.remote_id})"
        data = self._call(
            "POST",
            "timesheets/delete_timesheets",
            operation,
            write=True,
            form={"workspace_id": self.workspace_id, "cost_ids[]": [remote.remote_id]},
        )
        outcome = data.get("data") if isinstance(data, dict) else None
        if not isinstance(outcome, dict):
            raise self._http.error(operation, "the reply has no `data.data` outcome")
        failed = outcome.get("failed") or []
        if failed:
            raise self._http.error(operation, f"TAPD reports the delete as failed: {failed}")

    # ------------------------------------------------------------------ internals

    def _call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        write: bool = False,
        params: dict[str, Any] | None = None,
        form: dict[str, Any] | None = None,
    ) -> Any:
        """One call; returns `data` of a `{"status": 1, ...}` reply, anything else raises."""
        response = self._http.request(
            method, path, operation=operation, write=write, params=params, data=form
        )
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or "status" not in payload:
            raise self._http.error(operation, NON_API_PAGE)
        if payload.get("status") != 1:
            info = payload.get("info") or "(no info)"
            raise self._http.error(operation, f"status {payload.get('status')}: {info}")
        return payload.get("data")

    def _save(
        self, operation: str, planned: PlannedWorklog, which: dict[str, str]
    ) -> RemoteWorklog:
        """POST /timesheets: a new one (`which` is the natural key) or an update (`which` is
        the `id`), with the planned timespent and our key in the memo."""
        data = self._call(
            "POST",
            "timesheets",
            operation,
            write=True,
            form={
                **which,
                "workspace_id": self.workspace_id,
                "timespent": self._timespent(planned.seconds),
                "memo": TaggedText.write(planned.comment, planned.worklog_key),
            },
        )
        return planned.as_remote(self._sheet_id(data, operation))

    def _timesheets(self, query: dict[str, str]) -> list[dict[str, Any]]:
        sheets: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"workspace_id": self.workspace_id, **query}
            params.update(limit=str(PAGE_LIMIT), page=str(page))
            data = self._call("GET", "timesheets", "list timesheets", params=params)
            if not isinstance(data, list):
                raise self._http.error("list timesheets", "`data` is not a list of timesheets")
            for item in data:
                sheet = item.get("Timesheet") if isinstance(item, dict) else None
                if not isinstance(sheet, dict):
                    raise self._http.error("list timesheets", "an item has no `Timesheet`")
                sheets.append(sheet)
            if len(data) < PAGE_LIMIT:
                return sheets
            page += 1

    def _remote(self, sheet: dict[str, Any]) -> RemoteWorklog | None:
        key, human = TaggedText.read(str(sheet.get("memo") or ""))
        if not key:
            return None
        try:
            hours = float(sheet["timespent"]) * self.unit_hours
            return RemoteWorklog(
                remote_id=str(sheet["id"]),
                worklog_key=key,
                pm_user=str(sheet["owner"]),
                issue=f"{sheet['entity_type']}:{sheet['entity_id']}",
                work_date=date.fromisoformat(str(sheet["spentdate"])[:10]),
                seconds=round(hours * 60) * 60,
                comment=human,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._http.error(
                "list timesheets", f"a timesheet has an unexpected shape ({exc})"
            ) from None

    def _collision(self, operation: str, planned: PlannedWorklog, detail: str) -> PMError:
        return self._http.error(
            operation,
            f"a timesheet already exists for {planned.pm_user} on {planned.work_date} on "
            f"{planned.issue} ({detail}); TAPD keeps one per owner, date and entity: merge or "
            "remove it in TAPD",
        )

    def _timespent(self, seconds: int) -> str:
        units = seconds / 3600 / self.unit_hours
        return f"{units:.4f}".rstrip("0").rstrip(".") or "0"

    def _entity(self, issue: str, operation: str) -> tuple[str, str]:
        try:
            return parse_issue(issue)
        except ValueError as exc:
            raise self._http.error(operation, str(exc)) from None

    def _sheet_id(self, data: Any, operation: str) -> str:
        sheet = data.get("Timesheet") if isinstance(data, dict) else None
        if not isinstance(sheet, dict) or not sheet.get("id"):
            raise self._http.error(operation, "the reply has no `Timesheet.id`")
        return str(sheet["id"])

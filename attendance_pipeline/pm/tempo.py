"""Tempo (Jira app) worklogs over the Tempo REST API v4.

Unlike Jira core, Tempo logs for others: `authorAccountId` is the employee (`pm_user`, a Jira
accountId), which needs the "Log Work for Others" project permission for the token's owner.
`issue` is the numeric Jira issue id, as a string. The key lives in the work attribute
`_attendance_` (an admin creates it in Tempo as a static text attribute) and, as a fallback for
instances without it, in a tag on the description's last line.

Tempo has no user list of its own: `list_users()` delegates to `users_source`, either any object
with a `list_users()` method (normally a `JiraWorklogStore` on the same site, whose accountIds are
Tempo's author ids) or a zero-argument callable returning `PMUser`s. Without one it raises.
Approved timesheet periods refuse edits; Tempo's answer is passed on in the PMError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any, Protocol

from attendance_pipeline.pm.base import PlannedWorklog, PMUser, RemoteWorklog, TaggedText
from attendance_pipeline.pm.http import HttpWorklogStore, RetryPolicy

ATTRIBUTE_KEY = "_attendance_"
START_TIME = "09:00:00"
ISSUES_PER_QUERY = 100


class UserDirectory(Protocol):
    """Anything that lists PM users (a `JiraWorklogStore`, for instance)."""

    def list_users(self) -> list[PMUser]: ...


def tempo_messages(payload: dict[str, Any]) -> list[str]:
    """Tempo answers `{"errors": [{"message": ...}]}`."""
    messages = [
        str(error.get("message", error)) if isinstance(error, dict) else str(error)
        for error in payload.get("errors") or []
    ]
    if payload.get("message"):
        messages.append(str(payload["message"]))
    return messages


class TempoWorklogStore(HttpWorklogStore):
    """Worklogs in Tempo, authored by the employees themselves."""

    system = "tempo"

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        users_source: UserDirectory | Callable[[], list[PMUser]] | None = None,
        policy: RetryPolicy | None = None,
        page_size: int = 1000,
    ) -> None:
        """`base_url` is the Tempo API root (https://api.tempo.io); `token` a Tempo API token."""
        if not token:
            raise ValueError("Tempo needs an API token")
        self.page_size = page_size
        self._users_source = users_source
        super().__init__(
            base_url,
            policy=policy,
            headers={"Authorization": f"Bearer {token}"},
            error_messages=tempo_messages,
            secrets=[token],
        )

    # ------------------------------------------------------------------ WorklogStore

    def list_users(self) -> list[PMUser]:
        """The users of `users_source` (Tempo itself has no user list)."""
        source = self._users_source
        if source is None:
            raise self._http.error(
                "list users",
                "Tempo has no user list: give TempoWorklogStore a users_source (the Jira store "
                "of the same site, or a callable)",
            )
        if hasattr(source, "list_users"):
            return list(source.list_users())
        if callable(source):
            return list(source())
        raise TypeError("users_source must have list_users() or be callable")

    def list_worklogs(
        self, pm_users: list[str], issues: list[str], start: date, end: date
    ) -> list[RemoteWorklog]:
        """Our worklogs of these authors on these issues, dated start..end."""
        wanted_users, wanted_issues = set(pm_users), set(issues)
        found = []
        numeric = sorted({int(i) for i in wanted_issues if i.isdigit()})
        raws = (
            raw
            for first in range(0, len(numeric), ISSUES_PER_QUERY)
            for raw in self._pages(start, end, numeric[first : first + ISSUES_PER_QUERY])
        )
        for raw in raws:
            remote = self._remote(raw)
            if (
                remote
                and remote.pm_user in wanted_users
                and remote.issue in wanted_issues
                and start <= remote.work_date <= end
            ):
                found.append(remote)
        return found

    def create(self, planned: PlannedWorklog) -> RemoteWorklog:
        """POST /4/worklogs with `authorAccountId` = the employee."""
        operation = f"create {planned.worklog_key}"
        response = self._http.request(
            "POST", "4/worklogs", operation=operation, write=True, json=self._body(planned)
        )
        payload = self._http.json(response, operation)
        worklog_id = payload.get("tempoWorklogId") if isinstance(payload, dict) else None
        if worklog_id is None:
            raise self._http.error(operation, "the reply has no `tempoWorklogId`")
        return planned.as_remote(str(worklog_id))

    def update(self, remote: RemoteWorklog, planned: PlannedWorklog) -> RemoteWorklog:
        """PUT the whole worklog (Tempo replaces it)."""
        operation = f"update {planned.worklog_key} (worklog {remote.remote_id})"
        self._http.request(
            "PUT",
            f"4/worklogs/{remote.remote_id}",
            operation=operation,
            write=True,
            json=self._body(planned),
        )
        return planned.as_remote(remote.remote_id)

    def delete(self, remote: RemoteWorklog) -> None:
        """DELETE the worklog; one that is already gone counts as deleted."""
        self._http.request(
            "DELETE",
            f"4/worklogs/{remote.remote_id}",
            operation=f"delete {remote.worklog_key} (worklog {remote.remote_id})",
            write=True,
            accept=(404,),
        )

    # ------------------------------------------------------------------ internals

    def _body(self, planned: PlannedWorklog) -> dict[str, Any]:
        try:
            issue_id = int(planned.issue)
        except ValueError:
            raise self._http.error(
                f"write {planned.worklog_key}",
                f"issue {planned.issue!r} is not a numeric Jira issue id (Tempo v4 needs the id)",
            ) from None
        return {
            "issueId": issue_id,
            "timeSpentSeconds": planned.seconds,
            "startDate": planned.work_date.isoformat(),
            "startTime": START_TIME,
            "description": TaggedText.write(planned.comment, planned.worklog_key),
            "authorAccountId": planned.pm_user,
            "attributes": [{"key": ATTRIBUTE_KEY, "value": planned.worklog_key}],
        }

    def _pages(self, start: date, end: date, issue_ids: list[int]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            response = self._http.request(
                "GET",
                "4/worklogs",
                operation="list worklogs",
                write=False,
                params={
                    "issueId": issue_ids,  # narrows the scan; results are filtered anyway
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                    "offset": offset,
                    "limit": self.page_size,
                },
            )
            payload = self._http.json(response, "list worklogs")
            results = payload.get("results") if isinstance(payload, dict) else None
            if not isinstance(results, list):
                raise self._http.error("list worklogs", "the reply has no `results` list")
            yield from (r for r in results if isinstance(r, dict))
            metadata = payload.get("metadata") or {}
            # `next` says whether there is more; the offset is ours, so no URL from a reply is
            # ever followed with the token.
            if not results or not metadata.get("next"):
                return
            offset += len(results)

    def _remote(self, raw: dict[str, Any]) -> RemoteWorklog | None:
        text_key, human = TaggedText.read(str(raw.get("description") or ""))
        key = _attribute(raw.get("attributes"), ATTRIBUTE_KEY) or text_key
        if not key:
            return None
        try:
            issue = raw.get("issue")
            issue_id = issue.get("id") if isinstance(issue, dict) else raw.get("issueId")
            author = raw.get("author")
            author_id = author.get("accountId") if isinstance(author, dict) else None
            author_id = author_id or raw.get("authorAccountId")
            return RemoteWorklog(
                remote_id=str(raw["tempoWorklogId"]),
                worklog_key=key,
                pm_user=str(author_id),
                issue=str(issue_id),
                work_date=date.fromisoformat(str(raw["startDate"])),
                seconds=int(raw["timeSpentSeconds"]),
                comment=human,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._http.error(
                "list worklogs", f"a worklog has an unexpected shape ({exc})"
            ) from None


def _attribute(attributes: Any, key: str) -> str | None:
    """A work attribute's value: v4 answers `{"values": [...]}`, requests send a list."""
    if isinstance(attributes, dict):
        attributes = attributes.get("values")
    for item in attributes or []:
        if isinstance(item, dict) and item.get("key") == key and item.get("value"):
            return str(item["value"])
    return None

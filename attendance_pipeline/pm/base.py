"""The one small interface every PM-system adapter implements (README: Delivery to the PM system).

Plain Python, no Dagster. An adapter is a *worklog store*: it lists the worklogs it holds that
carry our key, creates, updates and deletes them, and lists the system's users for identity
matching. The pusher (`pm/push.py`) does the diffing; adapters never decide what to write.

Exactly once rests on the key living in the PM system itself (a comment tag, a worklog property,
TAPD's natural key): whatever happened before (a crash, a lost reply), listing the remote tells
the truth, and the pusher converges to the plan by key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

KEY_TAG = re.compile(r"\[att:([0-9a-f]{16})\]")


def worklog_key(userid: str, work_date: date, issue: str, kind: str) -> str:
    """The deterministic key of a planned worklog: same inputs, same key, on every run."""
    raw = f"{userid}|{work_date.isoformat()}|{issue}|{kind}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def key_tag(key: str) -> str:
    """The tag that carries the key in free text (Redmine comments, ZenTao work, descriptions)."""
    return f"[att:{key}]"


def key_from_text(text: str | None) -> str | None:
    """Our key from a comment/description, or None when the entry is not ours."""
    if not text:
        return None
    found = KEY_TAG.search(text)
    return found.group(1) if found else None


class TaggedText:
    """Our key on the last line of a free text (Jira comments, Tempo descriptions, TAPD memos,
    ZenTao work); Redmine's one-line comments have their own form."""

    @staticmethod
    def write(comment: str, key: str, signature: str = "") -> str:
        """`comment`, then a last line carrying our key tag (after an optional signature)."""
        last = f"{signature} {key_tag(key)}".strip()
        return f"{comment.strip()}\n{last}" if comment.strip() else last

    @staticmethod
    def read(text: str | None) -> tuple[str | None, str]:
        """(our key or None, the human part: every line that does not carry a key tag)."""
        lines = (text or "").splitlines()
        human = "\n".join(line for line in lines if key_from_text(line) is None).strip()
        return key_from_text(text), human


@dataclass(frozen=True)
class PlannedWorklog:
    """What we want the PM system to hold."""

    worklog_key: str
    userid: str  # DingTalk userid
    work_date: date
    pm_user: str  # the PM system's id for the author (Redmine user id, Jira accountId, …)
    issue: str  # the PM system's issue/task key or id
    seconds: int
    kind: str = "work"  # work | overtime
    comment: str = ""

    def as_remote(self, remote_id: str) -> RemoteWorklog:
        """What a successful create/update left in the remote, as the pusher sees it listing."""
        return RemoteWorklog(
            remote_id=remote_id,
            worklog_key=self.worklog_key,
            pm_user=self.pm_user,
            issue=self.issue,
            work_date=self.work_date,
            seconds=self.seconds,
            comment=self.comment.strip(),
        )


@dataclass(frozen=True)
class RemoteWorklog:
    """A worklog the PM system holds that carries our key."""

    remote_id: str
    worklog_key: str
    pm_user: str
    issue: str
    work_date: date
    seconds: int
    comment: str = ""


@dataclass(frozen=True)
class PMUser:
    """A PM-system account, for matching to DingTalk users."""

    pm_user: str  # the id the adapter writes with
    login: str | None = None
    email: str | None = None
    name: str | None = None
    active: bool = True

    @classmethod
    def by_login(cls, login: str, email: Any, name: Any, active: bool) -> PMUser:
        """An account written by its login (TAPD nicknames, ZenTao accounts); empty is None."""
        return cls(
            pm_user=login, login=login, email=email or None, name=name or None, active=active
        )


class PMError(Exception):
    """A PM-system call failed; the message is safe to show (no secrets)."""

    def __init__(self, system: str, operation: str, message: str, *, retryable: bool = False):
        self.system = system
        self.operation = operation
        self.retryable = retryable
        super().__init__(f"{system} {operation}: {message}")


class OutcomeUnknown(PMError):
    """A write may or may not have committed (timeout, connection reset, lost reply).

    The pusher re-lists the remote before deciding anything else about that key.
    """

    def __init__(self, system: str, operation: str, message: str):
        super().__init__(system, operation, message, retryable=True)


class WorklogStore(Protocol):
    """A PM system as seen by the pusher."""

    system: str

    def list_users(self) -> list[PMUser]:
        """Every account (for identity matching)."""
        ...

    def list_worklogs(
        self, pm_users: list[str], issues: list[str], start: date, end: date
    ) -> list[RemoteWorklog]:
        """Every worklog carrying our key for these users/issues with a date in start..end."""
        ...

    def create(self, planned: PlannedWorklog) -> RemoteWorklog:
        """Create; raises OutcomeUnknown when the reply was lost."""
        ...

    def update(self, remote: RemoteWorklog, planned: PlannedWorklog) -> RemoteWorklog:
        """Change seconds/comment of an existing worklog (adapters that cannot: delete+create)."""
        ...

    def delete(self, remote: RemoteWorklog) -> None:
        """Remove a worklog we created."""
        ...

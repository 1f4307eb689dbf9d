"""The PM systems' accounts and work items, derived from the DingTalk simulator's company.

``Directory(seed, employees)`` builds on ``Company(seed, employees).users()`` so the demo's
identity matching meets the cases it must handle, deterministically:

- most employees with a DingTalk e-mail get an account with that e-mail (lower-cased) and a login
  equal to the e-mail's local part;
- about 5% of them (at least one) have **no account** at all;
- about 3% (at least one, among those with a job number) have an account under a private e-mail
  whose **login is their DingTalk job number**;
- employees without any DingTalk e-mail get an account with no e-mail (login ``u<userid>``),
  findable by name only;
- one outside contractor's account has the **same display name** as one employee (preferably one
  findable by name only), so a name match meets two candidates;
- Jira also holds the service account the simulator acts as (``sim-user``, type "app") and one
  deactivated former employee.

Who is picked for each case comes from a stable hash of (seed, userid), never from ``hash()``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from attendance_pipeline.simulators.dingtalk.company import Company

SERVICE_LOGIN = "sim-user"
SIM_TOKEN = "sim-token"
NO_ACCOUNT_SHARE = 0.05
JOB_NUMBER_SHARE = 0.03

JIRA_PROJECT = {"id": "10000", "key": "ATT", "name": "考勤工时"}
TAPD_WORKSPACE_ID = 100

_WORK_ITEMS = (
    "后端开发",
    "前端开发",
    "接口联调",
    "测试与验收",
    "产品需求分析",
    "交互与视觉设计",
    "客户拜访",
    "售前支持",
    "招聘与入职",
    "行政事务",
    "财务核算",
    "内部培训",
)


@dataclass(frozen=True)
class Account:
    """One person's (or robot's) account, the same in every system the simulator imitates."""

    login: str  # TAPD nickname, ZenTao account, Jira Data Center username
    name: str  # display name / realname
    email: str | None
    account_id: str  # Jira/Tempo accountId
    number: int  # numeric user id (ZenTao, TAPD)
    dingtalk_userid: str | None  # whose account it is (ground truth), None for non-employees
    via: str | None = None  # how matching can find it: email | job_number | name | None
    kind: str = "employee"  # employee | service | contractor | former
    active: bool = True


@dataclass(frozen=True)
class WorkItem:
    """An issue, story or task worklogs can go to."""

    id: int
    key: str  # Jira key, TAPD "story:1001", ZenTao "3"
    name: str


def _stable(*parts: object) -> bytes:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest()


def _email_of(user: dict[str, Any]) -> str | None:
    email = user.get("email") or user.get("org_email")
    return str(email).strip().lower() if email else None


class Directory:
    """Accounts and work items for ``Company(seed, employees)``."""

    def __init__(self, seed: int = 7, employees: int = 60) -> None:
        self.seed = seed
        self.employees = employees
        company_users = Company(seed, employees).users()
        self.accounts: list[Account] = []
        self._number = 1
        self.service = self._add(
            SERVICE_LOGIN, "考勤同步服务账号", "sim-user@corp.example", None, None, kind="service"
        )
        self.no_account: list[str] = []  # DingTalk userids without any PM account
        self._build_employees(company_users)
        self.jira_issues = [
            WorkItem(10_001 + i, f"{JIRA_PROJECT['key']}-{i + 1}", _WORK_ITEMS[i])
            for i in range(12)
        ]
        self.tapd_entities = [
            WorkItem(1001 + i, f"story:{1001 + i}", _WORK_ITEMS[i]) for i in range(8)
        ] + [WorkItem(2001 + i, f"task:{2001 + i}", _WORK_ITEMS[8 + i]) for i in range(4)]
        self.zentao_tasks = [WorkItem(i + 1, str(i + 1), _WORK_ITEMS[i]) for i in range(12)]
        self._by_account_id = {a.account_id: a for a in self.accounts}
        self._by_login = {a.login: a for a in self.accounts}
        self._by_email = {a.email: a for a in self.accounts if a.email}

    # ---------------------------------------------------------------- lookups

    def by_account_id(self, account_id: str) -> Account | None:
        return self._by_account_id.get(account_id)

    def by_login(self, login: str) -> Account | None:
        return self._by_login.get(login)

    def by_email(self, email: str) -> Account | None:
        return self._by_email.get(email.strip().lower())

    def members(self, *, jira: bool = False) -> list[Account]:
        """Accounts of a system: Jira also has the service account and a former employee."""
        if jira:
            return list(self.accounts)
        return [a for a in self.accounts if a.kind in ("employee", "contractor")]

    def jira_issue(self, key_or_id: str) -> WorkItem | None:
        for issue in self.jira_issues:
            if key_or_id in (issue.key, str(issue.id)):
                return issue
        return None

    def truth_mapping(self) -> dict[str, dict[str, str | None]]:
        """DingTalk userid -> the account that is really theirs and how matching can find it."""
        out: dict[str, dict[str, str | None]] = {
            u: {"login": None, "account_id": None, "via": None} for u in self.no_account
        }
        for a in self.accounts:
            if a.dingtalk_userid is not None:
                out[a.dingtalk_userid] = {
                    "login": a.login,
                    "account_id": a.account_id,
                    "via": a.via,
                }
        return out

    # ---------------------------------------------------------------- construction

    def _add(
        self,
        login: str,
        name: str,
        email: str | None,
        userid: str | None,
        via: str | None,
        *,
        kind: str = "employee",
        active: bool = True,
    ) -> Account:
        account_id = _stable(self.seed, "jira-account", login).hex()[:24]
        account = Account(login, name, email, account_id, self._number, userid, via, kind, active)
        self._number += 1
        self.accounts.append(account)
        return account

    def _build_employees(self, users: list[dict[str, Any]]) -> None:
        n = len(users)
        ranked = sorted(users, key=lambda u: _stable(self.seed, "pm-account", u["userid"]))
        with_email = [u for u in ranked if _email_of(u)]
        n_missing = max(1, round(n * NO_ACCOUNT_SHARE)) if n >= 5 else 0
        n_job = max(1, round(n * JOB_NUMBER_SHARE)) if n >= 5 else 0
        missing = {u["userid"] for u in with_email[:n_missing]}
        job_login = {
            u["userid"] for u in [u for u in with_email[n_missing:] if u.get("job_number")][:n_job]
        }
        self.no_account = [u["userid"] for u in users if u["userid"] in missing]
        name_only = [u for u in ranked if not _email_of(u)]
        ordinary = [u for u in ranked if u["userid"] not in missing | job_login and _email_of(u)]
        twin_of = (name_only or ordinary or ranked)[0]
        for u in users:  # company order, so account numbers follow the roster
            userid, email = u["userid"], _email_of(u)
            if userid in missing:
                continue
            if email is None:
                self._add(f"u{userid}", u["name"], None, userid, "name")
            elif userid in job_login:
                local = email.split("@", 1)[0]
                self._add(u["job_number"], u["name"], f"{local}@home.example", userid, "job_number")
            else:
                self._add(email.split("@", 1)[0], u["name"], email, userid, "email")
        self.twin_name = str(twin_of["name"])
        self._add(
            "contractor1",
            self.twin_name,
            "contractor1@partner.example",
            None,
            None,
            kind="contractor",
        )
        self._add(
            "former1", "离职员工", "former1@corp.example", None, None, kind="former", active=False
        )

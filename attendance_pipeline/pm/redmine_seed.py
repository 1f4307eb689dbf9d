"""Demo and test set-up for Redmine: a project, users, Manager memberships and issues over REST.

Not part of the runtime adapter (`pm/redmine.py` does not import it): the demo, the benchmarks and
the integration tests call `seed_redmine` with an administrator's key. Every step is idempotent,
so seeding the same Redmine twice finds what the first run made.
"""

from __future__ import annotations

import secrets
from typing import Any

from attendance_pipeline.pm.redmine import RedmineHttp, describe_redmine_error, error_list

MANAGER_ROLE = "Manager"


def seed_redmine(
    base_url: str,
    admin_key: str,
    users: list[dict[str, str]],
    project: str = "attendance-demo",
    issues: int = 8,
) -> dict[str, Any]:
    """Create (idempotently) a project, users, Manager memberships and `issues` issues.

    `users` are dicts with login, firstname, lastname, mail and optionally password (a random one
    when missing). `project` is the identifier (lowercase letters, digits, `-`, `_`). Returns
    `{"project_id": int, "issue_ids": [int, …], "users": {login: id}}`. Roles cannot be created
    over REST: Redmine's default Manager role (which may log time for other users) is used.
    """
    client = RedmineHttp(base_url, admin_key)
    project_id = _ensure_project(client, project)
    manager = _manager_role(client)
    user_ids = {spec["login"]: _ensure_user(client, spec) for spec in users}
    members = {
        int(m["user"]["id"])
        for m in client.pages(
            f"projects/{project_id}/memberships.json", "memberships", "list memberships"
        )
        if isinstance(m.get("user"), dict)
    }
    for login, user_id in user_ids.items():
        if user_id in members:
            continue
        response = client.request(
            "POST",
            f"projects/{project_id}/memberships.json",
            operation=f"add {login} to {project}",
            write=True,
            json={"membership": {"user_id": user_id, "role_ids": [manager]}},
            accept=(422,),
        )
        if response.status_code == 422 and "taken" not in " ".join(error_list(response)):
            raise client.error(f"add {login} to {project}", describe_redmine_error(response))
    return {
        "project_id": project_id,
        "issue_ids": _ensure_issues(client, project_id, project, issues),
        "users": user_ids,
    }


def _ensure_project(client: RedmineHttp, identifier: str) -> int:
    operation = f"find project {identifier}"
    response = client.request(
        "GET", f"projects/{identifier}.json", operation=operation, write=False, accept=(404,)
    )
    if response.status_code == 200:
        return int(client.json(response, operation)["project"]["id"])
    operation = f"create project {identifier}"
    body = {
        "project": {
            "name": identifier,
            "identifier": identifier,
            "is_public": False,
            "enabled_module_names": ["issue_tracking", "time_tracking"],
        }
    }
    response = client.request("POST", "projects.json", operation=operation, write=True, json=body)
    return int(client.json(response, operation)["project"]["id"])


def _manager_role(client: RedmineHttp) -> int:
    roles = client.get("roles.json", "list roles").get("roles") or []
    for role in roles:
        if isinstance(role, dict) and role.get("name") == MANAGER_ROLE:
            return int(role["id"])
    raise client.error(
        "list roles",
        f"no {MANAGER_ROLE!r} role (load Redmine's default data; roles cannot be made over REST)",
    )


def _ensure_user(client: RedmineHttp, spec: dict[str, str]) -> int:
    login = spec["login"]
    for status in ("1", "3", "2"):  # active, locked, registered
        for user in client.pages(
            "users.json", "users", f"find user {login}", {"name": login, "status": status}
        ):
            if user.get("login") == login:
                return int(user["id"])
    operation = f"create user {login}"
    body = {
        "user": {
            "login": login,
            "firstname": spec.get("firstname") or login,
            "lastname": spec.get("lastname") or login,
            "mail": spec.get("mail") or f"{login}@example.com",
            "password": spec.get("password") or secrets.token_urlsafe(16),
            "must_change_passwd": False,
        }
    }
    response = client.request("POST", "users.json", operation=operation, write=True, json=body)
    return int(client.json(response, operation)["user"]["id"])


def _ensure_issues(client: RedmineHttp, project_id: int, name: str, count: int) -> list[int]:
    subjects = [f"{name} task {n}" for n in range(1, count + 1)]
    existing: dict[str, int] = {}
    for issue in client.pages(
        "issues.json",
        "issues",
        "list issues",
        {"project_id": project_id, "status_id": "*", "subproject_id": "!*"},
    ):
        existing.setdefault(str(issue.get("subject")), int(issue["id"]))
    for subject in subjects:
        if subject in existing:
            continue
        operation = f"create issue {subject!r}"
        body = {"issue": {"project_id": project_id, "subject": subject}}
        response = client.request("POST", "issues.json", operation=operation, write=True, json=body)
        existing[subject] = int(client.json(response, operation)["issue"]["id"])
    return [existing[s] for s in subjects]

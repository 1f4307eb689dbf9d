"""Fixtures for tests against a real Redmine started by `scripts/redmine up`.

Load with `pytest_plugins = ["tests.redmine_fixture"]` (or import the fixtures in conftest):

- `redmine` (session): runs `scripts/redmine up` (installs and starts Redmine when needed; fails,
  never skips, with the script's output when it cannot) and returns a `RedmineServer` with `url`
  and `admin_key`. The server is left running for the next test session (`scripts/redmine down`
  stops it); with pytest-xdist each worker runs `up`, and the script's lock makes all but the
  first find it running.
- `redmine_project` (function): a fresh project with a unique identifier, three users who are
  members with the Manager role, and four issues; returns a `RedmineProject`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import requests

from attendance_pipeline.pm.redmine_seed import seed_redmine
from tests.service_scripts import start_service

UP_TIMEOUT_S = 15 * 60


@dataclass(frozen=True)
class RedmineServer:
    """The running Redmine: its root URL and the administrator's REST API key."""

    url: str
    admin_key: str

    def get(self, path: str, key: str | None = None, **params: str | int) -> requests.Response:
        """A raw GET (for assertions the adapter does not expose)."""
        return requests.get(
            f"{self.url}/{path}",
            params=params,
            headers={"X-Redmine-API-Key": key or self.admin_key},
            timeout=15,
        )

    def api_key_of(self, user_id: int | str) -> str:
        """A user's own API key (an administrator may read it; Redmine creates it if missing)."""
        response = self.get(f"users/{user_id}.json")
        response.raise_for_status()
        return str(response.json()["user"]["api_key"])


@dataclass(frozen=True)
class RedmineProject:
    """A seeded project: ids as the adapter wants them (strings of digits)."""

    identifier: str
    project_id: int
    issue_ids: list[str]
    users: dict[str, str]  # login -> user id
    mails: dict[str, str]  # login -> e-mail

    @property
    def user_ids(self) -> list[str]:
        return list(self.users.values())


@pytest.fixture(scope="session")
def redmine() -> RedmineServer:
    """Redmine on loopback, installed and started by `scripts/redmine up` if needed."""
    needs = ("REDMINE_URL", "REDMINE_ADMIN_KEY")
    env = start_service("redmine", UP_TIMEOUT_S, needs)
    url, key = env["REDMINE_URL"], env["REDMINE_ADMIN_KEY"]
    return RedmineServer(url=url, admin_key=key)


@pytest.fixture
def redmine_project(redmine: RedmineServer) -> RedmineProject:
    """A new project (unique per test) with three Manager members and four issues."""
    tag = uuid.uuid4().hex[:10]
    people = [("ann", "Ann", "Li"), ("bo", "Bo", "Wang"), ("cy", "Cy", "Zhao")]
    specs = [
        {
            "login": f"{login}-{tag}",
            "firstname": first,
            "lastname": last,
            "mail": f"{login}.{tag}@example.com",
            "password": f"pw-{tag}-{login}",
        }
        for login, first, last in people
    ]
    seeded = seed_redmine(redmine.url, redmine.admin_key, specs, project=f"att-{tag}", issues=4)
    return RedmineProject(
        identifier=f"att-{tag}",
        project_id=int(seeded["project_id"]),
        issue_ids=[str(i) for i in seeded["issue_ids"]],
        users={login: str(uid) for login, uid in seeded["users"].items()},
        mails={spec["login"]: spec["mail"] for spec in specs},
    )

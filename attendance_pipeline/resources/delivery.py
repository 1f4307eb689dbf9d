"""The configured PM system as a Dagster resource: builds the adapter for `PM_SYSTEM`.

Credentials come through `EnvVar` and go straight into the adapter; they are never logged or
shown in metadata. `PM_SYSTEM=none` means: compute plans, push nothing.
"""

from __future__ import annotations

import json
import os

import dagster as dg

from attendance_pipeline.pm.base import WorklogStore
from attendance_pipeline.settings import SIM_PM_URL

SYSTEMS = ("redmine", "jira", "tempo", "tapd", "zentao", "none")


class PMResource(dg.ConfigurableResource):
    """Which PM system, where, and as whom."""

    system: str = "none"
    base_url: str = ""
    user: str = ""  # Jira e-mail / TAPD api_user / ZenTao admin account
    token: str = ""  # Redmine API key / Jira or Tempo token / TAPD password / ZenTao password
    workspace_id: str = ""  # TAPD
    jira_base_url: str = ""  # Tempo: the Jira site for user lookups
    user_passwords: str = ""  # ZenTao: JSON {account: password} (per-user credentials)

    def store(self) -> WorklogStore | None:
        """The adapter, or None for `none`."""
        if self.system not in SYSTEMS:
            raise ValueError(f"PM_SYSTEM={self.system!r} is not one of {', '.join(SYSTEMS)}")
        if self.system == "none":
            return None
        if self.system == "redmine":
            from attendance_pipeline.pm.redmine import RedmineWorklogStore

            return RedmineWorklogStore(self.base_url, self.token)
        if self.system == "jira":
            from attendance_pipeline.pm.jira import JiraWorklogStore

            return JiraWorklogStore(self.base_url, email=self.user, api_token=self.token)
        if self.system == "tempo":
            from attendance_pipeline.pm.jira import JiraWorklogStore
            from attendance_pipeline.pm.tempo import TempoWorklogStore

            jira = JiraWorklogStore(
                self.jira_base_url or self.base_url, email=self.user, api_token=self.token
            )
            return TempoWorklogStore(self.base_url, token=self.token, users_source=jira)
        if self.system == "tapd":
            from attendance_pipeline.pm.tapd import TapdWorklogStore

            return TapdWorklogStore(
                self.base_url,
                api_user=self.user,
                api_password=self.token,
                workspace_id=self.workspace_id,
            )
        from attendance_pipeline.pm.zentao import ZenTaoWorklogStore

        return ZenTaoWorklogStore(
            self.base_url, passwords=self._zentao_password, admin_account=self.user or None
        )

    def _zentao_password(self, account: str) -> str:
        """Per-user ZenTao passwords: the admin's is `token`; others from `user_passwords`
        (JSON {account: password}; a "*" entry is a template with `{account}`)."""
        if account == self.user:
            return self.token
        table: dict[str, str] = json.loads(self.user_passwords) if self.user_passwords else {}
        if account in table:
            return table[account]
        if "*" in table:
            return table["*"].format(account=account)
        raise KeyError(f"no ZenTao password for account {account} (ZENTAO_USER_PASSWORDS)")


def pm_resource_from_env(
    uses_simulator: bool, simulator_url: str = SIM_PM_URL, prefix: str = ""
) -> PMResource:
    """PM settings from the environment (each name after `prefix`, an organisation's); the demo
    profile points at the PM simulator."""

    def env(name: str, default: str = "") -> str:
        return os.environ.get(prefix + name, default)

    system = env("PM_SYSTEM", "jira" if uses_simulator else "none").strip().lower()
    if uses_simulator and prefix + "PM_BASE_URL" not in os.environ:
        return PMResource(
            system=system,
            base_url=simulator_url,
            user="sim-user",
            token="sim-token",
            workspace_id="100",
            user_passwords=json.dumps({"*": "sim-pass-{account}"}),
        )

    def secret(name: str) -> str:
        return dg.EnvVar(prefix + name) if env(name) else ""

    token_var = {
        "redmine": "REDMINE_API_KEY",
        "jira": "JIRA_API_TOKEN",
        "tempo": "TEMPO_API_TOKEN",
        "tapd": "TAPD_API_PASSWORD",
        "zentao": "ZENTAO_PASSWORD",
    }.get(system, "PM_TOKEN")
    return PMResource(
        system=system,
        base_url=env("PM_BASE_URL"),
        user=env("PM_USER"),
        token=secret(token_var),
        workspace_id=env("TAPD_WORKSPACE_ID"),
        jira_base_url=env("JIRA_BASE_URL"),
        user_passwords=secret("ZENTAO_USER_PASSWORDS"),
    )

"""`config/orgs.yaml`: the DingTalk organisations one deployment syncs (plain Python, no Dagster).

Without the file there is one organisation, the default: everything as a single-company setup
has it (no key prefix, `data/`, `config/`, `DINGTALK_APP_KEY`). With it, each organisation is its
own copy of the pipeline: its asset keys under `<id>/`, its own DingTalk credentials (read from
the environment variables the file names), limiter, concurrency pools (`dingtalk_<id>`,
`warehouse_<id>`), quota ledger (its own assets' metered calls), rules folder, data folder
(`data/orgs/<id>/`: lake, warehouse, reports) and PM target (`<PREFIX>PM_SYSTEM`, ...).

    organisations:
      - id: acme                      # lower case, digits, _; names keys, pools and folders
        name: Acme Ltd
        dingtalk:
          app_key_env: ACME_DINGTALK_APP_KEY        # default <ID>_DINGTALK_APP_KEY
          app_secret_env: ACME_DINGTALK_APP_SECRET  # default <ID>_DINGTALK_APP_SECRET
        pm:
          env_prefix: ACME_           # ACME_PM_SYSTEM, ACME_PM_BASE_URL, ACME_JIRA_API_TOKEN ...
        config_dir: orgs/acme         # rules, calendar, mapping; relative to this file's folder
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from attendance_pipeline.config_files import ConfigError
from attendance_pipeline.hours.rules import load_yaml_model
from attendance_pipeline.settings import DINGTALK_API_URL, DINGTALK_URL, Settings

ORG_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
ORGS_FILE = "orgs.yaml"


def _env_name(value: str | None) -> str | None:
    if value is not None and not ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name (A-Z, 0-9, _)")
    return value


class DingTalkApp(BaseModel):
    """Where an organisation's DingTalk app credentials are (never the values themselves)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_key_env: str | None = None
    app_secret_env: str | None = None
    base_url: str | None = None  # default: the deployment's (DINGTALK_BASE_URL or the simulator)
    api_base_url: str | None = None

    @field_validator("app_key_env", "app_secret_env")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return _env_name(value)


class PMTarget(BaseModel):
    """An organisation's PM system: read from environment variables named with `env_prefix`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env_prefix: str | None = None
    simulator_url: str | None = None  # demo profile: this organisation's PM simulator

    @field_validator("env_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is not None and value and not ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable prefix (A-Z, 0-9, _)")
        return value


class Organisation(BaseModel):
    """One DingTalk organisation (a subsidiary, or an integrator's customer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str = ""
    dingtalk: DingTalkApp = DingTalkApp()
    pm: PMTarget = PMTarget()
    config_dir: str | None = None  # default: orgs/<id> beside orgs.yaml

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ORG_ID.match(value):
            raise ValueError(
                f"{value!r} is not an organisation id (lower-case letter first, then a-z, 0-9, _;"
                " at most 32)"
            )
        return value

    @property
    def app_key_env(self) -> str:
        return self.dingtalk.app_key_env or f"{self.id.upper()}_DINGTALK_APP_KEY"

    @property
    def app_secret_env(self) -> str:
        return self.dingtalk.app_secret_env or f"{self.id.upper()}_DINGTALK_APP_SECRET"

    @property
    def pm_env_prefix(self) -> str:
        return self.pm.env_prefix if self.pm.env_prefix is not None else f"{self.id.upper()}_"


class Organisations(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    organisations: tuple[Organisation, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Organisations:
        seen: set[str] = set()
        for org in self.organisations:
            if org.id in seen:
                raise ValueError(f"organisation id {org.id!r} is given twice")
            seen.add(org.id)
        return self


def load_organisations(path: Path) -> list[Organisation]:
    """The organisations in `path` (empty when the file is missing: the single default one)."""
    return list(load_yaml_model(path, Organisations, _message).organisations)


def organisations_path(settings: Settings) -> Path:
    """`orgs.yaml` in the deployment's config folder (`ATTENDANCE_ORGS_FILE` moves it)."""
    return Path(os.environ.get("ATTENDANCE_ORGS_FILE", settings.config_dir / ORGS_FILE))


def org_settings(base: Settings, org: Organisation, orgs_file: Path) -> Settings:
    """The settings of `org`'s copy of the pipeline, derived from the deployment's."""
    config_dir = (orgs_file.parent / (org.config_dir or f"orgs/{org.id}")).resolve()
    if not config_dir.is_dir():
        raise ConfigError(
            f"{orgs_file}: organisation {org.id!r}: config folder {config_dir} does not exist"
        )
    dt = org.dingtalk
    # The demo profile (no DINGTALK_APP_KEY) only for an organisation whose own key is unset too:
    # one with credentials talks to DingTalk (DINGTALK_BASE_URL still moves every organisation).
    simulated = base.uses_simulator and not os.environ.get(org.app_key_env)
    base_url, api_base_url = base.dingtalk_base_url, base.dingtalk_api_base_url
    if base.uses_simulator and not simulated:
        base_url = os.environ.get("DINGTALK_BASE_URL", DINGTALK_URL)
        api_base_url = os.environ.get("DINGTALK_API_BASE_URL", DINGTALK_API_URL)
    return replace(
        base,
        org_id=org.id,
        uses_simulator=simulated,
        data_dir=base.data_dir / "orgs" / org.id,
        config_dir=config_dir,
        lake_url=f"{base.lake_url}/orgs/{org.id}" if base.lake_url else None,
        dingtalk_base_url=dt.base_url or base_url,
        dingtalk_api_base_url=dt.api_base_url or dt.base_url or api_base_url,
        app_key_env=org.app_key_env,
        app_secret_env=org.app_secret_env,
        sim_app_key=f"sim-{org.id}",
        sim_app_secret=f"sim-{org.id}-secret",
        pm_env_prefix=org.pm_env_prefix,
        pm_simulator_url=org.pm.simulator_url or base.pm_simulator_url,
    )


def deployment_settings(base: Settings) -> list[Settings]:
    """Settings per organisation of the deployment: `orgs.yaml`'s, else `[base]` (the default)."""
    path = organisations_path(base)
    orgs = load_organisations(path)
    return [org_settings(base, org, path) for org in orgs] or [base]


def select_organisations(organisations: Sequence[Settings], ids: Iterable[str]) -> list[Settings]:
    """The organisations named by `ids` (CLI `--org`), in `organisations`' order; an id that is
    not there is a `ValueError` listing the known ones."""
    wanted = set(ids)
    known = {str(o.org_id): o for o in organisations if o.org_id is not None}
    if not known:
        raise ValueError(f"--org {', '.join(sorted(wanted))}: there is no orgs.yaml")
    if unknown := sorted(wanted - set(known)):
        raise ValueError(
            f"--org {', '.join(unknown)}: not in orgs.yaml (organisations: "
            f"{', '.join(sorted(known))})"
        )
    return [o for o in organisations if o.org_id in wanted]


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown setting (check the spelling)"
    return str(error["msg"]).removeprefix("Value error, ")

"""Configuration from the environment (a `.env` file in the working directory is read).

Demo profile (README: Configuration): without `DINGTALK_APP_KEY`, DingTalk is the local
simulator at http://127.0.0.1:8701 with `sim-key`/`sim-secret`, so the pipeline runs with no
credentials at all; without `PM_BASE_URL` worklogs go to the PM simulator at
http://127.0.0.1:8702 (`PM_SIMULATOR_URL` moves it, e.g. when `demo --pm-port` picks another port).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dotenv import load_dotenv
from upath import UPath

SIM_DINGTALK_URL = "http://127.0.0.1:8701"
SIM_PM_URL = "http://127.0.0.1:8702"
DINGTALK_URL = "https://oapi.dingtalk.com"
DINGTALK_API_URL = "https://api.dingtalk.com"
SIM_APP_KEY = "sim-key"
SIM_APP_SECRET = "sim-secret"
DEFAULT_START_DATE = "2026-01-01"
DEFAULT_START = date.fromisoformat(DEFAULT_START_DATE)


@dataclass(frozen=True)
class Settings:
    """Where data lives and which DingTalk to talk to; secrets stay in the environment."""

    data_dir: Path
    config_dir: Path
    dingtalk_base_url: str
    dingtalk_api_base_url: str
    uses_simulator: bool
    partitions_start: date
    pm_simulator_url: str = SIM_PM_URL
    lake_url: str | None = None  # ATTENDANCE_LAKE_URL, e.g. s3://bucket/prefix; None: data/lake
    # One organisation of a multi-organisation deployment (`orgs.py`); None: the default one.
    org_id: str | None = None
    app_key_env: str = "DINGTALK_APP_KEY"  # the environment variables holding the credentials
    app_secret_env: str = "DINGTALK_APP_SECRET"
    sim_app_key: str = SIM_APP_KEY  # the simulator's credentials when those variables are unset
    sim_app_secret: str = SIM_APP_SECRET
    pm_env_prefix: str = ""  # the PM settings are <prefix>PM_SYSTEM, <prefix>PM_BASE_URL, ...

    @property
    def lake_dir(self) -> UPath:
        """The lake's root: a local folder (a `pathlib.Path` too) or an object-store URL."""
        return UPath(self.lake_url) if self.lake_url else UPath(self.data_dir / "lake")

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"


def load_settings(env_file: str | os.PathLike[str] | None = ".env") -> Settings:
    """Read settings from the environment, after loading `.env` if present."""
    if env_file is not None and Path(env_file).is_file():
        load_dotenv(env_file, override=False)
    uses_simulator = not os.environ.get("DINGTALK_APP_KEY")
    default_url = SIM_DINGTALK_URL if uses_simulator else DINGTALK_URL
    default_api_url = SIM_DINGTALK_URL if uses_simulator else DINGTALK_API_URL
    start_text = os.environ.get("ATTENDANCE_START_DATE", DEFAULT_START_DATE)
    try:
        start = date.fromisoformat(start_text)
    except ValueError:
        raise ValueError(
            f"environment variable ATTENDANCE_START_DATE={start_text!r} is not a YYYY-MM-DD date"
        ) from None
    return Settings(
        data_dir=Path(os.environ.get("ATTENDANCE_DATA_DIR", "./data")).resolve(),
        config_dir=Path(os.environ.get("ATTENDANCE_CONFIG_DIR", "./config")).resolve(),
        dingtalk_base_url=os.environ.get("DINGTALK_BASE_URL", default_url),
        dingtalk_api_base_url=os.environ.get("DINGTALK_API_BASE_URL", default_api_url),
        uses_simulator=uses_simulator,
        partitions_start=start,
        pm_simulator_url=os.environ.get("PM_SIMULATOR_URL", SIM_PM_URL),
        lake_url=lake_url(os.environ.get("ATTENDANCE_LAKE_URL", "")),
    )


def lake_url(text: str) -> str | None:
    """`ATTENDANCE_LAKE_URL` checked: empty → None (the local `data/lake`); a local path, or a
    URL whose protocol fsspec can open (s3:// needs s3fs, installed with the project)."""
    text = text.strip()
    if not text:
        return None
    if "://" not in text:
        return str(Path(text).resolve())
    protocol = text.split("://", 1)[0]
    try:
        import fsspec

        fsspec.get_filesystem_class(protocol)
    except (ImportError, ValueError) as exc:
        raise ValueError(
            f"environment variable ATTENDANCE_LAKE_URL: no filesystem for {protocol}:// "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if not text.split("://", 1)[1].strip("/"):
        raise ValueError(
            "environment variable ATTENDANCE_LAKE_URL: give a bucket (s3://bucket/prefix)"
        )
    return text.rstrip("/")

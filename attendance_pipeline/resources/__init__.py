"""Dagster resources: the DingTalk client, the Parquet lake and the DuckDB warehouse."""

from __future__ import annotations

import os

import dagster as dg

from attendance_pipeline.resources.config import ConfigFolder
from attendance_pipeline.resources.delivery import PMResource, pm_resource_from_env
from attendance_pipeline.resources.dingtalk import DingTalkResource
from attendance_pipeline.resources.lake import LakeIOManagerFactory
from attendance_pipeline.resources.warehouse import WarehouseResource
from attendance_pipeline.settings import Settings


def build_resources(settings: Settings) -> dict[str, object]:
    """Resources for the environment: real DingTalk with `EnvVar` secrets, or the simulator."""
    app_key: str | dg.EnvVar = dg.EnvVar(settings.app_key_env)
    app_secret: str | dg.EnvVar = dg.EnvVar(settings.app_secret_env)
    if settings.uses_simulator and not os.environ.get(settings.app_key_env):
        app_key, app_secret = settings.sim_app_key, settings.sim_app_secret
    return {
        "dingtalk": DingTalkResource(
            base_url=settings.dingtalk_base_url,
            api_base_url=settings.dingtalk_api_base_url,
            app_key=app_key,
            app_secret=app_secret,
            credentials_hint=f"{settings.app_key_env} and {settings.app_secret_env}",
        ),
        "company_config": ConfigFolder(path=str(settings.config_dir)),
        "pm": pm_resource_from_env(
            settings.uses_simulator, settings.pm_simulator_url, settings.pm_env_prefix
        ),
        "lake_io_manager": LakeIOManagerFactory(base_path=str(settings.lake_dir)),
        "warehouse": WarehouseResource(
            path=str(settings.warehouse_path), lake_dir=str(settings.lake_dir)
        ),
    }


__all__ = [
    "ConfigFolder",
    "DingTalkResource",
    "LakeIOManagerFactory",
    "PMResource",
    "WarehouseResource",
    "build_resources",
]

"""The Dagster code location (`dg dev`, `dg check defs`, `dagster dev` load `defs`).

One `Definitions` per stage, merged: each stage's assets (their checks are declared on them), the
automation stage's jobs, schedules and sensors, and the resources for the environment. Settings
are read when the definitions are built, not at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType

import dagster as dg

from attendance_pipeline import automation
from attendance_pipeline.assets import availability, delivery, dingtalk, finance, hours, warehouse
from attendance_pipeline.assets.metadata import with_column_schemas
from attendance_pipeline.assets.partitions import with_partitions, with_pool_suffix
from attendance_pipeline.resources import build_resources
from attendance_pipeline.settings import Settings, load_settings

# The stages in flow order; each module's assets carry the stage's name as their group.
STAGES: dict[str, ModuleType] = {
    "dingtalk": dingtalk,
    "warehouse": warehouse,
    "hours": hours,
    "finance": finance,
    "delivery": delivery,
    "availability": availability,
}


def stage_definitions(stage: str, settings: Settings) -> dg.Definitions:
    """One stage's assets (and the checks declared on them), partitioned as configured."""
    assets = dg.load_assets_from_modules([STAGES[stage]], include_specs=True)
    assets = with_column_schemas(with_partitions(assets, settings.partitions_start))
    return dg.Definitions(assets=assets)


def organisation_definitions(settings: Settings) -> dg.Definitions:
    """An organisation's copy of every stage: keys under `<org>/`, pools `<pool>_<org>`."""
    assert settings.org_id is not None
    modules = list(STAGES.values())
    org = settings.org_id
    assets = [
        _prefixed_spec(item, org) if isinstance(item, dg.AssetSpec) else item
        for item in dg.load_assets_from_modules(modules, include_specs=True, key_prefix=org)
    ]
    assets = with_column_schemas(with_partitions(assets, settings.partitions_start))
    return dg.Definitions(assets=with_pool_suffix(assets, settings.org_id))


def _prefixed_spec(spec: dg.AssetSpec, org: str) -> dg.AssetSpec:
    """A stored table's spec under `<org>/` (`key_prefix` leaves plain specs alone)."""
    return spec.replace_attributes(
        key=spec.key.with_prefix(org),
        deps=[dg.AssetDep(dep.asset_key.with_prefix(org)) for dep in spec.deps],
    )


def build_definitions(
    settings: Settings, resources: Mapping[str, object] | None = None
) -> dg.Definitions:
    """The code location for `settings` (one organisation's); `resources` replace the default
    ones by key."""
    if settings.org_id is None:
        assets = [stage_definitions(stage, settings) for stage in STAGES]
    else:
        assets = [organisation_definitions(settings)]
    return dg.Definitions.merge(
        *assets,
        automation.definitions(settings),
        dg.Definitions(resources={**build_resources(settings), **(resources or {})}),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The default organisation (a deployment with `config/orgs.yaml` loads one code location
    per organisation from `attendance_pipeline.organisations`)."""
    return build_definitions(load_settings())

"""A multi-organisation deployment's code locations and its group warehouse.

Each organisation of `config/orgs.yaml` is one code location of the workspace, loaded as an
attribute of this module (`attendance-pipeline orgs workspace` writes the file):

    load_from:
      - python_module: {module_name: attendance_pipeline.organisations, attribute: acme,
                        location_name: acme}

A location per organisation keeps what Dagster fixes per code location apart: resources
(credentials, DingTalk client and limiter, PM target), a location that cannot load (a missing
environment variable) or a run that fails (a rejected secret, a spent quota). The asset keys,
under `<org>/`, are unique across the workspace. A backfill is launched per organisation: Dagster
1.13's backfill daemon puts the root assets of several locations into one run that no location
can execute (docs/production.md).

Finance reads one DuckDB: `consolidate` copies each organisation's published tables into the
deployment's `warehouse.duckdb`, each row with its `org_id`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import duckdb
import yaml

from attendance_pipeline.definitions import build_definitions
from attendance_pipeline.orgs import deployment_settings
from attendance_pipeline.settings import Settings, load_settings
from attendance_pipeline.warehouse import connect, waiting_for_lock

log = logging.getLogger(__name__)

# The organisations' tables finance and the data team query across the group.
GROUP_TABLES = (
    "effective_hours",
    "payroll_monthly",
    "payroll_leave",
    "held_back",
    "dingtalk_report_diff",
    "worklog_ledger",
    "sync_errors",
)


def __getattr__(name: str) -> dg.Definitions:
    """`attendance_pipeline.organisations.<id>`: that organisation's code location."""
    if name.startswith("__"):
        raise AttributeError(name)
    organisations = deployment_settings(load_settings())
    for settings in organisations:
        if settings.org_id == name:
            return build_definitions(settings)
    known = ", ".join(str(s.org_id) for s in organisations if s.org_id) or "none"
    raise AttributeError(f"no organisation {name!r} in orgs.yaml (organisations: {known})")


def workspace_yaml(organisations: Sequence[Settings]) -> str:
    """A `workspace.yaml` with one code location per organisation."""
    entries = [
        {
            "python_module": {
                "module_name": __name__,
                "attribute": settings.org_id,
                "location_name": settings.org_id,
            }
        }
        for settings in organisations
        if settings.org_id is not None
    ]
    return yaml.safe_dump({"load_from": entries}, sort_keys=False)


def consolidate(target: Path, organisations: Sequence[Settings]) -> dict[str, int]:
    """Rebuild `target`'s group tables from the organisations' warehouses, in one transaction:
    each `GROUP_TABLES` table is every organisation's rows with their `org_id` first. An
    organisation without a warehouse yet adds nothing; one whose sync failed keeps what it had
    published. Answers the rows per table."""
    sources = [(s.org_id, s.warehouse_path) for s in organisations if s.org_id is not None]
    sources = [(org, path) for org, path in sources if path.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with connect(target) as con:
        for org, path in sources:
            _attach(con, path, f"org_{org}")
        con.execute("BEGIN TRANSACTION")
        try:
            for table in GROUP_TABLES:
                parts = [
                    f"SELECT '{org}' AS org_id, * FROM org_{org}.main.{table}"
                    for org, _ in sources
                    if _has_table(con, f"org_{org}", table)
                ]
                if not parts:
                    continue
                con.execute(
                    f"CREATE OR REPLACE TABLE {table} AS " + " UNION ALL BY NAME ".join(parts)
                )
                row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
                counts[table] = int(row[0]) if row else 0
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        for org, _ in sources:
            con.execute(f"DETACH org_{org}")
    log.info("group warehouse %s: %s", target, counts)
    return counts


def _attach(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> None:
    """ATTACH an organisation's warehouse read-only, waiting while its own run writes to it."""
    waiting_for_lock(lambda: con.execute(f"ATTACH '{_quoted(path)}' AS {alias} (READ_ONLY)"))


def _has_table(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? "
        "AND table_name = ? AND table_type = 'BASE TABLE'",
        [catalog, table],
    ).fetchone()
    return bool(found and found[0])


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")

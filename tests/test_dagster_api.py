"""The Dagster internals the project relies on, in one place (attendance_pipeline.dagster_api):
if an upgrade moves or changes them, these fail loudly instead of a sync quietly running one
partition or pushing past a failed gate."""

import dagster as dg

from attendance_pipeline.dagster_api import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    latest_check_evaluations,
    partition_range_tags,
)

DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="Asia/Shanghai")


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def window(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    keys = context.partition_key_range
    return dg.MaterializeResult(metadata={"first": keys.start, "last": keys.end})


@dg.asset(
    check_specs=[
        dg.AssetCheckSpec("fine", asset="gated"),
        dg.AssetCheckSpec("held", asset="gated", blocking=True),
    ]
)
def gated() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(check_name="fine", passed=True),
            dg.AssetCheckResult(
                check_name="held", passed=False, severity=dg.AssetCheckSeverity.WARN
            ),
        ]
    )


def test_the_range_tags_make_one_run_cover_the_range():
    assert PARTITION_RANGE_START_TAG == "dagster/asset_partition_range_start"
    assert PARTITION_RANGE_END_TAG == "dagster/asset_partition_range_end"
    job = dg.Definitions(
        assets=[window], jobs=[dg.define_asset_job("w", selection=[window])]
    ).resolve_job_def("w")
    result = job.execute_in_process(tags=partition_range_tags("2026-11-02", "2026-11-05"))
    materialized = result.asset_materializations_for_node("window")
    assert len(materialized) == 4
    assert materialized[0].metadata["first"].value == "2026-11-02"
    assert materialized[0].metadata["last"].value == "2026-11-05"


def test_the_latest_check_evaluations_carry_result_severity_and_run():
    instance = dg.DagsterInstance.ephemeral()
    keys = [
        dg.AssetCheckKey(dg.AssetKey("gated"), "fine"),
        dg.AssetCheckKey(dg.AssetKey("gated"), "held"),
        dg.AssetCheckKey(dg.AssetKey("gated"), "never"),
    ]
    assert latest_check_evaluations(instance, keys[:2]) == {keys[0]: None, keys[1]: None}
    result = dg.materialize([gated], instance=instance)
    found = latest_check_evaluations(instance, keys[:2])
    assert found[keys[0]].passed is True
    assert found[keys[1]].passed is False
    assert found[keys[1]].severity == dg.AssetCheckSeverity.WARN
    assert {e.run_id for e in found.values()} == {result.run_id}

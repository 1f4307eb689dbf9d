"""The quality gates, one module per stage (docs/holdback.md, docs/architecture.md).

- `gx`: the Great Expectations wrapper (expectations with their grain, results, held rows);
- `quality`: the thresholds of `config/quality.yaml`;
- `dingtalk`, `hours`, `delivery`: each stage's gates, plain functions over frames;
- `specs`: the Dagster side (the gate catalogue, check specs, results as `AssetCheckResult`).
"""

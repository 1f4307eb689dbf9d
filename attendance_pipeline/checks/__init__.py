"""Asset checks (data-quality gates), declared beside the layers they guard."""

import dagster as dg

ALL_CHECKS: list[dg.AssetChecksDefinition] = []

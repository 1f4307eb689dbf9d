"""Asset checks (data-quality gates), declared beside the layers they guard."""

ALL_CHECKS: list[object] = []

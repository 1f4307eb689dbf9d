.PHONY: demo test test-fast lint bench

demo:
	scripts/demo

test:
	scripts/test

test-fast:
	scripts/test -m "not slow"

lint:
	scripts/bootstrap && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench:
	scripts/bootstrap && .venv/bin/python bench/bench_dingtalk_ingest.py && .venv/bin/python bench/bench_effective_hours.py && .venv/bin/python bench/bench_push.py && .venv/bin/python bench/bench_gates.py && .venv/bin/python bench/bench_backfill.py && .venv/bin/python bench/bench_recompute.py

"""Allocator settings that keep a run's resident memory near what it uses (issue 14).

Measured on a month x 1,000 employees in one run (bench/RESULTS.md, "Notes on issue 14's
memory"): Arrow's default jemalloc pool keeps what the engine's string kernels and the Parquet
reads freed, and glibc gives each thread that allocates (Dagster's, the DingTalk client's
workers, DuckDB's) its own arena of up to 64 MiB that it rarely returns. Arrow's system pool and
two glibc arenas lower the peak by ~130 MiB (769 -> 641 MiB) at no measurable cost in time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc mallopt parameter
ARENAS = 2
_done = False


def tune_allocators() -> None:
    """Arrow's system memory pool and at most two glibc malloc arenas, once per process.

    `ARROW_DEFAULT_MEMORY_POOL` or `MALLOC_ARENA_MAX` in the environment win (set either to keep
    the library defaults); on a libc without `mallopt` the arena limit is skipped."""
    global _done
    if _done:
        return
    _done = True
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    if "MALLOC_ARENA_MAX" not in os.environ:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
            if libc is not None and hasattr(libc, "mallopt"):
                libc.mallopt(M_ARENA_MAX, ARENAS)
        except OSError as exc:  # pragma: no cover - not glibc
            log.debug("no mallopt (%s): malloc arenas left as they are", exc)


def release_memory() -> None:
    """Collect garbage and hand the heap's free pages back to the system (glibc `malloc_trim`),
    so the next step starts from what is still in use, not from the last step's high-water."""
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:  # pragma: no cover - not glibc
        pass

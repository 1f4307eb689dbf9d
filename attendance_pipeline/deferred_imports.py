"""Modules Great Expectations imports but our gates never use, loaded only if something does.

GX's core expectation registry imports `altair` (charts for KL-divergence renderings) and
`scipy.stats` (KS and KL tests) when `great_expectations` is imported; our gates use neither, and
the two cost ~80 MiB of every run's resident memory (measured: scipy.stats 57 MiB, altair
26 MiB over pandas, Dagster, pyarrow and DuckDB). `defer` puts a placeholder module in
`sys.modules`; the first attribute anyone reads from it imports the real module and the
placeholder becomes it, so code that does use them still works. (`importlib.util.LazyLoader`
cannot do this: a plain `import` of a lazy module reads `__spec__` and loads it.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

GX_UNUSED = ("altair", "scipy.stats")
_LOCK = threading.RLock()


class DeferredModule(types.ModuleType):
    """Stands for a module until one of its attributes is read."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # import machinery probing: not a use
        return getattr(self._load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._load())

    def _load(self) -> types.ModuleType:
        name = self.__name__
        with _LOCK:
            if sys.modules.get(name) is self:
                del sys.modules[name]
            real = importlib.import_module(name)
            self.__dict__.update(real.__dict__)
            self.__class__ = types.ModuleType  # type: ignore[assignment]  # an ordinary module now
            sys.modules[name] = real
        return real


def defer(*names: str) -> list[str]:
    """Placeholders for `names` not imported yet (and installed); answers those deferred."""
    deferred = []
    with _LOCK:
        for name in names:
            if name in sys.modules:
                continue
            try:
                found = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                found = None
            if found is None:
                continue
            sys.modules[name] = DeferredModule(name)
            deferred.append(name)
    return deferred

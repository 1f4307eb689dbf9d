"""What the DingTalk and PM simulators do alike, written once: seeded fault injection, call
counters, the ``/_sim/`` admin route table and the command line's skeleton.

Each simulator keeps what is its own (which faults exist and what they look like on the wire,
which admin endpoints beyond the common ones, which flags beyond the common ones); the transport
is ``simulators/http.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from attendance_pipeline.simulators.http import (
    RunningSimulator,
    bounded,
    iso_date,
    serve_until_signalled,
)

ADMIN_PREFIX = "/_sim/"
R = TypeVar("R")


# -------------------------------------------------------------------- call counting


class Tally:
    """Thread-safe named counters (call counts, quirk detectors)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def bump(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + by

    def take(self, name: str, limit: int) -> bool:
        """Count one more ``name`` unless it reached ``limit`` already; whether it was counted."""
        with self._lock:
            used = self._counts.get(name, 0)
            if used >= limit:
                return False
            self._counts[name] = used + 1
            return True

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts.get(name, 0)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


# -------------------------------------------------------------------- faults


@dataclass(frozen=True)
class FaultDraw:
    """One call's fault: ``kind`` (None: no fault), the side effects that hit (``side``, e.g.
    "slow"), a uniform ``variant`` in [0, 1) that picks the fault's form, and the settings."""

    kind: str | None
    side: frozenset[str]
    variant: float
    settings: Mapping[str, float]


class Faults:
    """Seeded fault injection shared by both simulators.

    ``kinds`` are exclusive: one roll per call picks at most one, in order, so their chances add
    up to at most 1. ``side`` kinds (e.g. a slow reply) are independent of them, drawn after the
    roll. ``settings`` are the numbers that go with the faults (a delay, a Retry-After), each
    >= 0. ``rate`` is spread evenly over ``kinds``. ``variant`` is drawn after a fault only, or on
    every call with ``variant_every_call`` (the draw sequence of a seed is part of the behaviour).
    """

    def __init__(
        self,
        kinds: Sequence[str],
        *,
        seed: int,
        rate: float = 0.0,
        side: Sequence[str] = (),
        settings: Mapping[str, float] | None = None,
        variant_every_call: bool = False,
    ) -> None:
        self.kinds = tuple(kinds)
        self.side = tuple(side)
        self._defaults = dict(settings or {})
        self._variant_every_call = variant_every_call
        self._lock = threading.Lock()
        each = rate / len(self.kinds)
        self._chances: dict[str, float] = {}
        self._settings: dict[str, float] = {}
        self.configure(dict.fromkeys(self.kinds, each), seed=seed)

    def configure(
        self,
        chances: Mapping[str, float],
        settings: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> None:
        """Replace every chance (unnamed kinds become 0) and setting (unnamed: the default)."""
        unknown = set(chances) - {*self.kinds, *self.side}
        unknown |= set(settings or {}) - set(self._defaults)
        if unknown:
            raise TypeError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        new_chances = {k: float(chances.get(k, 0.0)) for k in (*self.kinds, *self.side)}
        new_settings = {**self._defaults, **(settings or {})}
        for kind, p in new_chances.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"fault probability {kind}={p} must be within 0..1")
        if sum(new_chances[k] for k in self.kinds) > 1.0 + 1e-9:
            kinds = ", ".join(self.kinds)
            raise ValueError(f"fault probabilities ({kinds}) must add up to at most 1")
        for name, value in new_settings.items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0")
        with self._lock:
            self._chances, self._settings = new_chances, new_settings
            if seed is not None:
                self._rng = random.Random(seed)

    def snapshot(self) -> dict[str, Any]:
        """Every chance and setting, as ``/_sim/faults`` answers them."""
        with self._lock:
            return {**self._chances, **self._settings}

    def setting(self, name: str) -> float:
        with self._lock:
            return self._settings[name]

    def draw(self) -> FaultDraw:
        """The fault for one call."""
        with self._lock:
            roll = self._rng.random()
            side = frozenset(
                k
                for k in self.side
                if self._chances[k] > 0 and self._rng.random() < self._chances[k]
            )
            kind: str | None = None
            for k in self.kinds:
                if roll < self._chances[k]:
                    kind = k
                    break
                roll -= self._chances[k]
            variant = self._rng.random() if kind is not None or self._variant_every_call else 0.0
            return FaultDraw(kind, side, variant, dict(self._settings))


# -------------------------------------------------------------------- admin endpoints

AdminHandler = Callable[[dict[str, str], dict[str, Any]], Any]


class NoAdminEndpoint(LookupError):
    """An admin request that names nothing: a 404 with this message."""


class AdminRoutes(Generic[R]):
    """The ``/_sim/`` route table: ``(method, name)`` -> ``handler(query, payload)``, whose return
    value is the JSON answer. The body must be a JSON object (or empty); a ValueError or
    TypeError is a 400, a KeyError a ``key_error_status``, NoAdminEndpoint a 404."""

    def __init__(self, reply: Callable[[Any, int], R], *, key_error_status: int = 400) -> None:
        self._reply = reply
        self._key_error_status = key_error_status
        self._routes: dict[tuple[str, str], AdminHandler] = {}

    def add(self, methods: str, name: str, handler: AdminHandler) -> None:
        """Serve ``name`` for each of ``methods`` (e.g. "GET POST")."""
        for method in methods.split():
            self._routes[(method, name)] = handler

    def add_action(self, name: str, action: Callable[[], None]) -> None:
        """A POST that runs ``action`` and answers ``{"ok": true}``."""
        self.add("POST", name, lambda _q, _p: _done(action))

    def add_controls(
        self,
        *,
        calls: Callable[[], Any],
        reset_calls: Callable[[], None],
        faults: Callable[[], Any],
        set_faults: Callable[..., None],
        clock: Callable[[], Any],
        set_clock: Callable[[dict[str, Any]], None],
        expire_tokens: Callable[[], None],
    ) -> None:
        """The endpoints both simulators have: calls, reset-calls, faults, clock, expire-tokens."""
        self.add("GET", "calls", lambda _q, _p: calls())
        self.add_action("reset-calls", reset_calls)
        self.add("GET", "faults", lambda _q, _p: faults())
        self.add("POST", "faults", lambda _q, p: _then(lambda: set_faults(**p), faults))
        self.add("GET", "clock", lambda _q, _p: clock())
        self.add("POST", "clock", lambda _q, p: _then(lambda: set_clock(p), clock))
        self.add_action("expire-tokens", expire_tokens)

    def handle(self, method: str, name: str, query: dict[str, str], body: bytes) -> R:
        """Answer ``method /_sim/{name}``."""
        handler = self._routes.get((method, name))
        try:
            if handler is None:
                raise NoAdminEndpoint(f"no admin endpoint {method} {ADMIN_PREFIX}{name}")
            payload = json.loads(body) if body else {}
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            return self._reply(handler(query, payload), 200)
        except NoAdminEndpoint as exc:
            return self._reply({"error": str(exc)}, 404)
        except KeyError as exc:
            message = str(exc.args[0]) if exc.args else "not found"
            return self._reply({"error": message}, self._key_error_status)
        except (ValueError, TypeError) as exc:
            return self._reply({"error": str(exc)}, 400)


def _done(action: Callable[[], None]) -> dict[str, bool]:
    action()
    return {"ok": True}


def _then(action: Callable[[], None], answer: Callable[[], Any]) -> Any:
    action()
    return answer()


# -------------------------------------------------------------------- command line


def sim_arg_parser(
    prog: str,
    description: str,
    *,
    port: int,
    defaults: Any,
    today_help: str,
    seed_help: str | None = None,
    fault_rate_help: str | None = None,
) -> argparse.ArgumentParser:
    """The flags every simulator takes: --port --host --seed --employees --fault-rate
    --latency-ms --today --verbose, defaults from the config ``defaults``; the caller adds its
    own."""
    seed, employees = defaults.seed, defaults.employees
    fault_rate, latency_ms = defaults.fault_rate, defaults.latency_ms
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--port", type=bounded(int, 0, 65535), default=port, help=f"default {port}")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    p.add_argument("--seed", type=int, default=seed, help=seed_help)
    p.add_argument("--employees", type=bounded(int, 1, 100_000), default=employees)
    p.add_argument(
        "--fault-rate", type=bounded(float, 0.0, 1.0), default=fault_rate, help=fault_rate_help
    )
    p.add_argument("--latency-ms", type=bounded(int, 0), default=latency_ms)
    p.add_argument("--today", type=iso_date, default=None, help=today_help)
    p.add_argument("--verbose", "-v", action="store_true", help="log every request (DEBUG)")
    return p


def common_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the common flags set (seed, employees, fault_rate, latency_ms)."""
    return {
        "seed": args.seed,
        "employees": args.employees,
        "fault_rate": args.fault_rate,
        "latency_ms": args.latency_ms,
    }


def serve_from_args(
    args: argparse.Namespace,
    start: Callable[[str, int], RunningSimulator],
    banner: Callable[[str], str],
) -> int:
    """Log at DEBUG with --verbose, serve on --host/--port until SIGINT/SIGTERM; the exit code."""
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(message)s")
    return serve_until_signalled(start, args.host, args.port, banner)

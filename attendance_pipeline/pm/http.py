"""HTTP plumbing shared by the PM adapters: `PMHttp` and the `HttpWorklogStore` base.

One `PMHttp` per adapter: a `requests` session per thread, bounded retries (the project's one retry
mechanism, `attendance_pipeline.http_retry`) and errors a person can act on. This module only says
which PM replies are worth another attempt, following `shared/contracts/pm-systems.md`:

- **Reads**: 429, 5xx, connection errors and timeouts, with exponential backoff and jitter,
  bounded by attempts *and* seconds (a wait that would end past the budget is not started). A
  `Retry-After` (429/503) is waited exactly, plus a little jitter, when it fits the budget; a
  longer one fails at once (retryable) instead of blocking.
- **Writes**: a 429 or a 500/502/503 is the system refusing *instead of* committing, and a
  connection that failed before the request went out sent nothing: both are retried like reads.
  A timeout, reset or closed connection *after* the request was sent, and a 504 (a gateway gave up
  waiting for a server that may have committed), raise `OutcomeUnknown` at once: the pusher
  re-lists the remote and decides, never a blind second write.

Any other non-2xx answer becomes a `PMError` whose message is the adapter's reading of the body.
Credentials live only in the `PMHttp`: never in a message, a log line or a repr; the adapter's
secrets are also redacted from every message built here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from attendance_pipeline import http_retry
from attendance_pipeline.pm.base import OutcomeUnknown, PMError

log = logging.getLogger(__name__)

# Answers that mean "not committed, try later" for writes too; 504 is not one of them.
WRITE_RETRY_STATUSES = frozenset({429, 500, 502, 503})
STATUS_HINTS = {
    401: "authentication failed: check the credentials",
    403: "permission denied: check the account's permissions",
    404: "not found",
}


@dataclass(frozen=True)
class RetryPolicy(http_retry.RetryBounds):
    """The shared retry bounds with PM defaults, plus the HTTP limits; tests shrink the waits."""

    max_attempts: int = 6
    max_seconds: float = 60.0
    max_retry_after_s: float = 30.0  # a longer Retry-After fails instead of waiting
    timeout_s: float = 30.0


ErrorMessages = Callable[[dict[str, Any]], list[str]]


def describe_with(response: requests.Response, messages_of: ErrorMessages) -> str:
    """`HTTP <status> (<hint>): <messages>`, the messages read from a JSON error body by
    `messages_of`, else the start of the body."""
    status = response.status_code
    try:
        payload = response.json()
    except ValueError:
        payload = None
    messages = [m for m in messages_of(payload) if m] if isinstance(payload, dict) else []
    if not messages:
        messages = [" ".join(response.text.split())[:200] or "(empty body)"]
    hint = STATUS_HINTS.get(status)
    return f"HTTP {status}" + (f" ({hint})" if hint else "") + ": " + "; ".join(messages)


def default_describe(response: requests.Response) -> str:
    """HTTP status, a hint and the start of the body, for systems without an error shape."""
    status = response.status_code
    hint = STATUS_HINTS.get(status, "")
    snippet = " ".join(response.text.split())[:200]
    parts = [f"HTTP {status}", hint, snippet]
    return ": ".join(p for p in parts if p)


class PMHttp:
    """A small HTTP client for one PM system: base URL, auth, retries and error mapping.

    `auth` and `headers` go with every request; `session` (optional) is used by every thread
    instead of one session per thread (connection reuse in tests).
    """

    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        describe: Callable[[requests.Response], str] = default_describe,
        policy: RetryPolicy | None = None,
        secrets: Iterable[str] = (),
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self._auth = auth
        self._headers = dict(headers or {})
        self._describe = describe
        self._secrets = [s for s in secrets if s]
        self._sleep = sleep
        self._given_session = session
        self._sessions = http_retry.ThreadSessions()

    def __repr__(self) -> str:
        return f"PMHttp({self.system!r}, {self.base_url!r})"

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        write: bool,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        accept: Collection[int] = (),
    ) -> requests.Response:
        """Send with retries; a 2xx (or a status in `accept`) is returned, anything else raises.

        `write=True` turns an ambiguous transport failure into `OutcomeUnknown`.
        """
        try:
            return http_retry.call_with_retries(
                lambda: self._attempt(
                    method, path, operation, write, params, json, data, headers, accept
                ),
                self.policy,
                sleep=self._sleep,
                on_retry=lambda number, problem: log.info(
                    "%s %s: retry %d (%s)",
                    self.system,
                    operation,
                    number,
                    self.redact(problem.reason),
                ),
            )
        except http_retry.RetriesExhausted as exc:
            raise self.error(operation, str(exc), retryable=True) from None

    def json(self, response: requests.Response, operation: str) -> Any:
        """The JSON body, or a PMError saying what came back instead."""
        try:
            return response.json()
        except ValueError:
            snippet = " ".join(response.text.split())[:120]
            raise self.error(
                operation, f"HTTP {response.status_code} with a body that is not JSON: {snippet!r}"
            ) from None

    def describe(self, response: requests.Response) -> str:
        """The system's error reply as one readable line."""
        return self._describe(response)

    def redact(self, text: str) -> str:
        """`text` with every known secret replaced by ***."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def add_secret(self, secret: str) -> None:
        """Redact `secret` (a password or token learnt later) from every message from now on."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    def error(self, operation: str, message: str, *, retryable: bool = False) -> PMError:
        """A PMError for this system with secrets redacted."""
        return PMError(self.system, operation, self.redact(message), retryable=retryable)

    # ------------------------------------------------------------------ internals

    def _attempt(
        self,
        method: str,
        path: str,
        operation: str,
        write: bool,
        params: Any,
        json: Any,
        data: Any,
        headers: Mapping[str, str] | None,
        accept: Collection[int],
    ) -> requests.Response:
        where = f"{method} /{path.split('?')[0].lstrip('/')}"
        session = self._given_session or self._sessions.get()
        try:
            response = session.request(
                method,
                f"{self.base_url}/{path.lstrip('/')}",
                params=params,
                json=json,
                data=data,
                headers={**self._headers, **(headers or {})},
                auth=self._auth,
                timeout=self.policy.timeout_s,
            )
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            sent = not _never_sent(exc)
            kind = "no reply" if sent else "could not connect"
            problem = f"{where}: {kind} ({type(exc).__name__})"
            if write and sent:
                raise OutcomeUnknown(
                    self.system,
                    operation,
                    f"{problem} after the request was sent; it may or may not have been applied "
                    "(re-list before writing again)",
                ) from None
            raise http_retry.Retryable(problem) from None
        except requests.RequestException as exc:
            raise self.error(operation, f"{where}: {type(exc).__name__}: {exc}") from None

        status = response.status_code
        if 200 <= status < 300 or status in accept:
            return response
        if write and status == 504:
            raise OutcomeUnknown(
                self.system,
                operation,
                f"{where}: HTTP 504 from a gateway; the write may or may not have been applied "
                "(re-list before writing again)",
            )
        if status == 429 or (status >= 500 and (not write or status in WRITE_RETRY_STATUSES)):
            wait_s = _retry_after(response.headers.get("Retry-After"))
            if wait_s is not None and wait_s > self.policy.max_retry_after_s:
                raise self.error(
                    operation,
                    f"{where}: HTTP {status}, asked to retry after {wait_s:.0f} s (more than "
                    f"the {self.policy.max_retry_after_s:.0f} s allowed); try again later",
                    retryable=True,
                )
            raise http_retry.Retryable(f"{where}: HTTP {status}", wait_s=wait_s)
        raise self.error(operation, f"{where}: {self.describe(response)}")


class HttpWorklogStore:
    """What every HTTP adapter shares: its `system`, one `PMHttp` and a repr without secrets.

    JSON is accepted by default; `error_messages` reads the system's error body (see
    `describe_with`), or `describe` replaces the whole description.
    """

    system = ""

    def __init__(
        self,
        base_url: str,
        *,
        policy: RetryPolicy | None,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        error_messages: ErrorMessages | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        describe: Callable[[requests.Response], str] = default_describe
        if error_messages is not None:
            describe = partial(describe_with, messages_of=error_messages)
        self._http = PMHttp(
            self.system,
            base_url,
            auth=auth,
            headers={"Accept": "application/json", **(headers or {})},
            describe=describe,
            policy=policy,
            secrets=secrets,
        )

    def __repr__(self) -> str:
        shown = "".join(f", {name}={value!r}" for name, value in self._shown().items())
        return f"{type(self).__name__}({self._http.base_url!r}{shown})"

    def _shown(self) -> dict[str, object]:
        """Settings (never secrets) that the repr shows after the base URL."""
        return {}


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection failed before any byte of the request went out."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # requests wraps urllib3's MaxRetryError
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())

"""HTTP plumbing (and the key-in-text format) shared by the Jira, Tempo, TAPD and ZenTao adapters.

One `PMHttp` per adapter: a `requests` session per thread, bounded retries (tenacity) and errors a
person can act on. What is retried, following `shared/contracts/pm-systems.md`:

- **Reads**: 429, 5xx, connection errors and timeouts, with exponential backoff and full jitter,
  bounded by attempts *and* seconds. A `Retry-After` (429/503) is waited exactly, plus a little
  jitter, when it fits the budget; a longer one fails at once (retryable) instead of blocking.
- **Writes**: a 429 or a 500/502/503 is the system refusing *instead of* committing, and a
  connection that failed before the request went out sent nothing: both are retried like reads.
  A timeout, reset or closed connection *after* the request was sent, and a 504 (a gateway gave up
  waiting for a server that may have committed), raise `OutcomeUnknown` at once: the pusher
  re-lists the remote and decides, never a blind second write.

Any other non-2xx answer becomes a `PMError` whose message is the adapter's reading of the body.
Credentials live only in the session: never in a message, a log line or a repr; the adapter's
secrets are also redacted from every message built here.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from attendance_pipeline.pm.base import (
    OutcomeUnknown,
    PlannedWorklog,
    PMError,
    RemoteWorklog,
    key_from_text,
    key_tag,
)

log = logging.getLogger(__name__)

# Answers that mean "not committed, try later" for writes too; 504 is not one of them.
WRITE_RETRY_STATUSES = frozenset({429, 500, 502, 503})
STATUS_HINTS = {
    401: "authentication failed: check the credentials",
    403: "permission denied: check the account's permissions",
    404: "not found",
}


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retries; tests shrink the waits."""

    max_attempts: int = 6
    max_seconds: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 30.0  # a longer Retry-After fails instead of waiting
    timeout_s: float = 30.0


class _Retryable(Exception):
    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


def describe_with(
    response: requests.Response, messages_of: Callable[[dict[str, Any]], list[str]]
) -> str:
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
    """A small HTTP client for one PM system: base URL, auth, retries and error mapping."""

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
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self._auth = auth
        self._headers = dict(headers or {})
        self._describe = describe
        self._secrets = [s for s in secrets if s]
        self._sleep = sleep
        self._local = threading.local()

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
        started = time.monotonic()
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.max_attempts)
            | stop_before_delay(self.policy.max_seconds),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda state: self._note_retry(operation, state),
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(
                        method, path, operation, write, params, json, data, headers, accept
                    )
        except _Retryable as exc:
            elapsed = time.monotonic() - started
            attempts = retrying.statistics.get("attempt_number", "?")
            raise PMError(
                self.system,
                operation,
                f"gave up after {attempts} attempt(s) in {elapsed:.1f} s; last problem: "
                f"{self.redact(exc.reason)}",
                retryable=True,
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

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
        try:
            response = self._session().request(
                method,
                f"{self.base_url}/{path.lstrip('/')}",
                params=params,
                json=json,
                data=data,
                headers=dict(headers or {}),
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
            raise _Retryable(problem) from None
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
            raise _Retryable(f"{where}: HTTP {status}", wait_s=wait_s)
        raise self.error(operation, f"{where}: {self._describe(response)}")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.wait_s is not None:
            return exc.wait_s + random.uniform(0, min(1.0, exc.wait_s * 0.1 + 0.05))
        ceiling = self.policy.backoff_initial_s * 2 ** (state.attempt_number - 1)
        return random.uniform(0, min(self.policy.backoff_max_s, ceiling))  # full jitter

    def _note_retry(self, operation: str, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = exc.reason if isinstance(exc, _Retryable) else repr(exc)
        log.info(
            "%s %s: retry %d (%s)",
            self.system,
            operation,
            state.attempt_number,
            self.redact(reason),
        )

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.auth = self._auth
            session.headers.update(self._headers)
            self._local.session = session
        return session


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


def json_body(http: PMHttp, response: requests.Response, operation: str) -> Any:
    """The JSON body, or a PMError saying what came back instead."""
    try:
        return response.json()
    except ValueError:
        snippet = " ".join(response.text.split())[:120]
        raise http.error(
            operation, f"HTTP {response.status_code} with a body that is not JSON: {snippet!r}"
        ) from None


# ---------------------------------------------------------------------- the key in free text


def tagged_text(comment: str, key: str, signature: str = "") -> str:
    """`comment`, then a last line carrying our key tag (after an optional signature)."""
    last = f"{signature} {key_tag(key)}".strip()
    return f"{comment.strip()}\n{last}" if comment.strip() else last


def untagged_text(text: str | None) -> str:
    """The human part of a tagged text: every line that does not carry a key tag."""
    lines = (text or "").splitlines()
    return "\n".join(line for line in lines if key_from_text(line) is None).strip()


def remote_from_plan(remote_id: str, planned: PlannedWorklog) -> RemoteWorklog:
    """What a successful create/update left in the remote, as the pusher sees it when listing."""
    return RemoteWorklog(
        remote_id=remote_id,
        worklog_key=planned.worklog_key,
        pm_user=planned.pm_user,
        issue=planned.issue,
        work_date=planned.work_date,
        seconds=planned.seconds,
        comment=planned.comment.strip(),
    )

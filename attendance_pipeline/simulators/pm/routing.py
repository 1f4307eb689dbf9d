"""Requests, replies and routes shared by the systems the PM simulator imitates.

Each system (Jira, Tempo, TAPD, ZenTao) is a class with a route table, an authenticator and its
own error shape; the server finds the route, authenticates, injects faults and counts calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs


class BadRequest(Exception):
    """A request the system refuses; ``field`` names the offending parameter when known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(Exception):
    """The addressed issue, worklog or task does not exist: a 404 in the system's shape."""


@dataclass(frozen=True)
class Request:
    """One HTTP request as a system's handler sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str
    params: dict[str, str] = field(default_factory=dict)  # from the route template
    caller: str = ""  # the authenticated account (a login or an accountId)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def int_arg(self, name: str, default: int, *, lo: int = 0) -> int:
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(f"{name} must be an integer, not {raw!r}", name) from None
        if value < lo:
            raise BadRequest(f"{name} must be at least {lo}", name)
        return value

    def json(self) -> Any:
        if not self.body:
            raise BadRequest("the request has no body")
        try:
            return json.loads(self.body)
        except ValueError:
            raise BadRequest("the body is not valid JSON") from None

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body

    def form(self) -> dict[str, list[str]]:
        """An ``application/x-www-form-urlencoded`` body (repeated names keep every value)."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("the form body is not UTF-8") from None
        return parse_qs(text, keep_blank_values=True)


@dataclass(frozen=True)
class Reply:
    """What goes back; ``drop`` closes the connection without any answer (a lost reply)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: tuple[tuple[str, str], ...] = ()
    drop: bool = False


def json_reply(payload: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, json.dumps(payload, ensure_ascii=False).encode(), headers=headers)


def empty_reply(status: int = 204) -> Reply:
    return Reply(status, b"", content_type="")


def int_or(text: str, default: int = -1) -> int:
    """An id from a path segment; ``default`` (matching nothing) when it is not a number."""
    try:
        return int(text)
    except ValueError:
        return default


Handler = Callable[[Request], Reply]
_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    """``template`` is the literal path with ``{name}`` segments; it names the route in counts.

    ``kind`` is "read", "write" (create/update/delete: faults apply) or "login".
    """

    method: str
    template: str
    kind: str
    handler: Handler
    pattern: re.Pattern[str]

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"


def route(method: str, template: str, kind: str, handler: Handler) -> Route:
    parts: list[str] = []
    pos = 0
    for m in _PARAM.finditer(template):
        parts += [re.escape(template[pos : m.start()]), f"(?P<{m.group(1)}>[^/]+)"]
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return Route(method, template, kind, handler, re.compile("^" + "".join(parts) + "$"))


class SystemApi(Protocol):
    """One imitated PM system."""

    name: str
    public_url: str  # the simulator's URL, for ``self`` links in ground-truth answers

    def routes(self) -> list[Route]: ...

    def authenticate(self, req: Request) -> str | None:
        """The caller's account, or None when the credentials are missing or wrong."""
        ...

    def error(self, status: int, message: str, field: str | None = None) -> Reply:
        """An error in this system's shape."""
        ...

    def unmatched(self, req: Request, allowed: list[str]) -> Reply:
        """The answer to a path no route serves (``allowed``: methods the path does serve)."""
        ...

    def serial_key(self, req: Request) -> str | None:
        """What writes must be serialised on (Jira: the issue), or None."""
        ...

    def users(self) -> list[dict[str, Any]]: ...

    def issues(self) -> list[str]: ...

    def worklogs(self) -> list[dict[str, Any]]: ...

    def edit_worklog(self, remote_id: str, seconds: int) -> bool:
        """Change an entry's duration as a person would by hand; False when it does not exist."""
        ...

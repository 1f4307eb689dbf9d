"""Several DingTalk organisations behind one simulator URL, one per app key.

DingTalk itself serves every organisation from the same hosts: the app key (and secret) chosen at
`gettoken` / `oauth2/accessToken` decides the organisation, and the access token it returns
carries it on every later call. The front does the same: a token request goes to the
organisation of its app key (an unknown key is refused by the first one, with DingTalk's
error), and every other request to the organisation that issued its token (an unknown or
missing token is refused the same way). Each organisation keeps its own company, clock, QPS
windows, monthly quota, faults and counters; `/_sim/org/<app_key>/...` reaches one's admin API.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from attendance_pipeline.simulators.dingtalk.auth import TOKEN_HEADER
from attendance_pipeline.simulators.dingtalk.protocol import NEW_HOST_PREFIX, Reply
from attendance_pipeline.simulators.dingtalk.server import DingTalkSimulator
from attendance_pipeline.simulators.http import RunningSimulator, serve
from attendance_pipeline.simulators.scaffold import ADMIN_PREFIX

logger = logging.getLogger(__name__)
ORG_ADMIN = ADMIN_PREFIX + "org/"
TOKEN_PATHS = ("/gettoken", "/v1.0/oauth2/accessToken")


class MultiOrgSimulator:
    """Simulators by app key behind one `handle`; the first answers what names no organisation."""

    def __init__(self, simulators: Mapping[str, DingTalkSimulator] | list[DingTalkSimulator]):
        sims = list(simulators.values()) if isinstance(simulators, Mapping) else simulators
        if not sims:
            raise ValueError("a multi-organisation simulator needs at least one organisation")
        self.by_key = {sim.config.app_key: sim for sim in sims}
        if len(self.by_key) != len(sims):
            raise ValueError("every organisation needs its own app key")
        self._first = sims[0]
        self._owner: dict[str, DingTalkSimulator] = {}  # access token -> its organisation
        self._lock = threading.Lock()

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
        error_reply = Reply(500, b"internal error", "text/plain")
        return serve(self.handle, error_reply, logger, "dingtalk-orgs-sim", host, port)

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, client_ip: str
    ) -> Reply:
        parts = urlsplit(target)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if path.startswith(ORG_ADMIN):
            key, _, rest = path.removeprefix(ORG_ADMIN).partition("/")
            sim = self.by_key.get(key)
            if sim is None:
                return Reply(404, json.dumps({"error": f"no organisation {key!r}"}).encode())
            inner = ADMIN_PREFIX + rest + (f"?{parts.query}" if parts.query else "")
            return sim.handle(method, inner, headers, body, client_ip)
        if path in TOKEN_PATHS:
            sim = self.by_key.get(_app_key(path, query, body) or "", self._first)
            reply = sim.handle(method, target, headers, body, client_ip)
            token = _issued_token(reply)
            if token:
                with self._lock:
                    self._owner[token] = sim
            return reply
        if path.startswith(NEW_HOST_PREFIX):
            token = headers.get(TOKEN_HEADER, "")
        else:
            token = query.get("access_token", "")
        with self._lock:
            sim = self._owner.get(token, self._first)
        return sim.handle(method, target, headers, body, client_ip)


def _app_key(path: str, query: dict[str, str], body: bytes) -> str | None:
    if path == "/gettoken":
        return query.get("appkey")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return None
    return str(data.get("appKey", "")) if isinstance(data, dict) else None


def _issued_token(reply: Reply) -> str | None:
    if reply.status != 200:
        return None
    try:
        data = json.loads(reply.body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    token = data.get("access_token") or data.get("accessToken")
    return str(token) if token else None

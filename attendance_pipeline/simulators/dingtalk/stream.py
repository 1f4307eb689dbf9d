"""DingTalk's Stream mode, simulated: the gateway that pushes events over a websocket.

Stream mode is how DingTalk delivers events without a public callback URL
(https://open.dingtalk.com/document/direction/stream-mode-protocol-access-description):

1. ``POST /v1.0/gateway/connections/open`` with ``clientId``/``clientSecret`` (the app key and
   secret) and ``subscriptions`` answers ``{endpoint, ticket}``; a wrong key or secret is HTTP 401.
2. The client opens ``{endpoint}?ticket={ticket}`` (a ticket is good for one connection, for
   ``TICKET_TTL_S``). A bad ticket is closed with code 1008.
3. The gateway sends each event as a text frame ``{specVersion, type: "EVENT", headers: {appId,
   connectionId, contentType, eventBornTime, eventCorpId, eventId, eventType, eventUnifiedAppId,
   messageId, time, topic}, data}`` (``data`` a JSON string), and the client answers
   ``{code: 200, headers: {messageId, contentType}, message, data}``.
4. An event not acknowledged with code 200 is delivered again (a new ``messageId``, the same
   ``eventId``) after ``redeliver_s`` and on every new connection, until it is.

The hub runs a ``websockets`` server on its own asyncio loop thread (loopback only). Events come
from ``publish`` (the simulator turns its clock's changes into events, see ``server.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.asyncio.server import ServerConnection, serve

logger = logging.getLogger("dingtalk-sim.stream")

TICKET_TTL_S = 90.0
EVENT_TYPES = (
    "attendance_check_record",
    "attendance_schedule_change",
    "bpms_instance_change",
    "bpms_task_change",
    "user_add_org",
    "user_leave_org",
    "user_modify_org",
)


@dataclass
class StreamEvent:
    event_id: str
    event_type: str
    born_ms: int
    data: dict[str, Any]
    acked: bool = False
    deliveries: int = 0
    # connection id -> monotonic time of the last delivery on it
    sent: dict[str, float] = field(default_factory=dict)


class StreamAuthError(ValueError):
    """Wrong clientId/clientSecret on connections/open."""


class StreamHub:
    """Tickets, the event log, and the websocket connections of the simulated gateway."""

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        corp_id: str = "dingsimcorp",
        redeliver_s: float = 5.0,
    ) -> None:
        self._key, self._secret, self._corp = app_key, app_secret, corp_id
        self.redeliver_s = redeliver_s
        self._lock = threading.Lock()
        self._events: list[StreamEvent] = []
        self._by_message: dict[str, StreamEvent] = {}
        self._tickets: dict[str, float] = {}
        self._connections: dict[str, ServerConnection] = {}
        self._opened = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self.ws_url = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self, host: str = "127.0.0.1") -> str:
        """Serve websockets on a free loopback port; answers the endpoint URL."""
        if self._thread is not None:
            return self.ws_url
        ready = threading.Event()

        async def main() -> None:
            self._stop = asyncio.Event()
            async with serve(self._serve, host, 0) as server:
                port = next(iter(server.sockets)).getsockname()[1]
                self.ws_url = f"ws://{host}:{port}/connect"
                ready.set()
                await self._stop.wait()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(main())
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="dingtalk-sim-stream", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the stream gateway did not start")
        return self.ws_url

    def stop(self) -> None:
        if self._loop is None or self._stop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)
        self._thread = None

    # ------------------------------------------------------------------ control

    def open(self, body: dict[str, Any]) -> dict[str, str]:
        """``connections/open``: a ticket for one connection."""
        if body.get("clientId") != self._key or body.get("clientSecret") != self._secret:
            raise StreamAuthError("clientId or clientSecret is wrong")
        subscriptions = body.get("subscriptions")
        if not isinstance(subscriptions, list) or not subscriptions:
            raise ValueError("subscriptions must be a non-empty list of {type, topic}")
        if not self.ws_url:
            self.start()
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets[ticket] = time.monotonic() + TICKET_TTL_S
        return {"endpoint": self.ws_url, "ticket": ticket}

    def publish(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        event_id: str | None = None,
        born_ms: int | None = None,
    ) -> str:
        """Queue an event for delivery; answers its eventId (re-publishing an id is a no-op)."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}; one of {', '.join(EVENT_TYPES)}")
        eid = event_id or uuid.uuid4().hex
        with self._lock:
            if any(e.event_id == eid for e in self._events):
                return eid
            born = born_ms if born_ms is not None else int(time.time() * 1000)
            self._events.append(StreamEvent(eid, event_type, born, dict(data)))
        return eid

    def redeliver(self, event_id: str) -> None:
        """Forget that ``event_id`` was acknowledged (DingTalk's at-least-once delivery)."""
        with self._lock:
            for event in self._events:
                if event.event_id == event_id:
                    event.acked = False
                    event.sent.clear()

    def drop(self) -> int:
        """Cut every open connection without a close frame (a network drop); answers how many."""
        with self._lock:
            connections = list(self._connections.values())
        if self._loop is not None:
            for ws in connections:
                self._loop.call_soon_threadsafe(ws.transport.abort)
        return len(connections)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "connections": len(self._connections),
                "opened": self._opened,
                "events": [
                    {
                        "eventId": e.event_id,
                        "eventType": e.event_type,
                        "acked": e.acked,
                        "deliveries": e.deliveries,
                        "data": e.data,
                    }
                    for e in self._events
                ],
            }

    # ------------------------------------------------------------------ the websocket

    async def _serve(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        ticket = (query.get("ticket") or [""])[-1]
        with self._lock:
            expires = self._tickets.pop(ticket, 0.0)
        if expires < time.monotonic():
            await ws.close(1008, "invalid or expired ticket")
            return
        connection_id = uuid.uuid4().hex
        with self._lock:
            self._connections[connection_id] = ws
            self._opened += 1
        sender = asyncio.create_task(self._send_loop(ws, connection_id))
        try:
            async for raw in ws:
                self._on_ack(raw)
        except websockets.ConnectionClosed:
            pass
        finally:
            sender.cancel()
            with self._lock:
                self._connections.pop(connection_id, None)

    async def _send_loop(self, ws: ServerConnection, connection_id: str) -> None:
        while True:
            for frame in self._due(connection_id):
                try:
                    await ws.send(frame)
                except websockets.ConnectionClosed:
                    return
            await asyncio.sleep(0.05)

    def _due(self, connection_id: str) -> list[str]:
        now = time.monotonic()
        frames = []
        with self._lock:
            for event in self._events:
                if event.acked:
                    continue
                last = event.sent.get(connection_id)
                if last is not None and now - last < self.redeliver_s:
                    continue
                message_id = uuid.uuid4().hex
                event.sent[connection_id] = now
                event.deliveries += 1
                self._by_message[message_id] = event
                frames.append(json.dumps(self._frame(event, message_id, connection_id)))
        return frames

    def _frame(self, event: StreamEvent, message_id: str, connection_id: str) -> dict[str, Any]:
        return {
            "specVersion": "1.0",
            "type": "EVENT",
            "headers": {
                "appId": self._key,
                "connectionId": connection_id,
                "contentType": "application/json",
                "eventBornTime": str(event.born_ms),
                "eventCorpId": self._corp,
                "eventId": event.event_id,
                "eventType": event.event_type,
                "eventUnifiedAppId": self._key,
                "messageId": message_id,
                "time": str(int(time.time() * 1000)),
                "topic": "*",
            },
            "data": json.dumps(event.data, ensure_ascii=False),
        }

    def _on_ack(self, raw: str | bytes) -> None:
        try:
            ack = json.loads(raw)
            message_id = ack["headers"]["messageId"]
            code = int(ack.get("code", 0))
        except (ValueError, KeyError, TypeError):
            logger.warning("stream: not an ack: %r", raw[:200])
            return
        with self._lock:
            event = self._by_message.pop(message_id, None)
            if event is not None and code == 200:
                event.acked = True

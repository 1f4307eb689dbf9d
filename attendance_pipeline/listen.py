"""`attendance-pipeline listen`: DingTalk events in Stream mode, stored before acknowledged.

The official `dingtalk-stream` client opens the connection (`connections/open`), parses the
frames and builds the acks; this module drives its loop so that

- each event is acknowledged only after `EventQueue.store` committed it (a crash in between
  makes DingTalk redeliver it; the eventId key stores it once);
- frames are handled one at a time, in order (the package's own loop spawns a task per frame);
- a dropped connection or a failed open is retried with exponential backoff (1 s doubling to
  `max_backoff_s`, reset once a connection is up), forever, until `stop` is set;
- nothing leaves loopback in tests and the demo: the package's `get_host_ip()` opens a UDP
  socket towards 8.8.8.8 to learn the local address, which `LocalClient` replaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import dingtalk_stream
import websockets
from dingtalk_stream import AckMessage, Credential, DingTalkStreamClient, EventMessage

from attendance_pipeline.event_queue import EventQueue

logger = logging.getLogger("attendance_pipeline.listen")

OPEN_PATH = "/v1.0/gateway/connections/open"
# Test-only fault injection: exit the process right after storing, before the ack is sent.
CRASH_AFTER_STORE = "ATTENDANCE_LISTEN_CRASH_AFTER_STORE"


class LocalClient(DingTalkStreamClient):
    """The package's client with its endpoint set and no UDP probe for the local IP."""

    def __init__(self, credential: Credential, api_base_url: str) -> None:
        super().__init__(credential, logger=logging.getLogger("dingtalk_stream.client"))
        self.open_connection_api = api_base_url.rstrip("/") + OPEN_PATH

    def get_host_ip(self) -> str:
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return "127.0.0.1"

    def open_connection(self) -> Any:
        # The package reads the class constant; this instance's endpoint wins.
        saved = DingTalkStreamClient.OPEN_CONNECTION_API
        DingTalkStreamClient.OPEN_CONNECTION_API = self.open_connection_api
        try:
            return super().open_connection()
        finally:
            DingTalkStreamClient.OPEN_CONNECTION_API = saved


class StoringHandler(dingtalk_stream.EventHandler):
    """Stores every event; the ack (code 200) goes out only after the commit."""

    def __init__(self, queue: EventQueue, on_event: Callable[[str, bool], None] | None = None):
        super().__init__()
        self.queue = queue
        self.on_event = on_event

    async def process(self, event: EventMessage) -> tuple[int, str]:
        headers = event.headers
        try:
            new = self.queue.store(
                str(headers.event_id or ""),
                str(headers.event_type or headers.topic or "unknown"),
                headers.event_born_time,
                event.data if isinstance(event.data, dict) else {"value": event.data},
            )
        except Exception:  # not stored: no ack, DingTalk delivers it again
            logger.exception("listen: could not store event %s", headers.event_id)
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "not stored"
        if os.environ.get(CRASH_AFTER_STORE):
            os._exit(17)
        logger.info(
            "listen: %s %s %s",
            "stored" if new else "duplicate",
            headers.event_type,
            headers.event_id,
        )
        if self.on_event is not None:
            self.on_event(str(headers.event_id), new)
        return AckMessage.STATUS_OK, "OK"


class Listener:
    def __init__(
        self,
        queue: EventQueue,
        client_id: str,
        client_secret: str,
        api_base_url: str,
        *,
        max_backoff_s: float = 60.0,
        on_event: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.client = LocalClient(Credential(client_id, client_secret), api_base_url)
        self.handler = StoringHandler(queue, on_event)
        self.client.register_all_event_handler(self.handler)
        self.client.pre_start()
        self.max_backoff_s = max_backoff_s
        self.connections = 0
        self.stop = threading.Event()

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        backoff = 1.0
        while not self.stop.is_set():
            connection = await asyncio.to_thread(self.client.open_connection)
            if not connection:
                logger.warning("listen: could not open the stream; retrying in %.0f s", backoff)
                await self._sleep(backoff)
                backoff = min(self.max_backoff_s, backoff * 2)
                continue
            uri = f"{connection['endpoint']}?ticket={quote_plus(connection['ticket'])}"
            try:
                async with websockets.connect(uri, open_timeout=10) as ws:
                    self.client.websocket = ws
                    self.connections += 1
                    backoff = 1.0
                    logger.info("listen: connected (%d)", self.connections)
                    await self._frames(ws)
            except (OSError, websockets.ConnectionClosed, websockets.InvalidHandshake) as exc:
                logger.warning("listen: connection lost (%s); reopening in %.0f s", exc, backoff)
                await self._sleep(backoff)
                backoff = min(self.max_backoff_s, backoff * 2)

    async def _frames(self, ws: Any) -> None:
        while not self.stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            await self.client.route_message(json.loads(raw))

    async def _sleep(self, seconds: float) -> None:
        waited = 0.0
        while waited < seconds and not self.stop.is_set():
            await asyncio.sleep(0.1)
            waited += 0.1


def main(data_dir: Path, client_id: str, client_secret: str, api_base_url: str) -> int:
    queue = EventQueue(data_dir / "events.sqlite")
    listener = Listener(queue, client_id, client_secret, api_base_url)
    logger.info("listen: storing DingTalk Stream events in %s", queue.path)
    with contextlib.suppress(KeyboardInterrupt):
        listener.run()
    return 0

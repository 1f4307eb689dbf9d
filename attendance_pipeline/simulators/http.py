"""The HTTP transport both simulators share: a threaded loopback server that hands every request
to a `handle(method, path, headers, body, client_ip)` function, plus small CLI argument types.

A handler's reply needs `status`, `body` and `content_type`; it may also carry `headers`
(extra response headers) and `drop` (close the connection without answering: a reply lost after
the write committed).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit


class SimReply(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def body(self) -> bytes: ...
    @property
    def content_type(self) -> str: ...


Handle = Callable[[str, str, dict[str, str], bytes, str], SimReply]


class RunningSimulator:
    """A started server; use as a context manager or call ``stop()``."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.url = f"http://{self.host}:{self.port}"
        self._stopped = False

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of concurrent clients must queue, not be reset

    def __init__(
        self, address: tuple[str, int], handle: Handle, error_reply: SimReply, log: logging.Logger
    ) -> None:
        self.handle = handle
        self.error_reply = error_reply
        self.log = log
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; without TCP_NODELAY, Nagle's algorithm and
    # delayed ACKs add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        # The query string may carry a secret or a token: log the path only.
        path = urlsplit(self.path).path
        try:
            reply = self.server.handle(method, self.path, headers, body, self.client_address[0])
        except Exception:  # a simulator bug must still answer, like a real 500
            self.server.log.exception("unhandled error on %s %s", method, path)
            reply = self.server.error_reply
        if getattr(reply, "drop", False):
            self.close_connection = True  # the write committed; the reply is lost
            self.server.log.debug("%s %s -> (reply dropped)", method, path)
            return
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in getattr(reply, "headers", ()):
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)
        self.server.log.debug("%s %s -> %d", method, path, reply.status)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: ``_dispatch`` logs one line without the query string."""

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log.debug(format, *args)


def serve(
    handle: Handle,
    error_reply: SimReply,
    log: logging.Logger,
    name: str,
    host: str = "127.0.0.1",
    port: int = 0,
) -> RunningSimulator:
    """Serve `handle` on a daemon thread (port 0 picks a free port)."""
    server = _Server((host, port), handle, error_reply, log)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"{name}-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return RunningSimulator(server, thread)


def serve_until_signalled(
    start: Callable[[str, int], RunningSimulator],
    host: str,
    port: int,
    banner: Callable[[str], str],
) -> int:
    """Start a simulator, print `banner(url)`, serve until SIGINT/SIGTERM; the exit status."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        try:
            running_sim = start(host, port)
        except OSError as exc:
            print(f"cannot listen on {host}:{port}: {exc}", file=sys.stderr)
            return 2
        with running_sim as running:
            print(banner(running.url), flush=True)
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def iso_date(text: str) -> date:
    """argparse type: a YYYY-MM-DD date."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-20") from exc


def bounded(kind: Callable[[str], Any], lo: float, hi: float | None = None) -> Callable[[str], Any]:
    """argparse type: a number of `kind` within lo..hi."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from exc
        if value < lo or (hi is not None and value > hi):
            limit = f">= {lo}" if hi is None else f"within {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"{text} must be {limit}")
        return value

    return parse

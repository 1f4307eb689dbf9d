"""The DingTalk simulator's injectable faults and what each looks like on the wire.

Drawn per token-checked call by the shared ``scaffold.Faults``: ``busy`` (系统繁忙), ``http5xx``
(an HTML 500/502 page), ``ban`` (the ban page or the JSON punish body, alternately),
``qps_global`` (90002) and ``token_expired`` (42001) exclude each other; ``slow`` delays a call
by ``slow_ms`` on top of any of them.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from attendance_pipeline.simulators.dingtalk.protocol import (
    Reply,
    Request,
    ban_page,
    error,
    json_reply,
    new_error,
    token_error,
)
from attendance_pipeline.simulators.scaffold import Faults

FAULT_KINDS = ("busy", "http5xx", "ban", "qps_global", "token_expired")


class DingTalkFaults:
    """The fault dice and the replies they turn into."""

    def __init__(self, seed: int, rate: float) -> None:
        self._dice = Faults(
            FAULT_KINDS,
            seed=seed,
            rate=rate,
            side=("slow",),
            settings={"slow_ms": 300},
            variant_every_call=True,
        )
        self._lock = threading.Lock()
        self._ban_flip = False

    def configure(
        self, chances: dict[str, float], slow_ms: int = 300, seed: int | None = None
    ) -> None:
        self._dice.configure(chances, {"slow_ms": slow_ms}, seed)

    def snapshot(self) -> dict[str, Any]:
        return self._dice.snapshot()

    def inject(self, req: Request) -> Reply | None:
        """The fault reply for this call, or None (after the slow delay, when drawn)."""
        draw = self._dice.draw()
        if "slow" in draw.side:
            time.sleep(draw.settings["slow_ms"] / 1000)
        alt = draw.variant < 0.5
        if draw.kind == "busy":
            if req.new_host:
                return new_error(req, 503, "ServiceUnavailable", "系统繁忙")
            return error(req, -1, "系统繁忙", 503, "ServiceUnavailable")
        if draw.kind == "http5xx":
            status = 502 if alt else 500
            text = "Bad Gateway" if status == 502 else "Internal Server Error"
            page = f"<html><body><h1>{status} {text}</h1></body></html>"
            return Reply(status, page.encode(), "text/html; charset=utf-8")
        if draw.kind == "ban":
            with self._lock:
                self._ban_flip = not self._ban_flip
                html = self._ban_flip
            if html:
                return ban_page()
            uid = uuid.uuid4().hex
            return json_reply(
                {"status": 1111, "wait": 5, "source": "x5", "punish": "deny", "uuid": uid}
            )
        if draw.kind == "qps_global":
            return error(
                req,
                90002,
                "服务器繁忙，接口调用超过全局限流阈值",
                403,
                "Forbidden.AccessDenied.QpsLimitForApi",
            )
        if draw.kind == "token_expired":
            return token_error(req)
        return None

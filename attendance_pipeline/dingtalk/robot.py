"""DingTalk group robot (自定义机器人) messages, signed as DingTalk requires (no Dagster).

With 加签 security the webhook URL gets `timestamp` (ms) and `sign` = base64(HMAC-SHA256(secret,
f"{timestamp}\\n{secret}")), URL-encoded. The secret never appears in logs or errors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse

import requests


def signed_url(webhook: str, secret: str, timestamp_ms: int | None = None) -> str:
    """The webhook URL with DingTalk's `timestamp` and `sign` parameters."""
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), hashlib.sha256
    ).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    separator = "&" if "?" in webhook else "?"
    return f"{webhook}{separator}timestamp={timestamp}&sign={sign}"


def send_markdown(
    webhook: str, secret: str | None, title: str, text: str, timeout_s: float = 10
) -> None:
    """Post a markdown message; raises RuntimeError with DingTalk's errmsg on refusal."""
    url = signed_url(webhook, secret) if secret else webhook
    try:
        response = requests.post(
            url,
            json={"msgtype": "markdown", "markdown": {"title": title, "text": text}},
            timeout=timeout_s,
        )
    except requests.RequestException as exc:
        raise RuntimeError(f"DingTalk robot unreachable: {type(exc).__name__}") from None
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if response.status_code != 200 or payload.get("errcode", 0) != 0:
        raise RuntimeError(
            f"DingTalk robot refused the message (HTTP {response.status_code}, "
            f"errcode {payload.get('errcode')}: {payload.get('errmsg', '')})"
        )

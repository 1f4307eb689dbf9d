"""Errors a person can act on, raised by the DingTalk client.

Every message names the API and DingTalk's own code and says what to do; none carries a secret
(the client redacts the app secret and access tokens before building a message).
"""

from __future__ import annotations


class DingTalkError(Exception):
    """A DingTalk call failed in a way retrying will not fix."""

    def __init__(self, api: str, message: str, code: str | int | None = None) -> None:
        self.api = api
        self.code = code
        prefix = f"DingTalk {api}"
        if code is not None:
            prefix += f" (code {code})"
        super().__init__(f"{prefix}: {message}")


class DingTalkAuthError(DingTalkError):
    """The app key or secret was rejected, or a fresh token keeps being refused."""


class DingTalkPermissionError(DingTalkError):
    """The app lacks a permission, an IP is not whitelisted, or users are outside its scope."""


class DingTalkHrmPermissionError(DingTalkPermissionError):
    """The app lacks the 智能人事 (HR) read permission the dismission (leavers) APIs need."""


class DingTalkQuotaExceeded(DingTalkError):
    """The organisation's monthly quota of metered calls is used up (90020)."""


class DingTalkBadRequest(DingTalkError):
    """DingTalk rejected the parameters: a limit of the contract was broken."""


class DingTalkHorizonError(DingTalkError):
    """The dates asked for are older than DingTalk serves (about 180 days)."""


class DingTalkUnavailable(DingTalkError):
    """Retries were exhausted (busy, rate-limited, banned, 5xx or network errors)."""


class DingTalkBadReply(DingTalkError):
    """A reply did not have the documented shape."""


__all__ = [
    "DingTalkAuthError",
    "DingTalkBadReply",
    "DingTalkBadRequest",
    "DingTalkError",
    "DingTalkHorizonError",
    "DingTalkHrmPermissionError",
    "DingTalkPermissionError",
    "DingTalkQuotaExceeded",
    "DingTalkUnavailable",
]

"""Access tokens: legacy ``GET /gettoken`` and new-host ``POST /v1.0/oauth2/accessToken``, and the
token check every other API makes (query ``access_token`` or the new host's header)."""

from __future__ import annotations

from attendance_pipeline.simulators.dingtalk.limits import Tokens
from attendance_pipeline.simulators.dingtalk.protocol import (
    Reply,
    Request,
    Route,
    error,
    json_reply,
    new_error,
    token_error,
)

TOKEN_HEADER = "x-acs-dingtalk-access-token"


class AuthApi:
    def __init__(self, app_key: str, app_secret: str, tokens: Tokens) -> None:
        self._key, self._secret = app_key, app_secret
        self.tokens = tokens

    def routes(self) -> list[Route]:
        return [
            Route("/gettoken", "GET", "token", self._gettoken),
            Route("/v1.0/oauth2/accessToken", "POST", "token", self._access_token),
        ]

    def check(self, req: Request) -> Reply | None:
        """The error for a missing or invalid token, or None when it is valid."""
        token = req.headers.get(TOKEN_HEADER) if req.new_host else req.query.get("access_token")
        if not token:
            return error(req, 41001, "缺少参数access_token", 400, "InvalidAuthentication")
        if not self.tokens.valid(token):
            return token_error(req)
        return None

    def _gettoken(self, req: Request) -> Reply:
        key, secret = req.query.get("appkey"), req.query.get("appsecret")
        if key != self._key or secret != self._secret:
            return error(req, 40001, "appkey或appsecret不正确", 400, "invalidClientIdOrSecret")
        token, ttl = self.tokens.issue()
        return json_reply({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": ttl})

    def _access_token(self, req: Request) -> Reply:
        try:
            body = req.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or (
            body.get("appKey") != self._key or body.get("appSecret") != self._secret
        ):
            return new_error(req, 400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        token, ttl = self.tokens.issue()
        return json_reply({"accessToken": token, "expireIn": ttl})

"""The "Sign in with Slack" (OpenID Connect) part of FakeSlack, as strict as Slack's.

- /openid/connect/authorize: response_type=code, scope with openid, a known client_id, a
  registered redirect_uri, a state and a nonce; the person set in ``signing_in`` "allows" at
  once and is sent back to redirect_uri with a code and the same state.
- /api/openid.connect.token: client credentials in HTTP Basic auth (as slack_sdk sends them),
  the code used once only, redirect_uri equal to the authorize request's; answers an access
  token and an ID token (a JWT signed HS256 with the client secret) carrying the nonce.
- /api/openid.connect.userInfo: the access token as a Bearer; answers Slack's claims.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

Reply = tuple[int, dict[str, str], bytes]


@dataclass
class _Grant:
    user: str
    client_id: str
    redirect_uri: str
    nonce: str
    used: bool = False


@dataclass
class FakeSlackOpenID:
    client_id: str = "1111.2222"
    client_secret: str = "oidc-client-secret"
    team_id: str = "T0001"
    redirect_uris: list[str] = field(default_factory=list)
    signing_in: str = "U0ALICE"
    names: dict[str, str] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    _grants: dict[str, _Grant] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def serves(path: str) -> bool:
        return path == "/openid/connect/authorize" or path.startswith("/api/openid.connect.")

    def handle(
        self, http_method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> Reply:
        """FakeSlack hands these paths here (see FakeSlack.sign_in)."""
        url = urlsplit(raw_path)
        query = dict(parse_qsl(url.query))
        form = {**query, **dict(parse_qsl(body.decode()))}
        if url.path == "/openid/connect/authorize" and http_method == "GET":
            return _reply(*self.authorize(query))
        if url.path == "/api/openid.connect.token" and http_method == "POST":
            return _reply(200, {}, json.dumps(self.token(headers, form)).encode())
        if url.path == "/api/openid.connect.userInfo":
            return _reply(200, {}, json.dumps(self.user_info(headers)).encode())
        return _reply(404, {}, b'{"ok": false, "error": "unknown_method"}')

    # -- the three endpoints -----------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        problem = None
        if query.get("response_type") != "code":
            problem = "response_type must be code"
        elif "openid" not in query.get("scope", "").split():
            problem = "scope must include openid"
        elif query.get("client_id") != self.client_id:
            problem = "invalid_client_id"
        elif query.get("redirect_uri") not in self.redirect_uris:
            problem = "bad_redirect_uri"
        elif not query.get("state") or not query.get("nonce"):
            problem = "state and nonce are required"
        if problem:
            self.refusals.append(problem)
            return 400, {"Content-Type": "text/plain"}, problem.encode()
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._grants[code] = _Grant(
                self.signing_in, query["client_id"], query["redirect_uri"], query["nonce"]
            )
        target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return 302, {"Location": target}, b""

    def token(self, headers: dict[str, str], form: dict[str, str]) -> dict[str, Any]:
        basic = headers.get("authorization", "")
        try:
            client_id, _, secret = (
                base64.b64decode(basic.removeprefix("Basic ")).decode().partition(":")
            )
        except ValueError:
            return {"ok": False, "error": "invalid_client"}
        if client_id != self.client_id or not hmac.compare_digest(secret, self.client_secret):
            return {"ok": False, "error": "invalid_client"}
        with self._lock:
            grant = self._grants.get(form.get("code", ""))
            if grant is None or grant.used:
                self.refusals.append("invalid_code")
                return {"ok": False, "error": "invalid_code"}
            grant.used = True
            if form.get("redirect_uri") != grant.redirect_uri or grant.client_id != client_id:
                self.refusals.append("bad_redirect_uri")
                return {"ok": False, "error": "bad_redirect_uri"}
            access = "xoxp-" + secrets.token_urlsafe(16)
            self._tokens[access] = grant.user
        now = int(time.time())
        claims = {
            "iss": "https://slack.com",
            "sub": grant.user,
            "aud": client_id,
            "exp": now + 3600,
            "iat": now,
            "nonce": grant.nonce,
            "https://slack.com/user_id": grant.user,
            "https://slack.com/team_id": self.team_id,
        }
        return {
            "ok": True,
            "access_token": access,
            "token_type": "Bearer",
            "id_token": _jwt(claims, self.client_secret),
        }

    def user_info(self, headers: dict[str, str]) -> dict[str, Any]:
        token = headers.get("authorization", "").removeprefix("Bearer ")
        user = self._tokens.get(token)
        if user is None:
            return {"ok": False, "error": "invalid_auth"}
        return {
            "ok": True,
            "sub": user,
            "https://slack.com/user_id": user,
            "https://slack.com/team_id": self.team_id,
            "name": self.names.get(user, user),
            "email": f"{user.lower()}@example.com",
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, Any], key: str) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def _reply(status: int, extra: dict[str, str], payload: bytes) -> Reply:
    extra.setdefault("Content-Type", "application/json")
    return status, extra, payload

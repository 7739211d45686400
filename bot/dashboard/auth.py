"""Sign in with Slack (OpenID Connect) for the dashboard: signed, Secure, HttpOnly sessions, CSRF.

Hand-written rather than an OAuth library because the flow is three requests, two of which
slack_sdk already makes (openid.connect.token, openid.connect.userInfo); the ID token arrives
straight from Slack's token endpoint over TLS, so (OpenID Connect Core 3.1.3.7) its claims are
checked — nonce, audience, expiry — without verifying its signature.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeTimedSerializer
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from environments.catalog import Catalog

log = logging.getLogger(__name__)
SESSION_COOKIE = "shipyard_session"
STATE_COOKIE = "shipyard_sign_in"
SESSION_SECONDS = 12 * 3600
STATE_SECONDS = 600
AUTHORIZE_URL = "https://slack.com/openid/connect/authorize"


@dataclass(frozen=True)
class SignInSettings:
    """SLACK_CLIENT_ID/SECRET, the workspace, where Shipyard is reached, the session key."""

    client_id: str
    client_secret: str
    api_url: str
    authorize_url: str
    public_url: str
    team: str | None
    session_secret: str

    @classmethod
    def from_environment(cls, catalog: Catalog, api_url: str, public_url: str) -> SignInSettings:
        secret = os.environ.get("SHIPYARD_SESSION_SECRET")
        if not secret:
            # Sessions then last as long as this process, and only on this replica.
            log.warning("SHIPYARD_SESSION_SECRET is not set: dashboard sessions end on restart")
            secret = secrets.token_urlsafe(32)
        return cls(
            client_id=os.environ.get("SLACK_CLIENT_ID", ""),
            client_secret=os.environ.get("SLACK_CLIENT_SECRET", ""),
            api_url=api_url,
            authorize_url=os.environ.get("SLACK_OIDC_AUTHORIZE_URL", AUTHORIZE_URL),
            public_url=os.environ.get("SHIPYARD_PUBLIC_URL", public_url).rstrip("/"),
            team=catalog.slack.team or os.environ.get("SLACK_TEAM_ID") or None,
            session_secret=secret,
        )

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}/auth/callback"


@dataclass(frozen=True)
class Session:
    """A signed-in person: Shipyard's name for them, their Slack id, the form token."""

    person: str
    slack_id: str
    csrf: str


class SignIn:
    """The three routes of the flow, and who a request's session belongs to."""

    def __init__(self, settings: SignInSettings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.sessions = URLSafeTimedSerializer(settings.session_secret, salt="shipyard-session")
        self.states = URLSafeTimedSerializer(settings.session_secret, salt="shipyard-sign-in")

    def session(self, request: Request) -> Session | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = self.sessions.loads(raw, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        return Session(data["person"], data["slack_id"], data["csrf"])

    def person(self, request: Request) -> str | None:
        found = self.session(request)
        return found.person if found else None

    def csrf_ok(self, request: Request, presented: str) -> bool:
        found = self.session(request)
        return found is not None and hmac.compare_digest(found.csrf, presented)

    def start(self, request: Request) -> Response:
        """Redirect to Slack with a fresh state and nonce, remembered in a signed cookie."""
        if not self.settings.client_id:
            return Response(
                "Sign in with Slack is not configured: set SLACK_CLIENT_ID and "
                "SLACK_CLIENT_SECRET (see README 'Health, the dashboard and the API').",
                status_code=503,
                media_type="text/plain",
            )
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        query = {
            "response_type": "code",
            "scope": "openid profile email",
            "client_id": self.settings.client_id,
            "state": state,
            "nonce": nonce,
            "redirect_uri": self.settings.redirect_uri,
        }
        if self.settings.team:
            query["team"] = self.settings.team
        response = RedirectResponse(f"{self.settings.authorize_url}?{urlencode(query)}", 303)
        remembered = {
            "state": state,
            "nonce": nonce,
            "next": _local(request.query_params.get("next")),
        }
        self._cookie(response, STATE_COOKIE, self.states.dumps(remembered), STATE_SECONDS)
        return response

    def finish(self, request: Request) -> Response:
        """Slack sent the person back: check state, exchange the code, check nonce and team."""
        try:
            remembered = self.states.loads(
                request.cookies.get(STATE_COOKIE, ""), max_age=STATE_SECONDS
            )
        except BadSignature:
            return self._refused("the sign-in took too long or did not start here")
        given = request.query_params.get("state", "")
        if not hmac.compare_digest(str(remembered.get("state")), given):
            return self._refused("the sign-in's state does not match")
        if "error" in request.query_params:
            return self._refused(f"Slack said {request.query_params['error']}")
        code = request.query_params.get("code")
        if not code:
            return self._refused("Slack sent no code")
        try:
            person, slack_id = self._identify(code, remembered["nonce"])
        except (SlackApiError, SignInRefused) as exc:
            reason = exc.reason if isinstance(exc, SignInRefused) else "Slack refused the code"
            return self._refused(reason)
        session = {"person": person, "slack_id": slack_id, "csrf": secrets.token_urlsafe(24)}
        response = RedirectResponse(remembered.get("next") or "/", 303)
        self._cookie(response, SESSION_COOKIE, self.sessions.dumps(session), SESSION_SECONDS)
        response.delete_cookie(STATE_COOKIE, path="/auth/")
        log.info("dashboard sign-in: %s (%s)", person, slack_id)
        return response

    def sign_out(self) -> Response:
        response = RedirectResponse("/auth/signed-out", 303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True)
        return response

    def _identify(self, code: str, nonce: str) -> tuple[str, str]:
        exchange = WebClient(base_url=self.settings.api_url, timeout=10).openid_connect_token(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret,
            code=code,
            redirect_uri=self.settings.redirect_uri,
        )
        claims = _claims(str(exchange.get("id_token", "")))
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise SignInRefused("the ID token's nonce does not match")
        if claims.get("aud") != self.settings.client_id:
            raise SignInRefused("the ID token is for another app")
        if float(claims.get("exp", 0)) < time.time():
            raise SignInRefused("the ID token has expired")
        info = WebClient(
            base_url=self.settings.api_url, token=str(exchange["access_token"]), timeout=10
        ).openid_connect_userInfo()
        slack_id = str(info.get("https://slack.com/user_id") or info.get("sub") or "")
        team = str(info.get("https://slack.com/team_id") or "")
        if not slack_id:
            raise SignInRefused("Slack did not say who you are")
        if self.settings.team and team != self.settings.team:
            raise SignInRefused("you signed in to another Slack workspace")
        return self.catalog.person_for_slack(slack_id), slack_id

    def _refused(self, reason: str) -> Response:
        return Response(
            f"Sign-in refused: {reason}. Start again from /auth/sign-in.",
            status_code=400,
            media_type="text/plain",
        )

    @staticmethod
    def _cookie(response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/auth/" if name == STATE_COOKIE else "/",
            secure=True,
            httponly=True,
            # Lax, not Strict: the way back from Slack is a cross-site top-level navigation.
            samesite="lax",
        )


class SignInRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _claims(id_token: str) -> dict[str, Any]:
    try:
        payload = id_token.split(".")[1]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(decoded)
    except (IndexError, ValueError, binascii.Error):
        raise SignInRefused("Slack's ID token is not readable") from None
    if not isinstance(claims, dict):
        raise SignInRefused("Slack's ID token is not readable")
    return claims


def _local(target: str | None) -> str:
    """Only a path on this site may be where sign-in returns to (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"

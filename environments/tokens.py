"""API tokens: issued once in plain text, stored hashed, scoped, expiring, revocable, audited."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from environments.catalog import Catalog
from environments.clock import Clock
from environments.errors import InvalidInput, NotAuthenticated, NotFound, PolicyRefused
from environments.outcome import Hint
from environments.policy import Actor, Channel
from environments.registry import Database
from environments.registry import operations as ops
from environments.registry import tokens as rec
from environments.registry.tokens import ApiToken

SCOPES = ("read", "pipeline")
TOKEN_PREFIX = "shy_"
# last_used_at is written at most this often per token, so reads stay reads.
TOUCH_EVERY = timedelta(minutes=1)


def digest(token: str) -> str:
    """SHA-256 is enough: tokens carry 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    """The use cases of API tokens; the plain token exists only in `create`'s answer."""

    def __init__(self, catalog: Catalog, database: Database, clock: Clock) -> None:
        self.catalog = catalog
        self.db = database
        self.clock = clock

    def _may_manage(self, actor: Actor) -> None:
        if actor.channel is not Channel.CLI:
            raise PolicyRefused(
                "API tokens are managed from the command line only",
                hint="manage tokens where Shipyard's record is reachable",
            )
        if self.catalog.admins and actor.person not in self.catalog.admins:
            raise PolicyRefused(
                f"{actor.person} may not manage API tokens",
                hint=f"ask an admin: {', '.join(self.catalog.admins)}",
            )

    def create(
        self,
        actor: Actor,
        *,
        scope: str,
        env_type: str | None = None,
        expires_in: timedelta | None = None,
        description: str = "",
    ) -> tuple[str, ApiToken]:
        self._may_manage(actor)
        if scope not in SCOPES:
            raise InvalidInput(
                f"there is no scope '{scope}'", hint=f"use one of: {', '.join(SCOPES)}"
            )
        if env_type is not None:
            self.catalog.type(env_type)
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidInput("--expires must be in the future", hint="e.g. --expires 90d")
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.db.write() as conn:
            token = rec.insert_token(
                conn,
                token_hash=digest(plain),
                prefix=plain[: len(TOKEN_PREFIX) + 8],
                scope=scope,
                env_type=env_type,
                description=description,
                created_by=actor.person,
                created_at=now,
                expires_at=now + expires_in if expires_in else None,
            )
            ops.audit(
                conn,
                at=now,
                actor=actor.person,
                action="token.create",
                environment=None,
                token=token.prefix,
                scope=scope,
                type=env_type,
            )
        return plain, token

    def revoke(self, actor: Actor, prefix: str) -> ApiToken:
        self._may_manage(actor)
        now = self.clock.now()
        with self.db.write() as conn:
            token = rec.find_by_prefix(conn, prefix)
            if token is None:
                raise NotFound(
                    f"there is no token '{prefix}'", hints=Hint("see the tokens", "tokens list")
                )
            if token.revoked_at is None:
                rec.update_token(conn, token.id, revoked_at=now)
                ops.audit(
                    conn,
                    at=now,
                    actor=actor.person,
                    action="token.revoke",
                    environment=None,
                    token=token.prefix,
                )
            found = rec.find_by_prefix(conn, prefix)
        assert found is not None
        return found

    def list(self, actor: Actor) -> list[ApiToken]:
        self._may_manage(actor)
        with self.db.read() as conn:
            return rec.list_tokens(conn)

    def verify(self, presented: str, *, scope: str) -> ApiToken | None:
        """The token if it is known, unrevoked, unexpired and allows `scope`; else None."""
        try:
            return self.authenticate(presented, scope=scope)
        except (NotAuthenticated, PolicyRefused):
            return None

    def authenticate(self, presented: str, *, scope: str) -> ApiToken:
        """The token if it is known, unrevoked, unexpired and allows `scope`.

        NotAuthenticated says why it is not usable at all; PolicyRefused that its scope does not
        cover this. A pipeline token may also read; a read token may not act as a pipeline step.
        """
        token = None
        if presented.startswith(TOKEN_PREFIX):
            with self.db.read() as conn:
                token = rec.find_by_hash(conn, digest(presented))
        if token is None:
            raise NotAuthenticated(
                "the API token is not one Shipyard issued",
                hint="send 'Authorization: Bearer TOKEN'",
                hints=Hint("get a token", "tokens create"),
            )
        now = self.clock.now()
        if token.revoked_at is not None:
            raise NotAuthenticated(
                f"API token {token.prefix} was revoked",
                hints=Hint("ask an admin for a new token", "tokens create"),
            )
        if token.expires_at is not None and token.expires_at <= now:
            raise NotAuthenticated(
                f"API token {token.prefix} has expired",
                hints=Hint("ask an admin for a new token", "tokens create", {"expires": None}),
            )
        if scope == "pipeline" and token.scope != "pipeline":
            raise PolicyRefused(
                f"API token {token.prefix} is a {token.scope} token; pipeline steps need a "
                "pipeline token",
                hints=Hint(
                    "ask an admin for one",
                    "tokens create",
                    {"scope": "pipeline", "env_type": None},
                ),
            )
        if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
            with self.db.write() as conn:
                rec.update_token(conn, token.id, last_used_at=now)
        return token


def require_type(token: ApiToken, env_type: str) -> None:
    """A token made with --type acts on environments of that type only."""
    own = token.environment_type
    if own is not None and own != env_type:
        raise PolicyRefused(
            f"API token {token.prefix} acts on {own} environments, not {env_type}",
            hint=f"use a token made with '--type {env_type}' in this pipeline's variable group",
        )


def expiry_at(token: ApiToken, now: datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is None:
        return "never expires"
    return "expired" if token.expires_at <= now else "valid"

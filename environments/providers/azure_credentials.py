"""Azure credentials: a static bearer token (tests, CI), else one DefaultAzureCredential."""

from __future__ import annotations

import functools
import os
import time
from typing import Any

from azure.core.credentials import AccessToken, TokenCredential

STATIC_TOKEN_VARIABLE = "SHIPYARD_AZURE_STATIC_TOKEN"


class StaticTokenCredential:
    """A bearer token handed over as is (SHIPYARD_AZURE_STATIC_TOKEN), e.g. from
    `az account get-access-token`; tests use it against a fake Resource Manager. Never refreshed."""

    def __init__(self, token: str, *, lifetime: int = 3600) -> None:
        self._token = token
        self._lifetime = lifetime

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + self._lifetime)


def credential_from_environment() -> TokenCredential:
    """SHIPYARD_AZURE_STATIC_TOKEN if set, else DefaultAzureCredential (AZURE_TOKEN_CREDENTIALS).

    DefaultAzureCredential is built once per process and shared, so the token it caches is
    reused by every command and runtime of the process until it nears expiry.
    """
    token = os.environ.get(STATIC_TOKEN_VARIABLE)
    if token:
        return StaticTokenCredential(token)
    return _default_credential()


@functools.cache
def _default_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    credential: TokenCredential = DefaultAzureCredential()
    return credential

"""Slack user groups as approver lists: resolved through the Web API and cached for a while."""

from __future__ import annotations

import logging
import re
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

USER_GROUP = re.compile(r"S[A-Z0-9]{2,}")
log = logging.getLogger(__name__)


class SlackDirectory:
    """`group_members("S0123")` → its user ids (cached `ttl` seconds); None for non-groups."""

    def __init__(self, client: WebClient, *, ttl: float = 300.0) -> None:
        self.client = client
        self.ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def group_members(self, group: str) -> frozenset[str] | None:
        if not USER_GROUP.fullmatch(group):
            return None
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(group)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        try:
            response = self.client.usergroups_users_list(usergroup=group)
            members = frozenset(response.get("users") or [])
        except SlackApiError as exc:
            log.warning("cannot resolve user group %s: %s", group, exc.response.get("error"))
            members = cached[1] if cached else frozenset()
        with self._lock:
            self._cache[group] = (now, members)
        return members

"""A running load test's live figures in Slack: one message, updated in place every few seconds."""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


class LiveMessage:
    """Called with a line of figures; posts it once, then edits the same message.

    Updates closer together than `every` seconds are dropped (Slack's chat.update is rate
    limited per channel); the last line is always shown by `close`. Slack errors are logged.
    """

    def __init__(
        self,
        client: WebClient,
        *,
        channel: str,
        thread_ts: str | None,
        title: str,
        every: float = 3.0,
    ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.title = title
        self.every = every
        self.ts: str | None = None
        self._last = 0.0
        self._pending: str | None = None
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            now = time.monotonic()
            if self.ts is not None and now - self._last < self.every:
                self._pending = line
                return
            self._last, self._pending = now, None
            self._show(line)

    def close(self, line: str) -> None:
        with self._lock:
            self._show(line)

    def _show(self, line: str) -> None:
        text = f"⏳ {self.title}\n{line}"
        try:
            if self.ts is None:
                posted = self.client.chat_postMessage(
                    channel=self.channel, thread_ts=self.thread_ts, text=text
                )
                self.channel = str(posted.get("channel") or self.channel)
                self.ts = str(posted.get("ts"))
            else:
                self.client.chat_update(channel=self.channel, ts=self.ts, text=text)
        except SlackApiError as exc:
            log.warning(
                "Slack refused the progress of %s: %s", self.title, exc.response.get("error")
            )

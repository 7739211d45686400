"""Core text for Slack readers: no server paths, pids or ports (commands come as Hints)."""

from __future__ import annotations

import re

_LOOPBACK = re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\]):\d+\S*")
_PAREN = re.compile(r"\s*\([^()]*\b(?:pid|port)\b[^()]*\)")
_PORT = re.compile(r"\s*\b(?:on )?port \d+")
_PID = re.compile(r"\s*\(?\bpid \d+\)?")
_PATH = re.compile(r"(?<![\w:/.])(?:~|/)(?:[\w.@+-]+/)+[\w.@+-]*")


def for_slack(text: str) -> str:
    """What a person in Slack can use: nothing only the server has."""
    text = _LOOPBACK.sub("(local)", text)
    text = _PAREN.sub("", text)
    text = _PORT.sub("", text)
    text = _PID.sub("", text)
    text = _PATH.sub("(on the server)", text)
    return re.sub(r"  +", " ", text).strip()

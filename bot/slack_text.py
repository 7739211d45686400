"""Core text rewritten for Slack readers: Slack's commands, no server paths, pids or ports."""

from __future__ import annotations

import re

# `shipyard env show x` (the CLI) → `/env show x` (the same grammar in Slack).
_CLI = re.compile(r"\bshipyard\s+(?:env\s+)?(?=[a-z])")
_LOOPBACK = re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\]):\d+\S*")
_PAREN = re.compile(r"\s*\([^()]*\b(?:pid|port)\b[^()]*\)")
_PORT = re.compile(r"\s*\b(?:on )?port \d+")
_PID = re.compile(r"\s*\(?\bpid \d+\)?")
_PATH = re.compile(r"(?<![\w:/.])(?:~|/)(?:[\w.@+-]+/)+[\w.@+-]*")


def for_slack(text: str) -> str:
    """What a person in Slack can use: commands in Slack's form, nothing only the server has."""
    text = _CLI.sub("/env ", text)
    text = _LOOPBACK.sub("(local)", text)
    text = _PAREN.sub("", text)
    text = _PORT.sub("", text)
    text = _PID.sub("", text)
    text = _PATH.sub("(on the server)", text)
    text = text.replace("`/env env ", "`/env ")
    return re.sub(r"  +", " ", text).strip()

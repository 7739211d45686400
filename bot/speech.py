"""Each surface speaks its own language: command lines the core mentions, said as chat says them.

The core's hints name commands the way the command line spells them ('shipyard env show X');
in Slack the same hint reads `/env show X`, and a command chat does not offer is marked as one
for the command line.
"""

from __future__ import annotations

import re

from bot.command import Hint, Surface, chat_text
from bot.table import BY_KEY

_QUOTED = re.compile(r"'shipyard ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?([^']*)'")


def for_chat(text: str) -> str:
    """Rewrite 'shipyard GROUP VERB …' mentions into what works in Slack."""

    def said(match: re.Match[str]) -> str:
        group, verb, rest = match.group(1), match.group(2) or "", match.group(3)
        command = BY_KEY.get((group, verb)) or BY_KEY.get((group, ""))
        if command is None or not command.offered_on(Surface.SLACK):
            return f"`{match.group(0)[1:-1]}` (on the command line)"
        arguments = tuple(rest.split()) if command.verb else (verb, *rest.split())
        return f"`{chat_text(Hint('', command.group, command.verb or '', arguments))}`"

    return _QUOTED.sub(said, text)

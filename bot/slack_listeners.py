"""Slack listeners, kept thin: ack → parse → call the core → render; one module per flow.

Where a Slack request becomes a core call, in one hop:

    /env TEXT                 bot/slack_command.py       → bot/table.py → the command's handler
    Approve / Reject buttons  bot/slack_approvals.py     → Lifecycle.approve / reject
    create form, Extend,      bot/slack_environments.py  → Lifecycle.create / extend / destroy
      Destroy
    App Home                  bot/slack_home.py          → the record (read only)
    pipeline gate buttons     bot/pipeline_bridge.py     → policy.require_approver → Azure DevOps
"""

from __future__ import annotations

from bot.slack_command import CommandFlow
from bot.slack_face import Handoff

__all__ = ["Handoff", "SlackFace"]


class SlackFace(CommandFlow):
    """Everything a person does in Slack, translated into core calls as that person."""

"""The Slack face and the process that hosts everything: CLI, commands, Bolt app, web."""

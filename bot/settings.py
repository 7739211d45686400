"""Slack settings from the environment (tokens and secrets never come from files)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from environments.errors import ConfigError

SLACK_API = "https://slack.com/api/"


class SlackSettings(BaseSettings):
    """SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN (Socket Mode), SLACK_API_URL."""

    model_config = SettingsConfigDict(env_prefix="SLACK_", extra="ignore")

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str = Field(default=SLACK_API)

    @field_validator("api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins method names onto base_url as is: it must end with '/'.
        return value if value.endswith("/") else value + "/"

    def require(self, *, socket_mode: bool) -> tuple[str, str]:
        """(bot token, signing secret), or a one-line reason naming what is missing."""
        missing = []
        if self.bot_token is None:
            missing.append("SLACK_BOT_TOKEN")
        if socket_mode and self.app_token is None:
            missing.append("SLACK_APP_TOKEN")
        if not socket_mode and self.signing_secret is None:
            missing.append("SLACK_SIGNING_SECRET")
        if missing:
            raise ConfigError(
                f"missing {', '.join(missing)} in the environment",
                hint="see README 'Connecting Slack' for where each value comes from",
            )
        assert self.bot_token is not None
        secret = self.signing_secret.get_secret_value() if self.signing_secret else ""
        return self.bot_token.get_secret_value(), secret

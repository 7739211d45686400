"""The Notifier protocol: how the core tells people what happened (Slack, terminal, nothing)."""

from __future__ import annotations

from typing import Protocol

from environments.model import Approval, Environment


class Notifier(Protocol):
    """Called after the record changed; a notifier failing never undoes the change."""

    def approval_requested(self, approval: Approval) -> None: ...

    def approval_changed(self, approval: Approval) -> None: ...

    def progress(self, environment: str, message: str) -> None: ...

    def environment_ready(self, environment: Environment) -> None: ...

    def failed(self, environment: str, reason: str, hint: str) -> None: ...

    def expiry_warning(self, environment: Environment) -> None: ...


class SilentNotifier:
    """Tells nobody; the record still has everything."""

    def approval_requested(self, approval: Approval) -> None:
        pass

    def approval_changed(self, approval: Approval) -> None:
        pass

    def progress(self, environment: str, message: str) -> None:
        pass

    def environment_ready(self, environment: Environment) -> None:
        pass

    def failed(self, environment: str, reason: str, hint: str) -> None:
        pass

    def expiry_warning(self, environment: Environment) -> None:
        pass

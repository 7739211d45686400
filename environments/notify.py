"""The Notifier protocol: how the core tells people what happened (Slack, terminal, nothing)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from environments import redaction
from environments.model import Approval, Environment, HealthStatus

if TYPE_CHECKING:
    from environments.loadtests.summary import LoadTestSummary
    from environments.providers.base import HealthReport

log = logging.getLogger(__name__)


class Notifier(Protocol):
    """Called after the record changed; a notifier failing never undoes the change."""

    def approval_requested(self, approval: Approval) -> None: ...

    def approval_changed(self, approval: Approval) -> None: ...

    def progress(self, environment: str, message: str, *, operation: int) -> None: ...

    def environment_ready(self, environment: Environment, *, operation: int) -> None: ...

    def failed(self, environment: str, reason: str, hint: str, *, operation: int) -> None: ...

    def expiry_warning(self, environment: Environment) -> None: ...

    def loadtest_finished(self, summary: LoadTestSummary) -> None: ...

    def health_changed(
        self, environment: Environment, previous: HealthStatus | None, report: HealthReport
    ) -> None: ...


class SilentNotifier:
    """Tells nobody; the record still has everything."""

    def approval_requested(self, approval: Approval) -> None:
        pass

    def approval_changed(self, approval: Approval) -> None:
        pass

    def progress(self, environment: str, message: str, *, operation: int) -> None:
        pass

    def environment_ready(self, environment: Environment, *, operation: int) -> None:
        pass

    def failed(self, environment: str, reason: str, hint: str, *, operation: int) -> None:
        pass

    def expiry_warning(self, environment: Environment) -> None:
        pass

    def loadtest_finished(self, summary: LoadTestSummary) -> None:
        pass

    def health_changed(
        self, environment: Environment, previous: HealthStatus | None, report: HealthReport
    ) -> None:
        pass


class Notifiers:
    """Tells every registered notifier; one failing is logged and does not stop the others."""

    def __init__(self, *notifiers: Notifier) -> None:
        self.notifiers: list[Notifier] = list(notifiers)

    def add(self, notifier: Notifier) -> None:
        self.notifiers.append(notifier)

    def _each(self, method: str, *args: Any, **kwargs: Any) -> None:
        for notifier in self.notifiers:
            try:
                getattr(notifier, method)(*args, **kwargs)
            except Exception:
                log.exception("notifier %s failed in %s", type(notifier).__name__, method)

    def approval_requested(self, approval: Approval) -> None:
        self._each("approval_requested", approval)

    def approval_changed(self, approval: Approval) -> None:
        self._each("approval_changed", approval)

    def progress(self, environment: str, message: str, *, operation: int) -> None:
        self._each("progress", environment, redaction.mask(message), operation=operation)

    def environment_ready(self, environment: Environment, *, operation: int) -> None:
        self._each("environment_ready", environment, operation=operation)

    def failed(self, environment: str, reason: str, hint: str, *, operation: int) -> None:
        self._each(
            "failed", environment, redaction.mask(reason), redaction.mask(hint), operation=operation
        )

    def expiry_warning(self, environment: Environment) -> None:
        self._each("expiry_warning", environment)

    def loadtest_finished(self, summary: LoadTestSummary) -> None:
        self._each("loadtest_finished", summary)

    def health_changed(
        self, environment: Environment, previous: HealthStatus | None, report: HealthReport
    ) -> None:
        self._each("health_changed", environment, previous, report)

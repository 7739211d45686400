"""Providers: where environments physically live (local processes, Azure resource groups)."""

from environments.providers.base import Progress, Provider, ProviderResult

__all__ = ["Progress", "Provider", "ProviderResult"]

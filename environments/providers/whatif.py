"""What a create or deploy would change, without doing it (any provider's answer to --what-if)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PropertyChange:
    """One property a what-if says would change: path, before → after, and how."""

    path: str
    change: str
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class ResourceChange:
    """One resource a what-if says would be created, modified, deleted or left alone."""

    change: str
    resource_id: str
    properties: tuple[PropertyChange, ...] = ()


@dataclass(frozen=True)
class WhatIf:
    """What a create or deploy would do, without doing it."""

    environment: str
    provider: str
    summary: str
    changes: tuple[ResourceChange, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

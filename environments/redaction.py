"""Masking of secret values Shipyard itself resolved, in everything it records, logs or sends.

Shipyard only ever stores and shows secret *references* (`@env(NAME)`, `@keyvault(…)`), but the
local provider resolves `@env` values to start an application, and an application may print
them (a connection string in a start-up banner, an exception quoting its configuration). Its
log tail then becomes a failure reason, a progress line, a Slack message. Every value resolved
in this process is remembered here, and every text on its way to the record, a notifier, the
terminal or a log handler passes through `mask`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

MASK = "•••"
# Shorter values are not masked: hiding every "1" or "on" in a message would garble it and tell
# a reader which characters the secret is made of; such a value is no secret worth the name.
MIN_LENGTH = 4

_lock = threading.Lock()
_values: frozenset[str] = frozenset()
_ordered: tuple[str, ...] = ()
_factory_installed = False


def remember(value: str) -> None:
    """From now on, `value` is masked in this process's records, messages and logs."""
    global _values, _ordered
    if len(value) < MIN_LENGTH or value in _values:
        return
    # As JSON columns and payloads spell it too (quotes, backslashes, non-ASCII escaped).
    spellings = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    with _lock:
        _values = _values | spellings
        # Longest first, so a secret that contains another is masked whole.
        _ordered = tuple(sorted(_values, key=len, reverse=True))
    _install_log_masking()


def active() -> bool:
    """Whether any value has been remembered (the common case, none, costs nothing)."""
    return bool(_ordered)


def mask(text: str) -> str:
    """`text` with every remembered secret value replaced by a mask."""
    for value in _ordered:
        if value in text:
            text = text.replace(value, MASK)
    return text


def mask_optional(text: str | None) -> str | None:
    return None if text is None else mask(text)


def mask_data(data: Any) -> Any:
    """Strings anywhere inside dicts, lists and tuples masked (JSON-shaped audit details)."""
    if not _ordered:
        return data
    if isinstance(data, str):
        return mask(data)
    if isinstance(data, Mapping):
        return {key: mask_data(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return type(data)(mask_data(item) for item in data)
    return data


def _install_log_masking() -> None:
    """Every log record made from now on, in any logger, carries masked text.

    A record factory rather than a handler filter: handlers are configured later and elsewhere
    (uvicorn, Bolt, pytest's capture), a factory sees every record whoever handles it.
    """
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        _factory_installed = True
        previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not _ordered:
            return record
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if mask(text) != text:
                record.exc_text = mask(text)
        return record

    logging.setLogRecordFactory(factory)

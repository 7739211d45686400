"""A locustfile loaded next to the plan: writes every request as a JTL CSV line (the raw samples).

Locust's own CSV files hold only aggregates and a per-second history; a verdict needs the samples.
The engine passes this file after the plan (`-f plan.py,locust_samples.py`) and names the output
in SHIPYARD_LOCUST_SAMPLES. It runs inside the Locust process and imports nothing of Shipyard.
"""

from __future__ import annotations

import csv
import os
import time
from typing import Any

from locust import events

_PATH = os.environ.get("SHIPYARD_LOCUST_SAMPLES")
_file = open(_PATH, "w", newline="", encoding="utf-8", buffering=1 << 16) if _PATH else None  # noqa: SIM115 - open for the whole run
_writer = csv.writer(_file) if _file else None
if _writer is not None:
    _writer.writerow(["timeStamp", "elapsed", "label", "responseCode", "success"])


@events.request.add_listener  # type: ignore[untyped-decorator]
def _sample(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: BaseException | None = None,
    start_time: float | None = None,
    response: Any = None,
    **_: Any,
) -> None:
    if _writer is None:
        return
    started = start_time if start_time is not None else time.time() - response_time / 1000.0
    code = getattr(response, "status_code", "") if response is not None else ""
    _writer.writerow(
        [int(started * 1000), round(response_time), name, code, "false" if exception else "true"]
    )


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _close(**_: Any) -> None:
    if _file is not None:
        _file.close()

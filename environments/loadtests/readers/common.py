"""What every result reader shares: opening a file, one-line errors, JTL columns to Samples."""

from __future__ import annotations

import io
import os
from typing import Any, Literal

import numpy as np
import polars as pl

from environments.errors import InvalidInput
from environments.loadtests.results import (
    Int32Array,
    ResultFormat,
    Samples,
)

Timestamps = Literal["start", "end"]
_HEAD_BYTES = 64 << 10
MAX_LABEL = 2000
JMETER_FIELDS = frozenset(
    {
        *("timeStamp", "elapsed", "label", "responseCode", "responseMessage", "threadName"),
        *("dataType", "success", "failureMessage", "bytes", "sentBytes", "grpThreads"),
        *("allThreads", "URL", "Filename", "Latency", "Encoding", "SampleCount", "ErrorCount"),
        *("Hostname", "IdleTime", "Connect"),
    }
)
# The JMeter columns a report uses, and how polars parses them.
_JMETER_TYPES: dict[str, Any] = {
    "label": pl.Categorical,
    "success": pl.Boolean,
    "elapsed": pl.Int32,
    "timeStamp": pl.Int64,
    "bytes": pl.Int64,
    "Latency": pl.Int32,
    "SampleCount": pl.Int32,
    "ErrorCount": pl.Int32,
}
_TEXT_HINT = "report on a JMeter .jtl (CSV or XML) or a Locust *_stats.csv / *_stats_history.csv"
LOCUST_METHOD = (
    "Locust's own figures (its percentiles round response times over 100 ms "
    "to two significant digits)"
)


def _bad(path: str | os.PathLike[str], problem: str, hint: str = "") -> InvalidInput:
    return InvalidInput(f"{path}: {problem}", hint=hint)


def _open(path: str | os.PathLike[str]) -> io.BufferedReader:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise _bad(path, "no such file") from None
    except IsADirectoryError:
        raise _bad(path, "is a folder, not a result file") from None
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc.strerror})") from None


def _head(path: str | os.PathLike[str]) -> str:
    with _open(path) as f:
        data = f.read(_HEAD_BYTES)
    return data.decode("utf-8", "replace").removeprefix("\ufeff")


def _epoch_ms(path: str | os.PathLike[str], stamps: pl.Series) -> pl.Series:
    try:
        moments = stamps.str.strip_chars().str.to_datetime(strict=True, time_unit="ms")
    except (pl.exceptions.PolarsError, ValueError):
        sample = stamps.drop_nulls().head(1).to_list()
        raise _bad(
            path,
            f"timeStamp {sample[0] if sample else ''!r} is neither milliseconds nor a date "
            "and time I can read",
            hint="save results with jmeter.save.saveservice.timestamp_format=ms",
        ) from None
    return moments.dt.epoch("ms").alias("timeStamp")


def _first(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _samples(
    path: str | os.PathLike[str],
    fmt: ResultFormat,
    labels: tuple[str, ...],
    codes: Int32Array,
    columns: dict[str, Any],
    timestamps: Timestamps,
) -> Samples:
    """Samples from numpy columns named as JMeter's CSV header names them."""

    def numbers(name: str, dtype: type[np.generic]) -> Any:
        values = columns.get(name)
        return None if values is None else np.asarray(values).astype(dtype, copy=False)

    longest = max((len(label) for label in labels), default=0)
    if longest > MAX_LABEL:
        raise _bad(
            path,
            f"has a label of {longest:,} characters; a request's label is a short name",
            hint="the file is corrupt, or a column holds a response body",
        )
    elapsed = numbers("elapsed", np.int32)
    if elapsed is not None and bool((elapsed < 0).any()):
        row = int(np.argmax(elapsed < 0))
        raise _bad(
            path,
            f"has {int((elapsed < 0).sum()):,} sample(s) with a negative elapsed time "
            f"(the first is sample {row + 1})",
            hint="the file is corrupt or was edited; elapsed is milliseconds, 0 or more",
        )
    start = numbers("timeStamp", np.int64)
    if start is not None and elapsed is not None and timestamps == "end":
        start = start - elapsed
    sample_count = numbers("SampleCount", np.int32)
    error_count = numbers("ErrorCount", np.int32)
    if sample_count is None or bool((sample_count == 1).all()):
        sample_count = error_count = None  # no batch rows: `success` tells each error
    return Samples(
        source=str(path),
        format=fmt,
        labels=labels,
        label=codes,
        success=numbers("success", np.bool_),
        elapsed=elapsed,
        start=start,
        received_bytes=numbers("bytes", np.int64),
        latency=numbers("Latency", np.int32),
        sample_count=sample_count,
        error_count=error_count,
    )


# --- JMeter XML ------------------------------------------------------------------------------

# XML attribute → the CSV column it is saved as

"""The result model of a load-test run: samples as columns, aggregate reports, engine time series.

A run's results come in one of three shapes (`Result`):

    Samples          one entry per sample the engine recorded (JMeter JTL, CSV or XML), held as
                     numpy columns — never one Python object per sample
    AggregateReport  per request label and in total: samples, errors, response-time figures,
                     throughput. Computed from Samples by `aggregate.aggregate`, or read as the
                     engine computed it (Locust's `*_stats.csv`), which it passes through as is
    LocustHistory    Locust's `*_stats_history.csv`: cumulative totals and a rolling window of
                     percentiles, one row per label per second

Times are milliseconds; instants are milliseconds since the Unix epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

Int32Array: TypeAlias = npt.NDArray[np.int32]
Int64Array: TypeAlias = npt.NDArray[np.int64]
FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]

TOTAL = "TOTAL"
"""The label of the row over all samples, as JMeter's Aggregate Report names it."""


class ResultFormat(StrEnum):
    """Which engine wrote a result file, and how."""

    JMETER_CSV = "jmeter-csv"
    JMETER_XML = "jmeter-xml"
    LOCUST_STATS = "locust-stats"
    LOCUST_HISTORY = "locust-history"


@dataclass(frozen=True, eq=False)
class Samples:
    """Every sample of a run, as columns of equal length (one entry per result row).

    `label` holds codes into `labels` (in order of first appearance). `success` is the engine's
    verdict and the only truth about errors: a 500 that an assertion accepted is a success.
    A column the engine did not save is None. A JMeter batch row (`SampleCount` > 1) stands for
    `sample_count` samples whose elapsed times add up to `elapsed`, `error_count` of them failed.
    """

    source: str
    format: ResultFormat
    labels: tuple[str, ...]
    label: Int32Array
    success: BoolArray
    elapsed: Int32Array | None = None
    start: Int64Array | None = None
    received_bytes: Int64Array | None = None
    latency: Int32Array | None = None
    sample_count: Int32Array | None = None
    error_count: Int32Array | None = None

    def __post_init__(self) -> None:
        rows = len(self.label)
        for name in (
            "success",
            "elapsed",
            "start",
            "received_bytes",
            "latency",
            "sample_count",
            "error_count",
        ):
            column = getattr(self, name)
            if column is not None and len(column) != rows:
                raise ValueError(f"column {name} has {len(column)} rows, label has {rows}")

    def __len__(self) -> int:
        return len(self.label)

    @property
    def samples(self) -> int:
        """How many samples the rows stand for (more than rows when there are batch rows)."""
        if self.sample_count is None:
            return len(self.label)
        return int(self.sample_count.sum(dtype=np.int64))

    def row_errors(self) -> Int64Array:
        """Failed samples per row: the batch row's ErrorCount, else 1 for each failed row."""
        if self.error_count is not None:
            return self.error_count.astype(np.int64)
        return (~self.success).astype(np.int64)

    def end(self) -> Int64Array | None:
        """When each sample ended (start + elapsed), or None without start times."""
        if self.start is None:
            return None
        return self.start if self.elapsed is None else self.start + self.elapsed


@dataclass(frozen=True)
class Distribution:
    """A measure's summary (response time or latency), in ms; None where it is not known.

    `percentiles` maps a percent (95.0) to its value; only the percents computed (or that the
    engine reported) are there.
    """

    mean: float | None
    min: float | None
    max: float | None
    percentiles: Mapping[float, float | None] = field(default_factory=dict)

    def percentile(self, percent: float) -> float | None:
        return self.percentiles.get(float(percent))

    def to_dict(self) -> dict[str, Any]:
        return {
            "average": self.mean,
            "min": self.min,
            "max": self.max,
            "percentiles": {_percent_key(p): v for p, v in sorted(self.percentiles.items())},
        }


@dataclass(frozen=True)
class LabelStats:
    """One row of the aggregate report: a request label (or TOTAL) and its figures."""

    label: str
    samples: int
    errors: int
    response_time: Distribution | None
    throughput_per_sec: float | None
    received_kb_per_sec: float | None
    start_ms: int | None = None
    end_ms: int | None = None
    latency: Distribution | None = None

    @property
    def error_percent(self) -> float | None:
        return 100.0 * self.errors / self.samples if self.samples else None

    def percentile(self, percent: float) -> float | None:
        return self.response_time.percentile(percent) if self.response_time else None

    def to_dict(self) -> dict[str, Any]:
        """JMeter's Aggregate Report columns, flat, plus every computed percentile."""
        rt = self.response_time or Distribution(None, None, None)
        data: dict[str, Any] = {
            "label": self.label,
            "samples": self.samples,
            "errors": self.errors,
            "average": rt.mean,
            "median": rt.percentile(50),
            "p90": rt.percentile(90),
            "p95": rt.percentile(95),
            "p99": rt.percentile(99),
            "min": rt.min,
            "max": rt.max,
            "error_percent": self.error_percent,
            "throughput_per_sec": self.throughput_per_sec,
            "received_kb_per_sec": self.received_kb_per_sec,
            "percentiles": rt.to_dict()["percentiles"],
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
        }
        if self.latency is not None:
            data["latency"] = self.latency.to_dict()
        return data


@dataclass(frozen=True)
class AggregateReport:
    """The aggregate report of a run: one row per request label, and the TOTAL row.

    `method` says in one line how the figures were obtained (which percentile rule, or that
    the engine computed them), so a report is never mistaken for something it is not.
    """

    source: str
    format: ResultFormat
    rows: tuple[LabelStats, ...]
    total: LabelStats
    method: str

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(row.label for row in self.rows)

    def row(self, label: str | None = None) -> LabelStats:
        """The row of one label, or TOTAL for None; KeyError when the run has no such label."""
        if label is None or label == TOTAL:
            return self.total
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format.value,
            "method": self.method,
            "rows": [row.to_dict() for row in self.rows],
            "total": self.total.to_dict(),
        }


@dataclass(frozen=True, eq=False)
class LocustHistory:
    """Locust's `*_stats_history.csv` as columns: one row per label (and Aggregated) per second.

    `timestamp` is in seconds since the epoch. `percentiles` (percent → column, NaN for N/A)
    describe a recent window of the run (Locust's "current" response times), not the whole run;
    the `total_*` columns are cumulative since the start. The label "Aggregated" is the total.
    """

    source: str
    labels: tuple[str, ...]
    label: Int32Array
    timestamp: Int64Array
    user_count: Int64Array
    requests_per_sec: FloatArray
    failures_per_sec: FloatArray
    percentiles: Mapping[float, FloatArray]
    total_requests: Int64Array
    total_failures: Int64Array
    total_median: FloatArray
    total_mean: FloatArray
    total_min: FloatArray
    total_max: FloatArray
    total_content_size: FloatArray

    def __len__(self) -> int:
        return len(self.label)


Result: TypeAlias = Samples | AggregateReport | LocustHistory


def _percent_key(percent: float) -> str:
    """95.0 → "p95", 99.9 → "p99.9": the JSON key of a percentile."""
    return f"p{percent:g}"

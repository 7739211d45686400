"""The aggregate report JMeter users know, computed exactly from samples (or passed through).

Per request label and in TOTAL: samples, average, median, 90th/95th/99th percentile, min, max,
error %, throughput per second and received KB/s — the columns of JMeter's Aggregate Report,
with the figures it would show (its table truncates the average to whole milliseconds; the
report keeps the exact mean).

Percentiles follow JMeter's `StatCalculator.getPercentPoint` as its Aggregate Report calls it:
with the n elapsed times of a label sorted ascending and p = the percent as a Java float divided
by 100 (float arithmetic: 90 → 0.9f = 0.89999998), the percentile is the value at 1-based rank
round(n * p) (Java's Math.round, halves up), rank 0 meaning the smallest; p ≥ 1 gives the maximum.
No interpolation: every percentile is one of the measured times. A batch row (SampleCount = k)
counts as k samples of elapsed / k (integer division), as JMeter adds it.

Throughput = samples / (last sample end - first sample start), where a sample ends at
start + elapsed, per label and in total, as JMeter's SamplingStatCalculator computes it; received
KB/s = received bytes / 1024 / the same span. A span of zero (or no timestamps) gives None.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import numpy as np

from environments.loadtests.results import (
    TOTAL,
    AggregateReport,
    Distribution,
    Int32Array,
    Int64Array,
    LabelStats,
    LocustHistory,
    Result,
    ResultFormat,
    Samples,
)

DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0)
JMETER_METHOD = (
    "exact, by JMeter's Aggregate Report rule: the sorted elapsed time at rank round(n * p)"
)
HISTORY_METHOD = (
    "Locust's cumulative totals from its stats history: median only (its other percentiles "
    "cover a recent window, not the run); throughput over the history's span, to the second"
)
_LOW32 = np.int64(0xFFFFFFFF)
_CHUNK = 1 << 20


def aggregate(
    result: Result, *, percentiles: Iterable[float] = DEFAULT_PERCENTILES, latency: bool = False
) -> AggregateReport:
    """The aggregate report of a result: computed from samples, derived from Locust's history,
    or (Locust's stats) the engine's own report, unchanged.

    `percentiles` are percents (95, 99.9) computed besides the median, 90th, 95th and 99th;
    `latency` adds a latency distribution per row when the samples have one.
    """
    if isinstance(result, AggregateReport):
        return result
    if isinstance(result, LocustHistory):
        return from_history(result)
    percents = tuple(sorted({float(p) for p in (*DEFAULT_PERCENTILES, *percentiles)}))
    return from_samples(result, percents, latency=latency)


def jmeter_rank(count: int, percent: float) -> int | None:
    """The 1-based rank JMeter's getPercentPoint picks among `count` sorted values.

    None means the maximum (p ≥ 1). Rank 1 also stands for "round(n * p) ≤ 0".
    """
    fraction = float(np.float32(percent) / np.float32(100))
    if fraction >= 1.0:
        return None
    x = count * fraction
    rank = math.floor(x)
    if x - rank >= 0.5:
        rank += 1
    return max(rank, 1)


def percentile_of_sorted(values: Sequence[int] | Int64Array, percent: float) -> int | None:
    """JMeter's percentile of values already sorted ascending (None when there are none)."""
    if len(values) == 0:
        return None
    rank = jmeter_rank(len(values), percent)
    return int(values[-1] if rank is None else values[rank - 1])


def from_samples(
    samples: Samples, percents: Sequence[float] = DEFAULT_PERCENTILES, *, latency: bool = False
) -> AggregateReport:
    """JMeter's Aggregate Report over every sample, per label and in total."""
    k = len(samples.labels)
    codes = samples.label
    weights = samples.sample_count
    counts = _per_label(k, codes, None if weights is None else weights.astype(np.int64))
    if samples.error_count is not None:
        errors = _per_label(k, codes, samples.error_count.astype(np.int64))
    else:
        errors = _per_label(k, codes[~samples.success], None)
    response = (
        _distributions(k, codes, samples.elapsed, weights, counts, percents)
        if samples.elapsed is not None
        else None
    )
    latencies = (
        _distributions(k, codes, samples.latency, weights, counts, percents)
        if latency and samples.latency is not None
        else None
    )
    first = last = received = None
    if samples.start is not None:
        first, last = _span(k, codes, samples.start, samples.elapsed)
    if samples.received_bytes is not None:
        received = _per_label(k, codes, samples.received_bytes)

    def row(label: str, i: int | None) -> LabelStats:
        pick = slice(None) if i is None else i
        count = int(counts.sum() if i is None else counts[i])
        start = None if first is None or not count else int(first[pick].min())
        stop = None if last is None or not count else int(last[pick].max())
        span = None if start is None or stop is None or stop <= start else (stop - start) / 1000
        total_bytes = None if received is None else int(received[pick].sum())
        return LabelStats(
            label=label,
            samples=count,
            errors=int(errors.sum() if i is None else errors[i]),
            response_time=None if response is None else response[-1 if i is None else i],
            throughput_per_sec=None if span is None else count / span,
            received_kb_per_sec=None
            if span is None or total_bytes is None
            else total_bytes / 1024 / span,
            start_ms=start,
            end_ms=stop,
            latency=None if latencies is None else latencies[-1 if i is None else i],
        )

    return AggregateReport(
        source=samples.source,
        format=samples.format,
        rows=tuple(row(label, i) for i, label in enumerate(samples.labels)),
        total=row(TOTAL, None),
        method=JMETER_METHOD,
    )


def _span(
    k: int, codes: Int32Array, start: Int64Array, elapsed: Int32Array | None
) -> tuple[Int64Array, Int64Array]:
    """First start and last end (start + elapsed) per label, a million rows at a time."""
    first = np.full(k, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(k, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(first, codes, start)
    if elapsed is None:
        np.maximum.at(last, codes, start)
        return first, last
    end = np.empty(min(len(start), _CHUNK), dtype=np.int64)
    for at in range(0, len(start), _CHUNK):
        part = slice(at, at + _CHUNK)
        n = len(start[part])
        np.add(start[part], elapsed[part], out=end[:n])
        np.maximum.at(last, codes[part], end[:n])
    return first, last


def _per_label(k: int, codes: Int32Array, values: Int64Array | None) -> Int64Array:
    """Sum of `values` (or a count of rows) per label code."""
    sums = np.zeros(k, dtype=np.int64)
    np.add.at(sums, codes, 1 if values is None else values)
    return sums


def _distributions(
    k: int,
    codes: Int32Array,
    values: Int32Array,
    weights: Int32Array | None,
    counts: Int64Array,
    percents: Sequence[float],
) -> list[Distribution]:
    """One Distribution per label, then the TOTAL one (last)."""
    if weights is not None:
        sums = _per_label(k, codes, values.astype(np.int64))
        return _weighted(k, codes, values, weights, sums, percents)
    rows = len(values)
    if rows == 0:
        return [Distribution(None, None, None, {}) for _ in range(k + 1)]
    # Label code in the high 32 bits, value - low in the low 32: one int64 sort orders every
    # label's values at once (much faster than a sort per label), in one new array.
    low = int(values.min())
    key = codes.astype(np.int64)
    key <<= 32
    key += values
    key -= low
    key.sort()
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    # A segment's key sum is its values' sum (minus low each) plus n * code << 32; int64 wraps
    # around, and the values' sum fits, so the difference is exact.
    sums = np.add.reduceat(key, starts) - (counts * np.arange(k, dtype=np.int64) << 32)
    result = []
    for i in range(k):
        lo, n = int(starts[i]), int(counts[i])

        def at(rank: int, lo: int = lo) -> int:
            return int(key[lo + rank - 1] & _LOW32) + low

        result.append(_distribution(n, int(sums[i]) + n * low, at, percents))
    ordered = np.sort(values)
    total = int(sums.sum()) + rows * low
    result.append(_distribution(rows, total, lambda rank: int(ordered[rank - 1]), percents))
    return result


def _distribution(
    n: int, total: int, at: Callable[[int], int], percents: Sequence[float]
) -> Distribution:
    """Mean, min, max and percentiles from `at(rank)`: the value at a 1-based sorted rank."""
    if n == 0:
        return Distribution(None, None, None, {p: None for p in percents})
    table: dict[float, float | None] = {}
    for p in percents:
        rank = jmeter_rank(n, p)
        table[p] = at(n if rank is None else rank)
    return Distribution(mean=total / n, min=at(1), max=at(n), percentiles=table)


def _weighted(
    k: int,
    codes: Int32Array,
    elapsed: Int32Array,
    weights: Int32Array,
    sums: Int64Array,
    percents: Sequence[float],
) -> list[Distribution]:
    """Batch rows: each stands for `weight` samples of elapsed // weight (JMeter's addValue)."""
    each = elapsed.astype(np.int64) // np.maximum(weights, 1)
    result = []
    for i in [*range(k), None]:
        mask = slice(None) if i is None else codes == i
        order = np.argsort(each[mask], kind="stable")
        ordered = each[mask][order]
        cumulative = np.cumsum(weights[mask][order], dtype=np.int64)
        n = int(cumulative[-1]) if len(cumulative) else 0

        def at(
            rank: int, ordered: Int64Array = ordered, cumulative: Int64Array = cumulative
        ) -> int:
            return int(ordered[int(np.searchsorted(cumulative, rank))])

        total = int(sums.sum() if i is None else sums[i])
        result.append(_distribution(n, total, at, percents))
    return result


def from_history(history: LocustHistory) -> AggregateReport:
    """A report from the last (cumulative) row of each label in Locust's stats history."""
    stamps = history.timestamp
    span = int(stamps.max() - stamps.min()) if len(history) else 0
    rows: list[LabelStats] = []
    total: LabelStats | None = None
    for code, label in enumerate(history.labels):
        where = np.flatnonzero(history.label == code)
        last = int(where[np.flatnonzero(stamps[where] == stamps[where].max())[-1]])
        samples = int(history.total_requests[last])
        size = _finite(history.total_content_size[last])
        entry = LabelStats(
            label=label,
            samples=samples,
            errors=int(history.total_failures[last]),
            response_time=Distribution(
                mean=_finite(history.total_mean[last]),
                min=_finite(history.total_min[last]),
                max=_finite(history.total_max[last]),
                percentiles={50.0: _finite(history.total_median[last])},
            )
            if samples
            else None,
            throughput_per_sec=samples / span if span else None,
            received_kb_per_sec=samples * size / span / 1024 if span and size is not None else None,
            start_ms=int(stamps.min()) * 1000,
            end_ms=int(stamps[last]) * 1000,
        )
        if label == "Aggregated":
            total = replace(entry, label=TOTAL)
        else:
            rows.append(entry)
    if total is None:
        total = LabelStats(TOTAL, 0, 0, None, None, None)
    return AggregateReport(
        source=history.source,
        format=ResultFormat.LOCUST_HISTORY,
        rows=tuple(rows),
        total=total,
        method=HISTORY_METHOD,
    )


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)

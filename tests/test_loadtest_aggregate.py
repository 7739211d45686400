"""The aggregate report: JMeter's percentile rule, hand-computed reports, real files, Locust."""

from __future__ import annotations

import math
import re
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from environments.loadtests.aggregate import (
    aggregate,
    from_samples,
    jmeter_rank,
    percentile_of_sorted,
)
from environments.loadtests.readers import read_result
from environments.loadtests.results import (
    TOTAL,
    AggregateReport,
    ResultFormat,
    Samples,
)
from tests.reference import REFERENCE

ROOT = Path(__file__).resolve().parents[1]
JMETER = REFERENCE / "jmeter"


def java_float(value: float) -> float:
    """A Java float widened to double, as `(double) 0.9f`."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


class StatCalculator:
    """JMeter's org.apache.jorphan.math.StatCalculator, line by line: the oracle.

    addValue(val, sampleCount) counts sampleCount values of val / sampleCount; getPercentPoint
    walks the sorted distinct values, subtracting their counts from Math.round(count * percent).
    """

    def __init__(self) -> None:
        self.values: Counter[int] = Counter()
        self.count = 0
        self.sum = 0.0

    def add_value(self, value: int, sample_count: int = 1) -> None:
        self.count += sample_count
        self.sum += value
        actual = int(value / sample_count) if sample_count > 1 else value  # Java long division
        self.values[actual] += sample_count

    def percent_point(self, percent: float) -> int:
        if self.count <= 0:
            return 0
        if percent >= 1.0:
            return max(self.values)
        target = math.floor(self.count * percent + 0.5)  # Java Math.round
        for value in sorted(self.values):
            target -= self.values[value]
            if target <= 0:
                return value
        return 0


def make(
    labels: list[str],
    elapsed: list[int],
    success: list[bool],
    start: list[int] | None = None,
    received: list[int] | None = None,
    sample_count: list[int] | None = None,
    error_count: list[int] | None = None,
) -> Samples:
    names = list(dict.fromkeys(labels))
    return Samples(
        source="test",
        format=ResultFormat.JMETER_CSV,
        labels=tuple(names),
        label=np.array([names.index(x) for x in labels], dtype=np.int32),
        success=np.array(success, dtype=bool),
        elapsed=np.array(elapsed, dtype=np.int32),
        start=None if start is None else np.array(start, dtype=np.int64),
        received_bytes=None if received is None else np.array(received, dtype=np.int64),
        sample_count=None if sample_count is None else np.array(sample_count, dtype=np.int32),
        error_count=None if error_count is None else np.array(error_count, dtype=np.int32),
    )


# --- the percentile rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "percent", "rank"),
    [
        (1, 50, 1),
        (1, 99, 1),
        (2, 50, 1),  # round(1.0) = 1
        (3, 50, 2),  # round(1.5) = 2: halves go up
        (4, 50, 2),
        (10, 90, 9),
        (5, 90, 4),  # 5 * 0.9f = 4.4999999 -> 4 (a double 0.9 would give round(4.5) = 5)
        (10, 95, 9),  # 10 * 0.95f = 9.4999998 -> 9, not 10
        (100, 99, 99),  # 0.99f = 0.99000001: 99.000001 -> 99
        (1000, 99.9, 999),
        (3, 10, 1),  # round(0.3) = 0: JMeter then returns the smallest
        (7, 100, None),  # p >= 1: the maximum
    ],
)
def test_jmeter_rank(count: int, percent: float, rank: int | None) -> None:
    assert jmeter_rank(count, percent) == rank


def test_percentile_of_sorted_values() -> None:
    values = [100, 170, 329]
    assert [percentile_of_sorted(values, p) for p in (50, 90, 95, 99, 100)] == [170] + [329] * 4
    assert percentile_of_sorted([], 50) is None


def test_the_rule_is_jmeters_statcalculator_on_random_runs() -> None:
    rng = np.random.default_rng(1)
    percents = (50, 90, 95, 99, 99.9, 75, 10)
    for n in [*range(1, 40), 99, 100, 101, 997, 5000]:
        values = rng.integers(0, 50 if n % 2 else 5000, n)
        oracle = StatCalculator()
        for v in values:
            oracle.add_value(int(v))
        ordered = np.sort(values)
        for p in percents:
            fraction = 0.5 if p == 50 else java_float(p / 100)
            assert percentile_of_sorted(ordered, p) == oracle.percent_point(fraction), (n, p)


def test_batch_rows_follow_statcalculator_add_value() -> None:
    rng = np.random.default_rng(2)
    n = 500
    elapsed = rng.integers(0, 3000, n).tolist()
    counts = rng.integers(1, 5, n).tolist()
    oracle = StatCalculator()
    for e, c in zip(elapsed, counts, strict=True):
        oracle.add_value(e, c)
    report = from_samples(make(["a"] * n, elapsed, [True] * n, sample_count=counts))
    rt = report.total.response_time
    assert rt is not None
    assert report.total.samples == oracle.count == sum(counts)
    assert rt.mean == pytest.approx(oracle.sum / oracle.count, rel=1e-12)
    for p in (50, 90, 95, 99):
        fraction = 0.5 if p == 50 else java_float(p / 100)
        assert rt.percentile(p) == oracle.percent_point(fraction)
    assert (rt.min, rt.max) == (min(oracle.values), max(oracle.values))


# --- hand-computed reports --------------------------------------------------------------------


def test_a_small_run_computed_by_hand() -> None:
    #   label  start  elapsed  ok     bytes
    #   A      1000   100      yes    1024
    #   B      1050   50       no     512
    #   A      1100   300      yes    2048
    #   A      1200   200      no     1024
    #   B      1300   150      yes    512
    samples = make(
        ["A", "B", "A", "A", "B"],
        [100, 50, 300, 200, 150],
        [True, False, True, False, True],
        start=[1000, 1050, 1100, 1200, 1300],
        received=[1024, 512, 2048, 1024, 512],
    )
    report = aggregate(samples)
    a, b, total = report.row("A"), report.row("B"), report.total
    assert report.labels == ("A", "B")
    # A: sorted 100, 200, 300. median rank round(1.5) = 2 -> 200; p90 round(2.7) = 3 -> 300.
    assert a.response_time is not None
    assert (a.samples, a.errors, a.response_time.mean) == (3, 1, 200.0)
    assert [a.percentile(p) for p in (50, 90, 95, 99)] == [200, 300, 300, 300]
    assert (a.response_time.min, a.response_time.max) == (100, 300)
    assert a.error_percent == pytest.approx(100 / 3)
    # A spans 1000 .. 1400 (1200 + 200): 3 samples in 0.4 s; 4096 bytes = 4 KB in 0.4 s.
    assert a.throughput_per_sec == pytest.approx(7.5)
    assert a.received_kb_per_sec == pytest.approx(10.0)
    assert (a.start_ms, a.end_ms) == (1000, 1400)
    # B: sorted 50, 150; spans 1050 .. 1450.
    assert [b.percentile(p) for p in (50, 90)] == [50, 150]
    assert b.throughput_per_sec == pytest.approx(5.0)
    # TOTAL: sorted 50 100 150 200 300; median rank round(2.5) = 3 -> 150; p90 round(4.5) -> 5.
    assert total.label == TOTAL
    assert total.response_time is not None
    assert (total.samples, total.errors, total.response_time.mean) == (5, 2, 160.0)
    assert [total.percentile(p) for p in (50, 90, 95, 99)] == [150, 200, 300, 300]
    assert total.error_percent == 40.0
    assert total.throughput_per_sec == pytest.approx(5 / 0.45)
    assert total.received_kb_per_sec == pytest.approx(5 / 0.45)  # 5120 bytes = 5 KB


def test_without_timestamps_or_with_a_zero_span_there_is_no_throughput() -> None:
    assert aggregate(make(["a"], [10], [True])).total.throughput_per_sec is None
    zero = make(["a", "a"], [0, 0], [True, True], start=[5, 5], received=[1, 1])
    assert aggregate(zero).total.throughput_per_sec is None
    assert aggregate(zero).total.received_kb_per_sec is None


def test_a_run_without_samples_has_an_empty_total() -> None:
    total = aggregate(make([], [], [], start=[], received=[])).total
    assert (total.samples, total.error_percent, total.throughput_per_sec) == (0, None, None)
    assert total.percentile(95) is None


def test_extra_percentiles_and_latency_on_request() -> None:
    samples = make(["a"] * 1000, list(range(1000)), [True] * 1000)
    samples = Samples(**{**samples.__dict__, "latency": np.arange(1000, dtype=np.int32) // 2})
    report = aggregate(samples, percentiles=(75, 99.9), latency=True)
    assert report.total.percentile(75) == 749
    assert report.total.percentile(99.9) == 998  # 1000 * 0.999f = 998.99998 -> 999th value
    assert report.total.latency is not None and report.total.latency.percentile(50) == 249
    assert aggregate(samples).total.latency is None


def test_negative_and_large_elapsed_times_sort_correctly() -> None:
    values = [-5, 2_000_000_000, 0, 7, -5]
    report = aggregate(make(["x", "y", "x", "y", "x"], values, [True] * 5))
    assert report.row("x").response_time is not None
    assert report.row("x").response_time.min == -5  # type: ignore[union-attr]
    assert report.row("y").response_time.max == 2_000_000_000  # type: ignore[union-attr]
    assert report.total.percentile(50) == 0


def test_many_labels_match_a_plain_sort_per_label() -> None:
    rng = np.random.default_rng(3)
    n, k = 200_000, 37
    labels = rng.integers(0, k, n)
    elapsed = rng.lognormal(5, 1, n).astype(np.int32)
    samples = Samples(
        source="random",
        format=ResultFormat.JMETER_CSV,
        labels=tuple(f"L{i}" for i in range(k)),
        label=labels.astype(np.int32),
        success=rng.random(n) > 0.1,
        elapsed=elapsed,
    )
    report = from_samples(samples)
    for i in range(k):
        ordered = np.sort(elapsed[labels == i])
        row = report.row(f"L{i}")
        assert row.samples == len(ordered)
        for p in (50, 90, 95, 99):
            assert row.percentile(p) == percentile_of_sorted(ordered, p)


# --- real files -------------------------------------------------------------------------------


def test_jmeters_html_report_test_file() -> None:
    report = aggregate(read_result(JMETER / "HTMLReportTestFile.csv"))
    ko = report.row("JR-KO")
    assert ko.response_time is not None
    assert (ko.samples, ko.errors, ko.error_percent) == (3, 3, 100.0)
    assert [ko.percentile(p) for p in (50, 90, 95, 99)] == [170, 329, 329, 329]
    assert (ko.response_time.min, ko.response_time.max) == (100, 329)
    assert report.total.samples == 255
    assert report.total.error_percent == pytest.approx(300 / 255)


def test_the_xml_file_against_the_oracle() -> None:
    report = aggregate(read_result(JMETER / "sample_log1c.jtl"))
    text = (JMETER / "sample_log1c.jtl").read_text()
    rows = [line for line in text.splitlines() if "<httpSample" in line]
    oracle: dict[str, StatCalculator] = {}
    starts, ends = [], []
    for line in rows:
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', line))
        label, t, ts = attrs["lb"], int(attrs["t"]), int(attrs["ts"])
        oracle.setdefault(label, StatCalculator()).add_value(t)
        starts.append(ts)
        ends.append(ts + t)
    for label, calc in oracle.items():
        row = report.row(label)
        assert row.samples == calc.count
        assert row.percentile(90) == calc.percent_point(java_float(0.9))
        assert row.percentile(50) == calc.percent_point(0.5)
    assert report.total.throughput_per_sec == pytest.approx(
        len(rows) / ((max(ends) - min(starts)) / 1000)
    )


# --- Locust -----------------------------------------------------------------------------------


def test_an_engines_report_passes_through_unchanged(tmp_path: Path) -> None:
    from tests.test_loadtest_readers import LOCUST_HISTORY, LOCUST_STATS

    stats = tmp_path / "x_stats.csv"
    stats.write_text(LOCUST_STATS)
    report = read_result(stats)
    assert isinstance(report, AggregateReport)
    assert aggregate(report) is report

    history = tmp_path / "x_stats_history.csv"
    history.write_text(LOCUST_HISTORY)
    derived = aggregate(read_result(history))
    assert derived.format is ResultFormat.LOCUST_HISTORY
    items = derived.row("/items")
    assert (items.samples, items.errors) == (10, 2)
    assert items.response_time is not None
    assert items.response_time.mean == 14.0 and items.percentile(50) == 11.0
    assert items.percentile(95) is None  # the history's percentiles cover a window only
    assert items.throughput_per_sec == pytest.approx(10 / 4)  # over 1700000000 .. 1700000004
    assert derived.total.samples == 10
    assert "window" in derived.method

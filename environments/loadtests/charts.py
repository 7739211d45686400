"""A run's chart as PNG: latency percentiles, throughput and errors over time; this run vs baseline.

Drawn with matplotlib's object API (`Figure` + the Agg canvas, no `pyplot`: its global state
is not safe on the worker's threads), imported only when a chart is drawn. `draw` returns the
figure (tests read its data); `render` writes the PNG.

Series over time come from the run's samples (any engine: Locust's samples file, JMeter or
Azure Load Testing JTLs), bucketed by start time; a run without samples falls back to Locust's
per-second history, whose rows before the first response (0 or N/A placeholders) are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from environments.loadtests.results import FloatArray
from environments.loadtests.samplesets import SampleSet

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PERCENTILES = (50.0, 95.0, 99.0)
BUCKETS = 60
"""About this many points over a run (at least one second each)."""
LOG_SCALE_GAP = 10.0
"""Bars use a log scale when the largest is this many times the smallest."""


@dataclass(frozen=True)
class Series:
    """Over time (seconds since the run's start): percentiles (ms), requests/s, error %."""

    seconds: FloatArray
    percentiles: dict[float, FloatArray]
    throughput: FloatArray
    error_percent: FloatArray


@dataclass(frozen=True)
class Bars:
    """One run in the comparison: its label (run number and release) and TOTAL percentiles."""

    label: str
    values: dict[float, float | None] = field(default_factory=dict)


def from_samples(samples: SampleSet, buckets: int = BUCKETS) -> Series | None:
    total = samples.total()
    if not len(total):
        return None
    start = (total.start - total.start[0]) / 1000.0
    span = float(start[-1]) if len(start) else 0.0
    width = max(1.0, math.ceil(span / buckets))
    index = (start // width).astype(np.int64)
    count = int(index[-1]) + 1
    seconds = (np.arange(count, dtype=np.float64) + 0.5) * width
    requests = np.bincount(index, minlength=count).astype(np.float64)
    errors = np.bincount(index, weights=(~total.success).astype(np.float64), minlength=count)
    percentiles = {p: np.full(count, np.nan) for p in PERCENTILES}
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(count + 1))
    for bucket in range(count):
        values = total.elapsed[order[bounds[bucket] : bounds[bucket + 1]]]
        if len(values):
            for p, value in zip(PERCENTILES, np.percentile(values, PERCENTILES), strict=True):
                percentiles[p][bucket] = value
    with np.errstate(invalid="ignore", divide="ignore"):
        error_percent = np.where(requests > 0, 100.0 * errors / requests, np.nan)
    spans = np.full(count, width)
    spans[-1] = span - (count - 1) * width
    # The run's last bucket is cut short: half empty, it would read as a drop in throughput and
    # a tail of a handful of samples; shorter than half a bucket it is left out.
    keep = count if spans[-1] >= width / 2 or count == 1 else count - 1
    spans[-1] = max(spans[-1], 1e-3)
    return Series(
        seconds[:keep],
        {p: v[:keep] for p, v in percentiles.items()},
        (requests / spans)[:keep],
        error_percent[:keep],
    )


def from_locust_history(path: Path) -> Series | None:
    """The `Aggregated` rows of Locust's history, without its rows before any response."""
    from environments.loadtests.readers import read_locust_history

    history = read_locust_history(path)
    if "Aggregated" not in history.labels:
        return None
    rows = history.label == history.labels.index("Aggregated")
    seconds = history.timestamp[rows].astype(np.float64)
    if not len(seconds):
        return None
    answered = history.total_requests[rows] > 0
    percentiles = {}
    for p in PERCENTILES:
        column = history.percentiles.get(p)
        values = column[rows] if column is not None else np.full(len(seconds), np.nan)
        percentiles[p] = np.where(answered & (values > 0), values, np.nan)
    rps = history.requests_per_sec[rows]
    failures = history.failures_per_sec[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        error_percent = np.where(rps > 0, 100.0 * failures / rps, np.nan)
    return Series(
        seconds - seconds[0],
        percentiles,
        np.where(answered, rps, np.nan),
        np.where(answered, error_percent, np.nan),
    )


def bars(label: str, figures: dict[str, Any] | None) -> Bars:
    """A run's TOTAL percentiles from its recorded figures."""
    keys = {50.0: "median", 95.0: "p95", 99.0: "p99"}
    total = (figures or {}).get("TOTAL", {})
    return Bars(label, {p: _number(total.get(key)) for p, key in keys.items()})


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def preload() -> None:
    """Import what drawing needs (about a second), e.g. on a thread while the engine runs."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


def draw(
    *,
    title: str,
    subtitle: str = "",
    series: Series | None,
    this_run: Bars,
    baseline: Sequence[Bars] = (),
) -> Figure:
    """The figure: over-time panels on the left, this run vs the baseline runs on the right."""
    from matplotlib.figure import Figure

    # Fixed margins: constrained layout would measure every text first (0.6 s a chart here).
    figure = Figure(figsize=(13, 7), dpi=100)
    grid = figure.add_gridspec(
        2,
        2,
        width_ratios=(3, 2),
        height_ratios=(3, 2),
        left=0.06,
        right=0.98,
        top=0.86,
        bottom=0.08,
        wspace=0.22,
        hspace=0.12,
    )
    latency = figure.add_subplot(grid[0, 0])
    traffic = figure.add_subplot(grid[1, 0], sharex=latency)
    compare = figure.add_subplot(grid[:, 1])
    _over_time(latency, traffic, series)
    _comparison(compare, this_run, baseline)
    figure.suptitle(title, fontsize=13, fontweight="bold", y=0.985)
    if subtitle:
        figure.text(0.06, 0.935, _wrapped(subtitle, 150), fontsize=9, va="top")
    return figure


def _wrapped(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:2])


def _over_time(latency: Any, traffic: Any, series: Series | None) -> None:
    latency.set_ylabel("response time (ms)")
    latency.grid(True, alpha=0.3)
    traffic.set_xlabel("seconds since start")
    traffic.set_ylabel("requests/s")
    traffic.grid(True, alpha=0.3)
    if series is None:
        latency.text(0.5, 0.5, "no samples over time", ha="center", transform=latency.transAxes)
        return
    marker = "o" if len(series.seconds) <= 20 else None  # few points: show where they are
    for p, color in zip(PERCENTILES, ("tab:green", "tab:orange", "tab:red"), strict=True):
        latency.plot(
            series.seconds, series.percentiles[p], color=color, marker=marker, label=f"p{p:g}"
        )
    peak = [np.nanmax(v) for v in series.percentiles.values() if np.isfinite(v).any()]
    latency.set_ylim(0, max(1.0, float(max(peak)) * 1.25) if peak else 1.0)
    latency.legend(loc="upper right", fontsize=8, ncols=3)
    (rps,) = traffic.plot(series.seconds, series.throughput, color="tab:blue", label="requests/s")
    finite = series.throughput[np.isfinite(series.throughput)]
    traffic.set_ylim(0, max(1.0, float(finite.max()) * 1.3) if len(finite) else 1.0)
    errors_axis = traffic.twinx()
    (errs,) = errors_axis.plot(
        series.seconds, series.error_percent, color="tab:red", linestyle="--", label="errors %"
    )
    errors_axis.set_ylabel("errors (%)", color="tab:red")
    top = float(np.nanmax(series.error_percent)) if np.isfinite(series.error_percent).any() else 0
    errors_axis.set_ylim(0, max(5.0, top * 1.1))
    traffic.legend(handles=[rps, errs], loc="upper left", fontsize=8)


def _comparison(axes: Any, this_run: Bars, baseline: Sequence[Bars]) -> None:
    runs = [*baseline, this_run]
    width = 0.8 / len(runs)
    positions = np.arange(len(PERCENTILES))
    values = [v for run in runs for v in run.values.values() if v]
    for i, run in enumerate(runs):
        heights = [run.values.get(p) or 0.0 for p in PERCENTILES]
        mine = run is this_run
        drawn = axes.bar(
            positions + (i - (len(runs) - 1) / 2) * width,
            heights,
            width,
            label=run.label + (" (this run)" if mine else ""),
            color="tab:red" if mine else None,
            alpha=1.0 if mine else 0.7,
        )
        axes.bar_label(drawn, labels=[_ms(h) for h in heights], fontsize=7, padding=2)
    if values and max(values) / max(min(values), 1e-3) >= LOG_SCALE_GAP:
        axes.set_yscale("log")
        axes.set_ylabel("response time (ms, log scale)")
    else:
        axes.set_ylabel("response time (ms)")
    axes.set_xticks(positions, [f"p{p:g}" for p in PERCENTILES])
    axes.set_title("TOTAL: this run vs baseline runs" if baseline else "TOTAL (no baseline yet)")
    axes.legend(fontsize=8, loc="upper left")
    axes.margins(y=0.15)


def _ms(value: float) -> str:
    if not value:
        return "-"
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def render(path: Path, figure: Figure) -> Path:
    """Write the figure as PNG (the Agg canvas: no display, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    figure.savefig(path, format="png")
    return path

"""A run's chart as PNG: latency percentiles and throughput over time, and this run vs baseline."""

from __future__ import annotations

import csv
from pathlib import Path

from environments.loadtests.results import TOTAL
from environments.loadtests.verdicts import Figures

SERIES = (("50%", "p50"), ("95%", "p95"), ("99%", "p99"))


def _over_time(history: Path) -> dict[str, list[float]]:
    """Locust's per-second history, aggregated row only: seconds since start, percentiles, rps."""
    series: dict[str, list[float]] = {"t": [], "rps": [], **{k: [] for _, k in SERIES}}
    with history.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("Name") == "Aggregated"]
    start = float(rows[0]["Timestamp"]) if rows else 0.0
    for row in rows:
        try:
            values = {key: float(row[column]) for column, key in SERIES}
            rps = float(row["Requests/s"])
        except (KeyError, ValueError):
            continue  # Locust writes "N/A" before the first request completes
        series["t"].append(float(row["Timestamp"]) - start)
        series["rps"].append(rps)
        for key, value in values.items():
            series[key].append(value)
    return series


def render(
    path: Path,
    *,
    title: str,
    current: dict[str, Figures],
    baseline: dict[str, Figures] | None,
    baseline_title: str = "baseline",
    history: Path | None = None,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4), dpi=100)
    if history is not None and history.exists():
        series = _over_time(history)
        for _, key in SERIES:
            left.plot(series["t"], series[key], label=key)
        left.set_xlabel("seconds")
        left.set_ylabel("response time (ms)")
        throughput = left.twinx()
        throughput.plot(series["t"], series["rps"], color="grey", linestyle=":", label="req/s")
        throughput.set_ylabel("requests/s")
        left.legend(loc="upper left")
    left.set_title("over time")
    keys = [key for _, key in SERIES]
    stored = {"p50": "median", "p95": "p95", "p99": "p99"}
    now = [float(current.get(TOTAL, {}).get(stored[k]) or 0) for k in keys]
    positions = range(len(keys))
    width = 0.38
    right.bar([p - width / 2 for p in positions], now, width, label="this run")
    if baseline is not None:
        before = [float(baseline.get(TOTAL, {}).get(stored[k]) or 0) for k in keys]
        right.bar([p + width / 2 for p in positions], before, width, label=baseline_title)
    right.set_xticks(list(positions), keys)
    right.set_ylabel("response time (ms)")
    right.set_title("this run vs baseline")
    right.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, format="png")
    pyplot.close(figure)
    return path

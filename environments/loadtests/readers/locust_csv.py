"""Locust CSV: *_stats.csv (its own aggregate report) and *_stats_history.csv (over time)."""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import replace

import numpy as np

from environments.loadtests.readers.common import (
    LOCUST_METHOD,
    _bad,
    _open,
)
from environments.loadtests.results import (
    TOTAL,
    AggregateReport,
    Distribution,
    FloatArray,
    Int64Array,
    LabelStats,
    LocustHistory,
    ResultFormat,
)


def _locust_rows(path: str | os.PathLike[str]) -> tuple[list[str], list[dict[str, str]]]:
    with _open(path) as f:
        text = f.read().decode("utf-8", "replace").removeprefix("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def _number(path: str | os.PathLike[str], row: int, column: str, text: str | None) -> float | None:
    if text is None or text.strip() in ("", "N/A"):
        return None
    try:
        return float(text)
    except ValueError:
        raise _bad(path, f"line {row}: {column} is {text!r}, not a number") from None


def _percent_columns(fields: list[str]) -> dict[float, str]:
    found = (re.fullmatch(r"\s*(\d+(?:\.\d+)?)%\s*", name) for name in fields)
    return {float(m.group(1)): m.group(0) for m in found if m}


def _locust_labels(rows: list[dict[str, str]], type_column: str) -> list[str]:
    """A request's name; with its type in front when one name has several types."""
    types: dict[str, set[str]] = {}
    for row in rows:
        types.setdefault(row.get("Name", ""), set()).add(row.get(type_column) or "")
    return [
        f"{row.get(type_column) or ''} {row.get('Name', '')}".strip()
        if len(types[row.get("Name", "")]) > 1
        else row.get("Name", "")
        for row in rows
    ]


def read_locust_stats(path: str | os.PathLike[str]) -> AggregateReport:
    """Locust's `*_stats.csv`: its aggregate rows, passed through as Locust computed them."""
    fields, rows = _locust_rows(path)
    count_col = "Request Count" if "Request Count" in fields else "# requests"
    fail_col = "Failure Count" if "Failure Count" in fields else "# failures"
    type_col = "Type" if "Type" in fields else "Method"
    percents = _percent_columns(fields)
    stats: list[LabelStats] = []
    total: LabelStats | None = None
    labels = _locust_labels(rows, type_col)
    for line, (row, label) in enumerate(zip(rows, labels, strict=True), 2):

        def value(column: str, row: dict[str, str] = row, line: int = line) -> float | None:
            return _number(path, line, column, row.get(column))

        samples = int(value(count_col) or 0)
        rate, size = value("Requests/s"), value("Average Content Size")
        table = {p: value(c) for p, c in percents.items()}
        table.setdefault(50.0, value("Median Response Time"))
        entry = LabelStats(
            label=label,
            samples=samples,
            errors=int(value(fail_col) or 0),
            response_time=Distribution(
                mean=value("Average Response Time"),
                min=value("Min Response Time"),
                max=value("Max Response Time"),
                percentiles=table,
            )
            if samples
            else None,
            throughput_per_sec=rate,
            received_kb_per_sec=None if rate is None or size is None else rate * size / 1024,
        )
        if row.get("Name") == "Aggregated" and not row.get(type_col):
            total = replace(entry, label=TOTAL)
        else:
            stats.append(entry)
    if total is None:
        raise _bad(path, "has no Aggregated row", hint="is the file complete?")
    return AggregateReport(
        source=str(path),
        format=ResultFormat.LOCUST_STATS,
        rows=tuple(stats),
        total=total,
        method=LOCUST_METHOD,
    )


def read_locust_history(path: str | os.PathLike[str]) -> LocustHistory:
    """Locust's `*_stats_history.csv` as columns."""
    fields, rows = _locust_rows(path)
    percents = _percent_columns(fields)
    labels = _locust_labels(rows, "Type")
    index: dict[str, int] = {}

    def column(name: str) -> FloatArray:
        return np.array(
            [
                np.nan if (v := _number(path, line, name, row.get(name))) is None else v
                for line, row in enumerate(rows, 2)
            ],
            dtype=np.float64,
        )

    def whole(name: str) -> Int64Array:
        return np.asarray(np.nan_to_num(column(name)), dtype=np.int64)

    return LocustHistory(
        source=str(path),
        label=np.array([index.setdefault(x, len(index)) for x in labels], dtype=np.int32),
        labels=tuple(index),
        timestamp=whole("Timestamp"),
        user_count=whole("User Count"),
        requests_per_sec=column("Requests/s"),
        failures_per_sec=column("Failures/s"),
        percentiles={p: column(name) for p, name in percents.items()},
        total_requests=whole("Total Request Count"),
        total_failures=whole("Total Failure Count"),
        total_median=column("Total Median Response Time"),
        total_mean=column("Total Average Response Time"),
        total_min=column("Total Min Response Time"),
        total_max=column("Total Max Response Time"),
        total_content_size=column("Total Average Content Size"),
    )

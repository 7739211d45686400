"""Fail criteria in Azure Load Testing's syntax, evaluated against an aggregate report.

A criterion describes failure, as in Azure Load Testing's `failureCriteria`:

    [Request:] aggregate_function(client_metric) condition threshold

    avg(response_time_ms) > 300            the whole run fails when its average exceeds 300 ms
    LoginDeviceId: p95(response_time_ms) > 500      only the samples labelled LoginDeviceId
    percentage(error) > 5
    avg(requests_per_sec) < 10             (`requests_per_sec < 10` is accepted for it)

Metrics and their aggregate functions (Azure Load Testing's client metrics):

    response_time_ms   avg min max p50 p75 p90 p95 p96 p97 p98 p99 p999 p9999  (p999 = 99.9th)
    latency            avg min max p50 p90 p95 p99      (also spelled latency_ms)
    error              percentage
    requests_per_sec   avg
    requests           count

Conditions are `>` and `<`. A criterion whose condition holds has *failed*; one that cannot be
measured (no such request, no timestamps, a percentile the engine did not report) is
`not measured`, which passes nothing either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from environments.errors import InvalidInput
from environments.loadtests.results import AggregateReport, LabelStats

PERCENTILES = {
    "response_time_ms": ("50", "75", "90", "95", "96", "97", "98", "99", "999", "9999"),
    "latency": ("50", "90", "95", "99"),
}
FUNCTIONS = {
    "response_time_ms": ("avg", "min", "max"),
    "latency": ("avg", "min", "max"),
    "error": ("percentage",),
    "requests_per_sec": ("avg",),
    "requests": ("count",),
}
_ALIASES = {"latency_ms": "latency"}
_UNITS = {"response_time_ms": " ms", "latency": " ms", "error": "%", "requests_per_sec": "/s"}
_SYNTAX = "write [Request:] function(metric) > or < number, e.g. p95(response_time_ms) > 500"
_FORM = re.compile(
    r"""^\s*(?:(?P<request>.*\S)\s*:\s*)?
    (?:(?P<function>[A-Za-z]\w*)\s*\(\s*(?P<metric>[A-Za-z]\w*)\s*\)|(?P<bare>requests_per_sec))
    \s*(?P<operator>[<>]=?|==?|!=)\s*(?P<threshold>[-+]?(?:\d+\.?\d*|\.\d+))\s*$""",
    re.X,
)


class Verdict(StrEnum):
    """What a criterion says about a run."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Criterion:
    """One fail criterion: `request` None means the whole run (the TOTAL row)."""

    function: str
    metric: str
    operator: str
    threshold: float
    request: str | None = None

    @property
    def percentile(self) -> float | None:
        """The percent a pNN function asks for: p95 → 95.0, p999 → 99.9."""
        if not re.fullmatch(r"p\d+", self.function):
            return None
        digits = self.function[1:]
        return float(digits if len(digits) <= 2 else f"{digits[:2]}.{digits[2:]}")

    def __str__(self) -> str:
        prefix = f"{self.request}: " if self.request is not None else ""
        return f"{prefix}{self.function}({self.metric}) {self.operator} {self.threshold:g}"


@dataclass(frozen=True)
class Evaluation:
    """A criterion's outcome on one report: the verdict and the value measured (None if not)."""

    criterion: Criterion
    verdict: Verdict
    measured: float | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "criterion": str(self.criterion),
            "verdict": self.verdict.value,
            "measured": self.measured,
            "note": self.note,
        }

    def describe(self) -> str:
        """`p95(response_time_ms) > 500: failed (measured 612 ms)`."""
        unit = _UNITS.get(self.criterion.metric, "")
        if self.measured is not None:
            detail = f"measured {self.measured:,.2f}".rstrip("0").rstrip(".") + unit
        else:
            detail = self.note
        return f"{self.criterion}: {self.verdict} ({detail})"


def parse_criterion(text: str) -> Criterion:
    """`[Request:] function(metric) >|< threshold`, or InvalidInput naming what is wrong."""
    found = _FORM.match(text)
    if not found:
        raise InvalidInput(f"criterion {text!r} is not a criterion", hint=_SYNTAX)
    if found["bare"]:
        function, metric = "avg", "requests_per_sec"
    else:
        function, metric = found["function"].lower(), found["metric"].lower()
    metric = _ALIASES.get(metric, metric)
    if metric not in FUNCTIONS:
        raise InvalidInput(
            f"criterion {text!r}: unknown metric {metric!r}",
            hint=f"metrics: {', '.join(FUNCTIONS)}",
        )
    allowed = [*FUNCTIONS[metric], *(f"p{d}" for d in PERCENTILES.get(metric, ()))]
    if function not in allowed:
        raise InvalidInput(
            f"criterion {text!r}: {metric} has no {function}()",
            hint=f"{metric} takes {', '.join(allowed)}",
        )
    operator = found["operator"]
    if operator not in (">", "<"):
        raise InvalidInput(
            f"criterion {text!r}: condition {operator!r} is not supported",
            hint="use > or < (Azure Load Testing's conditions)",
        )
    threshold = float(found["threshold"])
    if metric == "error" and not 0 <= threshold <= 100:
        raise InvalidInput(f"criterion {text!r}: a percentage is between 0 and 100")
    request = found["request"]
    return Criterion(function, metric, operator, threshold, request.strip() if request else None)


def parse_criteria(texts: Iterable[str]) -> tuple[Criterion, ...]:
    return tuple(parse_criterion(text) for text in texts)


def percentiles_needed(criteria: Iterable[Criterion]) -> frozenset[float]:
    """The percents the report must compute for these criteria."""
    return frozenset(p for c in criteria if (p := c.percentile) is not None)


def needs_latency(criteria: Iterable[Criterion]) -> bool:
    return any(c.metric == "latency" for c in criteria)


def evaluate(criterion: Criterion, report: AggregateReport) -> Evaluation:
    """Measure the criterion's metric in its row of the report and apply its condition."""
    try:
        row = report.row(criterion.request)
    except KeyError:
        known = ", ".join(report.labels[:10]) + (", …" if len(report.labels) > 10 else "")
        return Evaluation(
            criterion, Verdict.NOT_MEASURED, None, f"no request named it; requests: {known}"
        )
    measured, missing = _measure(criterion, row)
    if measured is None:
        return Evaluation(criterion, Verdict.NOT_MEASURED, None, missing)
    holds = (
        measured > criterion.threshold
        if criterion.operator == ">"
        else (measured < criterion.threshold)
    )
    return Evaluation(criterion, Verdict.FAILED if holds else Verdict.PASSED, measured)


def evaluate_all(criteria: Sequence[Criterion], report: AggregateReport) -> tuple[Evaluation, ...]:
    return tuple(evaluate(c, report) for c in criteria)


def passed(evaluations: Iterable[Evaluation]) -> bool:
    """True when every criterion passed (a criterion not measured does not pass)."""
    return all(e.verdict is Verdict.PASSED for e in evaluations)


def _measure(criterion: Criterion, row: LabelStats) -> tuple[float | None, str]:
    metric, function = criterion.metric, criterion.function
    if metric == "requests":
        return float(row.samples), ""
    if metric == "error":
        return row.error_percent, "no samples"
    if metric == "requests_per_sec":
        return row.throughput_per_sec, "no timestamps to measure a time span"
    distribution = row.response_time if metric == "response_time_ms" else row.latency
    if distribution is None:
        what = "elapsed times" if metric == "response_time_ms" else "latencies"
        return None, f"the results have no {what}"
    if function == "avg":
        return distribution.mean, "no samples"
    if function in ("min", "max"):
        return getattr(distribution, function), "no samples"
    percent = criterion.percentile
    assert percent is not None
    return distribution.percentile(percent), f"the results have no {percent:g}th percentile"

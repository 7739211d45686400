"""A run's verdict: its criteria, and whether it is slower or less reliable than its baseline."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from environments.loadtests.results import TOTAL, AggregateReport, LabelStats

P95 = 95.0


class Outcome(StrEnum):
    """The verdict recorded on a run (and so on its release)."""

    PASSED = "passed"
    FAILED = "failed"
    REGRESSED = "regressed"
    ERRORED = "errored"

    @property
    def blocks_promotion(self) -> bool:
        return self is not Outcome.PASSED


@dataclass(frozen=True)
class Tolerance:
    """How much worse than the baseline still passes: p95 slower by a fraction, errors by points."""

    p95: float = 0.10
    error_points: float = 1.0


Figures = dict[str, float | int | None]


def figures(report: AggregateReport) -> dict[str, Figures]:
    """Per label and TOTAL: the numbers a run is judged and compared by (kept in the record)."""

    def one(row: LabelStats) -> Figures:
        rt = row.response_time
        return {
            "samples": row.samples,
            "errors": row.errors,
            "error_percent": row.error_percent,
            "average": rt.mean if rt else None,
            "median": row.percentile(50.0),
            "p90": row.percentile(90.0),
            "p95": row.percentile(P95),
            "p99": row.percentile(99.0),
            "min": rt.min if rt else None,
            "max": rt.max if rt else None,
            "throughput": row.throughput_per_sec,
        }

    return {row.label: one(row) for row in (*report.rows, report.total)}


@dataclass(frozen=True)
class LabelComparison:
    """One label (or TOTAL) of this run against the same label of the baseline."""

    label: str
    p95: float | None
    baseline_p95: float | None
    error_percent: float | None
    baseline_error_percent: float | None
    regressed: bool
    reasons: tuple[str, ...]

    @property
    def p95_change(self) -> float | None:
        if self.p95 is None or not self.baseline_p95:
            return None
        return self.p95 / self.baseline_p95 - 1.0


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _compare_label(
    label: str, row: Figures, base: Figures, tolerance: Tolerance
) -> LabelComparison:
    p95, base_p95 = _number(row.get("p95")), _number(base.get("p95"))
    errors, base_errors = _number(row.get("error_percent")), _number(base.get("error_percent"))
    reasons = []
    if p95 is not None and base_p95 is not None and p95 > base_p95 * (1 + tolerance.p95):
        change = f"+{(p95 / base_p95 - 1) * 100:.0f}%" if base_p95 else "from 0"
        reasons.append(f"{label} p95 {p95:.0f} ms vs {base_p95:.0f} ms ({change})")
    if (
        errors is not None
        and base_errors is not None
        and (errors > base_errors + tolerance.error_points)
    ):
        reasons.append(f"{label} errors {errors:.1f}% vs {base_errors:.1f}%")
    return LabelComparison(label, p95, base_p95, errors, base_errors, bool(reasons), tuple(reasons))


def compare(
    current: dict[str, Figures], baseline: dict[str, Figures], tolerance: Tolerance | None = None
) -> list[LabelComparison]:
    """Every label both runs have (TOTAL last), compared on p95 and error rate."""
    tolerance = tolerance or Tolerance()
    labels = [label for label in current if label in baseline and label != TOTAL]
    if TOTAL in current and TOTAL in baseline:
        labels.append(TOTAL)
    return [_compare_label(label, current[label], baseline[label], tolerance) for label in labels]


def verdict(criteria_passed: bool, comparisons: list[LabelComparison] | None) -> Outcome:
    if not criteria_passed:
        return Outcome.FAILED
    if comparisons and any(c.regressed for c in comparisons):
        return Outcome.REGRESSED
    return Outcome.PASSED

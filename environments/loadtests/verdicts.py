"""A run's verdict: its criteria, and whether it is slower or less reliable than its baseline."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from environments.config.loadtests import VerdictRules
from environments.loadtests.results import TOTAL, AggregateReport, FloatArray, LabelStats
from environments.loadtests.samplesets import LabelSamples, SampleSet, iter_labels
from environments.loadtests.statistics import (
    STATISTICS,
    ErrorTest,
    RatioInterval,
    error_test,
    ratio_intervals,
)

P95 = 95.0


class Outcome(StrEnum):
    """The verdict recorded on a run (and so on its release)."""

    PASSED = "passed"
    FAILED = "failed"
    REGRESSED = "regressed"
    INCONCLUSIVE = "inconclusive"
    ERRORED = "errored"

    @property
    def blocks_promotion(self) -> bool:
        """Failed criteria and a real regression block; too few samples or a broken run do not
        decide anything about the release."""
        return self in (Outcome.FAILED, Outcome.REGRESSED)


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


def _compare_label(label: str, row: Figures, base: Figures, rules: VerdictRules) -> LabelComparison:
    p95, base_p95 = _number(row.get("p95")), _number(base.get("p95"))
    errors, base_errors = _number(row.get("error_percent")), _number(base.get("error_percent"))
    reasons = []
    if p95 is not None and base_p95 is not None and p95 > base_p95 * (1 + rules.tolerance):
        change = f"+{(p95 / base_p95 - 1) * 100:.0f}%" if base_p95 else "from 0"
        reasons.append(f"{label} p95 {p95:.0f} ms vs {base_p95:.0f} ms ({change})")
    if (
        errors is not None
        and base_errors is not None
        and (errors > base_errors + rules.error_points)
    ):
        reasons.append(f"{label} errors {errors:.1f}% vs {base_errors:.1f}%")
    return LabelComparison(label, p95, base_p95, errors, base_errors, bool(reasons), tuple(reasons))


def compare(
    current: dict[str, Figures], baseline: dict[str, Figures], rules: VerdictRules | None = None
) -> list[LabelComparison]:
    """Every label both runs have (TOTAL last), side by side on p95 and error rate.

    Figures only, for `loadtest compare`: beyond the tolerance, not tested for being real (the
    verdict of a run is `judge`, on the samples).
    """
    rules = rules or VerdictRules()
    labels = [label for label in current if label in baseline and label != TOTAL]
    if TOTAL in current and TOTAL in baseline:
        labels.append(TOTAL)
    return [_compare_label(label, current[label], baseline[label], rules) for label in labels]


@dataclass(frozen=True)
class LabelVerdict:
    """One label (or TOTAL) of this run judged against the baseline runs' samples."""

    label: str
    outcome: Outcome
    samples: int
    baseline_samples: int
    p95: RatioInterval | None = None
    mean: RatioInterval | None = None
    errors: ErrorTest | None = None
    regressed_on: tuple[str, ...] = ()
    confidence: float = 0.95
    note: str = ""

    def line(self) -> str:
        """One line with the figures: `LoginDeviceId p95 1,700 ms vs 11 ms (×155), 95% CI …`."""
        counts = f"{_count(self.samples)} vs {_count(self.baseline_samples)} samples"
        if self.outcome is Outcome.INCONCLUSIVE:
            return f"{self.label} inconclusive ({self.note}), {counts}"
        parts = [_error_text(self.errors)] if "errors" in self.regressed_on and self.errors else []
        metrics = [m for m in ("p95", "mean") if m in self.regressed_on]
        for metric in metrics or ([] if parts else ["p95"]):
            interval = self.p95 if metric == "p95" else self.mean
            if interval is not None:
                parts.append(_ratio_text(metric, interval, self.confidence))
        return f"{self.label} {'; '.join(parts or [self.note])}, {counts}"

    def to_dict(self) -> dict[str, Any]:
        def interval(r: RatioInterval | None) -> dict[str, float] | None:
            return None if r is None else asdict(r)

        return {
            "label": self.label,
            "outcome": self.outcome.value,
            "samples": self.samples,
            "baseline_samples": self.baseline_samples,
            "p95": interval(self.p95),
            "mean": interval(self.mean),
            "errors": None if self.errors is None else asdict(self.errors),
            "regressed_on": list(self.regressed_on),
            "line": self.line(),
        }


def _count(n: int) -> str:
    return f"{n:,}"


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _times(ratio: float) -> str:
    return f"×{ratio:,.0f}" if ratio >= 10 else f"×{ratio:.2f}"


def _ratio_text(metric: str, r: RatioInterval, confidence: float) -> str:
    return (
        f"{metric} {_ms(r.current)} vs {_ms(r.baseline)} ({_times(r.ratio)}), "
        f"{confidence * 100:.0f}% CI {_times(r.low)}–{_times(r.high)}"
    )


def _error_text(e: ErrorTest) -> str:
    return (
        f"errors {e.percent:.1f}% vs {e.baseline_percent:.1f}% "
        f"({e.points:+.1f} points, p={e.p_value:.3g})"
    )


def judge_label(
    label: str,
    current: LabelSamples,
    baseline: LabelSamples,
    rules: VerdictRules,
    noise: dict[str, float] | None = None,
) -> LabelVerdict:
    """Regressed when a difference is both real (statistics) and material (the plan's rules).

    Material is judged at the interval's optimistic end: even the smallest slowdown the data
    allow must exceed the tolerance (or the baseline runs' own spread, `noise`, when larger)
    and the floor in ms.
    """
    base = (current.samples, baseline.samples)
    fewest = min(base)
    if fewest < rules.min_samples:
        return LabelVerdict(
            label,
            Outcome.INCONCLUSIVE,
            *base,
            confidence=rules.confidence,
            note=f"fewer than {rules.min_samples} samples",
        )
    regressed: list[str] = []
    errors = error_test(current.errors, current.samples, baseline.errors, baseline.samples)
    if errors.p_value < 1.0 - rules.confidence and errors.points >= rules.error_points:
        regressed.append("errors")
    ok, ok_base = current.ok_elapsed, baseline.ok_elapsed
    intervals: dict[str, RatioInterval] = {}
    if min(len(ok), len(ok_base)) >= rules.min_samples:
        intervals = ratio_intervals(ok, ok_base, confidence=rules.confidence)
        for metric, r in intervals.items():
            margin = max(1.0 + rules.tolerance, (noise or {}).get(metric, 1.0))
            real = r.low > 1.0
            material = r.low >= margin and (r.low - 1.0) * r.baseline >= rules.floor_ms
            if real and material and _holds_throughout(ok, r.baseline, metric, margin):
                regressed.append(metric)
    elif not regressed:
        return LabelVerdict(
            label,
            Outcome.INCONCLUSIVE,
            *base,
            errors=errors,
            confidence=rules.confidence,
            note=f"fewer than {rules.min_samples} successful samples to compare latency",
        )
    return LabelVerdict(
        label,
        Outcome.REGRESSED if regressed else Outcome.PASSED,
        *base,
        p95=intervals.get("p95"),
        mean=intervals.get("mean"),
        errors=errors,
        regressed_on=tuple(regressed),
        confidence=rules.confidence,
        note="no latency figures (only errors compared)" if not intervals else "",
    )


def _holds_throughout(ok: FloatArray, baseline: float, metric: str, margin: float) -> bool:
    """The slowdown is there in each half of the run, not in one busy spell of it.

    A slower release is slower from start to end; a machine busy for a few seconds (other jobs
    on a shared load generator) slows one stretch. Each half's own figure must clear the
    margin as the whole run's interval did.
    """
    statistic = STATISTICS[metric]
    halves = np.array_split(ok, 2)
    return all(len(half) and float(statistic(half)) >= margin * baseline for half in halves)


def judge(current: SampleSet, baseline: SampleSet, rules: VerdictRules) -> list[LabelVerdict]:
    """Every label both runs have, then TOTAL."""
    out = []
    for name in iter_labels(current, baseline):
        mine, theirs = current.label(name), baseline.label(name)
        assert mine is not None and theirs is not None
        out.append(judge_label(name, mine, theirs, rules, run_to_run(baseline, name, rules)))
    return out


def run_to_run(baseline: SampleSet, label: str, rules: VerdictRules) -> dict[str, float]:
    """How far apart the baseline's own runs are (largest / smallest p95 and mean of the label).

    The bootstrap sees the noise within a run; runs of one build also differ from each other (a
    busier machine that night). With two or more baseline runs that spread is measured, and a
    slowdown inside it is not material.
    """
    values: dict[str, list[float]] = {"p95": [], "mean": []}
    for run in baseline.per_run:
        part = run.label(label)
        ok = part.ok_elapsed if part is not None else None
        if ok is not None and len(ok) >= rules.min_samples:
            values["p95"].append(float(np.percentile(ok, 95.0)))
            values["mean"].append(float(ok.mean()))
    return {
        metric: max(found) / max(min(found), 1e-3)
        for metric, found in values.items()
        if len(found) >= 2
    }


def verdict(criteria_passed: bool, labels: list[LabelVerdict] | None) -> Outcome:
    """Criteria first; then any regressed label; a run whose every label is inconclusive says so."""
    if not criteria_passed:
        return Outcome.FAILED
    if not labels:
        return Outcome.PASSED
    if any(v.outcome is Outcome.REGRESSED for v in labels):
        return Outcome.REGRESSED
    if all(v.outcome is Outcome.INCONCLUSIVE for v in labels):
        return Outcome.INCONCLUSIVE
    return Outcome.PASSED


def explanation(outcome: Outcome, labels: list[LabelVerdict], baseline: BaselineNames) -> str:
    """The run's verdict in one line, with the figures that decided it and the baseline runs."""
    against = baseline.describe()
    if not labels:
        return f"{outcome.value}: {against}"
    total = next((v for v in labels if v.label == TOTAL), labels[-1])
    # Regressed or inconclusive: the first label that made it so; otherwise TOTAL's figures.
    deciding = [v for v in labels if v.outcome is outcome and outcome is not Outcome.PASSED]
    return f"{outcome.value}: {(deciding or [total])[0].line()} ({against})"


@dataclass(frozen=True)
class BaselineNames:
    """Which recorded runs a run was judged against, and why those."""

    runs: tuple[int, ...]
    release: str | None
    why: str

    def describe(self) -> str:
        if not self.runs:
            return "no baseline yet"
        ids = ", ".join(f"#{r}" for r in self.runs)
        return f"baseline {self.release} runs {ids}, {self.why}"

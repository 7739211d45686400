"""What people are told about a finished load-test run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from environments.loadtests.verdicts import Outcome


@dataclass(frozen=True)
class LoadTestSummary:
    """What people are told about a finished run."""

    run_id: int
    environment: str
    release: str
    plan: str
    outcome: Outcome
    total: dict[str, float | int | None]
    criteria: tuple[str, ...]
    baseline_release: str | None
    regressions: tuple[str, ...]
    chart: Path | None
    folder: Path
    lines: tuple[str, ...] = field(default=())
    verdict: str = ""
    baseline_runs: tuple[int, ...] = ()
    gate: bool = True
    timings: dict[str, float] = field(default_factory=dict)

    def text(self, *, with_chart_path: bool = True) -> str:
        t = self.total
        head = (
            f"load test #{self.run_id} of {self.release} on {self.environment} ({self.plan}): "
            f"{self.outcome.upper()}"
        )
        figures_line = (
            f"  {t.get('samples')} requests, p50 {_ms(t.get('median'))}, p95 {_ms(t.get('p95'))}, "
            f"p99 {_ms(t.get('p99'))}, errors {_pct(t.get('error_percent'))}, "
            f"{_num(t.get('throughput'))} req/s"
        )
        base = (
            f"  baseline: {self.baseline_release} " + ", ".join(f"#{r}" for r in self.baseline_runs)
            if self.baseline_release
            else "  baseline: none yet (the first passing run of this plan becomes one)"
        )
        return "\n".join(
            [
                head,
                *([f"  {self.verdict}"] if self.verdict else []),
                figures_line,
                base,
                *(
                    []
                    if self.gate
                    else ["  (this plan is not a gate: it does not block promotion)"]
                ),
                *(f"  regression: {r}" for r in self.regressions),
                *(f"  criterion {c}" for c in self.criteria),
            ]
            + ([f"  chart: {self.chart}"] if self.chart and with_chart_path else [])
        )


def _ms(value: object) -> str:
    return f"{float(value):.0f} ms" if isinstance(value, int | float) else "-"


def _pct(value: object) -> str:
    return f"{float(value):.1f}%" if isinstance(value, int | float) else "-"


def _num(value: object) -> str:
    return f"{float(value):.1f}" if isinstance(value, int | float) else "-"

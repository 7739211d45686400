"""The statistics behind a verdict: bootstrap intervals of latency ratios, a test of error rates.

Latency: a moving-block bootstrap (Künsch 1989) of the ratio this run / baseline for the 95th
percentile and the mean. Samples of a load test are not independent (a slow second slows every
request in it), so each resample draws contiguous blocks of the time-ordered samples — about
`BLOCKS` blocks per side — instead of single samples; the interval is then as wide as the run's
own ups and downs, not the falsely narrow one of an i.i.d. bootstrap. Both sides are resampled
independently; the interval is the percentile interval of the resampled ratios.

Errors: Fisher's exact test (one-sided: this run fails more often than the baseline), exact for
small counts where a normal approximation is not. See docs/verdicts.md for the whole method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from environments.loadtests.results import FloatArray

BLOCKS = 25
"""Blocks per resample: each covers about 1/25 of the run (≈ a second or two of a short run)."""

RESAMPLES = 2_000
SEED = 20_260_401
"""A fixed seed: the same samples always get the same verdict (re-judging a run is repeatable)."""


@dataclass(frozen=True)
class RatioInterval:
    """A statistic of this run over the baseline's: the point ratio and its confidence interval."""

    current: float
    baseline: float
    ratio: float
    low: float
    high: float


def _p95(values: FloatArray, axis: int | None = None) -> FloatArray:
    # "linear" (numpy's default) interpolates between order statistics, as JMeter does not; the
    # verdict only compares runs with each other through the same rule, so it is the right one.
    return np.asarray(np.percentile(values, 95.0, axis=axis))


def _mean(values: FloatArray, axis: int | None = None) -> FloatArray:
    return np.asarray(np.mean(values, axis=axis))


STATISTICS = {"p95": _p95, "mean": _mean}


def block_resamples(
    values: FloatArray, resamples: int, rng: np.random.Generator, blocks: int = BLOCKS
) -> FloatArray:
    """`resamples` rows as long as `values`, each of contiguous blocks drawn with replacement."""
    n = len(values)
    length = max(1, math.ceil(n / blocks))
    count = math.ceil(n / length)
    starts = rng.integers(0, n - length + 1, size=(resamples, count))
    index = (starts[:, :, None] + np.arange(length)).reshape(resamples, -1)[:, :n]
    return np.asarray(values[index])


def ratio_intervals(
    current: FloatArray,
    baseline: FloatArray,
    *,
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, RatioInterval]:
    """p95 and mean of `current` over `baseline` (both time-ordered latencies, ms), with intervals.

    The caller makes sure both sides have samples; a baseline statistic of 0 ms is taken as
    1 µs so that the ratio stays finite (it is then huge, and the absolute floor decides).
    """
    rng = np.random.default_rng(seed)
    cur = block_resamples(current, resamples, rng)
    base = block_resamples(baseline, resamples, rng)
    tail = (1.0 - confidence) / 2.0
    out = {}
    for name, statistic in STATISTICS.items():
        c, b = float(statistic(current)), float(statistic(baseline))
        ratios = statistic(cur, axis=1) / np.maximum(statistic(base, axis=1), 1e-3)
        low, high = np.quantile(ratios, [tail, 1.0 - tail])
        out[name] = RatioInterval(c, b, c / max(b, 1e-3), float(low), float(high))
    return out


@dataclass(frozen=True)
class ErrorTest:
    """Error rates of this run and the baseline, in percent, and the one-sided p-value."""

    percent: float
    baseline_percent: float
    p_value: float

    @property
    def points(self) -> float:
        return self.percent - self.baseline_percent


def error_test(errors: int, samples: int, baseline_errors: int, baseline_samples: int) -> ErrorTest:
    """Fisher's exact test that this run's error rate is higher than the baseline's."""
    return ErrorTest(
        100.0 * errors / samples if samples else 0.0,
        100.0 * baseline_errors / baseline_samples if baseline_samples else 0.0,
        fisher_greater(errors, samples, baseline_errors, baseline_samples),
    )


def fisher_greater(errors: int, samples: int, baseline_errors: int, baseline_samples: int) -> float:
    """One-sided p-value of Fisher's exact test: P(X >= errors), X hypergeometric.

    Hand-written (and checked against scipy.stats.fisher_exact in the tests) because importing
    scipy.stats takes 1-3 s here, more than a load test's whole overhead budget.
    """
    total, failed = samples + baseline_samples, errors + baseline_errors
    top = min(samples, failed)
    if errors <= max(0, samples - (total - failed)):
        return 1.0
    ks = range(errors, top + 1)
    log_terms = np.array(
        [_log_choose(failed, k) + _log_choose(total - failed, samples - k) for k in ks]
    ) - _log_choose(total, samples)
    peak = float(log_terms.max())
    return float(min(1.0, math.exp(peak) * np.exp(log_terms - peak).sum()))


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)

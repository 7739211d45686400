"""The statistics of a verdict on recorded sample sets with known answers: A/A, A/B, tiny, errors.

The recorded sets (tests/data/verdicts/) are real Locust runs of the sample game backend, 10
users for 8 s: two of release 1.0.0 (the same artifact twice: an A/A pair) and one of 1.1.0,
whose logins hash a PBKDF2 ticket (a genuine slowdown).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import fisher_exact

from environments.config.loadtests import VerdictRules
from environments.loadtests.readers import read_samples
from environments.loadtests.results import TOTAL
from environments.loadtests.samplesets import LabelSamples, SampleSet
from environments.loadtests.statistics import fisher_greater, ratio_intervals
from environments.loadtests.verdicts import (
    BaselineNames,
    Outcome,
    explanation,
    judge,
    judge_label,
    run_to_run,
    verdict,
)

DATA = Path(__file__).parent / "data" / "verdicts"
RULES = VerdictRules()


def recorded(name: str) -> SampleSet:
    return SampleSet.from_samples(read_samples(DATA / name))


@pytest.fixture(scope="module")
def a1() -> SampleSet:
    return recorded("game-1.0.0-a1.jtl")


@pytest.fixture(scope="module")
def a2() -> SampleSet:
    return recorded("game-1.0.0-a2.jtl")


@pytest.fixture(scope="module")
def b() -> SampleSet:
    return recorded("game-1.1.0.jtl")


def by_label(verdicts: list) -> dict[str, Outcome]:  # type: ignore[type-arg]
    return {v.label: v.outcome for v in verdicts}


def test_a_a_pair_is_not_a_regression_either_way(a1: SampleSet, a2: SampleSet) -> None:
    for current, baseline in ((a2, a1), (a1, a2)):
        judged = judge(current, baseline, RULES)
        outcomes = by_label(judged)
        assert outcomes["LoginDeviceId"] is Outcome.PASSED
        assert outcomes[TOTAL] is Outcome.PASSED
        assert outcomes["healthz"] is Outcome.INCONCLUSIVE, "about 45 samples: under 50"
        login = next(v for v in judged if v.label == "LoginDeviceId")
        assert login.p95 is not None and login.p95.low < 1.0 < login.p95.high
        assert verdict(True, judged) is Outcome.PASSED


def test_a_b_pair_is_a_regression_with_its_figures(a1: SampleSet, b: SampleSet) -> None:
    rules = VerdictRules(min_samples=30)  # 1.1.0 served 40 requests in 8 s
    judged = judge(b, a1, rules)
    login = next(v for v in judged if v.label == "LoginDeviceId")
    assert login.outcome is Outcome.REGRESSED and "p95" in login.regressed_on
    assert login.p95 is not None and login.p95.low > 50, "more than 50 times slower, surely"
    assert login.samples == 35 and login.baseline_samples == 487
    assert login.line().startswith("LoginDeviceId p95 2,421 ms vs 18 ms (×135), 95% CI ×")
    assert login.line().endswith(", 35 vs 487 samples")
    assert verdict(True, judged) is Outcome.REGRESSED
    assert verdict(False, judged) is Outcome.FAILED, "criteria are judged first"
    line = explanation(Outcome.REGRESSED, judged, BaselineNames((1, 2), "1.0.0", "why"))
    assert line.startswith("regressed: LoginDeviceId p95 2,421 ms vs 18 ms")
    assert line.endswith("(baseline 1.0.0 runs #1, #2, why)")


def test_too_few_samples_are_inconclusive_and_do_not_block(a1: SampleSet, b: SampleSet) -> None:
    judged = judge(b, a1, RULES)  # 40 samples in total: under the default 50
    assert set(by_label(judged).values()) == {Outcome.INCONCLUSIVE}
    assert verdict(True, judged) is Outcome.INCONCLUSIVE
    assert not Outcome.INCONCLUSIVE.blocks_promotion
    assert Outcome.REGRESSED.blocks_promotion and Outcome.FAILED.blocks_promotion
    assert "fewer than 50 samples" in judged[0].line()


def failing(part: LabelSamples) -> LabelSamples:
    return LabelSamples(
        part.start, part.elapsed, np.zeros(len(part), np.bool_), part.samples, part.samples
    )


def test_a_run_whose_every_request_failed_regressed_on_errors(a1: SampleSet, a2: SampleSet) -> None:
    login = a2.labels["LoginDeviceId"]
    judged = judge_label("LoginDeviceId", failing(login), a1.labels["LoginDeviceId"], RULES)
    assert judged.outcome is Outcome.REGRESSED and judged.regressed_on == ("errors",)
    assert judged.errors is not None and judged.errors.percent == 100.0
    assert judged.line().startswith("LoginDeviceId errors 100.0% vs 0.0% (+100.0 points, p=")


def test_a_few_more_errors_than_noise_explains_are_not_material(a1: SampleSet) -> None:
    login = a1.labels["LoginDeviceId"]
    success = login.success.copy()
    success[:3] = False  # 3 of 487: 0.6 points, under the 1-point floor
    three = LabelSamples(login.start, login.elapsed, success, login.samples, 3)
    assert judge_label("x", three, login, RULES).outcome is Outcome.PASSED


def test_a_slowdown_that_is_real_but_small_in_ms_is_not_material() -> None:
    rng = np.random.default_rng(7)
    fast = rng.lognormal(np.log(2.0), 0.3, 2_000)  # a 2 ms health check
    now = LabelSamples(np.arange(2_000), fast * 3, np.ones(2_000, np.bool_), 2_000, 0)
    before = LabelSamples(np.arange(2_000), fast, np.ones(2_000, np.bool_), 2_000, 0)
    judged = judge_label("healthz", now, before, RULES)
    assert judged.p95 is not None and judged.p95.low > 2.5, "real: three times slower"
    assert judged.outcome is Outcome.PASSED, "but 4 ms is under the 20 ms floor"
    strict = judge_label("healthz", now, before, VerdictRules(floor_ms=1))
    assert strict.outcome is Outcome.REGRESSED


def test_bootstrap_intervals_cover_the_known_ratio() -> None:
    rng = np.random.default_rng(11)
    base = rng.lognormal(np.log(50.0), 0.4, 3_000)
    same = rng.lognormal(np.log(50.0), 0.4, 3_000)
    slower = rng.lognormal(np.log(50.0 * 1.5), 0.4, 3_000)
    aa = ratio_intervals(same, base)
    assert aa["p95"].low < 1.0 < aa["p95"].high and aa["mean"].low < 1.0 < aa["mean"].high
    ab = ratio_intervals(slower, base)
    assert ab["p95"].low < 1.5 < ab["p95"].high and ab["mean"].low < 1.5 < ab["mean"].high
    assert ratio_intervals(slower, base) == ab, "the same samples always get the same verdict"


@pytest.mark.parametrize(
    ("errors", "samples", "base_errors", "base_samples"),
    [
        *[(0, 10, 0, 10), (5, 10, 0, 10), (3, 500, 1, 500), (50, 500, 10, 600), (0, 5, 3, 5)],
        *[(10, 10, 0, 10), (1, 1, 0, 1), (500, 500, 0, 500), (200, 2000, 150, 2000)],
    ],
)
def test_the_error_test_is_fishers_exact_test(
    errors: int, samples: int, base_errors: int, base_samples: int
) -> None:
    table = [[errors, samples - errors], [base_errors, base_samples - base_errors]]
    expected = fisher_exact(table, alternative="greater").pvalue
    assert fisher_greater(errors, samples, base_errors, base_samples) == pytest.approx(
        expected, rel=1e-9, abs=1e-300
    )


def test_samples_survive_the_record_and_a_baseline_joins_runs(a1: SampleSet, a2: SampleSet) -> None:
    again = SampleSet.from_bytes(a1.to_bytes(), 7)
    assert again.runs == (7,) and list(again.labels) == list(a1.labels)
    for name, part in a1.labels.items():
        kept = again.labels[name]
        assert (kept.start == part.start).all() and (kept.success == part.success).all()
        assert np.allclose(kept.elapsed, part.elapsed) and kept.samples == part.samples
    joined = SampleSet.combined([(1, a1), (2, a2)])
    assert joined.runs == (1, 2)
    assert joined.total().samples == a1.total().samples + a2.total().samples
    assert len(a1.to_bytes()) < 8 * a1.total().samples, "compact: a few bytes a sample"


def lognormal_run(median_ms: float, seed: int, n: int = 2_000) -> SampleSet:
    rng = np.random.default_rng(seed)
    elapsed = rng.lognormal(np.log(median_ms), 0.4, n)
    part = LabelSamples(np.arange(n) * 5, elapsed, np.ones(n, np.bool_), n, 0)
    return SampleSet({"Login": part})


def test_a_baseline_whose_own_runs_differ_widens_what_counts_as_noise() -> None:
    """Two runs of one build, the second three times slower (a busy night): that spread is
    measured, and a slowdown inside it is not material even for a plan with a tight tolerance."""
    quiet, busy = lognormal_run(40.0, 1), lognormal_run(120.0, 2)
    pooled = SampleSet.combined([(1, quiet), (2, busy)])
    spread = run_to_run(pooled, "Login", RULES)
    assert spread["p95"] == pytest.approx(3.0, rel=0.1)
    assert spread["mean"] == pytest.approx(3.0, rel=0.1)
    assert run_to_run(SampleSet.combined([(1, quiet)]), "Login", RULES) == {}, "one run: unknown"

    tight = VerdictRules(tolerance=0.2)
    slower = lognormal_run(40.0 * 1.8, 3).labels["Login"]
    alone = judge_label("Login", slower, quiet.labels["Login"], tight)
    assert alone.outcome is Outcome.REGRESSED, "×1.8 against one quiet run"
    noisy = judge_label("Login", slower, quiet.labels["Login"], tight, {"p95": 3.0, "mean": 3.0})
    assert noisy.outcome is Outcome.PASSED, "inside the baseline runs' own ×3 spread"


def test_a_busy_spell_in_one_half_of_the_run_is_not_a_regression() -> None:
    """Same build; the machine was busy during the second half of this run only."""
    rng = np.random.default_rng(5)
    n = 2_000
    before = rng.lognormal(np.log(30.0), 0.3, n)
    calm, busy = rng.lognormal(np.log(30.0), 0.3, n // 2), rng.lognormal(np.log(150.0), 0.3, n // 2)
    spell = np.concatenate([calm, busy])
    ok = np.ones(n, np.bool_)
    base = LabelSamples(np.arange(n), before, ok, n, 0)
    judged = judge_label("Login", LabelSamples(np.arange(n), spell, ok, n, 0), base, RULES)
    assert judged.p95 is not None and judged.p95.low > 2.0, "the whole run's p95 is far up"
    assert judged.outcome is Outcome.PASSED, "but only in one half of it"
    slower = rng.lognormal(np.log(150.0), 0.3, n)
    steady = judge_label("Login", LabelSamples(np.arange(n), slower, ok, n, 0), base, RULES)
    assert steady.outcome is Outcome.REGRESSED, "slower from start to end"

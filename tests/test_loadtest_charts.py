"""Charts for every engine: the figure's data is the run's, the PNG is written, no pyplot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from environments.loadtests import charts
from environments.loadtests.readers import read_samples
from environments.loadtests.samplesets import SampleSet
from tests.fakes.loadtesting import FakeLoadTesting
from tests.reference import REFERENCE
from tests.test_loadtest_azure import LOAD, PLAN, make
from tests.test_loadtest_readers import LOCUST_PERCENTS

JMETER = REFERENCE / "jmeter"
VERDICTS = Path(__file__).parent / "data" / "verdicts"
PNG = b"\x89PNG\r\n\x1a\n"


def expected_bucket(samples: SampleSet, seconds: tuple[float, float]) -> tuple[float, float, int]:
    """p95 and error % of the samples that started in [from, to) seconds, counted by hand."""
    total = samples.total()
    offset = (total.start - total.start[0]) / 1000.0
    rows = (offset >= seconds[0]) & (offset < seconds[1])
    errors = 100.0 * float((~total.success[rows]).sum()) / int(rows.sum())
    return float(np.percentile(total.elapsed[rows], 95)), errors, int(rows.sum())


def chart_of(samples: SampleSet, tmp_path: Path, name: str) -> tuple[charts.Series, Path]:
    series = charts.from_samples(samples)
    assert series is not None
    figure = charts.draw(
        title=f"pr-1 · 1.1.0 · plan {name} · REGRESSED",
        subtitle="regressed: …",
        series=series,
        this_run=charts.Bars("#2 1.1.0", {50.0: 40.0, 95.0: 120.0, 99.0: 300.0}),
        baseline=[charts.Bars("#1 1.0.0", {50.0: 4.0, 95.0: 11.0, 99.0: 20.0})],
    )
    latency, traffic, _, errors_axis = figure.axes
    plotted = {line.get_label(): line.get_ydata() for line in latency.lines}
    for p in charts.PERCENTILES:
        assert np.array_equal(plotted[f"p{p:g}"], series.percentiles[p], equal_nan=True)
    assert np.array_equal(traffic.lines[0].get_ydata(), series.throughput, equal_nan=True)
    assert np.array_equal(errors_axis.lines[0].get_ydata(), series.error_percent, equal_nan=True)
    legend = [t.get_text() for t in traffic.get_legend().get_texts()]
    assert legend == ["requests/s", "errors %"], "one legend for both axes"
    assert figure.get_suptitle() == f"pr-1 · 1.1.0 · plan {name} · REGRESSED"
    path = charts.render(tmp_path / f"{name}.png", figure)
    assert path.read_bytes()[:8] == PNG
    return series, path


@pytest.mark.parametrize(
    ("source", "name"),
    [
        (JMETER / "HTMLReportTestFile.csv", "jmeter-csv"),
        (JMETER / "sample_log1c.jtl", "jmeter-xml"),
        (VERDICTS / "game-1.0.0-a1.jtl", "locust-samples"),
    ],
)
def test_percentiles_throughput_and_errors_over_time_come_from_the_samples(
    source: Path, name: str, tmp_path: Path
) -> None:
    samples = SampleSet.from_samples(read_samples(source))
    series, _ = chart_of(samples, tmp_path, name)
    width = float(series.seconds[1] - series.seconds[0])
    first = (0.0, width)
    p95, errors, count = expected_bucket(samples, first)
    assert series.percentiles[95.0][0] == pytest.approx(p95)
    assert series.error_percent[0] == pytest.approx(errors)
    assert series.throughput[0] == pytest.approx(count / width)
    assert len(series.seconds) <= charts.BUCKETS + 1


def test_azure_load_testing_results_are_charted_from_their_jtl(tmp_path: Path) -> None:
    plan = tmp_path / "plan.jmx"
    plan.write_text(PLAN)
    with FakeLoadTesting() as alt:
        done = make(alt).run(plan, "https://app.example:8443", LOAD, tmp_path / "run")
    assert done.samples_file is not None
    samples = SampleSet.from_samples(read_samples(done.samples_file))
    series, _ = chart_of(samples, tmp_path, "azure-load-testing")
    assert samples.total().samples == 50 and samples.total().errors == 2
    assert np.nanmax(series.error_percent) > 0, "its two failed samples show"


def test_locust_history_without_its_placeholders(tmp_path: Path) -> None:
    history = tmp_path / "locust_stats_history.csv"
    history.write_text(
        f"Timestamp,User Count,Type,Name,Requests/s,Failures/s,{LOCUST_PERCENTS},"
        "Total Request Count,Total Failure Count,Total Median Response Time,"
        "Total Average Response Time,Total Min Response Time,Total Max Response Time,"
        "Total Average Content Size\n"
        "1700000000,0,,Aggregated,0.000000,0.000000,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,"
        "0,0,0,0,0,0,0\n"
        "1700000001,5,,Aggregated,0.000000,0.000000,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n"
        "1700000002,5,,Aggregated,4.000000,1.000000,"
        "10,10,10,10,20,20,20,25,20,20,20,4,1,10,12.5,8,20,512\n"
        "1700000003,5,,Aggregated,5.000000,0.000000,"
        "12,12,12,12,30,31,30,40,30,30,30,9,1,11,13.0,8,30,512\n"
    )
    series = charts.from_locust_history(history)
    assert series is not None
    assert list(series.seconds) == [0.0, 1.0, 2.0, 3.0]
    assert np.isnan(series.percentiles[95.0][:2]).all(), "no zero placeholders drawn"
    assert list(series.percentiles[95.0][2:]) == [20.0, 31.0]
    assert list(series.percentiles[99.0][2:]) == [25.0, 40.0]
    assert list(series.error_percent[2:]) == [25.0, 0.0]
    figure = charts.draw(title="t", series=series, this_run=charts.Bars("#1 1.0.0", {}))
    assert charts.render(tmp_path / "h.png", figure).read_bytes()[:8] == PNG


def test_this_run_against_labelled_baseline_runs_with_values_and_a_log_scale() -> None:
    this = charts.Bars("#7 1.1.0", {50.0: 1500.0, 95.0: 1700.0, 99.0: 2100.0})
    baseline = [
        charts.Bars("#5 1.0.0", {50.0: 6.0, 95.0: 11.0, 99.0: 20.0}),
        charts.Bars("#6 1.0.0", {50.0: 7.0, 95.0: 12.0, 99.0: 22.0}),
    ]
    figure = charts.draw(title="t", series=None, this_run=this, baseline=baseline)
    compare = figure.axes[2]
    labels = [t.get_text() for t in compare.get_legend().get_texts()]
    assert labels == ["#5 1.0.0", "#6 1.0.0", "#7 1.1.0 (this run)"]
    printed = {t.get_text() for t in compare.texts}
    assert {"1,700", "11", "12", "2,100", "6.0"} <= printed
    assert compare.get_yscale() == "log", "×155: a linear scale would hide the baseline"
    close = charts.draw(
        title="t",
        series=None,
        this_run=charts.Bars("#7 1.0.1", {50.0: 6.5, 95.0: 12.0, 99.0: 21.0}),
        baseline=baseline,
    )
    assert close.axes[2].get_yscale() == "linear"


def test_drawing_never_touches_pyplot() -> None:
    # In a fresh interpreter: what other tests imported into this one must not decide it.
    script = (
        "import sys\n"
        "from environments.loadtests import charts\n"
        "charts.draw(title='t', series=None, this_run=charts.Bars('#1 1.0.0', {}))\n"
        "assert 'matplotlib.figure' in sys.modules, 'nothing was drawn'\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr

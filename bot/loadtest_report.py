"""`loadtest report`: a result file's aggregate report and criteria, loading nothing else."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.grammar import Parser
from environments.errors import InvalidInput, ShipyardError

if TYPE_CHECKING:  # the load-test modules pull in numpy and polars: only the command loads them
    from environments.loadtests.criteria import Evaluation
    from environments.loadtests.results import AggregateReport, LabelStats

# README's exit codes: 9 is a load test that failed (as `env loadtest` and `schedule run`); 1 a bug.
LOADTEST_FAILED = 9
REPORT_HELP = "the aggregate report of a JMeter JTL or Locust CSV, and fail criteria"
CRITERIA_HELP = (
    "a fail criterion in Azure Load Testing's syntax, e.g. 'p95(response_time_ms) > 500' or "
    "'Login: avg(response_time_ms) > 300' (several may follow; the run fails if one holds)"
)
HEADERS = (
    "label",
    "samples",
    "average",
    "median",
    "90% line",
    "95% line",
    "99% line",
    "min",
    "max",
    "error %",
    "throughput",
    "received kb/sec",
)


def add_report_arguments(report: argparse.ArgumentParser) -> None:
    """The verb's arguments, shared by the full grammar and the quick path (bot/cli.py)."""
    report.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="shipyard.yaml to use (default: $SHIPYARD_CONFIG or ./shipyard.yaml)",
    )
    report.add_argument(
        "file", metavar="FILE", help="a .jtl (CSV or XML), or Locust's *_stats[_history].csv"
    )
    report.add_argument("--json", action="store_true", help="print JSON instead of text")
    report.add_argument(
        "--criteria", nargs="+", action="extend", default=[], metavar="EXPR", help=CRITERIA_HELP
    )


def report(args: argparse.Namespace) -> tuple[str, dict[str, Any], str | None]:
    """(text, data, failure): failure is the one-line reason when a criterion holds."""
    from environments.loadtests import aggregate, criteria, readers

    wanted = criteria.parse_criteria(args.criteria)
    latency = criteria.needs_latency(wanted)
    result = readers.read_result(args.file, latency=latency)
    figures = aggregate.aggregate(
        result, percentiles=criteria.percentiles_needed(wanted), latency=latency
    )
    if figures.total.samples == 0:
        # A header alone is a run that recorded nothing, not a run of "0 samples" that passed.
        raise InvalidInput(
            f"{args.file}: has no samples (a header line only)",
            hint="the load test recorded nothing: check that it reached the environment",
        )
    evaluations = criteria.evaluate_all(wanted, figures)
    ok = criteria.passed(evaluations)
    data = {**figures.to_dict(), "criteria": [e.to_dict() for e in evaluations], "passed": ok}
    text = report_text(figures, evaluations)
    if ok:
        return text, data, None
    failed = [e for e in evaluations if e.verdict is not criteria.Verdict.PASSED]
    return (
        text,
        data,
        (f"{len(failed)} of {len(evaluations)} criteria not met: {failed[0].describe()}"),
    )


def run_report(argv: Sequence[str]) -> int:
    """`shipyard loadtest report …` without the runtime: parse, report, exit 0, 9 or 2."""
    parser = Parser(prog="shipyard loadtest report", description=REPORT_HELP)
    add_report_arguments(parser)
    parser.add_argument("--as", dest="person", default=None, help=argparse.SUPPRESS)
    try:
        args = parser.parse_args(list(argv))
        text, data, failure = report(args)
    except ShipyardError as exc:
        print(f"shipyard: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(data, indent=2) if args.json else text, flush=True)
    if failure is not None:
        print(f"shipyard: {failure} — the load test fails", file=sys.stderr)
        return LOADTEST_FAILED
    return 0


def report_text(report: AggregateReport, evaluations: Sequence[Evaluation] = ()) -> str:
    """The aggregate report as JMeter shows it, then one line per criterion."""
    lines = [
        f"{report.source} ({report.format.value}, {report.total.samples:,} samples)",
        _table([_cells(row) for row in (*report.rows, report.total)]),
    ]
    from environments.loadtests.aggregate import JMETER_METHOD

    if report.method != JMETER_METHOD:  # say so when the engine computed the figures
        lines.append(f"figures: {report.method}")
    if evaluations:
        failed = sum(e.verdict.value != "passed" for e in evaluations)
        lines.append(
            f"criteria: {len(evaluations) - failed} of {len(evaluations)} passed"
            + (f", {failed} not" if failed else "")
        )
        lines += [f"  {e.describe()}" for e in evaluations]
    return "\n".join(lines)


def _cells(row: LabelStats) -> list[str]:
    rt = row.response_time
    error = row.error_percent
    return [
        row.label,
        f"{row.samples:,}",
        "-" if rt is None or rt.mean is None else str(int(rt.mean)),
        *(_ms(row.percentile(p)) for p in (50, 90, 95, 99)),
        _ms(None if rt is None else rt.min),
        _ms(None if rt is None else rt.max),
        "-" if error is None else f"{error:.2f}%",
        _rate(row.throughput_per_sec),
        "-" if row.received_kb_per_sec is None else f"{row.received_kb_per_sec:.2f}",
    ]


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _rate(per_second: float | None) -> str:
    """JMeter's throughput renderer: per second, or per minute or hour when that is below 1."""
    if per_second is None:
        return "-"
    if per_second == 0:
        return "0.0/sec"
    for unit, factor in (("sec", 1), ("min", 60), ("hour", 3600)):
        if per_second * factor >= 1 or unit == "hour":
            return f"{per_second * factor:.1f}/{unit}"
    raise AssertionError("unreachable")


def _table(rows: list[list[str]]) -> str:
    """Labels left-aligned, figures right-aligned, like a spreadsheet."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        parts = [first.ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line([h.upper() for h in HEADERS]), *(line(r) for r in rows)])

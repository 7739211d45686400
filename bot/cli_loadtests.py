"""`shipyard loadtest report FILE`: a result file's aggregate report, and its fail criteria."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot import render
from bot.commands import Outcome, command
from bot.grammar import Parser
from bot.runtime import Runtime
from environments.errors import ShipyardError
from environments.policy import Actor

if TYPE_CHECKING:  # the load-test modules pull in numpy and polars: only the command loads them
    from environments.loadtests.criteria import Evaluation
    from environments.loadtests.results import AggregateReport, LabelStats

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


def add_commands(groups: Any, parser: Parser, chat: bool) -> None:
    """The `loadtest` group; `report` is not in chat (the result file lives where the CLI runs)."""
    group = groups.add_parser("loadtest", help="load tests: report, history, compare")
    verbs = group.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    verbs.required = True
    history = verbs.add_parser("history", help="recorded load-test runs, newest first")
    history.add_argument("--release", help="only runs of this release")
    history.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.verbs[("loadtest", "history")] = history
    compare = verbs.add_parser("compare", help="two recorded runs side by side, per label")
    compare.add_argument("first", type=int, metavar="RUN_A")
    compare.add_argument("second", type=int, metavar="RUN_B")
    compare.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.verbs[("loadtest", "compare")] = compare
    if chat:
        return
    report = verbs.add_parser("report", help=REPORT_HELP, description=REPORT_HELP)
    parser.verbs[("loadtest", "report")] = report
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


@command("loadtest", "report")
def loadtest_report(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    """Per label and in TOTAL: JMeter's Aggregate Report; then each criterion's verdict."""
    from environments.loadtests import aggregate, criteria, readers

    wanted = criteria.parse_criteria(args.criteria)
    latency = criteria.needs_latency(wanted)
    result = readers.read_result(args.file, latency=latency)
    report = aggregate.aggregate(
        result, percentiles=criteria.percentiles_needed(wanted), latency=latency
    )
    evaluations = criteria.evaluate_all(wanted, report)
    ok = criteria.passed(evaluations)
    data = {
        **report.to_dict(),
        "criteria": [e.to_dict() for e in evaluations],
        "passed": ok,
    }
    text = report_text(report, evaluations)
    if ok:
        return Outcome(text=text, data=data)
    # The report is the evidence of the failure: show it before exiting non-zero.
    print(render.to_json(data) if args.json else text, flush=True)
    failed = [e for e in evaluations if e.verdict is not criteria.Verdict.PASSED]
    raise ShipyardError(
        f"{len(failed)} of {len(evaluations)} criteria not met: {failed[0].describe()}",
        hint="the load test fails",
    )


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


@command("loadtest", "history")
def loadtest_history(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    from environments.registry import loadtests as runs

    with rt.database.read() as conn:
        found = runs.history(conn, release=args.release)

    def total(run: runs.RunRecord, key: str) -> str:
        value = run.report_figures.get("TOTAL", {}).get(key)
        return f"{value:.0f}" if isinstance(value, int | float) else "-"

    rows = [
        [
            f"#{r.id}",
            render.when(r.started_at),
            r.release,
            r.environment,
            r.plan,
            r.outcome or "running",
            total(r, "p95"),
            total(r, "samples"),
            f"#{r.baseline_run_id}" if r.baseline_run_id else "-",
        ]
        for r in found
    ]
    headers = [
        "run",
        "when",
        "release",
        "environment",
        "plan",
        "verdict",
        "p95 ms",
        "samples",
        "baseline",
    ]
    return Outcome(text=render.table(headers, rows), data=found)


@command("loadtest", "compare")
def loadtest_compare(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    from environments.loadtests.verdicts import compare
    from environments.registry import loadtests as runs

    with rt.database.read() as conn:
        first, second = runs.get(conn, args.first), runs.get(conn, args.second)
    comparisons = compare(second.report_figures, first.report_figures)
    rows = [
        [
            c.label,
            f"{c.baseline_p95:.0f}" if c.baseline_p95 is not None else "-",
            f"{c.p95:.0f}" if c.p95 is not None else "-",
            f"{c.p95_change * 100:+.0f}%" if c.p95_change is not None else "-",
            "regressed" if c.regressed else "ok",
        ]
        for c in comparisons
    ]
    title = (
        f"#{first.id} ({first.release} on {first.environment}) → "
        f"#{second.id} ({second.release} on {second.environment})"
    )
    table = render.table(["label", f"p95 #{first.id}", f"p95 #{second.id}", "change", ""], rows)
    return Outcome(text=f"{title}\n{table}", data=comparisons)

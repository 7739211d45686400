"""Load-testing an environment: run the plan, judge it by criteria and baseline, record, report."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from environments.catalog import Catalog, resolve_path
from environments.clock import Clock
from environments.config.loadtests import LoadTestPlan
from environments.errors import Conflict, InvalidInput, NotFound, ShipyardError
from environments.loadtests import baselines, charts
from environments.loadtests.criteria import (
    Criterion,
    Verdict,
    evaluate_all,
    parse_criteria,
    passed,
)
from environments.loadtests.engine import Engine, EngineRun, Load, Progress
from environments.loadtests.readers import read_samples
from environments.loadtests.samplesets import SampleSet
from environments.loadtests.summary import LoadTestSummary
from environments.loadtests.verdicts import Outcome, explanation, figures, judge, verdict
from environments.model import EnvironmentState, parse_duration
from environments.policy import Actor, within_load_limits
from environments.registry import Database, outbox
from environments.registry import loadtests as runs
from environments.registry import operations as ops
from environments.registry import record as rec


class Listener(Protocol):
    """Told of every finished run (the core's Notifier is one; nothing more of it is needed)."""

    def loadtest_finished(self, summary: LoadTestSummary) -> None: ...


class LoadTesting:
    """Runs plans against ready environments and keeps every run in the record."""

    def __init__(
        self,
        catalog: Catalog,
        database: Database,
        *,
        clock: Clock,
        notifier: Listener,
        home: Path,
        engines: Mapping[str, Callable[[], Engine]],
    ) -> None:
        self.catalog = catalog
        self.db = database
        self.clock = clock
        self.notifier = notifier
        self.home = home
        self.engines = engines

    def engine(self, name: str) -> Engine:
        """The engine a plan names, from those the composition root offers."""
        if name not in self.engines:
            raise InvalidInput(
                f"there is no load engine '{name}'",
                hint=f"use {', '.join(self.engines)}",
            )
        return self.engines[name]()

    def plan(self, env_type: str, name: str | None) -> tuple[str, LoadTestPlan]:
        plans = self.catalog.loadtests
        chosen = (
            name
            or self.catalog.type(env_type).loadtest
            or (next(iter(plans)) if len(plans) == 1 else None)
        )
        if chosen is None or chosen not in plans:
            raise NotFound(
                f"there is no load-test plan '{chosen}'"
                if chosen
                else f"{env_type} environments have no load-test plan",
                hint=f"name one with --plan: {', '.join(plans) or 'none in shipyard.yaml'}",
            )
        return chosen, plans[chosen]

    def begin(
        self,
        actor: Actor,
        *,
        environment: str,
        env_type: str,
        release: str,
        plan: str | None = None,
        users: int | None = None,
        duration: timedelta | None = None,
        schedule: str | None = None,
    ) -> int:
        """Record a run as started (before its environment may even exist, for a nightly run)."""
        plan_name, chosen = self.plan(env_type, plan)
        load = self._load(chosen, users, duration)
        within_load_limits(actor, self.catalog.type(env_type), load.users, load.duration)
        now = self.clock.now()
        with self.db.write() as conn:
            run_id = runs.start(
                conn,
                environment=environment,
                environment_type=env_type,
                release=release,
                plan=plan_name,
                engine=chosen.engine,
                requested_by=actor.person,
                started_at=now,
                gate=self._gate(env_type, plan_name, chosen),
                schedule=schedule,
                load={
                    "users": load.users,
                    "spawn_rate": load.spawn_rate,
                    "duration_s": load.duration.total_seconds(),
                },
            )
            ops.audit(
                conn,
                at=now,
                actor=actor.person,
                action="loadtest.start",
                environment=environment,
                run=run_id,
                release=release,
                plan=plan_name,
                schedule=schedule,
            )
        return run_id

    def errored(self, run_id: int, reason: str, folder: Path | None = None) -> None:
        """The run itself broke (or never got going): recorded with the reason."""
        with self.db.write() as conn:
            runs.finish(
                conn,
                run_id,
                outcome=Outcome.ERRORED.value,
                error=reason,
                verdict=f"errored: {reason}",
                finished_at=self.clock.now(),
                folder=str(folder) if folder else None,
            )

    def folder(self, run_id: int) -> Path:
        """Where a run's files are kept (engine output, chart, logs): not in the environment."""
        return self.home / "loadtests" / f"run-{run_id}"

    def _chart(
        self,
        path: Path,
        *,
        title: str,
        subtitle: str,
        samples: SampleSet,
        history: Path | None,
        this_run: charts.Bars,
        baseline_runs: tuple[int, ...],
    ) -> Path:
        with self.db.read() as conn:
            baseline = [runs.get(conn, i) for i in baseline_runs]
        series = charts.from_samples(samples)
        if series is None and history is not None and history.exists():
            series = charts.from_locust_history(history)
        figure = charts.draw(
            title=title,
            subtitle=subtitle,
            series=series,
            this_run=this_run,
            baseline=[charts.bars(f"#{r.id} {r.release}", r.report_figures) for r in baseline],
        )
        return charts.render(path, figure)

    def _gate(self, env_type: str, plan_name: str, plan: LoadTestPlan) -> bool:
        if plan.gate is not None:
            return plan.gate
        return plan_name == self.catalog.type(env_type).loadtest

    @staticmethod
    def _load(plan: LoadTestPlan, users: int | None, duration: timedelta | None) -> Load:
        return Load(users or plan.users, plan.spawn_rate, duration or parse_duration(plan.duration))

    def run(
        self,
        actor: Actor,
        environment: str,
        *,
        plan: str | None = None,
        users: int | None = None,
        duration: timedelta | None = None,
        schedule: str | None = None,
        run_id: int | None = None,
        progress: Progress | None = None,
        channel: str | None = None,
    ) -> LoadTestSummary:
        """Run a plan against a ready environment; `run_id` continues a run `begin` recorded.

        `progress` is told live figures every few seconds while the engine runs; `channel`
        (a nightly schedule's) is where the verdict is posted instead of the environment's thread.
        """
        began = time.perf_counter()
        with self.db.read() as conn:
            env = rec.get_environment(conn, environment)
        if env.state is not EnvironmentState.READY or not env.endpoint or env.release is None:
            raise Conflict(
                f"{env.name} is {env.state}, not ready with a release",
                hint="load-test it once it is ready",
            )
        plan_name, chosen = self.plan(env.type, plan)
        criteria = parse_criteria(chosen.criteria)
        load = self._load(chosen, users, duration)
        plan_file = resolve_path(self.catalog, chosen.file)
        runner = self.engine(chosen.engine)
        gate = self._gate(env.type, plan_name, chosen)
        if run_id is None:
            run_id = self.begin(
                actor,
                environment=env.name,
                env_type=env.type,
                release=env.release,
                plan=plan_name,
                users=users,
                duration=duration,
                schedule=schedule,
            )
        folder = self.folder(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        # matplotlib takes a second or more to import: do it while the engine runs, not after.
        threading.Thread(target=charts.preload, name="chart-preload", daemon=True).start()
        try:
            engine_began = time.perf_counter()
            result = runner.run(
                plan_file,
                env.endpoint,
                load,
                folder,
                progress,
                name=f"{plan_name}-{env.type}",
                criteria=chosen.criteria,
            )
            engine_s = time.perf_counter() - engine_began
            summary, final, samples = self._judge(
                run_id,
                env.name,
                env.type,
                env.release,
                plan_name,
                chosen,
                criteria,
                result,
                folder,
                gate=gate,
            )
            # The run's final record, its audit line and the verdict people are told: one
            # transaction, so the record never holds a verdict nobody will hear of (or the
            # reverse) whatever stops the process in between.
            with self.db.write() as conn:
                runs.finish(conn, run_id, **final)
                if samples is not None:
                    runs.save_samples(conn, run_id, samples)
                ops.audit(
                    conn,
                    at=self.clock.now(),
                    actor=actor.person,
                    action="loadtest.finish",
                    environment=env.name,
                    run=run_id,
                    outcome=summary.outcome.value,
                )
                outbox.add(
                    conn,
                    outbox.Event.LOADTEST_FINISHED,
                    at=self.clock.now(),
                    environment=env.name,
                    run=run_id,
                    outcome=summary.outcome.value,
                    text=summary.text(with_chart_path=False),
                    chart=str(summary.chart) if summary.chart else None,
                    verdict=summary.verdict,
                    release=summary.release,
                    channel=channel,
                )
        except BaseException as exc:
            # Whatever broke (the engine, a result file, a signal, a crash), the run is recorded
            # as errored rather than left running forever.
            self.errored(run_id, _reason(exc), folder)
            raise
        # Where the time went: the engine's process, and Shipyard's own work around it.
        summary = replace(
            summary,
            timings={
                "total_s": time.perf_counter() - began,
                "engine_s": engine_s,
                "load_s": load.duration.total_seconds(),
            },
        )
        self.notifier.loadtest_finished(summary)
        return summary

    def _judge(
        self,
        run_id: int,
        environment: str,
        env_type: str,
        release: str,
        plan_name: str,
        plan: LoadTestPlan,
        criteria: tuple[Criterion, ...],
        result: EngineRun,
        folder: Path,
        *,
        gate: bool,
    ) -> tuple[LoadTestSummary, dict[str, Any], bytes | None]:
        """Criteria, then the samples against the baseline runs: the summary, the run's final
        record and its samples (written by the caller with the verdict's event)."""
        measured = figures(result.report)
        evaluations = evaluate_all(criteria, result.report)
        current = (
            SampleSet.from_samples(read_samples(result.samples_file))
            if result.samples_file is not None
            else SampleSet({})
        )
        rules = plan.verdict
        with self.db.read() as conn:
            names, base = baselines.choose(
                conn,
                self.catalog,
                release=release,
                plan=plan_name,
                env_type=env_type,
                limit=rules.baseline_runs,
                before=run_id,
            )
        labels = judge(current, base, rules) if base is not None else []
        outcome = verdict(passed(evaluations), labels)
        failed = [e.describe() for e in evaluations if e.verdict is not Verdict.PASSED]
        line = (
            f"failed: {failed[0]}"
            if outcome is Outcome.FAILED and failed
            else explanation(outcome, labels, names)
        )
        chart = self._chart(
            folder / "chart.png",
            title=f"{environment} · {release} · plan {plan_name} · {outcome.value.upper()}",
            subtitle=line,
            samples=current,
            history=result.history_file,
            this_run=charts.bars(f"#{run_id} {release}", measured),
            baseline_runs=names.runs,
        )
        final: dict[str, Any] = {
            "outcome": outcome.value,
            "finished_at": self.clock.now(),
            "report": measured,
            "criteria": [
                {"criterion": str(e.criterion), "verdict": e.verdict.value, "measured": e.measured}
                for e in evaluations
            ],
            "baseline_run_id": names.runs[-1] if names.runs else None,
            "baseline_runs": list(names.runs),
            "comparison": [v.to_dict() for v in labels],
            "verdict": line,
            "folder": str(folder),
        }
        samples = current.to_bytes() if current.labels else None
        summary = LoadTestSummary(
            run_id=run_id,
            environment=environment,
            release=release,
            plan=plan_name,
            outcome=outcome,
            total=measured.get("TOTAL", {}),
            criteria=tuple(e.describe() for e in evaluations),
            baseline_release=names.release,
            regressions=tuple(v.line() for v in labels if v.outcome is Outcome.REGRESSED),
            chart=chart,
            folder=folder,
            verdict=line,
            baseline_runs=names.runs,
            gate=gate,
        )
        return summary, final, samples


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ShipyardError):
        return exc.one_line()
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return "interrupted (the process running it was stopped)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

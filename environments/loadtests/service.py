"""Load-testing an environment: run the plan, judge it by criteria and baseline, record, report."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from environments.catalog import Catalog, resolve_path
from environments.clock import Clock
from environments.errors import Conflict, NotFound, ShipyardError
from environments.loadtests import charts
from environments.loadtests.config import LoadTestPlan
from environments.loadtests.criteria import evaluate_all, parse_criteria, passed
from environments.loadtests.engines import Load, engine
from environments.loadtests.summary import LoadTestSummary
from environments.loadtests.verdicts import Outcome, Tolerance, compare, figures, verdict
from environments.model import EnvironmentState, parse_duration
from environments.notify import Notifier
from environments.policy import Actor
from environments.registry import Database
from environments.registry import loadtests as runs
from environments.registry import operations as ops
from environments.registry import record as rec


class LoadTesting:
    """Runs plans against ready environments and keeps every run in the record."""

    def __init__(
        self,
        catalog: Catalog,
        database: Database,
        *,
        clock: Clock,
        notifier: Notifier,
        home: Path,
        tolerance: Tolerance | None = None,
    ) -> None:
        self.catalog = catalog
        self.db = database
        self.clock = clock
        self.notifier = notifier
        self.home = home
        self.tolerance = tolerance or Tolerance()

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

    def run(
        self,
        actor: Actor,
        environment: str,
        *,
        plan: str | None = None,
        users: int | None = None,
        duration: timedelta | None = None,
    ) -> LoadTestSummary:
        with self.db.read() as conn:
            env = rec.get_environment(conn, environment)
        if env.state is not EnvironmentState.READY or not env.endpoint or env.release is None:
            raise Conflict(
                f"{env.name} is {env.state}, not ready with a release",
                hint="load-test it once it is ready",
            )
        plan_name, chosen = self.plan(env.type, plan)
        criteria = parse_criteria(chosen.criteria)
        load = Load(
            users or chosen.users, chosen.spawn_rate, duration or parse_duration(chosen.duration)
        )
        plan_file = resolve_path(self.catalog, chosen.file)
        runner = engine(chosen.engine)
        now = self.clock.now()
        with self.db.write() as conn:
            run_id = runs.start(
                conn,
                environment=env.name,
                environment_type=env.type,
                release=env.release,
                plan=plan_name,
                engine=chosen.engine,
                requested_by=actor.person,
                started_at=now,
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
                environment=env.name,
                run=run_id,
                release=env.release,
                plan=plan_name,
            )
        folder = self.home / "loadtests" / f"run-{run_id}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            result = runner.run(plan_file, env.endpoint, load, folder)
        except ShipyardError as exc:
            with self.db.write() as conn:
                runs.finish(
                    conn,
                    run_id,
                    outcome=Outcome.ERRORED.value,
                    error=exc.one_line(),
                    finished_at=self.clock.now(),
                    folder=str(folder),
                )
            raise
        measured = figures(result.report)
        evaluations = evaluate_all(criteria, result.report)
        with self.db.read() as conn:
            base = runs.baseline(conn, release=env.release, plan=plan_name, env_type=env.type)
        comparisons = (
            compare(measured, dict(base.report_figures), self.tolerance)
            if (base and base.report_figures)
            else None
        )
        outcome = verdict(passed(evaluations), comparisons)
        chart = charts.render(
            folder / "chart.png",
            title=f"{env.release} on {env.name} ({plan_name}): {outcome}",
            current=measured,
            baseline=dict(base.report_figures) if base and base.report_figures else None,
            baseline_title=base.release if base else "baseline",
            history=result.history_file,
        )
        regressions = tuple(r for c in comparisons or [] for r in c.reasons)
        with self.db.write() as conn:
            runs.finish(
                conn,
                run_id,
                outcome=outcome.value,
                finished_at=self.clock.now(),
                report=measured,
                criteria=[
                    {
                        "criterion": str(e.criterion),
                        "verdict": e.verdict.value,
                        "measured": e.measured,
                    }
                    for e in evaluations
                ],
                baseline_run_id=base.id if base else None,
                comparison=[
                    {
                        "label": c.label,
                        "p95": c.p95,
                        "baseline_p95": c.baseline_p95,
                        "regressed": c.regressed,
                        "reasons": list(c.reasons),
                    }
                    for c in comparisons or []
                ],
                folder=str(folder),
            )
            ops.audit(
                conn,
                at=self.clock.now(),
                actor=actor.person,
                action="loadtest.finish",
                environment=env.name,
                run=run_id,
                outcome=outcome.value,
            )
        summary = LoadTestSummary(
            run_id=run_id,
            environment=env.name,
            release=env.release,
            plan=plan_name,
            outcome=outcome,
            total=measured.get("TOTAL", {}),
            criteria=tuple(e.describe() for e in evaluations),
            baseline_release=base.release if base else None,
            regressions=regressions,
            chart=chart,
            folder=folder,
        )
        self.notifier.loadtest_finished(summary)
        return summary

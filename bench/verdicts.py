"""A/A and A/B load-test verdicts on real Locust runs, and Shipyard's overhead around a run.

One record and one local environment of the sample game backend (examples/game/releases); each
trial deploys three releases into it in turn and load-tests each with a real Locust run of the
`login` plan, judged by `LoadTesting.run` exactly as `env loadtest` does:

    1.0.0   the reference (its own baseline would be an older release: there is none)
    1.0.1   the same artifact as 1.0.0 (A/A): judged against 1.0.0's recent passing runs
    1.1.0   PBKDF2 session tickets, a genuine slowdown (A/B): judged against 1.0.1's recent
            passing runs (1.0.0's if 1.0.1 has none)

As in use, the baseline is the previous release's most recent passing runs (up to three, the
default): trial 1 judges against one run, trial 2 against two, later trials against three.

The plan's pass/fail criteria are left out, so the verdict is the comparison alone; the verdict
rules are the defaults. Target: 0 of N A/A trials `regressed`, N of N A/B trials `regressed`.
Overhead: each run's wall time minus the engine's (the Locust process: start, load, stop), and
minus the load's configured duration; target ≤ 3 s beyond the engine. Prints one JSON line.

    python bench/verdicts.py [--trials 10] [--duration 20] [--users 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLES = ROOT / "examples"
TARGET_OVERHEAD_S = 3.0


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def config(folder: Path, duration: int, users: int) -> Path:
    """The sample configuration: its plan by absolute path, without criteria, this load."""
    text = (EXAMPLES / "shipyard.yaml").read_text(encoding="utf-8")
    head, rest = text.split("loadtests:\n", 1)
    plan, tail = rest.split("\nschedules:", 1)
    plan = "\n".join(
        line
        for line in plan.splitlines()
        if "criteria:" not in line and "response_time_ms" not in line and "percentage(" not in line
    )
    plan = (
        plan.replace("file: loadtests/login.py", f"file: {EXAMPLES / 'loadtests/login.py'}")
        .replace("duration: 8s", f"duration: {duration}s")
        .replace("users: 10", f"users: {users}")
    )
    path = folder / "shipyard.yaml"
    path.write_text(f"{head}loadtests:\n{plan}\n\nschedules:{tail}", encoding="utf-8")
    return path


def trials(count: int, base: Path, duration: int, users: int) -> list[dict[str, Any]]:
    from bot.runtime import Runtime
    from environments.policy import Actor

    os.environ["SHIPYARD_HOME"] = str(base / "home")
    rt = Runtime.open(str(config(base, duration, users)), database_url=f"sqlite:///{base / 'r.db'}")
    dave = Actor("dave")
    game = EXAMPLES / "game" / "releases"
    for version, artifact in (("1.0.0", "1.0.0"), ("1.0.1", "1.0.0"), ("1.1.0", "1.1.0")):
        rt.lifecycle.add_release(dave, version, str(game / artifact))
    name = "bench-verdicts"
    results: list[dict[str, Any]] = []
    try:
        created = rt.lifecycle.create(dave, name, env_type="test", release="1.0.0")
        rt.worker.run(created.operation_id)
        for number in range(1, count + 1):
            runs: dict[str, Any] = {}
            for version in ("1.0.0", "1.0.1", "1.1.0"):
                if (number, version) != (1, "1.0.0"):
                    rt.worker.run(rt.lifecycle.deploy(dave, name, release=version).operation_id)
                summary = rt.loadtesting.run(dave, name, duration=timedelta(seconds=duration))
                t = summary.timings
                runs[version] = {
                    "outcome": summary.outcome.value,
                    "verdict": summary.verdict,
                    "total_s": round(t["total_s"], 2),
                    "engine_s": round(t["engine_s"], 2),
                    "overhead_beyond_engine_s": round(t["total_s"] - t["engine_s"], 2),
                    "overhead_beyond_load_s": round(t["total_s"] - t["load_s"], 2),
                }
                progress(f"trial {number} {version}: {summary.verdict} ({t['total_s']:.1f}s)")
            results.append(runs)
    finally:
        rt.worker.run(rt.lifecycle.destroy(dave, name, force=True))
        rt.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    # 20 s: the slow release serves about 3-5 logins a second on a busy 2-core machine, and a
    # label needs 50 samples to be judged at all.
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per run")
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-verdicts-") as scratch:
        results = trials(args.trials, Path(scratch), args.duration, args.users)
    aa = Counter(r["1.0.1"]["outcome"] for r in results)
    ab = Counter(r["1.1.0"]["outcome"] for r in results)
    every = [run for r in results for run in r.values()]
    beyond_engine = [run["overhead_beyond_engine_s"] for run in every]
    beyond_load = [run["overhead_beyond_load_s"] for run in every]
    figures = {
        "trials": args.trials,
        "duration_s": args.duration,
        "users": args.users,
        "aa_regressed": aa["regressed"],
        "ab_regressed": ab["regressed"],
        "aa_outcomes": dict(aa),
        "ab_outcomes": dict(ab),
        "overhead_beyond_engine_s": {
            "p50": round(statistics.median(beyond_engine), 2),
            "p90": round(statistics.quantiles(beyond_engine, n=10)[-1], 2),
            "max": max(beyond_engine),
            "first_run": beyond_engine[0],
        },
        "overhead_beyond_load_s": {
            "p50": round(statistics.median(beyond_load), 2),
            "max": max(beyond_load),
        },
        "ab_example": results[0]["1.1.0"]["verdict"],
        "aa_example": results[0]["1.0.1"]["verdict"],
        "meets_target": aa["regressed"] == 0
        and ab["regressed"] == args.trials
        and max(beyond_engine) <= TARGET_OVERHEAD_S,
        "run_time_s": round(time.perf_counter() - began, 1),
    }
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()

"""A/A and A/B load-test verdicts on real Locust runs, and Shipyard's overhead around a run.

Each trial gets a fresh record and a local environment of the sample game backend
(examples/game/releases), then three real Locust runs of the `login` plan, each judged by
`LoadTesting.run` exactly as `env loadtest` does:

    1.0.0   the first run: no baseline yet
    1.0.1   the same artifact as 1.0.0 (A/A): judged against 1.0.0's run
    1.1.0   PBKDF2 session tickets, a genuine slowdown (A/B): judged against the previous
            release's passing run (1.0.1, or 1.0.0 if 1.0.1 was judged regressed)

The plan's pass/fail criteria are left out, so the verdict is the comparison alone; the verdict
rules are the defaults. Target: 0 of N A/A trials `regressed`, N of N A/B trials `regressed`.
Overhead: each run's wall time minus the engine's (the Locust process: start, load, stop), and
minus the load's configured duration; target ≤ 3 s beyond the engine. Prints one JSON line.

    python bench/verdicts.py [--trials 10] [--duration 12] [--users 10]
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


def trial(number: int, base: Path, duration: int, users: int) -> dict[str, Any]:
    from bot.runtime import Runtime
    from environments.policy import Actor

    folder = base / f"trial-{number}"
    folder.mkdir()
    os.environ["SHIPYARD_HOME"] = str(folder / "home")
    rt = Runtime.open(
        str(config(folder, duration, users)), database_url=f"sqlite:///{folder / 'r.db'}"
    )
    dave = Actor("dave")
    game = EXAMPLES / "game" / "releases"
    for version, artifact in (("1.0.0", "1.0.0"), ("1.0.1", "1.0.0"), ("1.1.0", "1.1.0")):
        rt.lifecycle.add_release(dave, version, str(game / artifact))
    name = f"bench-{number}"
    runs: dict[str, Any] = {}
    try:
        rt.worker.run(
            rt.lifecycle.create(dave, name, env_type="test", release="1.0.0").operation_id
        )
        for version in ("1.0.0", "1.0.1", "1.1.0"):
            if version != "1.0.0":
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
    finally:
        rt.worker.run(rt.lifecycle.destroy(dave, name, force=True))
        rt.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--duration", type=int, default=12, help="seconds of load per run")
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    began = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-verdicts-") as scratch:
        for number in range(1, args.trials + 1):
            results.append(trial(number, Path(scratch), args.duration, args.users))
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
            "max": max(beyond_engine),
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

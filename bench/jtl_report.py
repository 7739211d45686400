"""Times `shipyard loadtest report FILE --json` on a 5,000,000-sample CSV JTL against pandas.

Generates a CSV JTL as JMeter writes it by default (17 columns, 10 labels, some of them
non-ASCII, ~2% failed samples with a 500 and a quoted two-line failure message), then runs, as
subprocesses and in alternation, `shipyard loadtest report FILE --json` and a straightforward
pandas implementation of the same report (read_csv, groupby, sort each group's elapsed times and
pick JMeter's ranks). Each run's wall time and peak RSS (the child's own, from wait4) are kept,
and each command's start-up alone is timed on a 100-sample file (`startup_s`);
both reports must give the same numbers (percentiles, counts, min and max exactly; averages and
rates within 1e-9 relative). Prints one JSON line.

    python bench/jtl_report.py [--samples 5000000] [--labels 10] [--repeat 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_SPEEDUP = 3.0
TARGET_PEAK_RSS_MB = 500.0
PERCENTS = {"median": 50, "p90": 90, "p95": 95, "p99": 99}
EXACT = ("samples", "errors", "median", "p90", "p95", "p99", "min", "max")
CLOSE = ("average", "error_percent", "throughput_per_sec", "received_kb_per_sec")


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def generate(path: Path, samples: int, labels: int, seed: int = 7) -> None:
    """A JMeter CSV JTL with the default columns, written with numpy and polars."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    names = np.array(
        [
            f"Requête joueur {i} Ünïcode" if i % 4 == 0 else f"GET /api/v1/item/{i}"
            for i in range(labels)
        ]
    )
    label = names[rng.integers(0, labels, samples)]
    elapsed = np.minimum(rng.lognormal(5.0, 0.7, samples), 60_000).astype(np.int32)
    ok = rng.random(samples) > 0.02
    start = 1_767_225_600_000 + np.sort(rng.integers(0, 3_600_000, samples))
    frame = pl.DataFrame(
        {
            "timeStamp": start,
            "elapsed": elapsed,
            "label": label,
            "ok": ok,
            "bytes": rng.integers(200, 20_000, samples),
            "sentBytes": rng.integers(100, 400, samples),
            "Connect": rng.integers(0, 5, samples),
        }
    )
    failed = ~pl.col("ok")
    frame.select(
        "timeStamp",
        "elapsed",
        "label",
        pl.when(failed).then(pl.lit("500")).otherwise(pl.lit("200")).alias("responseCode"),
        pl.when(failed)
        .then(pl.lit("Internal Server Error"))
        .otherwise(pl.lit("OK"))
        .alias("responseMessage"),
        pl.lit("Thread Group 1-1").alias("threadName"),
        pl.lit("text").alias("dataType"),
        pl.col("ok").alias("success"),
        pl.when(failed)
        .then(pl.lit('Response was "error", expected "ok"\nat line 1, column 2'))
        .otherwise(pl.lit(None, pl.String))
        .alias("failureMessage"),
        "bytes",
        "sentBytes",
        pl.lit(50).alias("grpThreads"),
        pl.lit(50).alias("allThreads"),
        pl.lit("http://127.0.0.1:8080/api").alias("URL"),
        (pl.col("elapsed") * 4 // 5).alias("Latency"),
        pl.lit(0).alias("IdleTime"),
        "Connect",
    ).write_csv(path)


def pandas_report(path: str) -> dict[str, Any]:
    """The aggregate report, the straightforward pandas way (the baseline)."""
    import numpy as np
    import pandas as pd

    df = pd.read_csv(path)
    df["end"] = df["timeStamp"] + df["elapsed"]

    def rank(n: int, percent: int) -> int:
        x = n * float(np.float32(percent) / np.float32(100))
        return max(math.floor(x) + (1 if x - math.floor(x) >= 0.5 else 0), 1)

    def summary(group: pd.DataFrame) -> dict[str, Any]:
        elapsed = np.sort(group["elapsed"].to_numpy())
        n = len(elapsed)
        errors = int((~group["success"]).sum())
        span = (int(group["end"].max()) - int(group["timeStamp"].min())) / 1000
        row = {
            "samples": n,
            "errors": errors,
            "average": float(group["elapsed"].mean()),
            "min": int(elapsed[0]),
            "max": int(elapsed[-1]),
            "error_percent": 100 * errors / n,
            "throughput_per_sec": n / span,
            "received_kb_per_sec": int(group["bytes"].sum()) / 1024 / span,
        }
        row.update({key: int(elapsed[rank(n, p) - 1]) for key, p in PERCENTS.items()})
        return row

    rows = {str(label): summary(g) for label, g in df.groupby("label", sort=False)}
    return {"rows": rows, "total": summary(df)}


def run(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB (the child's own) and standard output of one command."""
    with tempfile.TemporaryFile(mode="w+") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        error = child.stderr.read().decode() if child.stderr else ""
        if child.returncode:
            raise SystemExit(f"{' '.join(command)} failed ({child.returncode}): {error}")
        out.seek(0)
        return seconds, usage.ru_maxrss / 1024, out.read()


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Every figure that differs between the two reports (empty: the same numbers)."""
    problems = []
    mine = {row["label"]: row for row in ours["rows"]}
    if set(mine) != set(theirs["rows"]):
        problems.append(f"labels differ: {sorted(mine)} vs {sorted(theirs['rows'])}")
    pairs = [(label, mine[label], theirs["rows"][label]) for label in mine if label in theirs]
    for label, a, b in [*pairs, ("TOTAL", ours["total"], theirs["total"])]:
        problems += [f"{label} {k}: {a[k]} != {b[k]}" for k in EXACT if a[k] != b[k]]
        problems += [
            f"{label} {k}: {a[k]} vs {b[k]}"
            for k in CLOSE
            if not math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-12)
        ]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5_000_000)
    parser.add_argument("--labels", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the generated JTL")
    parser.add_argument("--pandas-report", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--generate", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pandas_report:
        print(json.dumps(pandas_report(args.pandas_report)))
        return 0
    if args.generate:
        generate(Path(args.generate), args.samples, args.labels)
        return 0

    folder = Path(tempfile.mkdtemp(prefix="shipyard-jtl-bench-"))
    jtl = folder / "results.jtl"
    started = time.perf_counter()
    # Generated by a child: a child's peak RSS (from wait4) counts what its parent held when
    # it was forked, so this process stays small.
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--generate",
            str(jtl),
            "--samples",
            str(args.samples),
            "--labels",
            str(args.labels),
        ],
        check=True,
    )
    took = time.perf_counter() - started
    progress(f"wrote {jtl} ({jtl.stat().st_size / 1e6:.0f} MB) in {took:.1f}s")
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(folder / "home"),
        "SHIPYARD_CONFIG": str(ROOT / "examples" / "shipyard.yaml"),
        "PYTHONHASHSEED": "0",
    }
    shipyard = [str(Path(sys.executable).with_name("shipyard")), "loadtest", "report"]
    baseline = [sys.executable, str(Path(__file__).resolve()), "--pandas-report"]
    ours: dict[str, list[float]] = {"seconds": [], "rss": []}
    theirs: dict[str, list[float]] = {"seconds": [], "rss": []}
    # An untimed first command creates the record under SHIPYARD_HOME (its migrations).
    run([shipyard[0], "release", "list"], env)
    report_ours: dict[str, Any] = {}
    report_theirs: dict[str, Any] = {}
    # Start-up alone (imports, and for shipyard its whole CLI and record), on 100 samples.
    tiny = folder / "tiny.jtl"
    subprocess.run(
        [sys.executable, __file__, "--generate", str(tiny), "--samples", "100"], check=True
    )
    start_ours = min(run([*shipyard, str(tiny), "--json"], env)[0] for _ in range(3))
    start_theirs = min(run([*baseline, str(tiny)], env)[0] for _ in range(3))
    for attempt in range(args.repeat):
        seconds, rss, out = run([*shipyard, str(jtl), "--json"], env)
        ours["seconds"].append(seconds)
        ours["rss"].append(rss)
        report_ours = json.loads(out)
        progress(f"shipyard run {attempt + 1}: {seconds:.2f}s, {rss:.0f} MB")
        seconds, rss, out = run([*baseline, str(jtl)], env)
        theirs["seconds"].append(seconds)
        theirs["rss"].append(rss)
        report_theirs = json.loads(out)
        progress(f"pandas   run {attempt + 1}: {seconds:.2f}s, {rss:.0f} MB")
    problems = compare(report_ours, report_theirs)
    ours_s, theirs_s = statistics.median(ours["seconds"]), statistics.median(theirs["seconds"])
    speedup = theirs_s / ours_s
    peak = max(ours["rss"])
    figures = {
        "benchmark": "jtl_report",
        "samples": args.samples,
        "labels": args.labels,
        "file_mb": round(jtl.stat().st_size / 1e6, 1),
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "shipyard": {
            "median_s": round(statistics.median(ours["seconds"]), 3),
            "min_s": round(min(ours["seconds"]), 3),
            "startup_s": round(start_ours, 3),
            "peak_rss_mb": round(peak, 1),
        },
        "pandas": {
            "median_s": round(statistics.median(theirs["seconds"]), 3),
            "min_s": round(min(theirs["seconds"]), 3),
            "startup_s": round(start_theirs, 3),
            "peak_rss_mb": round(max(theirs["rss"]), 1),
        },
        "speedup": round(speedup, 2),
        "speedup_past_startup": round((theirs_s - start_theirs) / (ours_s - start_ours), 2),
        "same_numbers": not problems,
        "mismatches": problems[:5],
        "targets": {"speedup": TARGET_SPEEDUP, "peak_rss_mb": TARGET_PEAK_RSS_MB},
        "meets_target": speedup >= TARGET_SPEEDUP and peak <= TARGET_PEAK_RSS_MB and not problems,
    }
    tiny.unlink()
    if not args.keep:
        jtl.unlink()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

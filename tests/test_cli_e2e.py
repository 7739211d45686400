"""The `shipyard` command as a person runs it: a subprocess, its exit code, its output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import APPS, CONFIG, EXAMPLES

SHIPYARD = [sys.executable, "-m", "bot.cli"]
ROOT = Path(__file__).resolve().parents[1]


class Cli:
    """Runs `shipyard` with its own SHIPYARD_HOME and record."""

    def __init__(self, home: Path, database_url: str) -> None:
        self.env = {
            **os.environ,
            "SHIPYARD_HOME": str(home),
            "SHIPYARD_CONFIG": str(CONFIG),
            "SHIPYARD_DATABASE_URL": database_url,
        }
        self.database_url = database_url

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*SHIPYARD, *args],
            env=self.env,
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*SHIPYARD, *args],
            env=self.env,
            cwd=ROOT,
            text=True,
            capture_output=True,
            timeout=120,
        )
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    def record(self) -> dict[str, list[tuple[object, ...]]]:
        engine = sa.create_engine(self.database_url)
        try:
            meta = sa.MetaData()
            meta.reflect(engine)
            with engine.connect() as conn:
                return {
                    name: sorted(tuple(map(str, row)) for row in conn.execute(sa.select(table)))
                    for name, table in meta.tables.items()
                }
        finally:
            engine.dispose()


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Iterator[Cli]:
    runner = Cli(tmp_path / "home", database_url)
    runner("release", "add", "1.0.0", "--artifact", str(EXAMPLES / "game/releases/1.0.0"))
    runner("release", "add", "1.1.0", "--artifact", str(EXAMPLES / "game/releases/1.1.0"))
    runner("release", "add", "slow-1", "--artifact", str(APPS / "slow"))
    yield runner
    listed = json.loads(runner("env", "list", "--json").stdout)
    for env in listed:
        runner("--as", "dave", "env", "destroy", env["name"], "--force", ok=False)


def test_demo_tells_the_whole_story_and_leaves_nothing_running(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [*SHIPYARD, "demo"],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "SHIPYARD_HOME": str(tmp_path / "home")},
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    out = done.stdout
    assert elapsed < 60
    assert "you cannot approve your own request" in out
    assert "approvals complete: deploying" in out
    assert "staging  1.0.0" in out.replace("staging      staging  ", "staging  ")
    assert "promotion from pr-1234  succeeded  carol  dave" in out
    assert "pr-1234 destroyed" in out and "nothing left running" in out
    assert "Traceback" not in out + done.stderr
    releases = str(EXAMPLES / "game/releases")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            assert not cwd.startswith(releases), f"process {proc.name} still runs in {cwd}"


BAD = [
    (
        ["env", "create", "Bad_Name", "--type", "test", "--release", "1.0.0"],
        2,
        "not a valid environment name",
    ),
    (
        ["env", "create", "pr-1", "--type", "qa", "--release", "1.0.0"],
        4,
        "no environment type 'qa'",
    ),
    (["env", "create", "pr-1", "--type", "test", "--release", "7.0.0"], 4, "no release 7.0.0"),
    (
        ["env", "create", "pr-1", "--type", "test", "--release", "1.0.0", "--ttl", "9d"],
        2,
        "longer than test allows",
    ),
    (
        ["env", "create", "pr-1", "--type", "test", "--release", "1.0.0", "--ttl", "soon"],
        2,
        "not a duration",
    ),
    (
        ["env", "create", "pr-1", "--type", "test", "--release", "1.0.0", "--set", "oops"],
        2,
        "not a parameter assignment",
    ),
    (
        ["env", "create", "pr-1", "--type", "test"],
        2,
        "the following arguments are required: --release",
    ),
    (["env", "frobnicate"], 2, "invalid choice"),
    (["--as", "carol", "env", "promote", "production"], 6, "deployed successfully to a staging"),
    (["env", "approve", "7"], 4, "no approval request #7"),
    (
        ["--as", "mallory", "env", "create", "pr-1", "--type", "test", "--release", "1.0.0"],
        5,
        "may not create",
    ),
    (["env", "destroy", "nowhere"], 4, "no environment 'nowhere'"),
]


@pytest.mark.parametrize(
    ("argv", "code", "reason"), BAD, ids=[" ".join(b[0][:3]) + f" ({b[2][:20]})" for b in BAD]
)
def test_bad_input_gets_one_line_and_changes_nothing(
    cli: Cli, argv: list[str], code: int, reason: str
) -> None:
    before = cli.record()
    done = cli("--as", "alice", *argv, ok=False) if argv[0] != "--as" else cli(*argv, ok=False)
    assert done.returncode == code, done.stderr
    assert reason in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert cli.record() == before


def test_refusals_on_the_command_line_name_its_commands(cli: Cli) -> None:
    said = {
        ("env", "approve", "7"): "see waiting requests with 'shipyard env approvals'",
        ("env", "show", "nowhere"): "see the environments with 'shipyard env list', or "
        "create it with 'shipyard env create'",
        ("env", "create", "pr-1", "--type", "test", "--release", "7.0.0"): "add it with "
        "'shipyard release add VERSION --artifact ARTIFACT', or see the releases with "
        "'shipyard release list'",
    }
    for argv, expected in said.items():
        done = cli("--as", "alice", *argv, ok=False)
        assert expected in done.stderr, done.stderr


def test_a_malformed_config_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "shipyard.yaml"
    bad.write_text("version: 1\ntypes:\n  test:\n    ttl: {default: 8x, max: 72h}\n")
    done = subprocess.run(
        [*SHIPYARD, "--config", str(bad), "config", "check"],
        text=True,
        capture_output=True,
        env={**os.environ, "SHIPYARD_HOME": str(tmp_path / "home")},
        cwd=ROOT,
    )
    assert done.returncode == 3
    assert f"{bad}:4: types.test.ttl.default" in done.stderr and "not a duration" in done.stderr
    assert "Traceback" not in done.stderr


def test_read_commands_speak_json(cli: Cli) -> None:
    cli("--as", "alice", "env", "create", "pr-5", "--type", "test", "--release", "1.0.0")
    (listed,) = json.loads(cli("env", "list", "--json").stdout)
    assert listed["name"] == "pr-5" and listed["state"] == "ready" and listed["release"] == "1.0.0"
    shown = json.loads(cli("env", "show", "pr-5", "--json").stdout)
    assert shown["health"] == "1/1 healthy"
    (where,) = json.loads(cli("env", "where", "1.0.0", "--json").stdout)
    assert where["environment"] == "pr-5" and where["by"] == "alice"
    (deployment,) = json.loads(cli("env", "history", "pr-5", "--json").stdout)
    assert deployment["status"] == "succeeded" and deployment["kind"] == "create"
    versions = [r["version"] for r in json.loads(cli("release", "list", "--json").stdout)]
    assert versions == ["slow-1", "1.1.0", "1.0.0"]


def test_a_release_names_the_build_run_and_ref_that_made_it(cli: Cli) -> None:
    folder = str(EXAMPLES / "game/releases/1.1.0")
    cli("release", "add", "1.2.0", "--artifact", folder, "--build-run", "4711",
        "--ref", "refs/tags/1.2.0")  # fmt: skip
    bad = cli("release", "add", "1.2.1", "--artifact", folder, "--build-run", "0", ok=False)

    newest = json.loads(cli("release", "list", "--json").stdout)[0]
    table = cli("release", "list").stdout
    assert (newest["version"], newest["build_run"], newest["source_ref"]) == (
        "1.2.0",
        4711,
        "refs/tags/1.2.0",
    )
    assert {"build_number", "build_artifact"} <= set(newest)
    assert "run 4711" in table and "refs/tags/1.2.0" in table
    assert bad.returncode == 2 and "build run 0 is not a run id" in bad.stderr
    versions = [r["version"] for r in json.loads(cli("release", "list", "--json").stdout)]
    assert "1.2.1" not in versions


def test_two_processes_deploying_to_one_environment_never_interleave(
    cli: Cli, tmp_path: Path
) -> None:
    gate = tmp_path / "open-the-gate"
    cli(
        "--as",
        "alice",
        "env",
        "create",
        "pr-6",
        "--type",
        "test",
        "--release",
        "1.0.0",
        "--set",
        "START_DELAY=0",
        "--set",
        f"START_GATE={gate}",
    )
    engine = sa.create_engine(cli.database_url)

    def deploys(state: str) -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("select count(*) from operations where kind = 'deploy' and state = :s"),
                    {"s": state},
                ).scalar_one()
            )

    def until(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    # The slow release holds its start until the test opens the gate, so the second deploy is
    # certain to arrive while the first one runs, however loaded the machine is.
    first = cli.popen("--as", "alice", "env", "deploy", "pr-6", "--release", "slow-1")
    until(lambda: deploys("running") == 1, "the first deploy never started")
    second = cli.popen("--as", "bob", "env", "deploy", "pr-6", "--release", "1.1.0")
    until(lambda: deploys("queued") == 1, "the second deploy was never queued")
    time.sleep(0.5)  # the second is now waiting; it must not start while the first runs
    assert deploys("running") == 1
    gate.touch()
    _, err_first = first.communicate(timeout=120)
    _, err_second = second.communicate(timeout=120)
    assert first.returncode == 0, err_first
    assert second.returncode == 0, err_second
    assert "pr-6 is busy with an earlier operation" in err_second

    with engine.connect() as conn:
        spans = conn.execute(
            sa.text(
                "select started_at, finished_at from operations where kind = 'deploy' "
                "order by started_at"
            )
        ).all()
    engine.dispose()
    assert len(spans) == 2
    assert spans[0].finished_at <= spans[1].started_at, "the second deploy ran inside the first"
    (history_last, *_) = json.loads(cli("env", "history", "pr-6", "--json").stdout)
    assert history_last["release"] == "1.1.0" and history_last["requested_by"] == "bob"


def test_an_interrupted_create_is_finished_by_the_worker_without_a_second_copy(cli: Cli) -> None:
    creating = cli.popen(
        "--as",
        "alice",
        "env",
        "create",
        "pr-7",
        "--type",
        "test",
        "--release",
        "slow-1",
        "--set",
        "START_DELAY=2",
    )
    assert creating.stderr is not None
    for line in creating.stderr:
        if "started instance 1/1" in line:
            break
    first_pid = int(line.split("pid ")[1].split(",")[0])
    creating.send_signal(signal.SIGKILL)
    creating.wait()

    shown = json.loads(cli("env", "show", "pr-7", "--json").stdout)
    assert shown["environment"]["state"] == "deploying"

    done = cli("worker", "--once")
    assert "create pr-7: succeeded" in done.stdout
    shown = json.loads(cli("env", "show", "pr-7", "--json").stdout)
    assert shown["environment"]["state"] == "ready"
    assert shown["health"] == "1/1 healthy"
    folder = Path(shown["environment"]["outputs"]["folder"])
    state = json.loads((folder / "instances.json").read_text())
    assert [i["pid"] for i in state["instances"]] != [first_pid]
    assert (
        not Path(f"/proc/{first_pid}").exists()
        or "Z" in Path(f"/proc/{first_pid}/stat").read_text().split(")")[1][:3]
    ), "the interrupted run's process was left running"
    engine = sa.create_engine(cli.database_url)
    with engine.connect() as conn:
        (attempts,) = conn.execute(sa.text("select attempts from operations")).one()
    engine.dispose()
    assert attempts == 2

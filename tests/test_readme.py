"""README.md's command blocks, pasted as a new user would, on the example configuration.

The local blocks (up to "Connecting Slack, Azure and Azure DevOps", plus the API tokens block) run
in order in one bash shell, in a copy of `examples/` with a fresh HOME; every line must exit 0,
or the code its comment names ("exit 4"). Blocks that need Slack, Azure or Azure DevOps are not
run, but each `shipyard` command in them must exist and take the flags README gives it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.S | re.M)
HEADING = re.compile(r"^#{2,3} (.+)$", re.M)
# Where README stops being about one machine: what follows needs credentials.
CONNECTING = "Connecting Slack, Azure and Azure DevOps"
# Blocks after that heading which need nothing but the record (the heading above them).
OFFLINE_LATER = {"Health, the dashboard and the API": 0}
# Lines whose run takes longer than the test may (the nightly job): parsed, not run.
SLOW = ("schedule run",)
LINE_MARK = "<<<readme-line "


@dataclass(frozen=True)
class Block:
    heading: str
    index: int  # the block's position under its heading
    line: int  # README line of the opening fence
    lines: tuple[str, ...]


def blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    headings = [(m.start(), m.group(1).strip()) for m in HEADING.finditer(text)]
    found: list[Block] = []
    seen: dict[str, int] = {}
    for m in FENCE.finditer(text):
        if m.group(2) not in ("sh", "bash"):
            continue
        heading = next((h for at, h in reversed(headings) if at < m.start()), "")
        index = seen.get(heading, 0)
        seen[heading] = index + 1
        joined = m.group(3).replace("\\\n", " ")
        lines = tuple(line.strip() for line in joined.splitlines() if line.strip())
        found.append(Block(heading, index, text[: m.start()].count("\n") + 1, lines))
    return found


def local_and_remote() -> tuple[list[Block], list[Block]]:
    all_blocks = blocks()
    text = README.read_text(encoding="utf-8")
    cut = text[: text.index(f"## {CONNECTING}")].count("\n")
    local, remote = [], []
    for block in all_blocks:
        if block.lines[0].startswith("make "):
            continue  # Quick start: `make demo` and `make test` (the whole suite) are their own
        later = OFFLINE_LATER.get(block.heading) == block.index
        (local if block.line < cut or later else remote).append(block)
    return local, remote


def expected_code(line: str) -> int:
    said = re.search(r"#.*\bexit (\d+)", line)
    return int(said.group(1)) if said else 0


def command_words(line: str) -> list[str]:
    """The `shipyard` command of a README line: words up to a comment, pipe or redirect."""
    words = shlex.split(line, comments=True)
    for stop in ("|", ">", "&&", ";"):
        if stop in words:
            words = words[: words.index(stop)]
    return words


def help_of(words: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """`shipyard GROUP VERB --help` for a README command, through the real entry point."""
    path = [w for w in words[1:3] if re.fullmatch(r"[a-z][a-z-]*", w)]
    capsys.readouterr()
    try:
        code = cli.main([*path, "--help"])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code in (0, None), f"`shipyard {' '.join(path)}` is no command: {err}"
    return out


def assert_parses(line: str, capsys: pytest.CaptureFixture[str]) -> None:
    words = command_words(line)
    if len(words) < 2 or words[1].startswith("-"):
        return
    text = help_of(words, capsys)
    for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", " ".join(words)):
        assert flag in text, f"README line {line!r}: `{flag}` is not an option of the command"


SHIPYARD = [sys.executable, "-m", "bot.cli"]


def clean_env(home: Path) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    return {**kept, "HOME": str(home), "PYTHONPATH": str(ROOT)}


def script(local: list[Block], folder: Path) -> tuple[str, list[str]]:
    """One bash script: every local line, each followed by a mark with its exit code."""
    body = ["set +e"]
    ran: list[str] = []
    for block in local:
        for line in block.lines:
            if line.startswith("shipyard ") and any(s in line for s in SLOW):
                continue
            body.append(line)
            body.append(f'echo "{LINE_MARK}{len(ran)} rc=$?" >&2')
            ran.append(line)
    return "\n".join(body) + "\n", ran


def a_bare_clone(tmp_path: Path) -> Path:
    """The clone's folder as README assumes it: examples/ and a .venv whose `shipyard` is ours."""
    folder = tmp_path / "clone"
    shutil.copytree(ROOT / "examples", folder / "examples")
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "activate").write_text(f'export PATH="{bin_dir}:$PATH"\n')
    shim = bin_dir / "shipyard"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bot.cli "$@"\n')
    shim.chmod(0o755)
    return folder


def destroy_leftovers(folder: Path, env: dict[str, str]) -> None:
    run = {**env, "SHIPYARD_CONFIG": str(folder / "examples" / "shipyard.yaml")}
    listed = subprocess.run(
        [*SHIPYARD, "env", "list", "--json", "--as", "dave"],
        env=run,
        cwd=folder,
        text=True,
        capture_output=True,
        timeout=60,
    )
    for row in json.loads(listed.stdout or "[]"):
        subprocess.run(
            [*SHIPYARD, "env", "destroy", row["name"], "--as", "dave", "--force"],
            env=run,
            cwd=folder,
            capture_output=True,
            timeout=60,
        )


@pytest.mark.e2e
def test_readme_local_blocks_work_pasted_in_order(tmp_path: Path) -> None:
    local, _ = local_and_remote()
    assert [b.heading for b in local][:1] == ["Using it"], "README's first local block moved"
    home = tmp_path / "home"
    home.mkdir()
    folder = a_bare_clone(tmp_path)
    env = clean_env(home)
    text, ran = script(local, folder)
    try:
        done = subprocess.run(
            ["bash", "-c", text],
            cwd=folder,
            env=env,
            text=True,
            capture_output=True,
            timeout=300,
        )
    finally:
        destroy_leftovers(folder, env)
    codes = {int(n): int(rc) for n, rc in re.findall(rf"{LINE_MARK}(\d+) rc=(\d+)", done.stderr)}
    assert len(codes) == len(ran), done.stderr[-3000:]
    wrong = [
        f"{line!r}: exit {codes[i]}, README says {expected_code(line)}"
        for i, line in enumerate(ran)
        if codes[i] != expected_code(line)
    ]
    assert not wrong, "\n".join(wrong) + "\n" + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert (folder / "staging.xml").read_text().startswith("<?xml")


def test_readme_commands_that_need_credentials_exist_with_their_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    local, remote = local_and_remote()
    slow = [line for b in local for line in b.lines if any(s in line for s in SLOW)]
    lines = [line for b in remote for line in b.lines if line.startswith("shipyard ")]
    assert lines and slow, "README's remote blocks or slow lines moved: update this test"
    for line in [*lines, *slow]:
        assert_parses(line, capsys)

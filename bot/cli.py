"""The `shipyard` entry point: a thin dispatcher, so a command loads only what it needs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

# 128 + SIGPIPE, what a shell reports for a command whose reader went away (`| head`).
CLOSED_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except BrokenPipeError:
        # The reader of our output is gone: stop quietly, and keep Python from complaining
        # again when it flushes standard output on the way out.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return CLOSED_PIPE


def _dispatch(args: list[str]) -> int:
    if args[:1] in (["--version"], ["-V"]):
        print(f"shipyard {version()}")
        return 0
    if args[:2] == ["loadtest", "report"] and not {"-h", "--help"} & set(args):
        # Reading a result file needs no configuration, record or runtime: skip loading them
        # (the report of a large file is measured against pandas, start-up included).
        from bot.loadtest_report import run_report

        return run_report(args[2:])
    if args[:1] == ["catalog"]:
        # An ADE catalog is looked over before there is any shipyard.yaml or record.
        from bot.cli_catalog import run_catalog

        return run_catalog(args[1:])
    from bot.terminal import main as full

    return full(args, processes={"demo": _demo, "serve": _serve})


def _demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(keep=args.keep)


def _serve(args: argparse.Namespace) -> int:
    from bot.serve import serve

    return serve(args.config, port=args.port, host=args.host, socket_mode=args.socket_mode)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("shipyard")
    except PackageNotFoundError:
        return "unknown (not installed)"


if __name__ == "__main__":
    sys.exit(main())

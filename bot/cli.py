"""The `shipyard` entry point: a thin dispatcher, so a command loads only what it needs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:2] == ["loadtest", "report"] and not {"-h", "--help"} & set(args):
        # Reading a result file needs no configuration, record or runtime: skip loading them
        # (the report of a large file is measured against pandas, start-up included).
        from bot.loadtest_report import run_report

        return run_report(args[2:])
    from bot.terminal import main as full

    return full(args, processes={"demo": _demo, "serve": _serve})


def _demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(keep=args.keep)


def _serve(args: argparse.Namespace) -> int:
    from bot.serve import serve

    return serve(args.config, port=args.port, host=args.host, socket_mode=args.socket_mode)


if __name__ == "__main__":
    sys.exit(main())

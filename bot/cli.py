"""The `shipyard` entry point: a thin dispatcher, so a command loads only what it needs."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
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

    return full(args)


if __name__ == "__main__":
    sys.exit(main())

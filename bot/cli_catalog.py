"""`catalog list|import PATH`: an Azure Deployment Environments catalog, looked over and turned
into environment types, without configuration or record (a team moving from ADE has neither)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.command import CLI, Command, Outcome
from bot.grammar import Parser
from bot.runtime import Runtime
from environments.errors import ConfigError, NotFound, ShipyardError
from environments.policy import Actor

LIST_HELP = "the items of an ADE catalog folder: name, runner, parameters, problems"
IMPORT_HELP = "the types: entries that make an ADE catalog's items Shipyard types"


def add_arguments(listing: argparse.ArgumentParser, importing: argparse.ArgumentParser) -> None:
    """The verbs' arguments, shared by the full grammar and the quick path (bot/cli.py)."""
    for sub in (listing, importing):
        sub.add_argument("path", metavar="PATH", help="a catalog folder, or one item's folder")
        sub.add_argument(
            "--config",
            default=argparse.SUPPRESS,
            metavar="PATH",
            help="shipyard.yaml (default: $SHIPYARD_CONFIG or ./shipyard.yaml)",
        )
        sub.add_argument("--as", dest="person", default=None, help=argparse.SUPPRESS)
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    importing.add_argument(
        "--type-prefix", default="", metavar="P", help="put P in front of each type's name"
    )
    importing.add_argument(
        "--write", action="store_true", help="add the types to shipyard.yaml instead of printing"
    )


def catalog_list(args: argparse.Namespace) -> Outcome:
    from environments import ade, ade_import

    items = ade_import.survey(Path(args.path))
    lines = []
    for item in items:
        d = item.definition
        lines.append(
            f"{d.name or d.folder.name} {d.version}".rstrip()
            + f"  runner {d.runner or '-'}  {d.folder}"
        )
        if d.summary or d.description:
            lines.append(f"  {' — '.join(t for t in (d.summary, d.description) if t)}")
        lines.append(f"  parameters: {ade.parameter_summary(d)}")
        if item.ok:
            lines.append(f"  ok{f' ({item.template})' if item.template else ''}")
        else:
            lines.append(f"  {len(item.problems)} problem(s):")
            lines += [f"    {p}" for p in item.problems]
    bad = sum(not item.ok for item in items)
    lines.append(
        f"{len(items)} item(s), {bad} with problems" if items else f"no items under {args.path}"
    )
    data = [{**ade.describe(i.definition), "problems": list(i.problems)} for i in items]
    # README's exit codes: 3 a file the configuration would name has problems, 4 nothing there.
    code = NotFound.exit_code if not items else ConfigError.exit_code if bad else 0
    return Outcome(text="\n".join(lines), data=data, exit_code=code)


def catalog_import(args: argparse.Namespace) -> Outcome:
    from environments import ade_import
    from environments.catalog import config_path

    config = config_path(getattr(args, "config", None))
    items = ade_import.survey(Path(args.path))
    block, skipped = ade_import.types_block(items, config, args.type_prefix)
    notes = [f"{line} (see 'shipyard catalog list {args.path}')" for line in skipped]
    if not block:
        return Outcome(
            text="no usable items: nothing to import", notes=notes, exit_code=ConfigError.exit_code
        )
    if args.write:
        added = ade_import.write_types(config, block)
        return Outcome(
            text=f"{config}: added type(s) {', '.join(added)}; check with: shipyard config check",
            notes=notes,
        )
    return Outcome(text=block.rstrip("\n"), notes=notes)


def list_handler(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    return catalog_list(args)


def import_handler(rt: Runtime, actor: Actor, args: argparse.Namespace) -> Outcome:
    return catalog_import(args)


def _list_args(p: argparse.ArgumentParser, chat: bool) -> None:
    add_arguments(p, argparse.ArgumentParser(add_help=False))


def _import_args(p: argparse.ArgumentParser, chat: bool) -> None:
    add_arguments(argparse.ArgumentParser(add_help=False), p)


# The `catalog` group is CLI only: the catalog is a folder where the CLI runs.
COMMANDS = (
    Command(
        "catalog",
        "list",
        LIST_HELP,
        list_handler,
        arguments=_list_args,
        read_only=True,
        surfaces=CLI,
        common_options=False,
    ),
    Command(
        "catalog",
        "import",
        IMPORT_HELP,
        import_handler,
        arguments=_import_args,
        surfaces=CLI,
        common_options=False,
    ),
)


def run_catalog(argv: Sequence[str]) -> int:
    """`shipyard catalog …` without the runtime: parse, run, print; exit 0, 1 or the error's."""
    parser = Parser(prog="shipyard catalog", description="Azure Deployment Environments catalogs")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    verbs.required = True
    listing = verbs.add_parser("list", help=LIST_HELP, description=LIST_HELP)
    importing = verbs.add_parser("import", help=IMPORT_HELP, description=IMPORT_HELP)
    add_arguments(listing, importing)
    try:
        args = parser.parse_args(list(argv))
        outcome = catalog_list(args) if args.verb == "list" else catalog_import(args)
    except ShipyardError as exc:
        print(f"shipyard: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(outcome.data, indent=2) if getattr(args, "json", False) else outcome.text)
    for note in outcome.notes:
        print(f"  note: {note}", file=sys.stderr)
    return outcome.exit_code

"""The create form: one input per argument `env create` declares in the command table (chat's
grammar), and the part a type shapes: one input per parameter the type offers (from its ADE
manifest), read back into `--set`-style values with errors per field."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from typing import Any

from environments.catalog import Catalog, EnvironmentType
from environments.inputs import Input, as_text, value_problem

Block = dict[str, Any]
TYPE_ACTION = "environment.create.type"
TYPE_ARGUMENT = "env_type"
PREFIX = "param:"
CHECKED = "true"


def block_id(action: argparse.Action) -> str:
    """An argument's input in the form, named as a person types it: `name`, `type`, `set`."""
    if not action.option_strings:
        return action.dest
    return max(action.option_strings, key=len).lstrip("-")


def argument_blocks(
    arguments: Sequence[argparse.Action],
    choices: Mapping[str, Sequence[str]],
    chosen: Mapping[str, str],
    own: Sequence[Block],
) -> list[Block]:
    """An input per argument of the command, in its order: a select where the record or the
    catalog knows the values (`choices`, by argument name), a multi-line input for a repeatable
    one (one value a line), text otherwise, the argument's help as label; required ones are not
    optional. A flag (`--what-if`) changes how the command answers, not what it creates: the
    form leaves it out. `own` (the chosen type's parameters) follows the type's select."""
    blocks: list[Block] = []
    for action in form_arguments(arguments):
        name = block_id(action)
        helped = action.help or ""
        label = name.upper() if len(name) <= 3 and name != "set" else name.capitalize()
        element: Block
        if action.dest in choices:
            options = [{"text": _text(v, 75), "value": v[:150]} for v in choices[action.dest][:100]]
            element = {"type": "static_select", "action_id": "value", "options": options}
            picked = [o for o in options if o["value"] == chosen.get(action.dest)]
            if picked:
                element["initial_option"] = picked[0]
        else:
            repeated = isinstance(action, argparse._AppendAction)
            element = {"type": "plain_text_input", "action_id": "value", "multiline": repeated}
            if repeated:
                helped += f"; {action.metavar or 'a value'}, one per line"
            example = re.search(r"e\.g\. ([^\s,)]+)", helped)
            if example:
                element["placeholder"] = _text(example.group(1), 150)
        block: Block = {
            "type": "input",
            "block_id": name,
            "label": _text(label, 2000),
            "element": element,
            "optional": bool(action.option_strings) and not action.required,
        }
        if helped:
            block["hint"] = _text(helped[:1].upper() + helped[1:], 2000)
        if action.dest == TYPE_ARGUMENT:
            # Choosing a type brings its parameters into the form (block_actions → views.update).
            element["action_id"] = TYPE_ACTION
            block["dispatch_action"] = True
        blocks.append(block)
        if action.dest == TYPE_ARGUMENT:
            blocks.extend(own)
    return blocks


def form_arguments(arguments: Sequence[argparse.Action]) -> list[argparse.Action]:
    """The arguments the form has an input for (`argument_blocks` builds them)."""
    skipped = ("help", "person", "config", "json", "no_wait")
    return [a for a in arguments if a.dest not in skipped and a.nargs != 0]


def read_arguments(
    arguments: Sequence[argparse.Action], values: Mapping[str, Any]
) -> dict[str, Any]:
    """The form's answers by argument name, as the command would receive them: a repeatable
    argument's lines as a list, an empty input as None."""
    given: dict[str, Any] = {}
    for action in form_arguments(arguments):
        element = next(iter((values.get(block_id(action)) or {}).values()), None)
        text = element_value(element) if isinstance(element, dict) else None
        if isinstance(action, argparse._AppendAction):
            given[action.dest] = [line for line in (text or "").splitlines() if line.strip()]
        else:
            given[action.dest] = text
    return given


def known_defaults(env_type: EnvironmentType) -> dict[str, Any]:
    """Each input's default: the manifest's, else a literal default of the template when the
    template is at hand without compiling (so a checkbox starts as ARM would decide)."""
    from environments.errors import ShipyardError
    from environments.providers import ade_templates

    found = {i.id: i.default for i in env_type.inputs if i.default is not None}
    if env_type.definition is None:
        return found
    try:
        template = ade_templates.template_of(env_type.definition, compile_bicep=False)
    except ShipyardError:
        return found
    declared = {k.lower(): v for k, v in (template.parameters if template else {}).items()}
    for item in env_type.inputs:
        default = declared.get(item.id.lower(), {}).get("defaultValue")
        literal = not (isinstance(default, str) and (default.startswith("[") or not default))
        if item.id not in found and default is not None and literal:
            found[item.id] = default
    return found


def _text(text: str, limit: int) -> Block:
    return {"type": "plain_text", "text": text[:limit] or " "}


def _element(item: Input, default: Any) -> Block:
    if item.allowed:
        options = [{"text": _text(c, 75), "value": c[:150]} for c in item.choices[:100]]
        element: Block = {"type": "static_select", "action_id": "value", "options": options}
        chosen = [o for o in options if default is not None and o["value"] == as_text(default)]
        if chosen:
            element["initial_option"] = chosen[0]
        return element
    if item.kind == "boolean":
        option = {"text": _text(item.label, 75), "value": CHECKED}
        element = {"type": "checkboxes", "action_id": "value", "options": [option]}
        if default is True:
            element["initial_options"] = [option]
        return element
    if item.kind in ("number", "integer"):
        element = {
            "type": "number_input",
            "action_id": "value",
            "is_decimal_allowed": item.kind == "number",
        }
    else:
        element = {
            "type": "plain_text_input",
            "action_id": "value",
            "multiline": item.kind in ("object", "array"),
        }
    if default is not None and as_text(default):
        element["initial_value"] = as_text(default)
    return element


def parameter_blocks(env_type: EnvironmentType, defaults: Mapping[str, Any]) -> list[Block]:
    """What the type is, then an input per parameter a person may set: a select for `allowed`,
    a checkbox for booleans, number inputs for numbers, the description as hint; required ones
    are not optional (Slack marks the others "optional"). Read-only ones are only shown."""
    blocks: list[Block] = []
    if env_type.summary:
        about = env_type.summary
        if env_type.definition and env_type.definition.description:
            about += f"\n{env_type.definition.description}"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": about[:3000]}]})
    for item in env_type.inputs:
        if item.read_only:
            continue
        block: Block = {
            "type": "input",
            "block_id": f"{PREFIX}{item.id}",
            "label": _text(
                item.label + (" (JSON)" if item.kind in ("object", "array") else ""), 2000
            ),
            "element": _element(item, defaults.get(item.id)),
            "optional": item.kind == "boolean" or not item.required or item.default is not None,
        }
        if item.description:
            block["hint"] = _text(item.description, 2000)
        blocks.append(block)
    fixed = [f"{i.label}: {i.default_text}" for i in env_type.inputs if i.read_only]
    if fixed:
        text = "Fixed by the type: " + "; ".join(fixed)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]})
    return blocks


def element_value(element: Mapping[str, Any]) -> str | None:
    """What one form element holds, as text (None when empty)."""
    if element.get("type") == "checkboxes":
        chosen = element.get("selected_options") or []
        return CHECKED if any(o.get("value") == CHECKED for o in chosen) else "false"
    option = element.get("selected_option") or {}
    value = option.get("value") if option else element.get("value")
    text = str(value).strip() if value is not None else ""
    return text or None


def read_parameters(
    env_type: EnvironmentType, values: Mapping[str, Any], defaults: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """The values the person gave (those differing from the default) and an error per field:
    a required one left empty, or a value the parameter does not take."""
    given: dict[str, str] = {}
    errors: dict[str, str] = {}
    for item in env_type.inputs:
        if item.read_only:
            continue
        block = f"{PREFIX}{item.id}"
        element = next(iter((values.get(block) or {}).values()), None)
        text = element_value(element) if isinstance(element, dict) else None
        default = defaults.get(item.id)
        if item.kind == "boolean" and default is None and text == "false":
            text = None  # unchecked, and nothing says what unchecked would change
        if text is None:
            if item.required and item.default is None:
                errors[block] = f"{item.label} is required"
            continue
        problem = value_problem(item, text)
        if problem:
            errors[block] = problem[:150]
        elif default is None or text != as_text(default):
            given[item.id] = text
    return given, errors


def types_help(catalog: Catalog) -> str:
    """A line per type: what it is, and the parameters `--set` takes for it."""
    lines = ["*Types* (`--type NAME`):"]
    for name, env_type in catalog.types.items():
        line = f"• `{name}`" + (f" — {env_type.summary}" if env_type.summary else "")
        settable = [
            i.id + ("" if i.default is not None or not i.required else " (required)")
            for i in env_type.inputs
            if not i.read_only
        ]
        if settable:
            line += f"; `--set` {', '.join(settable)}"
        lines.append(line)
    return "\n".join(lines)

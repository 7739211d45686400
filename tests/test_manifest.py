"""manifest.yml validates against Slack's official schema and declares what the bot uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.reference import REFERENCE

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = REFERENCE / "slack" / "manifest"


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "manifest.yml").read_text())
    return loaded


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
def test_the_manifest_validates_against_slacks_schema(version: str) -> None:
    schema_file = SCHEMAS / f"manifest.schema.{version}.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(manifest(), schema)


def test_the_validator_rejects_a_broken_manifest() -> None:
    schema_file = SCHEMAS / "manifest.schema.2.0.0.json"
    broken = manifest()
    broken["settings"]["interactivity"]["is_enabled"] = "yes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads(schema_file.read_text()))


def test_the_manifest_asks_for_what_the_bot_calls() -> None:
    m = manifest()
    assert [c["command"] for c in m["features"]["slash_commands"]] == ["/env"]
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    # chat.postMessage/update, usergroups.users.list and App Home's views.publish
    assert {"commands", "chat:write", "usergroups:read"} <= scopes
    assert m["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in m["settings"]["event_subscriptions"]["bot_events"]
    assert m["settings"]["interactivity"]["is_enabled"] is True
    assert m["settings"]["interactivity"]["request_url"].endswith("/slack/events")

"""/api/v1 over HTTP: tokens (hashed, scoped, expiring, revocable), filters, paging, OpenAPI."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from bot import render
from bot.api import openapi
from bot.runtime import Runtime
from bot.serve import dashboard_routes
from bot.table import execute, parse
from environments.errors import InvalidInput, PolicyRefused
from environments.policy import Actor, Channel
from environments.tokens import Tokens
from tests.dashboard_seed import config, seed
from tests.slackbot import serving


@dataclass
class Api:
    url: str
    runtime: Runtime
    tokens: Tokens

    def get(self, path: str, token: str | None = None) -> tuple[int, Any, dict[str, str]]:
        request = urllib.request.Request(self.url + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                body = answer.read()
                kind = answer.headers.get("content-type", "")
                data = json.loads(body) if "json" in kind else body
                return answer.status, data, dict(answer.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null"), dict(error.headers)

    def token(self, scope: str = "read", **options: Any) -> str:
        plain, _ = self.tokens.create(Actor("dave"), scope=scope, **options)
        return plain


@pytest.fixture
def api(tmp_path: Path, database_url: str, home: Path) -> Iterator[Api]:
    seed(database_url, tmp_path)
    runtime = Runtime.open(str(config(tmp_path)), database_url=database_url)
    routes = dashboard_routes(runtime, "http://127.0.0.1:9/api/", "http://127.0.0.1:9")
    try:
        with serving(Starlette(routes=routes)) as url:
            yield Api(url, runtime, Tokens(runtime.catalog, runtime.database, runtime.clock))
    finally:
        runtime.close()


def test_without_a_token_the_api_answers_401_with_what_to_do(api: Api) -> None:
    for path in ("/api/v1/environments", "/api/v1/openapi.json", "/api/v1/environments/pr-101"):
        status, body, _ = api.get(path)
        assert status == 401
        assert body["error"] == "a valid API token is needed"
        assert "tokens create --scope read" in body["hint"]
    assert api.get("/api/v1/environments", "shy_not-a-real-token")[0] == 401


def test_a_revoked_or_expired_token_is_refused_and_both_are_audited(api: Api) -> None:
    token = api.token(description="nightly report")
    assert api.get("/api/v1/environments", token)[0] == 200
    prefix = token[:12]
    api.tokens.revoke(Actor("dave"), prefix)
    assert api.get("/api/v1/environments", token)[0] == 401
    short = api.token(expires_in=timedelta(seconds=1))
    assert api.get("/api/v1/matrix", short)[0] == 200
    time.sleep(1.2)
    assert api.get("/api/v1/matrix", short)[0] == 401
    with api.runtime.database.read() as conn:
        stored = conn.execute(sa.text("select token_hash, prefix from api_tokens")).all()
        actions = conn.execute(
            sa.text("select action from audit_events where action like 'token.%' order by id")
        ).scalars()
        assert list(actions) == ["token.create", "token.revoke", "token.create"]
    assert all(token not in row.token_hash and len(row.token_hash) == 64 for row in stored)
    listed = api.tokens.list(Actor("dave"))
    assert [t.revoked_at is not None for t in listed] == [True, False]


def test_only_admins_from_the_command_line_manage_tokens(api: Api) -> None:
    with pytest.raises(PolicyRefused, match="may not manage API tokens"):
        api.tokens.create(Actor("alice"), scope="read")
    with pytest.raises(PolicyRefused, match="command line only"):
        api.tokens.create(Actor("dave", Channel.CHAT), scope="read")
    with pytest.raises(InvalidInput, match="no scope 'admin'"):
        api.tokens.create(Actor("dave"), scope="admin")


def test_tokens_list_json_names_the_environment_type_in_both_keys(api: Api) -> None:
    """`environment_type` is the vocabulary's word; `env_type`, the key before it, is kept."""
    api.token("pipeline", env_type="test")
    args = parse(["tokens", "list", "--json"])
    listed = json.loads(render.to_json(execute(api.runtime, Actor("dave"), args).data))
    assert [(t["environment_type"], t["env_type"]) for t in listed] == [("test", "test")]


def test_environments_are_filtered_sorted_and_paged(api: Api) -> None:
    token = api.token()
    status, body, _ = api.get("/api/v1/environments?type=test&sort=name", token)
    assert status == 200
    assert [e["name"] for e in body["environments"]] == ["pr-101", "pr-102"]
    assert body["total"] == 2
    first = body["environments"][0]
    assert (first["release"], first["by"], first["health"]) == ("1.1.0", "alice", "healthy")
    assert first["expires_at"] and first["created_at"]
    _, body, _ = api.get("/api/v1/environments?health=degraded", token)
    assert [e["name"] for e in body["environments"]] == ["pr-102"]
    _, body, _ = api.get("/api/v1/environments?sort=created&order=desc&per_page=2&page=2", token)
    assert (body["total"], body["pages"], body["page"]) == (4, 2, 2)
    assert [e["name"] for e in body["environments"]] == ["staging", "production"]
    _, body, _ = api.get("/api/v1/environments?name=pr-", token)
    assert body["total"] == 2
    _, body, _ = api.get("/api/v1/environments?name=staging", token)
    assert body["environments"][0]["approved_by"] == ["carol"]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("sort=colour", "cannot sort by 'colour'"),
        ("order=up", "order 'up' is neither asc nor desc"),
        ("page=0", "page '0' is not a positive whole number"),
        ("per_page=5000", "per_page 5000 is too large"),
    ],
)
def test_a_bad_parameter_is_a_one_line_reason(api: Api, query: str, reason: str) -> None:
    status, body, _ = api.get(f"/api/v1/environments?{query}", api.token())
    assert (status, body["error"]) == (400, reason)
    assert body["hint"]


def test_one_environment_has_history_run_links_parameters_load_tests_and_health(api: Api) -> None:
    token = api.token()
    status, body, _ = api.get("/api/v1/environments/pr-101", token)
    assert status == 200
    history = body["history"]
    assert [h["deployment"]["release"] for h in history] == ["1.1.0", "1.0.0"]
    assert history[0]["run_url"].endswith("buildId=4242")
    assert history[0]["parameter_changes"] == "~GAME_MOTD"
    assert history[1]["parameter_changes"] == "initial"
    assert history[0]["deployment"]["parameters_fingerprint"]
    assert history[0]["deployment"]["parameters"] is None  # values stay in the record
    assert [r["outcome"] for r in body["loadtests"]] == ["regressed", "passed"]
    assert [c["status"] for c in body["health"]] == ["healthy", "unhealthy"]
    run = body["loadtests"][0]["run_id"]
    status, png, headers = api.get(f"/api/v1/loadtests/{run}/chart.png", token)
    assert status == 200 and headers["content-type"] == "image/png"
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    status, body, _ = api.get("/api/v1/environments/nope", token)
    assert (status, body["error"]) == (404, "there is no environment 'nope'")


def test_matrix_approvals_and_trends(api: Api) -> None:
    token = api.token()
    _, matrix, _ = api.get("/api/v1/matrix", token)
    assert [r["type"] for r in matrix["rows"]] == ["test", "test", "staging", "production"]
    _, waiting, _ = api.get("/api/v1/approvals", token)
    assert [(a["environment"], a["release"]) for a in waiting["approvals"]] == [
        ("production", "1.1.0")
    ]
    _, trends, _ = api.get("/api/v1/loadtests/trends", token)
    login = trends["plans"]["login"]
    assert [(p["release"], p["p95"], p["outcome"]) for p in login] == [
        ("1.0.0", 96.0, "passed"),
        ("1.1.0", 131.0, "regressed"),
    ]


def test_the_openapi_document_describes_every_answer(api: Api) -> None:
    token = api.token()
    status, document, _ = api.get("/api/v1/openapi.json", token)
    assert status == 200 and document == json.loads(json.dumps(openapi()))
    assert document["openapi"].startswith("3.1")
    for path, schema in (
        ("/api/v1/environments", "EnvironmentList"),
        ("/api/v1/environments/{name}", "EnvironmentDetail"),
        ("/api/v1/matrix", "Matrix"),
        ("/api/v1/approvals", "Approvals"),
        ("/api/v1/loadtests/trends", "Trends"),
    ):
        described = document["paths"][path]["get"]["responses"]["200"]
        assert described["content"]["application/json"]["schema"]["$ref"].endswith(schema)
        _, body, _ = api.get(path.replace("{name}", "pr-101"), token)
        validator = jsonschema.Draft202012Validator(
            {**document, "$ref": f"#/components/schemas/{schema}"}
        )
        validator.validate(body)
    _, problem, _ = api.get("/api/v1/environments")
    jsonschema.Draft202012Validator({**document, "$ref": "#/components/schemas/Problem"}).validate(
        problem
    )


def test_a_refusal_gives_its_next_steps_as_command_lines_and_as_data(api: Api) -> None:
    status, body, _ = api.get("/api/v1/environments/nowhere", api.token())
    assert status == 404
    assert body["error"] == "there is no environment 'nowhere'"
    assert "'shipyard env list'" in body["hint"]
    assert body["next"] == [
        {"label": "see the environments", "command": "env list", "arguments": {}},
        {"label": "create it", "command": "env create", "arguments": {}},
    ]

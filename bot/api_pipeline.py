"""`/api/v1` for pipeline steps: parameters, state, deployments and releases, by pipeline token.

A build agent holds SHIPYARD_URL and a pipeline-scoped SHIPYARD_TOKEN, never the database.
Each route checks the token (known, unrevoked, unexpired, pipeline scope), its type against the
environment's, and the rule table (`authorize`, as the identity `azure-devops` on channel api);
then the core's use case writes, in one transaction. A refusal changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import api_loadtests
from bot.api_common import PREFIX, bearer, endpoint
from bot.runtime import Runtime
from environments import policy
from environments.errors import (
    InvalidInput,
    clip,
)
from environments.pipeline_deployments import SYSTEM, Recorded
from environments.pipeline_steps import (
    FORMATS,
    DeploymentReport,
    PipelineSteps,
    ReleaseReport,
    Rendered,
    StateAnswer,
)
from environments.policy import Actor, Channel
from environments.registry.tokens import ApiToken
from environments.release_builds import Registered
from environments.tokens import Tokens, require_type

MAX_BODY = 64 * 1024
# Pipeline tokens act as this identity: `allow: record_deployment` / `release_add` may name it.
PIPELINE_ACTOR = Actor(person=SYSTEM, channel=Channel.API)


ADAPTERS: dict[type, TypeAdapter[Any]] = {
    cls: TypeAdapter(cls)
    for cls in (
        Rendered,
        StateAnswer,
        DeploymentReport,
        Recorded,
        ReleaseReport,
        Registered,
    )
} | api_loadtests.ADAPTERS


def _read(cls: type, body: bytes) -> Any:
    """A JSON body as `cls`; a bad one is a one-line reason."""
    if len(body) > MAX_BODY:
        raise InvalidInput("the request body is too large", hint=f"send at most {MAX_BODY} bytes")
    try:
        return ADAPTERS[cls].validate_json(body or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(
            f"{where}: {clip(first['msg'], 120)}", hint=f"see {PREFIX}/openapi.json"
        ) from None


def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(ADAPTERS[type(value)].dump_python(value, mode="json"), status_code=status)


def pipeline_routes(runtime: Runtime) -> list[Route]:
    """The routes pipeline steps call; each needs a pipeline token."""
    tokens = Tokens(runtime.catalog, runtime.database, runtime.clock)
    steps = PipelineSteps(runtime.catalog, runtime.database, runtime.clock)

    def authenticate(request: Request) -> ApiToken:
        return tokens.authenticate(
            bearer(request.headers.get("authorization", "")) or "", scope="pipeline"
        )

    def for_environment(request: Request) -> tuple[ApiToken, str]:
        token = authenticate(request)
        name = request.path_params["name"]
        require_type(token, steps.type_of(name))
        return token, name

    def parameters(request: Request, body: bytes) -> Response:
        _, name = for_environment(request)
        query = request.query_params
        rendered = steps.parameters(
            name, format=query.get("format", "sf-xml"), release=query.get("release") or None
        )
        return _json(rendered)

    def state(request: Request, body: bytes) -> Response:
        _, name = for_environment(request)
        return _json(steps.state(name))

    def deployments(request: Request, body: bytes) -> Response:
        token, name = for_environment(request)
        report: DeploymentReport = _read(DeploymentReport, body)
        policy.authorize(runtime.catalog, PIPELINE_ACTOR, "record_deployment")
        recorded = steps.record(name, report, token=f"token {token.prefix}")
        return _json(recorded, 201 if recorded.new else 200)

    def releases(request: Request, body: bytes) -> Response:
        token = authenticate(request)
        report: ReleaseReport = _read(ReleaseReport, body)
        policy.authorize(runtime.catalog, PIPELINE_ACTOR, "release_add")
        registered = steps.register(report, token=f"token {token.prefix}")
        return _json(registered, 201 if registered.new else 200)

    return [
        Route(f"{PREFIX}/environments/{{name}}/parameters", endpoint(parameters)),
        Route(f"{PREFIX}/environments/{{name}}/state", endpoint(state)),
        Route(
            f"{PREFIX}/environments/{{name}}/deployments", endpoint(deployments), methods=["POST"]
        ),
        Route(f"{PREFIX}/releases", endpoint(releases), methods=["POST"]),
        *api_loadtests.routes(runtime, authenticate, steps.type_of),
    ]


def paths(ref: Callable[[type], dict[str, str]], refused: dict[str, Any]) -> dict[str, Any]:
    """These routes in the OpenAPI document (`ref(cls)`: a schema reference)."""

    def answers(cls: type, what: str, *, created: bool = False) -> dict[str, Any]:
        content = {"application/json": {"schema": ref(cls)}}
        done = {"200": {"description": what, "content": content}}
        if created:
            done = {
                "201": {"description": f"{what} (new)", "content": content},
                "200": {
                    "description": f"{what} (known already: nothing changed)",
                    "content": content,
                },
            }
        return {
            **done,
            "400": {"description": "bad input; nothing changed", "content": refused},
            "401": {"description": "unknown, revoked or expired token", "content": refused},
            "403": {"description": "the token's scope or type, or the rule table, refuses",
                    "content": refused},
            "404": {"description": "no such environment", "content": refused},
            "409": {"description": "the record does not allow it (e.g. an immutable release)",
                    "content": refused},
        }  # fmt: skip

    env = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}

    def body(cls: type) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": ref(cls)}}}

    pipeline: list[dict[str, list[str]]] = [{"token": []}]
    return {
        f"{PREFIX}/environments/{{name}}/parameters": {
            "get": {
                "summary": "the environment's parameters rendered for a deploy task "
                "(pipeline token of its type)",
                "security": pipeline,
                "parameters": [
                    env,
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": list(FORMATS), "default": "sf-xml"},
                    },
                    {
                        "name": "release",
                        "in": "query",
                        "required": False,
                        "description": "the release being deployed ({{ release.version }})",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": answers(Rendered, "the rendered parameters"),
            }
        },
        f"{PREFIX}/environments/{{name}}/state": {
            "get": {
                "summary": "where the environment is in its life (pipeline token of its type)",
                "security": pipeline,
                "parameters": [env],
                "responses": answers(StateAnswer, "the environment's state"),
            }
        },
        f"{PREFIX}/environments/{{name}}/deployments": {
            "post": {
                "summary": "record what a pipeline run deployed into the environment "
                "(pipeline token of its type; idempotent per run URL)",
                "security": pipeline,
                "parameters": [env],
                "requestBody": body(DeploymentReport),
                "responses": answers(Recorded, "the deployment as recorded", created=True),
            }
        },
        **api_loadtests.paths(ref, refused),
        f"{PREFIX}/releases": {
            "post": {
                "summary": "register the release a build run produced (pipeline token; "
                "idempotent per build run)",
                "security": pipeline,
                "requestBody": body(ReleaseReport),
                "responses": answers(Registered, "the release as recorded", created=True),
            }
        },
    }


__all__ = ["ADAPTERS", "paths", "pipeline_routes"]

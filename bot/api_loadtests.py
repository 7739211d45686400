"""`/api/v1` load tests for pipeline steps: ask for one after a deploy, then follow it.

`POST /environments/NAME/loadtests` checks the pipeline token (its type against the
environment's) and the rule table (`loadtest` as the pipeline identity, within the type's
limits), records the run and answers 202 with it; `shipyard serve` runs it on its own threads
(`env loadtest`'s use case), never on the request's. `GET /loadtests/ID` says where it is.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.api_common import PREFIX, endpoint
from bot.runtime import Runtime
from environments.errors import InvalidInput, clip
from environments.pipeline_deployments import SYSTEM
from environments.pipeline_loadtests import LoadTestRequest, LoadTestRun, PipelineLoadTests
from environments.policy import Actor, Channel
from environments.registry.tokens import ApiToken
from environments.tokens import require_type

__all__ = ["ADAPTERS", "paths", "routes"]

# The identity pipeline tokens act as (`allow: loadtest` may name it), as for their other routes.
PIPELINE_ACTOR = Actor(person=SYSTEM, channel=Channel.API)
# Load tests at once on one server: each drives its own engine process.
RUNNERS = 2
MAX_BODY = 4 * 1024
ADAPTERS: dict[type, TypeAdapter[Any]] = {
    cls: TypeAdapter(cls) for cls in (LoadTestRequest, LoadTestRun)
}


def routes(
    runtime: Runtime,
    authenticate: Callable[[Request], ApiToken],
    type_of: Callable[[str], str],
) -> list[Route]:
    """The two routes; the runs they start go to a pool of this server's threads."""
    pool = ThreadPoolExecutor(max_workers=RUNNERS, thread_name_prefix="shipyard-loadtest")

    def loadtests() -> PipelineLoadTests:  # built on first use: numpy, polars, the engines
        return PipelineLoadTests(runtime.catalog, runtime.database, runtime.loadtesting)

    def start(request: Request, body: bytes) -> Response:
        token = authenticate(request)
        name = request.path_params["name"]
        require_type(token, type_of(name))
        asked = _read(body)
        started = loadtests().start(PIPELINE_ACTOR, name, asked)
        pool.submit(loadtests().finish, PIPELINE_ACTOR, started, asked)
        return _json(started, 202)

    def follow(request: Request, body: bytes) -> Response:
        token = authenticate(request)
        run_id = request.path_params["run_id"]
        require_type(token, loadtests().type_of_run(run_id))
        return _json(loadtests().run(run_id))

    return [
        Route(f"{PREFIX}/environments/{{name}}/loadtests", endpoint(start), methods=["POST"]),
        Route(f"{PREFIX}/loadtests/{{run_id:int}}", endpoint(follow)),
    ]


def _read(body: bytes) -> LoadTestRequest:
    if len(body) > MAX_BODY:
        raise InvalidInput("the request body is too large", hint=f"send at most {MAX_BODY} bytes")
    try:
        return ADAPTERS[LoadTestRequest].validate_json(body or b"{}")  # type: ignore[no-any-return]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInput(
            f"{where}: {clip(first['msg'], 120)}", hint=f"see {PREFIX}/openapi.json"
        ) from None


def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(ADAPTERS[type(value)].dump_python(value, mode="json"), status_code=status)


def paths(ref: Callable[[type], dict[str, str]], refused: dict[str, Any]) -> dict[str, Any]:
    """These routes in the OpenAPI document."""
    pipeline: list[dict[str, list[str]]] = [{"token": []}]
    refusals = {
        "400": {"description": "bad input; nothing changed", "content": refused},
        "401": {"description": "unknown, revoked or expired token", "content": refused},
        "403": {"description": "the token's type, the rule table or the type's load-test "
                "limits refuse; nothing changed", "content": refused},
        "404": {"description": "no such environment, plan or run", "content": refused},
    }  # fmt: skip
    run = {"application/json": {"schema": ref(LoadTestRun)}}
    return {
        f"{PREFIX}/environments/{{name}}/loadtests": {
            "post": {
                "summary": "load-test the environment (pipeline token of its type); "
                "Shipyard runs it, follow it at /loadtests/{run}",
                "security": pipeline,
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": ref(LoadTestRequest)}},
                },
                "responses": {
                    "202": {"description": "the run, recorded as started", "content": run},
                    **refusals,
                    "409": {
                        "description": "the environment is not ready with a release",
                        "content": refused,
                    },
                },
            }
        },
        f"{PREFIX}/loadtests/{{run_id}}": {
            "get": {
                "summary": "where a load-test run is: running, or its verdict "
                "(pipeline token of its environment's type)",
                "security": pipeline,
                "parameters": [
                    {
                        "name": "run_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
                "responses": {"200": {"description": "the run", "content": run}, **refusals},
            }
        },
    }

"""`/api/v1`: the record as JSON for scripts and the dashboard, described by OpenAPI."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from bot import api_pipeline, render
from bot.api_common import PREFIX, Problem, bearer, problem
from bot.runtime import Runtime
from bot.speech import on_cli
from environments.errors import InvalidInput, NotFound, ShipyardError
from environments.model import Approval, Deployment, MatrixRow
from environments.registry import overview
from environments.registry import record as rec
from environments.registry.health import HealthCheck, health_history
from environments.registry.overview import EnvironmentFilter, EnvironmentRow, TrendPoint
from environments.tokens import Tokens

Endpoint = Callable[[Request], Awaitable[Response]]
# Who asked: a session's person (the dashboard) or a token's prefix (a script); set by `guard`.
Principal = Callable[[Request], str | None]


@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    """One deployment into the environment, with its run link and what its parameters changed."""

    deployment: Deployment
    run_url: str | None
    parameter_changes: str


@dataclasses.dataclass(frozen=True)
class EnvironmentDetail:
    environment: EnvironmentRow
    history: list[HistoryEntry]
    loadtests: list[TrendPoint]
    health: list[HealthCheck]
    waiting: list[Approval]


@dataclasses.dataclass(frozen=True)
class EnvironmentList:
    environments: list[EnvironmentRow]
    total: int
    page: int
    per_page: int
    pages: int


@dataclasses.dataclass(frozen=True)
class Matrix:
    rows: list[MatrixRow]


@dataclasses.dataclass(frozen=True)
class Approvals:
    approvals: list[Approval]


@dataclasses.dataclass(frozen=True)
class Trends:
    plans: dict[str, list[TrendPoint]]


ADAPTERS: dict[type, TypeAdapter[Any]] = {
    cls: TypeAdapter(cls)
    for cls in (EnvironmentList, EnvironmentDetail, Matrix, Approvals, Trends, Problem)
}


def as_json(value: Any) -> Any:
    return ADAPTERS[type(value)].dump_python(value, mode="json")


def parse_filter(query: dict[str, str]) -> EnvironmentFilter:
    """Query parameters → a filter; a bad value is a one-line reason, never a stack trace."""
    sort = query.get("sort", "name")
    if sort not in overview.SORTS:
        raise InvalidInput(f"cannot sort by '{sort}'", hint=f"sort by: {', '.join(overview.SORTS)}")
    order = query.get("order", "asc")
    if order not in ("asc", "desc"):
        raise InvalidInput(f"order '{order}' is neither asc nor desc", hint="use order=asc|desc")
    numbers = {}
    for key, default in (("page", 1), ("per_page", 50)):
        raw = query.get(key, str(default))
        if not raw.isdigit() or int(raw) < 1:
            raise InvalidInput(f"{key} '{raw}' is not a positive whole number", hint=f"{key}=1")
        numbers[key] = int(raw)
    if numbers["per_page"] > overview.MAX_PAGE:
        raise InvalidInput(
            f"per_page {numbers['per_page']} is too large", hint=f"at most {overview.MAX_PAGE}"
        )
    return EnvironmentFilter(
        type=query.get("type") or None,
        state=query.get("state") or None,
        owner=query.get("owner") or None,
        health=query.get("health") or None,
        release=query.get("release") or None,
        name=query.get("name") or None,
        sort=sort,
        descending=order == "desc",
        page=numbers["page"],
        per_page=numbers["per_page"],
    )


class RecordReader:
    """The reads the API and the dashboard share (one place decides what each page shows)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def environments(self, wanted: EnvironmentFilter) -> EnvironmentList:
        with self.runtime.database.read() as conn:
            page = overview.environments_page(conn, wanted)
        return EnvironmentList(page.rows, page.total, page.page, page.per_page, page.pages)

    def environment(self, name: str) -> EnvironmentDetail:
        with self.runtime.database.read() as conn:
            env = rec.get_environment(conn, name)
            found = overview.environments_page(conn, EnvironmentFilter(name=env.name, per_page=5))
            row = next(r for r in found.rows if r.name == env.name)
            deployments = rec.history(conn, name, limit=50)
            urls = overview.run_urls(conn, [d.id for d in deployments])
            runs = overview.environment_runs(conn, name)
            checks = health_history(conn, name, limit=50)
            waiting = rec.list_approvals(conn, environment=env.name)
        changes = render.parameter_changes(deployments)
        history = [
            HistoryEntry(_without_values(d), urls.get(d.id), change)
            for d, change in zip(deployments, changes, strict=True)
        ]
        return EnvironmentDetail(row, history, runs, checks, waiting)

    def matrix(self) -> Matrix:
        with self.runtime.database.read() as conn:
            rows = rec.matrix(conn)
        order = {name: index for index, name in enumerate(self.runtime.catalog.promotion)}
        rows.sort(key=lambda r: (order.get(r.type, len(order)), r.type, r.environment))
        return Matrix(rows)

    def approvals(self) -> Approvals:
        with self.runtime.database.read() as conn:
            return Approvals(rec.list_approvals(conn))

    def trends(self) -> Trends:
        with self.runtime.database.read() as conn:
            return Trends(overview.loadtest_trends(conn))

    def chart(self, run_id: int) -> Path | None:
        with self.runtime.database.read() as conn:
            folder = overview.chart_folder(conn, run_id)
        chart = Path(folder) / "chart.png" if folder else None
        return chart if chart is not None and chart.is_file() else None


def _without_values(deployment: Deployment) -> Deployment:
    """Parameter values stay in the record: pages and JSON show fingerprints and key changes.

    (Secrets are only ever references, but a rendered value may still be sensitive.)
    """
    return dataclasses.replace(
        deployment, parameters=None, environment_parameters=None, overrides={}
    )


def api_routes(reader: RecordReader, session_person: Principal) -> list[Route]:
    """The routes under /api/v1; each needs a read token (or a signed-in dashboard session)."""
    tokens = Tokens(reader.runtime.catalog, reader.runtime.database, reader.runtime.clock)

    def guard(handler: Callable[[Request], Any]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            presented = bearer(request.headers.get("authorization", ""))
            who: str | None = None
            if presented is not None:
                token = await run_in_threadpool(tokens.verify, presented, scope="read")
                who = f"token {token.prefix}" if token else None
            else:
                who = session_person(request)
            if who is None:
                return problem(
                    401,
                    "a valid API token is needed",
                    "send 'Authorization: Bearer TOKEN' (shipyard tokens create --scope read)",
                )
            try:
                result = await run_in_threadpool(handler, request)
            except NotFound as exc:
                return problem(404, exc.reason, exc.advice(on_cli), exc.hints)
            except ShipyardError as exc:
                return problem(400, exc.reason, exc.advice(on_cli), exc.hints)
            return result if isinstance(result, Response) else JSONResponse(as_json(result))

        return endpoint

    def chart(request: Request) -> Response:
        raw = request.path_params["run_id"]
        found = reader.chart(int(raw))
        if found is None:
            raise NotFound(f"load-test run #{raw} has no chart", hint="see /api/v1/loadtests")
        return FileResponse(found, media_type="image/png")

    return [
        Route(f"{PREFIX}/openapi.json", guard(lambda r: JSONResponse(openapi()))),
        Route(
            f"{PREFIX}/environments",
            guard(lambda r: reader.environments(parse_filter(dict(r.query_params)))),
        ),
        Route(
            f"{PREFIX}/environments/{{name}}",
            guard(lambda r: reader.environment(r.path_params["name"])),
        ),
        Route(f"{PREFIX}/matrix", guard(lambda r: reader.matrix())),
        Route(f"{PREFIX}/approvals", guard(lambda r: reader.approvals())),
        Route(f"{PREFIX}/loadtests/trends", guard(lambda r: reader.trends())),
        Route(f"{PREFIX}/loadtests/{{run_id:int}}/chart.png", guard(chart)),
    ]


def chart_url(run_id: int) -> str:
    return f"{PREFIX}/loadtests/{run_id}/chart.png"


def openapi() -> dict[str, Any]:
    """OpenAPI 3.1: the schemas are generated from the same types the responses are dumped from."""
    schemas: dict[str, Any] = {}
    refs: dict[type, dict[str, str]] = {}
    adapters: dict[type, TypeAdapter[Any]] = {**ADAPTERS, **api_pipeline.ADAPTERS}
    for cls, adapter in adapters.items():
        schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[cls.__name__] = schema
        refs[cls] = {"$ref": f"#/components/schemas/{cls.__name__}"}

    def answer(cls: type, what: str) -> dict[str, Any]:
        return {
            "200": {"description": what, "content": {"application/json": {"schema": refs[cls]}}},
            "401": {"description": "no valid token", "content": _problem(refs)},
            "400": {"description": "a bad parameter", "content": _problem(refs)},
        }

    def query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": {"type": kind}}  # fmt: skip

    listing = [
        query("type", "only this environment type"),
        query("state", "only this state"),
        query("owner", "only this owner"),
        query("health", "healthy, degraded, unhealthy or unknown"),
        query("release", "only environments running this release"),
        query("name", "names starting with this"),
        query("sort", f"one of {', '.join(overview.SORTS)}"),
        query("order", "asc or desc"),
        query("page", "page number, from 1", "integer"),
        query("per_page", f"rows per page, at most {overview.MAX_PAGE}", "integer"),
    ]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Shipyard", "version": "1"},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}],
        "paths": {
            **api_pipeline.paths(lambda cls: refs[cls], _problem(refs)),
            f"{PREFIX}/environments": {
                "get": {
                    "summary": "live environments, filtered, sorted and paged",
                    "parameters": listing,
                    "responses": answer(EnvironmentList, "one page of environments"),
                }
            },
            f"{PREFIX}/environments/{{name}}": {
                "get": {
                    "summary": "one environment: history, load tests, health, waiting approvals",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": answer(EnvironmentDetail, "the environment"),
                }
            },
            f"{PREFIX}/matrix": {
                "get": {"summary": "which release runs where", "responses": answer(Matrix, "")}
            },
            f"{PREFIX}/approvals": {
                "get": {"summary": "requests waiting", "responses": answer(Approvals, "")}
            },
            f"{PREFIX}/loadtests/trends": {
                "get": {"summary": "p95 and errors per plan", "responses": answer(Trends, "")}
            },
            f"{PREFIX}/loadtests/{{run_id}}/chart.png": {
                "get": {
                    "summary": "a load-test run's chart",
                    "parameters": [
                        {
                            "name": "run_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "responses": {"200": {"description": "PNG", "content": {"image/png": {}}}},
                }
            },
        },
    }


_STRING = {"type": "string"}
_INT = {"type": "integer"}


def _problem(refs: dict[type, dict[str, str]]) -> dict[str, Any]:
    return {"application/json": {"schema": refs[Problem]}}


__all__ = ["RecordReader", "api_routes", "chart_url", "openapi"]

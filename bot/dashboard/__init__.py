"""The dashboard at `/`: server-rendered pages of the record, behind Sign in with Slack."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.api import RecordReader, api_routes, chart_url, parse_filter
from bot.dashboard.auth import Session, SignIn
from bot.speech import on_cli
from environments.errors import NotFound, ShipyardError
from environments.registry import overview

HERE = Path(__file__).parent
SORTABLE = [
    ("name", "Environment"),
    ("type", "Type"),
    ("release", "Release"),
    ("since", "Since"),
    ("owner", "Owner"),
    ("health", "Health"),
    ("expires", "Expires"),
    ("created", "Age"),
]
HEALTH = ("healthy", "degraded", "unhealthy", "unknown")


def ago(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    return _span(seconds) + " ago" if seconds >= 0 else "in " + _span(-seconds)


def until(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    seconds = int((moment - datetime.now(UTC)).total_seconds())
    return "in " + _span(seconds) if seconds >= 0 else "expired " + _span(-seconds) + " ago"


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=ago, until=until, when=when)
    env.globals.update(chart_url=chart_url, sortable=SORTABLE, health_statuses=HEALTH)
    return env


class Dashboard:
    """Pages for signed-in people; anyone else is sent to sign in first."""

    def __init__(self, reader: RecordReader, sign_in: SignIn) -> None:
        self.reader = reader
        self.sign_in = sign_in
        self.jinja = templates()

    def page(self, template: str, load: Callable[[Request], dict[str, Any]]) -> Any:
        async def endpoint(request: Request) -> Response:
            session = self.sign_in.session(request)
            if session is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(
                    "/auth/sign-in?" + _query({"next": target}), status_code=303
                )
            try:
                context = await run_in_threadpool(load, request)
            except NotFound as exc:
                return self.render(
                    "problem.html", session, 404, reason=exc.reason, hint=exc.advice(on_cli)
                )
            except ShipyardError as exc:
                return self.render(
                    "problem.html", session, 400, reason=exc.reason, hint=exc.advice(on_cli)
                )
            return self.render(template, session, 200, path=request.url.path, **context)

        return endpoint

    def render(self, template: str, session: Session, status: int, **context: Any) -> Response:
        body = self.jinja.get_template(template).render(session=session, **context)
        return HTMLResponse(
            body,
            status_code=status,
            headers={
                "Content-Security-Policy": (
                    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                    "script-src 'self'; frame-ancestors 'none'; form-action 'self'"
                ),
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
                "Cache-Control": "no-store",
            },
        )

    def environments(self, request: Request) -> dict[str, Any]:
        query = dict(request.query_params)
        wanted = parse_filter(query)
        listing = self.reader.environments(wanted)
        with self.reader.runtime.database.read() as conn:
            drift = overview.latest_drift(conn)
        return {
            "listing": listing,
            "wanted": wanted,
            "query": query,
            "types": sorted(self.reader.runtime.catalog.types),
            "drift": drift,
            "link": lambda **changes: "/?" + _query({**query, **changes}),
        }

    def environment(self, request: Request) -> dict[str, Any]:
        detail = self.reader.environment(request.path_params["name"])
        env_type = self.reader.runtime.catalog.types.get(detail.environment.type)
        return {"detail": detail, "about": env_type.summary if env_type else ""}

    def matrix(self, request: Request) -> dict[str, Any]:
        return {"matrix": self.reader.matrix()}

    def approvals(self, request: Request) -> dict[str, Any]:
        return {"approvals": self.reader.approvals()}

    def loadtests(self, request: Request) -> dict[str, Any]:
        trends = self.reader.trends()
        return {
            "trends": trends,
            "lines": {p: _trend(points) for p, points in trends.plans.items()},
        }

    async def sign_out(self, request: Request) -> Response:
        form = await request.form()
        if not self.sign_in.csrf_ok(request, str(form.get("csrf", ""))):
            return Response("Refused: the form's token does not match.", 403)
        return self.sign_in.sign_out()

    async def callback(self, request: Request) -> Response:
        # The token exchange and userInfo are blocking calls to Slack: off the event loop.
        response: Response = await run_in_threadpool(self.sign_in.finish, request)
        return response

    async def signed_out(self, request: Request) -> Response:
        return HTMLResponse(self.jinja.get_template("signed_out.html").render())

    def routes(self) -> list[BaseRoute]:
        sign_in = self.sign_in
        return [
            Route("/", self.page("environments.html", self.environments)),
            Route("/environments/{name}", self.page("environment.html", self.environment)),
            Route("/matrix", self.page("matrix.html", self.matrix)),
            Route("/approvals", self.page("approvals.html", self.approvals)),
            Route("/loadtests", self.page("loadtests.html", self.loadtests)),
            Route("/auth/sign-in", sign_in.start),
            Route("/auth/callback", self.callback),
            Route("/auth/sign-out", self.sign_out, methods=["POST"]),
            Route("/auth/signed-out", self.signed_out),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
            *api_routes(self.reader, sign_in.person),
        ]


def _query(values: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


@dataclass(frozen=True)
class Trend:
    """An SVG line of p95 across a plan's runs, drawn server-side (no script needed)."""

    line: str
    marks: list[tuple[float, float, bool, str]]
    low: float
    high: float


def _trend(points: list[overview.TrendPoint]) -> Trend | None:
    measured = [p for p in points if p.p95 is not None]
    if len(measured) < 2:
        return None
    values = [p.p95 for p in measured if p.p95 is not None]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = 300 / (len(measured) - 1)
    marks = [
        (
            round(i * step, 1),
            round(55 - 50 * (v - low) / span, 1),
            p.outcome == "regressed",
            f"{p.release}: p95 {v:.0f} ms, {p.outcome}",
        )
        for i, (p, v) in enumerate(zip(measured, values, strict=True))
    ]
    return Trend(" ".join(f"{x},{y}" for x, y, _, _ in marks), marks, low, high)

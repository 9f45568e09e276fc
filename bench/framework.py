"""Benchmark: what the web framework itself costs per request, with no server, no database and
no work in the handler: the share of bench/api.py's gap that no change inside pane's handler
can close.

    python -m bench.framework [--requests 20000] [--rounds 5]

Each app is called directly as ASGI (GET, no query string, a fixed 2-byte JSON answer), one
request after another on one event loop, and timed in CPU seconds. The apps, each with a
single route so that routing costs the same:

1. Starlette, as bench/api.py's bare endpoint is built;
2. FastAPI configured as pane is (its telemetry off), a route with no parameters;
3. that route taking a dependency shaped like pane's request context (a callable class
   taking the Request and yielding, ``scope="function"``), doing nothing;
4. that route with the query parameters of pane's own ``GET /v1/leads`` route (read from
   its signature);
5. app 4 inside pane's own two middlewares (request id, access log line and metrics; the
   body limit).

Rounds alternate the apps; the best round of each is printed, in microseconds of CPU per
request, with each step's cost over the one before.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import os
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, get_type_hints

from fastapi import Depends, FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from pane.api.leads import list_leads
from pane.logs import configure_logging
from pane.middleware import BodyLimitMiddleware, RequestContextMiddleware

ANSWER = b"{}"
TELEMETRY_OFF: Any = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


class _Context:
    """Shaped like pane's ``_Scoped``: a callable class, the Request in, one value yielded."""

    async def __call__(self, request: Request) -> AsyncIterator[int]:
        yield 1


Context = Annotated[int, Depends(_Context(), scope="function")]


def _answer() -> Response:
    return Response(ANSWER, media_type="application/json")


def starlette_app() -> ASGIApp:
    async def endpoint(request: Request) -> Response:
        return _answer()

    return Starlette(routes=[Route("/v1/leads", endpoint)])


def _query_parameters() -> list[inspect.Parameter]:
    """The query parameters of pane's own ``GET /v1/leads`` route, as FastAPI reads them."""
    hints = get_type_hints(list_leads, include_extras=True)
    return [
        parameter.replace(annotation=hints[name])
        for name, parameter in inspect.signature(list_leads).parameters.items()
        if name != "context"
    ]


def fastapi_app(*, context: bool, parameters: bool) -> FastAPI:
    async def endpoint(**_: Any) -> Response:
        return _answer()

    taken = [inspect.Parameter("context", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    if parameters:
        taken += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in _query_parameters()]
    endpoint.__signature__ = inspect.Signature(taken if context else [])  # type: ignore[attr-defined]
    app = FastAPI(telemetry=TELEMETRY_OFF)
    app.get("/v1/leads")(endpoint)
    return app


def with_pane_middleware() -> ASGIApp:
    app = fastapi_app(context=True, parameters=True)
    app.add_middleware(BodyLimitMiddleware, max_bytes=1_000_000)
    app.add_middleware(RequestContextMiddleware)
    return app


async def cpu_per_request(app: ASGIApp, requests: int) -> float:
    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: set[int] = set()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    started = time.process_time()
    for _ in range(requests):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/v1/leads",
            "raw_path": b"/v1/leads",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        await app(scope, receive, send)
    elapsed = time.process_time() - started
    if statuses != {200}:
        raise RuntimeError(f"the app answered {statuses}, not 200")
    return elapsed / requests * 1e6


async def measure(requests: int, rounds: int) -> list[tuple[str, float]]:
    apps: list[tuple[str, ASGIApp]] = [
        ("Starlette route", starlette_app()),
        ("FastAPI route, no parameters", fastapi_app(context=False, parameters=False)),
        ("+ a yielding request dependency", fastapi_app(context=True, parameters=False)),
        (
            f"+ the {len(_query_parameters())} query parameters of /v1/leads",
            fastapi_app(context=True, parameters=True),
        ),
        ("+ pane's two middlewares", with_pane_middleware()),
    ]
    best = {name: float("inf") for name, _ in apps}
    for _, app in apps:  # warm-up
        await cpu_per_request(app, requests // 10)
    for _ in range(rounds):
        for name, app in apps:
            best[name] = min(best[name], await cpu_per_request(app, requests))
    return [(name, best[name]) for name, _ in apps]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000, help="requests per app a round")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    # The access line is written, as a server's would be, but not to a terminal.
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        configure_logging("INFO", json=True)
        figures = asyncio.run(measure(options.requests, options.rounds))
    print(f"CPU per request, best of {options.rounds} rounds of {options.requests:,} requests:")
    previous = None
    for name, micros in figures:
        step = "" if previous is None else f"  (+{micros - previous:.0f})"
        print(f"  {name:42s} {micros:6.0f} us{step}")
        previous = micros
    framework = figures[3][1] - figures[0][1]
    print(f"FastAPI's own cost for the shape of GET /v1/leads: {framework:.0f} us a request")


if __name__ == "__main__":
    main()

"""A real HTTP server on 127.0.0.1, in a thread, that tests mount vendor apps on: connectors,
link checks and worker subprocesses reach them over loopback like any vendor."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

ASGIApp = Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Loopback:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.apps: dict[str, ASGIApp] = {}
        self._numbers = itertools.count(1)
        self.server = uvicorn.Server(
            uvicorn.Config(
                self._dispatch,
                host="127.0.0.1",
                port=self.port,
                log_config=None,
                access_log=False,
                lifespan="off",
                interface="asgi3",
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the loopback server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def mount(self, app: ASGIApp) -> str:
        """Serve ``app`` under a prefix of its own; returns its base URL."""
        prefix = f"app{next(self._numbers)}"
        self.apps[prefix] = app
        return f"{self.url}/{prefix}"

    async def _dispatch(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        prefix = scope["path"].split("/", 2)[1] if scope["type"] != "lifespan" else ""
        app = self.apps.get(prefix)
        if app is None:
            await PlainTextResponse("no such app", status_code=404)(scope, receive, send)
            return
        await app({**scope, "root_path": f"/{prefix}"}, receive, send)


class PriceFiles:
    """A partner portal publishing a price list file: any ``*.csv`` path, the delimiter from
    ``?sep=``; it refuses tokens that start with ``revoked``."""

    def __init__(self) -> None:
        self.app = Starlette(routes=[Route("/{name:path}", self.price_list)])

    async def price_list(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token.startswith("revoked"):
            return PlainTextResponse("token revoked", status_code=401)
        if not request.path_params["name"].endswith(".csv"):
            return PlainTextResponse("not found", status_code=404)
        sep = request.query_params.get("sep", ",")
        lines = [["sku", "currency", "price"], ["FW-200", "EUR", "1890.00"]]
        return PlainTextResponse("\n".join(sep.join(line) for line in lines) + "\n")
